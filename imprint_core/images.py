"""Images in: decode anything a user may hand us into an RGB PIL image, or fail with a sentence.

``load_image`` accepts a path, raw bytes, a binary file object or a PIL image and returns an RGB
image: EXIF orientation applied; grayscale, RGBA/LA (composited on white), CMYK, 16-bit and
palette images converted; an animated image gives its first frame. The pixel count is checked from
the header before any pixel is decoded (decompression-bomb guard, ``MAX_PIXELS``). Anything that is
not a readable image raises ``ImageError`` naming the file (and the class, when given).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image

MAX_PIXELS = 40_000_000  # 40 megapixels: a 7,300 x 5,500 photo; above this we refuse
# Only the common photo formats: Pillow's exotic plugins (EPS calls Ghostscript, ...) stay off.
# (JPEG includes MPO, the multi-picture JPEG some phones write.)
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "AVIF")
ALLOWED_TEXT = "a JPEG, PNG, GIF (first frame), BMP, TIFF, WebP, PPM or AVIF image"
# File names that folder walks pick up as images (everything else in a folder is left out).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
    | {".pbm", ".pnm", ".mpo", ".avif"}
)
_WHITE = (255, 255, 255)
MIN_SIDE = 8  # pixels; the app refuses anything smaller on either side (a 1x1 tracking pixel)
# iPhones' HEIC / HEIF: Pillow cannot read them, and the sentence should say so, not "corrupt".
HEIC_SUFFIXES = (".heic", ".heif", ".hif")
_HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx")
HEIC_TEXT = "is a HEIC photo. HEIC photos are not supported yet: export as JPEG and add it again"


class ImageError(ValueError):
    """An input that is not a usable image; the message names the file and what is allowed."""


def _describe(name: str | None, context: str | None) -> str:
    label = f"Image {name!r}" if name else "The image"
    return f"{label} in class {context!r}" if context else label


def _fail(name: str | None, context: str | None, problem: str, limit: int) -> ImageError:
    allowed = f"{ALLOWED_TEXT} of at most {limit / 1e6:g} megapixels"
    return ImageError(f"{_describe(name, context)} {problem}. Allowed: {allowed}.")


def read_source_bytes(source: ImageSource, name: str | None = None) -> bytes:
    """The raw bytes of a path, bytes-like or binary file object (not of a PIL image)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"Image file {str(path)!r} does not exist.") from None
        except IsADirectoryError:
            raise ImageError(f"{str(path)!r} is a folder, not an image file.") from None
        except OSError as exc:
            raise ImageError(f"Image file {str(path)!r} cannot be read: {exc.strerror}.") from None
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise ImageError(f"{_describe(name, None)} must be opened in binary mode ('rb').")
        return data
    raise ImageError(
        f"{_describe(name, None)} has type {type(source).__name__}; expected a file path, "
        "bytes or a PIL image."
    )


def source_name(source: ImageSource, name: str | None = None) -> str | None:
    """A human name for an input: the given name, else a path's file name, else a file's name."""
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "filename", None) or getattr(source, "name", None) or None


def hash_bytes(data: bytes) -> str:
    """Content hash used as the embedding-cache key (BLAKE2b, 128 bits, hex)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def hash_pil(image: Image.Image) -> str:
    """Content hash of a decoded PIL image (mode, size and pixels)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}|{image.size}|".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def hash_image_source(source: ImageSource) -> tuple[str, bytes | Image.Image]:
    """``(hash, payload)``: bytes are hashed as stored, PIL images by their pixels.

    The payload (the bytes read, or the PIL image) can be passed to ``load_image`` without reading
    the file a second time.
    """
    if isinstance(source, Image.Image):
        return hash_pil(source), source
    data = read_source_bytes(source)
    return hash_bytes(data), data


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer / float grayscale -> 8-bit L, scaled by bit depth, not clipped."""
    arr = np.asarray(image)
    if image.mode == "F":
        top = 1.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 255.0
        arr = np.nan_to_num(arr.astype(np.float64)) / top * 255.0
    else:  # I;16*, I: treat as 16-bit samples (what PNG and TIFF store in these modes)
        arr = arr.astype(np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit(image)
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, _WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(
    source: ImageSource,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    context: str | None = None,
    min_side: int | None = None,
    smallest: int = 1,
    fit_side: int | None = None,
) -> Image.Image:
    """Decode ``source`` (path, bytes, binary file or PIL image) into an RGB PIL image.

    ``name`` names the input in error messages (defaults to the path); ``context`` adds the class,
    e.g. ``"Image 'x.png' in class 'cats' is not an image ..."``. ``min_side``: a JPEG may be
    decoded at 1/2, 1/4 or 1/8 scale as long as both sides stay >= ``min_side`` (DCT scaling:
    a 12-megapixel photo decodes about 3x faster). ``fit_side``: the caller shrinks the image to
    fit a ``fit_side`` square afterwards; a JPEG may be decoded at a reduced scale as long as it
    still covers that shrunk size (so the shrunk image has the size it would have had from a full
    decode). ``smallest``: an image with a side shorter
    than this many pixels is refused (the app uses ``MIN_SIDE``). A HEIC photo (by its name or
    its content) is refused with a sentence saying so. Raises ``ImageError``.
    """
    name = source_name(source, name)
    if isinstance(source, Image.Image):
        if source.width * source.height > max_pixels:
            raise _fail(name, context, _too_big(source.size), max_pixels)
        _check_smallest(source.size, name, context, smallest)
        try:
            return to_rgb(ImageOps.exif_transpose(source))
        except (OSError, ValueError) as exc:
            raise _fail(name, context, f"cannot be converted ({exc})", max_pixels) from None
    data = read_source_bytes(source, name)
    try:
        image = _open_header(data, name, context, max_pixels, smallest)
        _draft(image, min_side, fit_side)
        image.load()
    except Exception as exc:
        raise _decode_error(exc, name, context, max_pixels) from None
    try:
        ImageOps.exif_transpose(image, in_place=True)  # decoded here, ours: no copy needed
        return to_rgb(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise _fail(name, context, f"cannot be converted to RGB ({exc})", max_pixels) from None


def decoded_size(
    source: str | os.PathLike | bytes,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    context: str | None = None,
    min_side: int | None = None,
    smallest: int = 1,
    fit_side: int | None = None,
) -> tuple[int, int]:
    """``(width, height)`` that ``load_image`` would decode ``source`` at, from the header only.

    No pixel is decoded: this prices a request (a JPEG at its ``draft`` scale for ``min_side``
    and ``fit_side``, every other format at full size) before any work is done. Raises ``ImageError`` as
    ``load_image`` does for anything that is not an allowed image, is over ``max_pixels`` or
    has a side shorter than ``smallest``.
    """
    name = source_name(source, name)
    if isinstance(source, (str, os.PathLike)):
        try:
            fh: IO[bytes] = open(source, "rb")  # noqa: SIM115 - Image.open reads the header only
        except OSError:
            read_source_bytes(source, name)  # raises the ImageError for a missing/unreadable path
            raise
    else:
        fh = io.BytesIO(read_source_bytes(source, name))
    with fh:
        try:
            image = _open_header(fh, name, context, max_pixels, smallest)
            _draft(image, min_side, fit_side)
            return image.size
        except Exception as exc:
            raise _decode_error(exc, name, context, max_pixels) from None


def _open_header(
    data: bytes | IO[bytes], name, context, max_pixels: int, smallest: int = 1
) -> Image.Image:
    """Open an image (header only), refusing an empty file, a HEIC photo, one over
    ``max_pixels`` and one with a side under ``smallest``."""
    if isinstance(data, bytes) and not data:
        raise _fail(name, context, "is an empty file", max_pixels)
    head = data[:32] if isinstance(data, bytes) else data.read(32)
    if not isinstance(data, bytes):
        data.seek(0)
    if _is_heic(name, head):
        raise ImageError(f"{_describe(name, context)} {HEIC_TEXT}.")
    with warnings.catch_warnings():
        # Pillow's own bomb warning is superseded by our (lower) limit below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        fh = io.BytesIO(data) if isinstance(data, bytes) else data
        image = Image.open(fh, formats=allowed_formats())
    # Image.open reads only the header: check the size before decoding any pixel.
    if image.width * image.height > max_pixels:
        raise _fail(name, context, _too_big(image.size), max_pixels)
    _check_smallest(image.size, name, context, smallest)
    image.seek(0)  # animated GIF/WebP/APNG/TIFF: first frame
    return image


def _is_heic(name: str | None, head: bytes) -> bool:
    """A HEIC/HEIF name, or an ISO media file (``ftyp`` box) of a HEIF brand."""
    if name and str(name).lower().endswith(HEIC_SUFFIXES):
        return True
    return head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS


def _check_smallest(size: tuple[int, int], name, context, smallest: int) -> None:
    w, h = size
    if min(w, h) < smallest:
        raise ImageError(
            f"{_describe(name, context)} is {w} x {h} pixels, too small to learn from: an image "
            f"must be at least {smallest} pixels on each side."
        )


def _draft(image: Image.Image, min_side: int | None, fit_side: int | None = None) -> None:
    """JPEG: decode at 1/2, 1/4 or 1/8 scale (DCT scaling) keeping both sides >= ``min_side``
    and the image at least as large as its fit in a ``fit_side`` square; a 40-megapixel photo
    then costs about as much as a 0.6-megapixel one. Other formats have no cheaper decode; they
    are decoded at full size."""
    if image.format != "JPEG" or not (min_side or fit_side):
        return
    w, h = image.size
    box = (min_side or 1, min_side or 1)
    if fit_side:  # the fitted size, rounded up (draft never goes below the box it is given)
        long = max(w, h, fit_side)
        box = (max(box[0], -(-w * fit_side // long)), max(box[1], -(-h * fit_side // long)))
    image.draft(image.mode, box)


def _decode_error(exc: Exception, name, context, max_pixels: int) -> Exception:
    """The ImageError for an exception raised while opening or decoding an image."""
    if isinstance(exc, ImageError):
        return exc
    if isinstance(exc, UnidentifiedImageError):
        return _fail(name, context, "is not an image (or not a format we read)", max_pixels)
    if isinstance(exc, Image.DecompressionBombError):  # Pillow's own guard, also from the header
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too many pixels"
        return _fail(name, context, f"has {count}, which is too large", max_pixels)
    if isinstance(exc, (OSError, SyntaxError, ValueError, EOFError, struct.error)):
        problem = "is truncated" if "truncated" in str(exc) else f"is corrupt ({exc})"
        return _fail(name, context, problem, max_pixels)
    return exc


def allowed_formats() -> tuple[str, ...]:
    """The Pillow formats an image may be opened as (``ALLOWED_FORMATS`` this Pillow reads)."""
    Image.init()
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)  # AVIF only where Pillow has it


def _too_big(size: tuple[int, int]) -> str:
    w, h = size
    return f"has {w} x {h} = {w * h / 1e6:.1f} megapixels, which is too large"
