"""The backbones a session can use: loaded once per process and shared (read-only) by every session."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .limits import ProjectError

log = logging.getLogger(__name__)


def backbone_names() -> list[str]:
    """Names the backbone dropdown offers; the built-in default comes first."""
    from ..backbones import list_backbones

    return [str(n) for n in list_backbones()]


def backbone_dims() -> dict[str, int]:
    """Embedding dimension of every offered backbone (a loaded head must match its own)."""
    from ..backbones import BACKBONES

    return {name: int(spec.dim) for name, spec in BACKBONES.items()}


def default_backbone_name() -> str:
    """The built-in, offline backbone."""
    from ..backbones import DEFAULT_BACKBONE

    return DEFAULT_BACKBONE


def load_backbone(name: str | None = None):
    """The shared backbone ``name`` (None: the built-in one); a ProjectError if it cannot load."""
    from ..backbones import BackboneUnavailable, get_backbone

    try:
        return get_backbone(name or None)
    except BackboneUnavailable as exc:
        # The page says it plainly; how to fetch the weights (cache folders, a command, the
        # environment) is for whoever runs the server: its log and docs/backbones.md.
        log.warning("backbone %r unavailable: %s", name, exc)
        raise ProjectError(
            f"The backbone '{name}' is not on this computer and cannot be downloaded now."
        ) from None
    except Exception as exc:  # unknown name, broken weights: tell the user why
        raise ProjectError(f"The backbone '{name}' cannot be loaded: {exc}") from None


def backbone_or_default(name: str | None) -> tuple[Any, str | None]:
    """The requested backbone, or the built-in one and one sentence saying why."""
    try:
        return load_backbone(name), None
    except ProjectError as exc:
        fallback = load_backbone(None)
        return fallback, f"{str(exc).rstrip('.')}, so the built-in '{fallback.name}' is used."


def start_warmup() -> threading.Thread:
    """Load the built-in backbone (and UMAP, when available) in a background thread.

    The first page is served at once; the first Imprint then finds the model ready.
    """

    def work() -> None:
        try:
            from PIL import Image

            load_backbone(None).embed([Image.new("RGB", (32, 32), (128, 128, 128))], cache=False)
        except Exception:  # noqa: BLE001 - a failed warm-up only costs time at the first Imprint
            pass
        try:
            from .. import projections

            warm = getattr(projections, "warm_up_umap", None)
            if warm is not None:
                warm()
        except Exception:  # noqa: BLE001 - UMAP is optional (the Geometry tab falls back to PCA)
            pass

    thread = threading.Thread(target=work, name="imprint-warmup", daemon=True)
    thread.start()
    return thread
