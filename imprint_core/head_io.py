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

FORMAT = "imprint-head"
FORMAT_VERSION = 1
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

    from . import __version__

    check_is_fitted(clf)
    params = {p: getattr(clf, p) for p in PARAMS}
    if backbone is not None:
        params["backbone"] = backbone
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": "imprint_core",
        "library_version": __version__,
        "params": params,
        "classes": [_label_to_json(c) for c in clf.classes_],
        "classes_dtype": clf.classes_.dtype.str if clf.classes_.dtype.kind != "O" else "object",
        "n_features_in": int(clf.n_features_in_),
        "proxy_counts": [int(c) for c in clf.proxy_counts_],
        "sha256": _digest(clf.proxies_, clf.proxy_counts_),
    }
    tensors = {
        "proxies": np.ascontiguousarray(clf.proxies_, dtype=np.float32),
        "proxy_counts": np.ascontiguousarray(clf.proxy_counts_, dtype=np.int64),
    }
    whitener = getattr(clf, "whitener_", None)
    if whitener is not None:  # float64: the whitening matrix is what inputs go through
        tensors["whiten_mean"] = np.ascontiguousarray(whitener.mean, dtype=np.float64)
        tensors["whiten_matrix"] = np.ascontiguousarray(whitener.matrix, dtype=np.float64)
        meta["sha256_whiten"] = _digest_bytes(tensors["whiten_mean"], tensors["whiten_matrix"])
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
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise HeadFileError(f"'{name}': the head's JSON metadata is corrupt") from None
    if meta.get("format") != FORMAT:
        raise HeadFileError(f"'{name}' is not an IMPRINT head (format {meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise HeadFileError(
            f"'{name}' was written by a newer imprint_core (format {meta['format_version']}); "
            "upgrade imprint_core to read it"
        )
    return meta


def load_head(cls, path: str | os.PathLike):
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
    if _digest(proxies, counts) != meta.get("sha256"):
        raise HeadFileError(f"'{name}' was altered after saving: its checksum does not match")
    classes = meta["classes"]
    if len(classes) != len(counts) or int(counts.sum()) != len(proxies) or (counts < 1).any():
        raise HeadFileError(f"'{name}' is inconsistent: classes and proxy counts do not match")
    dtype = meta.get("classes_dtype", "object")
    labels = np.empty(len(classes), dtype=object)
    labels[:] = classes
    if dtype != "object":
        labels = labels.astype(np.dtype(dtype))
    clf = cls(**{p: meta["params"][p] for p in PARAMS if p in meta["params"]})
    clf._check_params()
    clf.classes_ = labels
    clf.n_features_in_ = int(meta["n_features_in"])
    if proxies.ndim != 2 or proxies.shape[1] != clf.n_features_in_:
        raise HeadFileError(f"'{name}' is inconsistent: proxies have the wrong shape")
    clf.proxies_ = np.ascontiguousarray(proxies, dtype=np.float32)
    clf.proxy_counts_ = counts.astype(np.int64)
    clf.proxy_labels_ = labels[np.repeat(np.arange(len(labels)), clf.proxy_counts_)]
    clf._mahalanobis_vi = None
    clf.whitener_ = None
    if clf.norm_pre == "whiten":
        from .normalisation import Whitener

        try:
            mean, matrix = tensors["whiten_mean"], tensors["whiten_matrix"]
        except KeyError:
            raise HeadFileError(f"'{name}' uses whitening but lacks its tensors") from None
        if _digest_bytes(mean, matrix) != meta.get("sha256_whiten"):
            raise HeadFileError(f"'{name}' was altered after saving: its checksum does not match")
        clf.whitener_ = Whitener(mean, matrix, float(clf.whiten_shrinkage))
    clf.metadata_ = {k: v for k, v in meta.items() if k not in ("params", "classes")}
    return clf
