"""Hub backbones: torchvision and open_clip weights, failing fast and clearly offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from ..config import hub_offline
from .base import DEFAULT_BACKBONE, PROBE_TIMEOUT_S, BackboneSpec, BackboneUnavailable
from .engines import Engine, TorchEngine

# Heavy: torch, torchvision, open_clip and huggingface_hub imported where used, so that importing
# this module stays cheap.


def _offline_reason() -> str | None:
    if hub_offline():
        return "HF_HUB_OFFLINE=1 is set"
    return None


def unreachable_reason(url: str) -> str | None:
    """None when ``url``'s server answers within a few seconds, else why not."""
    import urllib.error
    import urllib.request

    reason = _offline_reason()
    if reason:
        return reason
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S)
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


def build_torchvision(spec: BackboneSpec, device: torch.device, runtime: str) -> Engine:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(spec.arch)[spec.tag]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    if not (folder / os.path.basename(weights.url)).is_file():
        reason = unreachable_reason(weights.url)
        if reason:
            raise _unavailable(spec, weights.url, str(folder), reason)
    try:
        model = torchvision_features(spec.arch, weights)
    except OSError as exc:  # URLError and friends: a download that failed half-way
        raise _unavailable(spec, weights.url, str(folder), str(exc)) from exc
    convnet = spec.arch.startswith("resnet")
    return TorchEngine(weights.transforms(), model, device, channels_last=convnet)


def hf_cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    names = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    return any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)


def build_open_clip(spec: BackboneSpec, device: torch.device, runtime: str) -> Engine:
    try:
        import open_clip
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError as exc:
        raise BackboneUnavailable(
            f"Backbone {spec.name!r} needs open_clip: pip install 'imprint_core[clip]' ({exc})."
        ) from exc
    repo = open_clip.get_pretrained_cfg(spec.arch, spec.tag)["hf_hub"].rstrip("/")
    where = f"Hugging Face Hub repository {repo}"
    if not hf_cached(repo):
        reason = unreachable_reason(f"https://huggingface.co/{repo}")
        if reason:
            raise _unavailable(spec, where, HF_HUB_CACHE, reason)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.arch, pretrained=spec.tag, device=device
        )
    except RuntimeError as exc:  # open_clip wraps failed downloads in RuntimeError
        raise _unavailable(spec, where, HF_HUB_CACHE, str(exc)) from exc
    return TorchEngine(preprocess, model.visual, device)  # image tower only; text tower dropped
