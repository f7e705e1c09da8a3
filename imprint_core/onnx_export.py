"""A fitted head and its backbone as ONE standalone ONNX model (uint8 pixels -> probabilities).

``export_onnx(head, path)`` writes a model that needs onnxruntime and numpy only:

- input ``pixels``: uint8 ``[N, 224, 224, 3]`` RGB, already resized and centre-cropped by the
  caller (``preprocessing_lines()`` gives the five lines of PIL for the built-in backbone);
- output ``probabilities``: float32 ``[N, C]``, the library's ``predict_proba`` (rows sum to 1);
- output ``unknown_score``: float32 ``[N]``, the library's ``unknown_score`` ("none of these" when
  above the metadata's ``unknown_threshold``);
- metadata: ``classes`` (JSON list, column order), ``backbone``, ``preprocessing`` (JSON recipe),
  ``imprint_version``, ``head_settings`` (JSON), ``unknown_threshold`` and ``unknown_rule``.

The graph is the backbone (uint8 -> float, per-channel mean/std, NCHW, pooled features) followed
by the head (NORMinf, similarities or distances, AGG, softmax / temperature). The two parts are
exported from torch separately and joined with ``onnx.compose``, so that exporting another head
reuses the backbone graph already built in this process (exporting it takes seconds).

Every head the library fits exports: any generator (its proxies are just numbers), every NORMpost,
NORMinf none / l2 / whiten, ``max`` with every distance, ``mnn`` with every distance and weighting.
Options outside the registries below (a future option) are refused with a sentence naming them.
Hub backbones take the same path when their weights are on disk (tested with the built-in one).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .aggregation import mahalanobis_vi
from .head_io import PARAMS

if TYPE_CHECKING:
    import torch

# Heavy: torch, onnx, torchvision, open_clip, scikit-learn, classifier and backbones imported where
# used, so that importing this module stays cheap.

INPUT_NAME, OUTPUT_NAME, FEATURES_NAME = "pixels", "probabilities", "features"
UNKNOWN_NAME = "unknown_score"
OUTPUTS = (OUTPUT_NAME, UNKNOWN_NAME)
IMAGE_SIZE = 224
OPSET = 17
VOTE_EPS = 1e-10  # as imprint_core.aggregation: 1 / (distance + eps) votes


# ---- the head, as torch code that ONNX can express --------------------------------------------
def _inner(z, W, head):
    return -(z @ W.T)


def _cosine(z, W, head):
    from torch.nn.functional import normalize

    return 1 - normalize(z, dim=1) @ normalize(W, dim=1).T


def _euclidean(z, W, head):
    # the library's formula (torch.cdist has no ONNX export)
    d2 = (z * z).sum(1, keepdim=True) - 2 * (z @ W.T) + (W * W).sum(1)[None, :]
    return d2.clamp_min(0).sqrt()


def _manhattan(z, W, head):
    return (z[:, None, :] - W[None, :, :]).abs().sum(2)


def _mahalanobis(z, W, head):
    # float64 as the library: with fewer proxies than dimensions VI is very ill-conditioned
    diff = z.double()[:, None, :] - W.double()[None, :, :]
    d2 = ((diff @ head.vi) * diff).sum(2)
    return d2.clamp_min(0).sqrt()  # stays float64 to the softmax: distances are large, gaps small


DISTANCES: dict[str, Callable] = {
    "inner_product": _inner,
    "cosine": _cosine,
    "euclidean": _euclidean,
    "manhattan": _manhattan,
    "mahalanobis": _mahalanobis,
}


def _l2(x):
    from torch.nn.functional import normalize

    return normalize(x, dim=1, eps=1e-12)


def _whiten(x, head):
    return _l2((_l2(x) - head.w_mean) @ head.w_matrix)


NORM_INF: dict[str, Callable] = {
    "none": lambda x, head: x,
    "l2": lambda x, head: _l2(x),
    "whiten": _whiten,
}
AGG = ("max", "mnn")
WEIGHTING = ("uniform", "distance")


def check_exportable(clf) -> None:
    """Raise ValueError naming the first option the ONNX head cannot express."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf)
    for option, allowed in (
        ("norm_inf", NORM_INF),
        ("distance", DISTANCES),
        ("agg", AGG),
        ("weighting", WEIGHTING),
    ):
        value = getattr(clf, option)
        if value not in allowed:
            raise ValueError(
                f"{option}={value!r} cannot be exported to ONNX; exportable values of {option}: "
                f"{', '.join(allowed)}"
            )
    if clf.norm_inf == "whiten" and getattr(clf, "whitener_", None) is None:
        raise ValueError("norm_inf='whiten' but the head has no fitted whitener to export")
    if clf.distance == "mahalanobis" and len(clf.proxies_) < 2:
        raise ValueError("distance='mahalanobis' needs at least 2 proxies; the head has 1")
    _classes_json(clf)


def _classes_json(clf) -> str:
    labels = [c.item() if isinstance(c, np.generic) else c for c in clf.classes_]
    bad = [c for c in labels if not isinstance(c, (str, int, float, bool))]
    if bad:
        raise ValueError(
            f"class label {bad[0]!r} of type {type(bad[0]).__name__} cannot be written to the "
            "ONNX metadata; labels must be strings, integers, floats or booleans"
        )
    return json.dumps(labels, ensure_ascii=False)


def _head_module(clf) -> torch.nn.Module:
    """features (n, d) float32 -> probabilities (n, C) float32, as ``clf.predict_proba``."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            W = np.asarray(clf.proxies_, dtype=np.float32)
            counts = np.asarray(clf.proxy_counts_, dtype=np.int64)
            C, P = len(counts), len(W)
            starts = np.r_[0, np.cumsum(counts)[:-1]]
            # per-class max as a gather over a padded (C, max count) table: scatter-max needs
            # opset 18, which not every runtime has
            width = int(counts.max())
            table = starts[:, None] + np.minimum(np.arange(width)[None, :], counts[:, None] - 1)
            self.register_buffer("W", torch.from_numpy(W))
            self.register_buffer("table", torch.from_numpy(table.reshape(-1)))
            self.register_buffer("onehot", torch.eye(C)[torch.from_numpy(clf.proxy_class_index_)])
            self.C, self.width = C, width
            self.norm_inf, self.distance, self.agg = clf.norm_inf, clf.distance, clf.agg
            self.weighting, self.temperature = clf.weighting, float(clf.temperature)
            self.m = 1 if clf.agg == "max" else min(int(clf.m), P)
            whitener = getattr(clf, "whitener_", None)
            if clf.norm_inf == "whiten":
                self.register_buffer("w_mean", torch.tensor(whitener.mean, dtype=torch.float32))
                self.register_buffer("w_matrix", torch.tensor(whitener.matrix, dtype=torch.float32))
            if clf.distance == "mahalanobis":
                vi = mahalanobis_vi(np.asarray(clf.proxies_, dtype=np.float64))
                self.register_buffer("vi", torch.from_numpy(vi))
            model = getattr(clf, "unknown_model_", None)  # None: a head file of an older format
            means = getattr(clf, "unknown_means_", None)
            self.unknown_rule = "combined" if model is not None else "legacy"
            if model is not None:
                for name in ("means", "center", "metric", "white_means", "scale"):
                    value = np.asarray(getattr(model, name), dtype=np.float32)
                    self.register_buffer(f"u_{name}", torch.from_numpy(value.copy()))
            elif means is not None:
                self.register_buffer("u_means", torch.tensor(means, dtype=torch.float32))
            else:
                self.unknown_rule = "proxy"

        def unknown(self, features, z):
            """As ImprintClassifier.unknown_score (imprint_core.unknown), in float64 as the
            library: the score is a sum of distances divided by their small spreads."""
            if self.unknown_rule == "proxy":
                if self.distance == "inner_product":
                    return 1.0 - (z @ self.W.T).amax(1)
                return DISTANCES[self.distance](z, self.W, self).amin(1)
            x = features.double()
            u = x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)  # a zero row stays zero
            raw = 1.0 - (u @ self.u_means.double().T).amax(1)
            if self.unknown_rule == "legacy":
                return raw
            v = u - self.u_center.double()
            vf = v @ self.u_metric.double()
            norm = ((v * v).sum(1) - (vf * vf).sum(1)).clamp_min(1e-30).sqrt()
            white = 1.0 - ((v @ self.u_white_means.double().T) / norm[:, None]).amax(1)
            scale = self.u_scale.double()
            return (raw - scale[0, 0]) / scale[0, 1] + (white - scale[1, 0]) / scale[1, 1]

        def per_class_max(self, values):
            n = values.shape[0]
            return values.index_select(1, self.table).reshape(n, self.C, self.width).amax(2)

        def forward(self, features):
            z = NORM_INF[self.norm_inf](features, self)
            if self.agg == "max" and self.distance == "inner_product":
                scores = self.per_class_max(z @ self.W.T)
            else:
                D = DISTANCES[self.distance](z, self.W, self)
                if self.m == 1:
                    scores = self.per_class_max(-D)
                else:
                    d_near, nearest = torch.topk(D, self.m, dim=1, largest=False, sorted=True)
                    if self.weighting == "distance":
                        if self.distance == "inner_product":
                            d_near = d_near - D.amin(1, keepdim=True)
                        w = 1.0 / (d_near + VOTE_EPS)
                    else:
                        w = torch.ones_like(d_near)
                    votes = (self.onehot[nearest] * w[:, :, None]).sum(1)
                    scores = votes / votes.sum(1, keepdim=True)
            probabilities = torch.softmax(scores / self.temperature, dim=1).float()
            return probabilities, self.unknown(features, z).float()

    return Head().eval()


# ---- backbones: pixels -> features --------------------------------------------------------------
def _lite0_features():
    from .backbones import LITE0_CROP, LITE0_RESIZE, load_lite0_timm

    model = load_lite0_timm()
    recipe = {
        "resize_shorter_side": LITE0_RESIZE,
        "interpolation": "bicubic",
        "center_crop": LITE0_CROP,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    return (lambda x: model.forward_head(model.forward_features(x), pre_logits=True)), model, recipe


def recipe_from_transform(transform) -> dict[str, Any]:
    """The resize / crop / normalise steps of a torchvision transform (Compose or the weights')."""
    steps = list(getattr(transform, "transforms", [transform]))
    recipe: dict[str, Any] = {}
    for t in steps:
        size = getattr(t, "resize_size", None) or (
            getattr(t, "size", None) if type(t).__name__ == "Resize" else None
        )
        if size is not None:
            recipe["resize_shorter_side"] = int(
                size[0] if isinstance(size, (list, tuple)) else size
            )
            mode = getattr(t, "interpolation", "bilinear")
            recipe["interpolation"] = str(getattr(mode, "value", mode))
        crop = getattr(t, "crop_size", None) or (
            getattr(t, "size", None) if type(t).__name__ == "CenterCrop" else None
        )
        if crop is not None:
            recipe["center_crop"] = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
        if hasattr(t, "mean") and hasattr(t, "std"):
            recipe["mean"] = [float(v) for v in t.mean]
            recipe["std"] = [float(v) for v in t.std]
    return recipe


def _hub_features(name: str):
    """Pooled-features function, its module and recipe of a hub backbone whose weights are cached."""
    from .backbones import backbone_spec, torchvision_features, weights_cached

    spec = backbone_spec(name)
    if not weights_cached(name):
        raise ValueError(
            f"cannot export backbone {name!r}: its weights ({spec.weights}) are not on this "
            f"machine; load it once with ic.get_backbone({name!r}) while online, then export"
        )
    if spec.family == "torchvision":
        import torchvision

        weights = torchvision.models.get_model_weights(spec.arch)[spec.tag]
        model = torchvision_features(spec.arch, weights)
        return model, model, recipe_from_transform(weights.transforms())
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, pretrained=spec.tag)
    visual = model.visual.eval()
    return visual, visual, recipe_from_transform(preprocess)


def _backbone_parts(name: str):
    from .backbones import DEFAULT_BACKBONE

    return _lite0_features() if name == DEFAULT_BACKBONE else _hub_features(name)


@functools.lru_cache(maxsize=2)
def backbone_graph(name: str) -> tuple[bytes, str]:
    """(ONNX bytes of pixels uint8 NHWC -> features float32, preprocessing recipe as JSON).

    Cached per process: exporting a backbone takes seconds, exporting a head a fraction of one.
    """
    import torch

    forward, module, recipe = _backbone_parts(name)
    if recipe.get("center_crop", IMAGE_SIZE) != IMAGE_SIZE:
        raise ValueError(
            f"backbone {name!r} crops {recipe['center_crop']} px; the export takes {IMAGE_SIZE} px"
        )
    mean = torch.tensor(recipe["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(recipe["std"], dtype=torch.float32).view(1, 3, 1, 1)

    class Pixels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module  # registered so that its weights are exported as initialisers
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, pixels):
            x = pixels.permute(0, 3, 1, 2).float() / 255.0  # the same ops as lite0_preprocess
            return forward((x - self.mean) / self.std)

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pixels().eval(),
            torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8),
            buf,
            input_names=[INPUT_NAME],
            output_names=[FEATURES_NAME],
            dynamic_axes={INPUT_NAME: {0: "n"}, FEATURES_NAME: {0: "n"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue(), json.dumps({"input": "uint8 NHWC RGB", **recipe})


def head_graph(clf) -> bytes:
    """ONNX bytes of the head alone: ``features`` float32 (n, d) -> ``probabilities`` (n, C)
    and ``unknown_score`` (n,)."""
    import torch

    check_exportable(clf)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _head_module(clf),
            torch.zeros(2, int(clf.n_features_in_), dtype=torch.float32),
            buf,
            input_names=[FEATURES_NAME],
            output_names=list(OUTPUTS),
            dynamic_axes={FEATURES_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}, UNKNOWN_NAME: {0: "n"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


# ---- the standalone model -----------------------------------------------------------------------
def _settings(clf) -> dict[str, Any]:
    return {p: getattr(clf, p, None) for p in PARAMS}


def resolve_backbone(clf, backbone: str | None) -> str:
    """The backbone a head runs on: the one it records (``backbone`` must agree, or may name
    it when the head records none), checked against the head's embedding size; ``ValueError``
    naming both otherwise."""
    from .backbones import DEFAULT_BACKBONE, backbone_spec

    own = getattr(clf, "backbone", None)
    if backbone is not None and own and backbone != own:
        raise ValueError(
            f"the head was imprinted on backbone {own!r}; it cannot be exported with {backbone!r}"
        )
    name = backbone or own or DEFAULT_BACKBONE
    dim = backbone_spec(name).dim  # raises for unknown names
    if int(clf.n_features_in_) != dim:
        raise ValueError(
            f"the head takes {clf.n_features_in_}-dimensional embeddings but backbone {name!r} "
            f"makes {dim}-dimensional ones: pass the backbone it was imprinted on"
        )
    return name


def build_onnx(clf, backbone: str | None = None):
    """The standalone ``onnx.ModelProto`` (see the module docstring)."""
    import onnx
    from onnx import compose

    check_exportable(clf)
    name = resolve_backbone(clf, backbone)
    body, recipe = backbone_graph(name)
    head = onnx.load_from_string(head_graph(clf))
    head = compose.add_prefix(head, "head/")
    model = compose.merge_models(
        onnx.load_from_string(body),
        head,
        io_map=[(FEATURES_NAME, f"head/{FEATURES_NAME}")],
        outputs=[f"head/{o}" for o in OUTPUTS],
    )
    public = {f"head/{o}": o for o in OUTPUTS}
    for node in model.graph.node:  # the public outputs keep their plain names
        node.output[:] = [public.get(o, o) for o in node.output]
    for output in model.graph.output:
        output.name = public.get(output.name, output.name)
    model.graph.name = "imprint_classifier"
    meta = {
        "classes": _classes_json(clf),
        "backbone": name,
        "preprocessing": recipe,
        "imprint_version": __version__,
        "head_settings": json.dumps(_settings(clf)),
        "input": f"{INPUT_NAME}: uint8 [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3] RGB",
        "output": f"{OUTPUT_NAME}: float32 [N, C], columns in the order of 'classes'; "
        f"{UNKNOWN_NAME}: float32 [N], 'none of these' above unknown_threshold",
        "unknown_threshold": repr(float(clf.unknown_threshold_)),
        "unknown_rule": clf.unknown_rule_,
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = (
        "IMPRINT classifier: backbone + imprinted head, uint8 pixels -> probabilities and an "
        "unknown score"
    )
    onnx.checker.check_model(model)
    return model


def export_onnx(head, path: str | os.PathLike, backbone: str | None = None) -> Path:
    """Write the standalone ONNX model of ``head`` (a fitted ImprintClassifier or a saved head's
    path) with its backbone to ``path``; returns the path. Nothing is written when refused.

    Parameters
    ----------
    head : ImprintClassifier or str or os.PathLike
        A fitted classifier, or the path of a head file written by ``ImprintClassifier.save``.
    path : str or os.PathLike
        The model file to write; must end in ``.onnx`` (written atomically).
    backbone : str or None, default=None
        The backbone to put in front of the head (None: the head's own ``backbone``, else the
        built-in default); it must be the one the head was imprinted on.

    Returns
    -------
    path : pathlib.Path
        The written model: uint8 ``pixels`` [N, 224, 224, 3] in, ``probabilities`` [N, C] and
        ``unknown_score`` [N] out (see the module docstring).

    Raises
    ------
    ValueError
        For a path not ending in ``.onnx``, a backbone that does not match the head, or an
        option that cannot be exported.
    """
    import onnx

    if isinstance(head, (str, os.PathLike)):
        from .classifier import ImprintClassifier

        head = ImprintClassifier.load(head)
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"the output file {str(path)!r} must end in .onnx")
    model = build_onnx(head, backbone)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)  # atomic: a reader never sees half a model
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---- how to run it ------------------------------------------------------------------------------
def preprocessing_lines(resize: int = 256, interpolation: str = "bicubic") -> str:
    """The lines of PIL that turn an image file ``path`` into the model's input ``pixels``.

    The defaults are the built-in backbone's recipe; a hub backbone's are in the model's
    ``preprocessing`` metadata (``resize_shorter_side``, ``interpolation``).
    """
    resample = interpolation.upper()
    return f"""\
image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
w, h = image.size  # shorter side -> {resize} px ({interpolation}), then the centre 224 x 224
size = ({resize}, int({resize} * h / w)) if w <= h else (int({resize} * w / h), {resize})
image = image.resize(size, Image.{resample})
left, top = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.uint8)[None]"""


def onnx_snippet(model_file: str = "classifier.onnx", image_file: str = "photo.jpg") -> str:
    """A runnable snippet: classify one image with the exported model (onnxruntime, numpy, PIL)."""
    return f"""\
import json, numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession("{model_file}")
meta = session.get_modelmeta().custom_metadata_map
classes = json.loads(meta["classes"])
path = "{image_file}"
{preprocessing_lines()}
probabilities, unknown = session.run(["probabilities", "unknown_score"], {{"pixels": pixels}})
print(classes[int(probabilities[0].argmax())], float(probabilities[0].max()))
if unknown[0] > float(meta["unknown_threshold"]):  # farther than 95 % of the training images
    print("none of these? unlike every class it was taught")
"""
