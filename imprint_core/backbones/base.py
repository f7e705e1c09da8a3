"""Names shared by every backbone module: defaults, the error, the registry entry type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engines import Engine

DEFAULT_BACKBONE = "efficientnet_lite0"
RUNTIMES = ("auto", "onnxruntime", "torch")
# Big JPEGs are decoded at a reduced scale that keeps both sides >= this (twice every model's
# resize target): 3x faster on phone photos, embeddings within cosine 0.9998 of a full decode.
DECODE_MIN_SIDE = 512
LITE0_RESIZE, LITE0_CROP = 256, 224  # the built-in model's eval transform: crop_pct 0.875
PROBE_TIMEOUT_S = 4.0  # how long a network check may take before we call the hub unreachable


class BackboneUnavailable(RuntimeError):
    """A backbone's weights are neither cached nor downloadable right now."""


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
    builder: Callable[[BackboneSpec, Any, str], Engine]
    arch: str = ""
    tag: str = ""

    @property
    def offline(self) -> bool:
        """True when the weights ship with the package (no download ever)."""
        return self.family == "builtin"
