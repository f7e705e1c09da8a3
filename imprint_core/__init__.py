"""IMPRINT: few-shot classification by weight imprinting on frozen foundation models.

The public names are imported lazily so that ``import imprint_core`` stays cheap (no torch,
no gradio) until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ImprintClassifier": "imprint_core.classifier",
    "PRESETS": "imprint_core.presets",
    "DEFAULT_PRESET": "imprint_core.presets",
    "nc_metrics": "imprint_core.collapse",
    "get_backbone": "imprint_core.backbones",
    "list_backbones": "imprint_core.backbones",
    "load_image": "imprint_core.images",
    "ImageError": "imprint_core.images",
    "HeadFileError": "imprint_core.head_io",
    "EmbeddingCache": "imprint_core.cache",
    "read_embeddings": "imprint_core.embeddings_io",
    "write_embeddings": "imprint_core.embeddings_io",
    "export_onnx": "imprint_core.onnx_export",
    "embed_views": "imprint_core.augment",
    "add_views": "imprint_core.augment",
    "predict_files": "imprint_core.predict",
    "least_sure": "imprint_core.prediction_rows",
    "rescore": "imprint_core.prediction_rows",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imprint_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
