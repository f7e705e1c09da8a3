"""Display thumbnails of stored images: small JPEGs that galleries show in place of the originals.

A stored image is kept as the bytes the user sent (a 12-megapixel phone photo is 3-4 MB); the
class cards show up to 40 of them at a time, so they show ``<stem>-thumb.jpg`` beside the stored
``<stem>.<suffix>`` instead (THUMB_MAX_SIDE, a few kB). Thumbnails are derived data: made at
intake from the picture intake decoded, made again from the stored file when missing, deleted
with their image (``Transactional._collect_files``) and never saved in a project zip. A gallery
hands back copies of its files under the same base name: an image is found by either name
(``ImageItem.names``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from .limits import THUMB_MAX_SIDE, THUMB_QUALITY

THUMB_TAIL = "-thumb.jpg"  # the stored image's stem, then this


def thumb_path(stored: Path) -> Path:
    """Where the thumbnail of the stored image ``stored`` is (or goes)."""
    return stored.with_name(stored.stem + THUMB_TAIL)


def is_thumb(name: str) -> bool:
    """Whether the base name ``name`` is a thumbnail's."""
    return name.endswith(THUMB_TAIL)


def thumbnail_bytes(picture) -> bytes:
    """A JPEG of the RGB PIL image ``picture`` at most THUMB_MAX_SIDE on a side (``picture``
    itself is left as it is: the embedding reads it)."""
    from PIL import Image

    small = picture.copy()
    small.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.convert("RGB").save(buf, format="JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()


def write_thumbnail(
    stored: Path, picture, take: Callable[[int], None] | None = None, data: bytes | None = None
) -> Path:
    """Write the thumbnail of ``stored`` from its decoded ``picture`` unless it exists.
    ``take``: told its size before it is written (the session's disk quota; it may refuse).
    ``data``: ``thumbnail_bytes(picture)`` when already made (by a decoding thread)."""
    path = thumb_path(stored)
    if not path.exists():
        data = data if data is not None else thumbnail_bytes(picture)
        if take is not None:
            take(len(data))
        path.write_bytes(data)
    return path


def thumbnail(stored: Path, name: str) -> Path:
    """The thumbnail of the stored image ``stored`` (display name ``name``), made from the file
    if it is missing (the file was checked at intake, so decoding it again succeeds)."""
    path = thumb_path(stored)
    if not path.exists():
        from .intake import prepare_image

        write_thumbnail(stored, prepare_image(str(stored), name))
    return path
