"""Heads on disk: safetensors for the tensors, JSON (in the safetensors header) for the rest.

Nothing is ever unpickled. A digest of the tensors detects files altered after saving.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .names import ClassNameError, check_class_names
from .normalisation import Whitener

# Heavy: safetensors and scikit-learn imported where used, so that importing this module stays
# cheap.

FORMAT = "imprint-head"
# 2: the combined unknown score (imprint_core.unknown.UnknownModel); 3: its threshold with one
# image per class (the tensor unknown_pair_spread; format 2 files keep the largest held-out score)
FORMAT_VERSION = 3
# An option a head file does not state takes the value it had when format 1 was defined (the
# paper's ``ours``), not today's constructor default: a file keeps meaning what it meant.
FILE_DEFAULTS = {
    "norm_pre": "l2",
    "gen": "kmeans",
    "k": 20,
    "norm_post": "l2",
    "norm_inf": "l2",
    "agg": "max",
    "distance": "inner_product",
    "m": 1,
    "weighting": "uniform",
    "whiten_shrinkage": 0.3,
}
PARAMS = (
    "norm_pre",
    "gen",
    "k",
    "norm_post",
    "norm_inf",
    "agg",
    "distance",
    "m",
    "weighting",
    "seed",
    "lambda_reg",
    "temperature",
    "kmeans_impl",
    "whiten_shrinkage",
    "backbone",
)


class HeadFileError(ValueError):
    """A head file that cannot be read: not safetensors, truncated, altered or incompatible."""


def _digest(proxies: np.ndarray, counts: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(proxies, dtype="<f4").tobytes())
    h.update(np.ascontiguousarray(counts, dtype="<i8").tobytes())
    return h.hexdigest()


def _digest_bytes(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _label_to_json(label: Any) -> Any:
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, (str, int, float, bool)) or label is None:
        return label
    raise HeadFileError(
        f"class label {label!r} of type {type(label).__name__} cannot be saved; "
        "labels must be strings, integers, floats or booleans"
    )


def save_head(clf, path: str | os.PathLike, *, backbone: str | None = None) -> None:
    from safetensors.numpy import save_file
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf)
    classes = [_label_to_json(c) for c in clf.classes_]
    # refuse now what load_head would refuse, so that no unreadable head is ever written
    _check_label_values(Path(path).name, classes)
    params = {p: getattr(clf, p) for p in PARAMS}
    if backbone is not None:
        params["backbone"] = backbone
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": "imprint_core",
        "library_version": __version__,
        "params": params,
        "classes": classes,
        "classes_dtype": clf.classes_.dtype.str if clf.classes_.dtype.kind != "O" else "object",
        "n_features_in": int(clf.n_features_in_),
        "proxy_counts": [int(c) for c in clf.proxy_counts_],
        "sha256": _digest(clf.proxies_, clf.proxy_counts_),
    }
    training = getattr(clf, "training_", None)  # how the samples were made (not an option)
    if training:  # e.g. {"augment": ["flip", "crops"], "images": 40, "samples": 280}
        meta["training"] = dict(training)
    tensors = {
        "proxies": np.ascontiguousarray(clf.proxies_, dtype=np.float32),
        "proxy_counts": np.ascontiguousarray(clf.proxy_counts_, dtype=np.int64),
    }
    whitener = getattr(clf, "whitener_", None)
    if whitener is not None:  # float64: the whitening matrix is what inputs go through
        tensors["whiten_mean"] = np.ascontiguousarray(whitener.mean, dtype=np.float64)
        tensors["whiten_matrix"] = np.ascontiguousarray(whitener.matrix, dtype=np.float64)
        meta["sha256_whiten"] = _digest_bytes(tensors["whiten_mean"], tensors["whiten_matrix"])
    model = getattr(clf, "unknown_model_", None)
    if model is not None:  # "none of these" (imprint_core.unknown)
        for name, array in model.arrays().items():
            tensors[f"unknown_{name}"] = np.ascontiguousarray(array)
        meta["sha256_unknown"] = _digest_bytes(*(tensors[k] for k in _unknown_keys()))
    elif getattr(clf, "unknown_means_", None) is not None:  # a loaded head of the older format
        tensors["unknown_means"] = np.ascontiguousarray(clf.unknown_means_, dtype=np.float32)
        tensors["unknown_calibration"] = np.ascontiguousarray(
            clf.unknown_calibration_, dtype=np.float32
        )
        meta["sha256_unknown"] = _digest_bytes(
            tensors["unknown_means"], tensors["unknown_calibration"]
        )
    save_file(tensors, str(path), metadata={"imprint": json.dumps(meta)})


def read_head_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a head file, checked for format; tensors are not read."""
    from safetensors import safe_open

    name = Path(path).name
    try:
        with safe_open(str(path), framework="numpy") as fh:
            raw = (fh.metadata() or {}).get("imprint")
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise HeadFileError(f"'{name}' is not a readable safetensors head file ({exc})") from None
    if raw is None:
        raise HeadFileError(f"'{name}' is a safetensors file but not an IMPRINT head (no metadata)")
    try:
        meta = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, RecursionError, ValueError):
        # RecursionError: JSON nested thousands deep; ValueError: NaN/Infinity literals
        raise HeadFileError(f"'{name}': the head's JSON metadata is corrupt") from None
    if not isinstance(meta, dict):
        raise HeadFileError(f"'{name}': the head's JSON metadata is not an object")
    if meta.get("format") != FORMAT:
        raise HeadFileError(
            f"'{name}' is not an IMPRINT head (format {_short(meta.get('format'))})"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise HeadFileError(
            f"'{name}' has the format version {_short(version)}; a head's format version is a "
            f"whole number from 1 to {FORMAT_VERSION}"
        )
    if version > FORMAT_VERSION:
        raise HeadFileError(
            f"'{name}' was written by a newer imprint_core (format {version}); "
            "upgrade imprint_core to read it"
        )
    for key, kind in _META_TYPES.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise HeadFileError(f"'{name}': the metadata field '{key}' is missing or malformed")
    return meta


def _no_constant(token: str):
    raise ValueError(f"{token} is not JSON")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# metadata field -> the JSON type it must have
_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "params": dict,
    "classes": list,
    "n_features_in": int,
    "sha256": str,
    "library_version": str,
}
# the dtypes a head's labels may be stored with: text, whole numbers, floats, booleans
_LABEL_KINDS = frozenset("Uiufb")


def _check_label_values(name: str, classes: list) -> None:
    """Text labels follow every rule of ``imprint_core.names`` (the app's class names); numbers
    are finite; all labels are of one kind and unique."""
    kinds = {type(c) for c in classes}
    if not kinds <= {str, int, float, bool} or len(kinds) > 1:
        raise HeadFileError(
            f"'{name}': class labels must be all text or all numbers "
            f"(found {', '.join(sorted(k.__name__ for k in kinds))})"
        )
    if kinds == {str}:
        try:
            cleaned = check_class_names(classes)
        except ClassNameError as exc:
            raise HeadFileError(f"'{name}': {exc}") from None
        changed = next((ck for ck in zip(classes, cleaned, strict=True) if ck[0] != ck[1]), None)
        if changed is not None:
            raise HeadFileError(
                f"'{name}': the class name {_short(changed[0])} is not in normal form (NFKC, "
                f"trimmed, single spaces): it would read as {_short(changed[1])}"
            )
    elif len(set(classes)) != len(classes) or not np.isfinite(np.asarray(classes, float)).all():
        raise HeadFileError(f"'{name}': class labels must be unique finite numbers")


def _check_labels(name: str, meta: dict) -> np.ndarray:
    """The class labels as stored, checked, and not cut or changed by ``classes_dtype``."""
    classes = meta["classes"]
    _check_label_values(name, classes)
    labels = np.empty(len(classes), dtype=object)
    labels[:] = classes
    dtype = meta.get("classes_dtype", "object")
    if dtype == "object":
        return labels
    try:
        target = np.dtype(dtype) if isinstance(dtype, str) and len(dtype) <= 8 else None
    except TypeError:
        target = None
    if target is None or target.kind not in _LABEL_KINDS or target.itemsize > 4 * 1024:
        raise HeadFileError(
            f"'{name}': the stored label type {_short(dtype)} is not one a head uses "
            "(text, integers, floats or booleans)"
        )
    try:
        typed = labels.astype(target)
    except (ValueError, TypeError, OverflowError):
        typed = None
    if typed is None or list(typed.tolist()) != list(classes):
        raise HeadFileError(
            f"'{name}': the stored label type {dtype!r} would change the class labels "
            "(names cut short or numbers altered)"
        )
    return typed


def _check_params(name: str, cls, params: dict) -> dict:
    known = set(cls._get_param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise HeadFileError(
            f"'{name}' sets the unknown option {_short(unknown[0])}; a head's options are "
            f"{', '.join(sorted(known))}"
        )
    return params


def _finite(name: str, what: str, array: np.ndarray) -> None:
    if array.dtype.kind != "f":
        raise HeadFileError(f"'{name}': the {what} must be floating-point, not {array.dtype}")
    if not np.isfinite(array).all():
        raise HeadFileError(f"'{name}': the {what} contain NaN or infinite values")


def load_head(cls, path: str | os.PathLike):
    """A fitted ``cls`` from a head file; ``HeadFileError`` naming the file for any defect."""
    from safetensors.numpy import load_file

    name = Path(path).name
    if not Path(path).exists():
        raise FileNotFoundError(f"head file '{path}' does not exist")
    meta = read_head_metadata(path)
    try:
        tensors = load_file(str(path))
        proxies, counts = tensors["proxies"], tensors["proxy_counts"]
    except KeyError as exc:
        raise HeadFileError(f"'{name}' lacks the tensor {exc} of an IMPRINT head") from None
    except Exception as exc:
        raise HeadFileError(f"'{name}' is truncated or damaged ({exc})") from None
    if counts.dtype.kind not in "iu" or counts.ndim != 1:
        raise HeadFileError(f"'{name}': the proxy counts must be whole numbers")
    if _digest(proxies, counts) != meta.get("sha256"):
        raise HeadFileError(f"'{name}' was altered after saving: its checksum does not match")
    _finite(name, "proxies", proxies)
    labels = _check_labels(name, meta)
    if len(labels) != len(counts) or int(counts.sum()) != len(proxies) or (counts < 1).any():
        raise HeadFileError(f"'{name}' is inconsistent: classes and proxy counts do not match")
    if len(labels) < 2:
        raise HeadFileError(f"'{name}' holds {len(labels)} class; a head tells 2 or more apart")
    params = _check_params(name, cls, meta["params"])
    try:
        clf = cls(**{**FILE_DEFAULTS, **params})
        clf._check_params()
    except (TypeError, ValueError) as exc:
        raise HeadFileError(f"'{name}' has an invalid option: {exc}") from None
    clf.classes_ = labels
    clf.n_features_in_ = int(meta["n_features_in"])
    if proxies.ndim != 2 or proxies.shape[1] != clf.n_features_in_ or clf.n_features_in_ < 1:
        raise HeadFileError(f"'{name}' is inconsistent: proxies have the wrong shape")
    clf.proxies_ = np.ascontiguousarray(proxies, dtype=np.float32)
    clf.proxy_counts_ = counts.astype(np.int64)
    clf.proxy_labels_ = labels[np.repeat(np.arange(len(labels)), clf.proxy_counts_)]
    clf._mahalanobis_vi = None
    clf.whitener_ = None
    if clf.norm_pre == "whiten":
        _load_whitener(name, clf, tensors, meta)
    _load_unknown(name, clf, tensors, meta)
    clf.metadata_ = {k: v for k, v in meta.items() if k not in ("params", "classes")}
    return clf


def _unknown_keys() -> list[str]:
    from .unknown import UnknownModel

    return [f"unknown_{name}" for name in UnknownModel.names()]


def _load_unknown(name: str, clf, tensors: dict, meta: dict) -> None:
    """The statistics of "none of these". Head files written before the combined score have the
    class means and max-cosine held-out scores only (that older rule is kept for them), and
    files older still have neither and score by their nearest proxy (classifier.unknown_score)."""
    clf.unknown_model_ = clf.unknown_means_ = clf.unknown_calibration_ = None
    keys = _unknown_keys()
    if not any(k in tensors for k in keys):
        return
    if "unknown_center" not in tensors:
        keys = ["unknown_means", "unknown_calibration"]
    elif meta["format_version"] < 3:  # format 2: before the one-image-per-class rule
        keys = [k for k in keys if k != "unknown_pair_spread"]
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise HeadFileError(f"'{name}' lacks the tensor '{missing[0]}' of its unknown-score")
    if _digest_bytes(*(tensors[k] for k in keys)) != meta.get("sha256_unknown"):
        raise HeadFileError(f"'{name}' was altered after saving: its checksum does not match")
    arrays = {k.removeprefix("unknown_"): tensors[k] for k in keys}
    for key, array in arrays.items():
        if key != "dof":
            _finite(name, f"unknown-score tensor '{key}'", array)
    C, d = len(clf.classes_), clf.n_features_in_
    shapes = {
        "means": (C, d),
        "center": (d,),
        "white_means": (C, d),
        "scale": (2, 2),
        "dof": (1,),
        "pair_spread": (1,),
    }
    bad = [k for k, shape in shapes.items() if k in arrays and arrays[k].shape != shape]
    bad += [k for k in ("calibration",) if arrays[k].ndim != 1]
    if "metric" in arrays and (arrays["metric"].ndim != 2 or arrays["metric"].shape[0] != d):
        bad.append("metric")
    if "dof" in arrays and arrays["dof"].dtype.kind not in "iu":
        bad.append("dof")
    if bad:
        raise HeadFileError(
            f"'{name}' is inconsistent: the unknown-score tensor '{bad[0]}' has the wrong shape"
        )
    clf.unknown_means_ = np.ascontiguousarray(arrays["means"], dtype=np.float32)
    clf.unknown_calibration_ = np.sort(arrays["calibration"].astype(np.float32))
    if "center" in arrays:
        from .unknown import UnknownModel

        arrays = {k: v.astype(np.int64 if k == "dof" else np.float32) for k, v in arrays.items()}
        arrays["calibration"] = clf.unknown_calibration_
        arrays.setdefault("pair_spread", np.zeros(1, dtype=np.float32))  # format 2
        clf.unknown_model_ = UnknownModel(**arrays)
        clf.unknown_means_ = clf.unknown_model_.means


def _load_whitener(name: str, clf, tensors: dict, meta: dict) -> None:
    try:
        mean, matrix = tensors["whiten_mean"], tensors["whiten_matrix"]
    except KeyError:
        raise HeadFileError(f"'{name}' uses whitening but lacks its tensors") from None
    if _digest_bytes(mean, matrix) != meta.get("sha256_whiten"):
        raise HeadFileError(f"'{name}' was altered after saving: its checksum does not match")
    _finite(name, "whitening tensors", mean)
    _finite(name, "whitening tensors", matrix)
    d = clf.n_features_in_
    if mean.shape != (d,) or matrix.ndim != 2 or matrix.shape[0] != d:
        raise HeadFileError(f"'{name}' is inconsistent: the whitening tensors have the wrong shape")
    clf.whitener_ = Whitener(mean, matrix, clf.whiten_shrinkage)  # a number or a rule's name
