"""Support augmentation: fixed extra views of each training image, embedded as extra samples.

A *view set* names entries of ``VIEWS`` (``"flip"``: the horizontal mirror; ``"crops"``: the four
corner crops and the centre crop of ``CROP_FRACTION`` of each side). Every view is a plain,
deterministic function of a PIL image (no randomness), so a session's embedding cache and the
few-shot bench are reproducible. The crops are left at their size: the backbone's own
preprocessing resizes them like any other image.

``embed_views(bb, images, views)`` embeds the views of ``images`` and says which image each row
comes from; ``add_views`` appends them to a training set with their source's label. A view is a
training sample only: held-out images must take their views with them (see
``imprint_core.evaluation.evaluate``'s ``views``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np

# Heavy: PIL, and images and backbones (which load PIL) imported where used, so that importing this
# module stays cheap.

VIEWS_VERSION = 1  # bump when a view changes: the bench's cache files are keyed by it
CROP_FRACTION = 0.875
# where each crop sits: (x, y) position of the crop box as a fraction of the free margin
CROP_ANCHORS = {
    "top-left": (0.0, 0.0),
    "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
    "centre": (0.5, 0.5),
}
DEFAULT_VIEWS = ("flip", "crops")


def _flip(image):
    from PIL import ImageOps

    return ImageOps.mirror(image)


def _crop(image, anchor: tuple[float, float], fraction: float = CROP_FRACTION):
    w, h = image.size
    cw, ch = max(1, round(w * fraction)), max(1, round(h * fraction))
    x0, y0 = round(anchor[0] * (w - cw)), round(anchor[1] * (h - ch))
    return image.crop((x0, y0, x0 + cw, y0 + ch))


# view set name -> {output label -> transform of one PIL image}, in a fixed order
VIEWS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "flip": {"flip": _flip},
    "crops": {f"crop {name}": partial(_crop, anchor=a) for name, a in CROP_ANCHORS.items()},
}


def check_views(views: str | Iterable[str] | None, option: str = "augment") -> tuple[str, ...]:
    """Validated view names in ``VIEWS`` order, without duplicates.

    Parameters
    ----------
    views : str, iterable of str or None
        View names, or one comma-separated string such as ``"flip,crops"``. ``None``, ``""``,
        ``"none"`` and an empty iterable mean no augmentation.
    option : str, default="augment"
        The option's name in the error message (e.g. ``"--augment"``).

    Returns
    -------
    tuple of str
        The names, e.g. ``("flip", "crops")``; ``()`` for none.

    Raises
    ------
    ValueError
        A name that is not a view, naming the option and the allowed names.
    """
    if views is None:
        return ()
    if isinstance(views, str):
        views = views.split(",")
    names = [str(v).strip() for v in views]
    names = [v for v in names if v and v != "none"]
    unknown = [v for v in names if v not in VIEWS]
    if unknown:
        raise ValueError(
            f"{option} got the unknown view {unknown[0]!r}; allowed: {', '.join(VIEWS)} "
            "(comma-separated), or none."
        )
    return tuple(v for v in VIEWS if v in names)


def view_labels(views: str | Iterable[str] | None) -> list[str]:
    """The label of each output of one image, in the row order of ``embed_views``.

    Parameters
    ----------
    views : str, iterable of str or None
        View names (see ``check_views``).

    Returns
    -------
    list of str
        E.g. ``["flip", "crop top-left", ..., "crop centre"]`` for ``("flip", "crops")``.
    """
    return [label for v in check_views(views) for label in VIEWS[v]]


def augment_image(image, views: str | Iterable[str] | None = DEFAULT_VIEWS) -> list:
    """Every view of one PIL image, in ``view_labels(views)`` order.

    Parameters
    ----------
    image : PIL.Image.Image
        The source image (left unchanged).
    views : str, iterable of str or None, default=("flip", "crops")
        View names (see ``check_views``).

    Returns
    -------
    list of PIL.Image.Image
        One image per label of ``view_labels(views)``.
    """
    return [fn(image) for v in check_views(views) for fn in VIEWS[v].values()]


def _as_pil(source, name: str | None):
    """An RGB PIL image from anything ``bb.embed`` takes, or from a uint8 array."""
    from PIL import Image

    from .backbones.base import DECODE_MIN_SIDE
    from .images import load_image

    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim not in (2, 3):
            raise ValueError(
                f"image array {name or ''} must be uint8 of shape (H, W) or (H, W, 3), "
                f"got {source.dtype} {source.shape}".replace("  ", " ")
            )
        source = Image.fromarray(source)
    # decoded as the backbone decodes it, so a view shows what the backbone would see
    return load_image(source, name=name, min_side=DECODE_MIN_SIDE)


def embed_views(
    bb,
    images: Any,
    views: str | Iterable[str] | None = DEFAULT_VIEWS,
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    cache: Any = None,
    names: Sequence[str] | None = None,
    chunk: int | None = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed the augmented views of ``images``: extra training samples and their sources.

    Parameters
    ----------
    bb : Backbone
        A loaded backbone (``imprint_core.get_backbone()``), or anything with its ``embed``.
    images : image or sequence of images
        What ``bb.embed`` accepts (paths, bytes, binary files, PIL images), uint8 arrays of
        shape ``(H, W)`` or ``(H, W, 3)``, or one uint8 array stacking them ``(n, H, W[, 3])``.
    views : str, iterable of str or None, default=("flip", "crops")
        View names (see ``check_views``); none gives empty arrays.
    batch_size : int, default=32
        The backbone's batch size.
    progress : callable or None, default=None
        ``progress(done, total)`` in source images.
    cache : EmbeddingCache, bool or None, default=None
        Passed to ``bb.embed`` (``False``: no cache).
    names : sequence of str or None, default=None
        Names of the images in error messages.
    chunk : int or None, default=64
        Source images whose views go to one batched ``bb.embed`` call (memory stays bounded:
        six views of 64 images at a time); ``None``: every view in one call.

    Returns
    -------
    Z : ndarray of shape (n_images * n_views, bb.dim), float32
        The views' embeddings, image by image, each image's views in ``view_labels`` order.
    source : ndarray of shape (n_images * n_views,), int64
        The index into ``images`` of each row's source image (its label is the source's).

    Raises
    ------
    ValueError
        An unknown view name (naming ``augment`` and the allowed names).
    imprint_core.ImageError
        An unreadable image, named.
    """
    from .backbones.backbone import as_list

    views = check_views(views)
    # an array is a stack of images (n, H, W) or (n, H, W, 3), like a dataset's pixels
    items = list(images) if isinstance(images, np.ndarray) else as_list(images)
    if names is not None and len(names) != len(items):
        raise ValueError(f"names has {len(names)} entries for {len(items)} images.")
    per = len(view_labels(views))
    dim = int(getattr(bb, "dim", 0))
    if not items or not per:
        return np.zeros((0, dim), np.float32), np.zeros(0, np.int64)
    step = len(items) if chunk is None else max(1, int(chunk))
    parts = []
    for lo in range(0, len(items), step):
        batch = []
        for i in range(lo, min(lo + step, len(items))):
            name = names[i] if names is not None else None
            batch.extend(augment_image(_as_pil(items[i], name), views))
        kwargs = (
            {"batch_size": batch_size}
            if cache is None
            else {"batch_size": batch_size, "cache": cache}
        )
        parts.append(np.asarray(bb.embed(batch, **kwargs), np.float32))
        if progress is not None:
            progress(min(lo + step, len(items)), len(items))
    source = np.repeat(np.arange(len(items), dtype=np.int64), per)
    return np.concatenate(parts), source


def add_views(
    X: np.ndarray, y: np.ndarray, Z_views: np.ndarray, source: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A training set with the views appended as samples labelled like their source.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Embeddings of the source images.
    y : ndarray of shape (n,)
        Their labels.
    Z_views : ndarray of shape (m, d)
        Embeddings of views (``embed_views``).
    source : ndarray of shape (m,)
        The row of ``X`` each view comes from.

    Returns
    -------
    X_all : ndarray of shape (n + m, d)
    y_all : ndarray of shape (n + m,)
    """
    source = np.asarray(source, dtype=np.int64)
    y = np.asarray(y)
    if len(Z_views) != len(source):
        raise ValueError(f"{len(Z_views)} view embeddings but {len(source)} source indices.")
    if len(source) and (source.min() < 0 or source.max() >= len(y)):
        raise ValueError(f"source indices must lie in 0..{len(y) - 1}.")
    X_all = np.concatenate([np.asarray(X, np.float32), np.asarray(Z_views, np.float32)])
    return X_all, np.concatenate([y, y[source]])
