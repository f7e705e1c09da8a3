"""Intake of user files: single images, zips, folders and browser-uploaded folders, validated.

Every function here raises ProjectError with a sentence naming the class and the file."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..names import name_key, visible
from ..zips import ZipRefused, zip_directory
from .limits import (
    IMAGE_SUFFIXES,
    MAX_CLASSES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_MB,
    MAX_IMAGE_PIXELS,
    MAX_IMAGES_TOTAL,
    MAX_REQUEST_PIXELS,
    MIN_CLASSES,
    STORE_MAX_SIDE,
    ZIP_MAX_DIRECTORY_BYTES,
    ZIP_MAX_MEMBERS,
    ZIP_MAX_UNCOMPRESSED_BYTES,
    ProjectError,
)
from .names import validate_class_name


def shown_name(path: str | os.PathLike) -> str:
    """The name a user sees for an uploaded file: its base name (the server's temp path is not
    theirs to see)."""
    return Path(path).name or str(path)


def prepare_image(
    source: str | os.PathLike | bytes | Any,
    name: str,
    cls: str | None = None,
    budget: PixelBudget | None = None,
    min_side: int | None = None,
):
    """Open and validate one image; return it as an RGB PIL image no larger than STORE_MAX_SIDE.

    A JPEG is decoded at the smallest DCT scale (Pillow's ``draft``) that still covers its fit
    in STORE_MAX_SIDE (a 12-megapixel photo at 1/8: 504 x 378 for a 448 x 336 picture), or, given
    ``min_side``, that keeps both sides >= ``min_side``; a large photo costs little. ``budget``:
    the request's pixel budget, charged from the header before anything is decoded. A
    ``ZipMember`` (what ``iter_zip_images`` yields) is read here, against its zip's byte and pixel
    budgets; a PIL image is taken as already checked. Raises ProjectError with a sentence naming
    the file (and the class ``cls``, when given).
    """
    from PIL import Image

    if isinstance(source, Image.Image):
        return _fit(source)
    return _decode(_charged(source, name, cls, budget, min_side), name, cls, min_side)


def _where(name: str, cls: str | None) -> str:
    return f"Image '{name}'" + (f" in class '{cls}'" if cls else "")


def _decode_options(name: str, cls: str | None, min_side: int | None) -> dict:
    """How intake decodes (and prices) an image: one place, so the budget charges what is
    decoded and a stored copy decodes again as intake decoded it."""
    from ..images import MIN_SIDE

    draft = {"min_side": min_side} if min_side else {"fit_side": STORE_MAX_SIDE}
    return {
        "name": name,
        "max_pixels": MAX_IMAGE_PIXELS,
        "context": cls,
        "smallest": MIN_SIDE,
        **draft,
    }


def _charged(source, name: str, cls: str | None, budget: PixelBudget | None, min_side=None):
    """``source`` (a ``ZipMember`` read now) with its size checked and its pixels charged to
    ``budget`` from its header: the part of intake that must run in request order (the budgets
    are running totals). Nothing is decoded."""
    from ..images import ImageError, decoded_size

    where = _where(name, cls)
    if isinstance(source, ZipMember):  # read now, charged to its zip's budgets
        budget = budget or source.budget
        source = source.read()
    _check_bytes(len(source) if isinstance(source, bytes) else _file_size(source, where), where)
    if budget is not None:
        try:
            budget.spend(decoded_size(source, **_decode_options(name, cls, min_side)), where)
        except ImageError as exc:
            raise ProjectError(str(exc)) from None
    return source


def _decode(source, name: str, cls: str | None, min_side=None):
    """The decoded, fitted picture of a checked ``source`` (path or bytes); touches no shared
    state, so images of one request may be decoded in parallel."""
    from ..images import ImageError, load_image

    try:
        image = load_image(source, **_decode_options(name, cls, min_side))
    except ImageError as exc:
        raise ProjectError(str(exc)) from None
    return _fit(image, copy=False)  # load_image's picture is ours: downscaled in place


# Still images in these formats are stored as the bytes the user sent (a browser shows them, and
# decoding them again gives exactly what intake decoded); anything else (TIFF, BMP, PPM, GIF,
# AVIF, animations) is stored as a PNG of the decoded image, the one picture the model reads.
KEPT_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
STORED_SUFFIXES = frozenset({*KEPT_FORMATS.values(), ".png"})  # the files a project stores


@dataclass
class Validated:
    """An image that passed intake: the ``data`` to store (with its ``suffix``) and ``image``,
    the decoded RGB picture no larger than STORE_MAX_SIDE that embedding reads."""

    data: bytes
    suffix: str
    image: Any


@dataclass
class Staged:
    """An image read and charged (``stage_image``), not decoded yet: ``source`` is its bytes
    (or a PIL image)."""

    source: Any
    name: str
    cls: str | None


def validate_image(
    source: str | os.PathLike | bytes | Any,
    name: str,
    cls: str | None = None,
    budget: PixelBudget | None = None,
) -> Validated:
    """``prepare_image``, plus what to store: the file's own bytes (read once, decoded once)
    when it is a still JPEG, PNG or WebP (format read from its content, never its name), else a
    PNG of the decoded image. Raises ProjectError as ``prepare_image`` does; nothing is written.
    (``stage_image`` then ``decode_staged``: the first in request order, the second in any.)
    """
    return decode_staged(stage_image(source, name, cls, budget))


def stage_image(
    source: str | os.PathLike | bytes | Any,
    name: str,
    cls: str | None = None,
    budget: PixelBudget | None = None,
) -> Staged:
    """The first part of ``validate_image``: the file read (a path or a ``ZipMember``, against
    its zip's running budgets), its size checked and its pixels charged to ``budget`` from its
    header. Cheap (nothing is decoded); call it in request order. Raises ProjectError."""
    from PIL import Image

    from ..images import ImageError, read_source_bytes

    if isinstance(source, Image.Image):
        return Staged(source, name, cls)
    if isinstance(source, ZipMember):
        budget = budget or source.budget
        source = source.read()
    elif isinstance(source, (str, os.PathLike)):
        where = _where(name, cls)
        _check_bytes(_file_size(source, where), where)  # before it is read
        try:
            source = read_source_bytes(source, name)
        except ImageError as exc:
            raise ProjectError(str(exc)) from None
    return Staged(_charged(source, name, cls, budget), name, cls)


def decode_staged(staged: Staged) -> Validated:
    """The second part of ``validate_image``: decode and fit the picture, and choose what to
    store. Touches no shared state: the images of a request may be decoded in parallel. Raises
    ProjectError naming the file."""
    source = staged.source
    if not isinstance(source, bytes):  # a PIL image: already checked
        image = _fit(source)
        return Validated(png_bytes(image), ".png", image)
    image = _decode(source, staged.name, staged.cls)
    suffix = _kept_suffix(source)
    if suffix is None:
        return Validated(png_bytes(image), ".png", image)
    return Validated(source, suffix, image)


def _kept_suffix(data: bytes) -> str | None:
    """The suffix to store ``data`` (a decoded, valid image) under as it is, or None."""
    from PIL import Image

    from ..images import allowed_formats

    with Image.open(io.BytesIO(data), formats=allowed_formats()) as image:  # the header only
        if getattr(image, "is_animated", False):
            return None
        return KEPT_FORMATS.get(image.format or "")


def _fit(image, copy: bool = True):
    """``image`` at most STORE_MAX_SIDE on a side (``copy``: leave ``image`` as it is)."""
    from PIL import Image

    if max(image.size) > STORE_MAX_SIDE:
        image = image.copy() if copy else image
        image.thumbnail((STORE_MAX_SIDE, STORE_MAX_SIDE), Image.Resampling.LANCZOS)
    return image


class PixelBudget:
    """Pixels one request may still decode; ``spend`` refuses the image that would overdraw it."""

    def __init__(self, max_pixels: int = MAX_REQUEST_PIXELS, request: str = "This request"):
        self.max_pixels = int(max_pixels)
        self.left = int(max_pixels)
        self.request = request

    def spend(self, size: tuple[int, int], where: str) -> None:
        pixels = int(size[0]) * int(size[1])
        if pixels > self.left:
            used = self.max_pixels - self.left
            raise ProjectError(
                f"{self.request} would decode more than {self.max_pixels / 1e6:g} megapixels "
                f"({where} adds {pixels / 1e6:.1f} to the {used / 1e6:.1f} before it); send "
                "fewer or smaller images at a time."
            )
        self.left -= pixels


def check_request(
    files: Sequence[str | os.PathLike | dict],
    max_files: int = MAX_IMAGES_TOTAL,
    max_pixels: int = MAX_REQUEST_PIXELS,
    what: str = "images",
) -> int:
    """Check a list of uploaded image files before any work: returns the pixels they will decode.

    Refuses (ProjectError, nothing decoded, nothing written) more than ``max_files`` files, a file
    over MAX_IMAGE_MB, anything that is not an allowed image or is over MAX_IMAGE_PIXELS, and a
    total over ``max_pixels`` (each image priced from its header as ``prepare_image`` will decode
    it). ``files``: paths, or Gradio file dicts with a ``path``. ``what`` names the request.
    """
    if len(files) > max_files:
        raise ProjectError(f"Got {len(files)} {what}; send at most {max_files} at a time.")
    budget = PixelBudget(max_pixels, f"These {len(files)} {what}")
    paths = [file.get("path") if isinstance(file, dict) else file for file in files]
    charge_headers(((shown_name(path), path, None) for path in paths), budget)
    return budget.max_pixels - budget.left


def charge_headers(
    sources: Iterable[tuple[str, Any, str | None]], budget: PixelBudget, skip_bad: bool = False
) -> None:
    """Charge ``budget`` with the pixels each ``(name, source, class)`` will decode, read from
    its header alone, so that a request over the budget is refused before any image is decoded.

    Paths and bytes are priced here (and refused, as ``prepare_image`` would, when a file is over
    MAX_IMAGE_MB, not an allowed image or over MAX_IMAGE_PIXELS); a ``ZipMember`` is charged to
    its zip's budget as it is read, and a PIL image is already decoded. ``skip_bad``: a file that
    is refused on its own is skipped (its decoding names it) instead of refused here.
    """
    from PIL import Image

    from ..images import ImageError, decoded_size

    for name, source, cls in sources:
        if isinstance(source, (ZipMember, Image.Image)):
            continue
        where = f"Image '{name}'" + (f" in class '{cls}'" if cls else "")
        try:
            _check_bytes(
                len(source) if isinstance(source, bytes) else _file_size(source, where), where
            )
            dims = decoded_size(source, **_decode_options(name, cls, None))
        except ImageError as exc:
            if skip_bad:
                continue
            raise ProjectError(str(exc)) from None
        except ProjectError:
            if skip_bad:
                continue
            raise
        budget.spend(dims, where)


# Characters that reorder the text around them (bidi embeddings, overrides, isolates and marks):
# a file named 'evil\u202egnp.exe' would show as 'evilexe.png'.
_BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def check_display_name(name: str, cls: str | None = None) -> str:
    """``name`` (a file name shown to users), or a ProjectError if it holds a bidi control."""
    bad = next((c for c in name if ord(c) in _BIDI_CONTROLS), None)
    if bad is None:
        return name
    where = f" in class '{cls}'" if cls else ""
    raise ProjectError(
        f"The file name '{visible(name)[:80]}'{where} contains U+{ord(bad):04X}, a character "
        "that reorders the text around it; rename the file without it."
    )


def _check_bytes(size: int, where: str) -> None:
    if size > MAX_IMAGE_BYTES:
        raise ProjectError(
            f"{where} is {size / 2**20:.1f} MB; an image may be at most {MAX_IMAGE_MB} MB."
        )


def _file_size(path: str | os.PathLike, where: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        raise ProjectError(f"{where} could not be found (was the upload interrupted?).") from None


def png_bytes(image) -> bytes:
    """A prepared image as PNG bytes (what a class card stores: lossless, quick to write)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


# ---- bulk import: zip or folder with one sub-folder per class ------------------------------------
def _ignored(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" or p == "Thumbs.db" for p in parts)


def _class_folders(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Strip a single wrapping folder (``dataset/cat/1.jpg`` -> ``cat/1.jpg``)."""
    while paths and all(len(p) > 2 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    return paths


def iter_zip_images(
    zip_path: str | os.PathLike, max_pixels: int | None = None
) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(class_name, file_name, member)`` from a zip with one folder per class.

    A ``ZipMember`` is not read yet: ``prepare_image(member, ...)`` reads it (streamed, capped),
    validates and downscales it, so a consumer that checks names and counts first and then stores
    images one by one never holds more than one raw member. Safe against zip bombs and zip slip: the entry count and directory size are read from the end-of-central-directory record
    before the directory is parsed; members are streamed in chunks against the per-file and
    running total caps (a member over a cap is refused before it is read, and reading stops at
    the cap whatever the headers claim); the pixels decoded are charged to a ``max_pixels``
    budget from each header (None: MAX_REQUEST_PIXELS); nothing is extracted by member name; ``__MACOSX``, dotfiles and
    files that are not images (by extension) are ignored.
    """
    label = check_zip_directory(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ProjectError(f"'{label}' is not a readable zip file.") from None
    # the zip stays open for its members; closed after the last read, or when they are dropped
    with _closing_on_error(zf):
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ProjectError(
                f"'{label}' holds {len(infos):,} entries; a zip may hold at most "
                f"{ZIP_MAX_MEMBERS:,}."
            )
        members: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        for info in infos:
            raw = info.filename.replace("\\", "/")
            parts = tuple(p for p in PurePosixPath(raw).parts if p not in ("", "."))
            if raw.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise ProjectError(f"'{label}' contains an unsafe path: '{info.filename}'.")
            if info.is_dir() or not parts or _ignored(parts):
                continue
            if PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
                members[parts] = info
        layout = dict(zip(_class_folders(list(members)), members.values(), strict=True))
        for parts in layout:
            if len(parts) < 2:
                raise ProjectError(
                    f"'{label}': the image '{'/'.join(parts)}' is not inside a class folder; "
                    "put the images of each class in their own folder (cat/1.jpg, dog/1.jpg)."
                )
        for cls in dict.fromkeys(parts[0] for parts in layout):  # refuse bad names before reading
            try:
                validate_class_name(cls)
            except ProjectError as exc:
                raise ProjectError(f"'{label}': folder '{cls}': {exc}") from None
        # zipfile never returns more than a member's declared size, so the declared sizes bound
        # what reading can cost: refuse on them before reading a byte
        for parts, info in layout.items():
            if info.file_size > MAX_IMAGE_BYTES:
                raise ProjectError(
                    f"Class '{parts[0]}': '{parts[-1]}' is larger than {MAX_IMAGE_MB} MB."
                )
        if sum(info.file_size for info in layout.values()) > ZIP_MAX_UNCOMPRESSED_BYTES:
            raise ProjectError(
                f"'{label}' unpacks to more than {ZIP_MAX_UNCOMPRESSED_BYTES // 2**20} MB of "
                "images."
            )
        budget = PixelBudget(max_pixels or MAX_REQUEST_PIXELS, f"'{label}'")
        state = _ZipState(zf, label, ZIP_MAX_UNCOMPRESSED_BYTES, budget, len(layout))
        if not layout:
            zf.close()
        members = [(parts, ZipMember(state, info, parts[0])) for parts, info in layout.items()]
    for parts, member in members:
        yield parts[0], "/".join(parts[1:]), member


@contextmanager
def _closing_on_error(zf: zipfile.ZipFile):
    try:
        yield zf
    except BaseException:
        zf.close()
        raise


@dataclass
class _ZipState:
    """What the members of one zip share: the open zip and the request's running budgets."""

    zf: zipfile.ZipFile
    label: str
    bytes_left: int
    pixels: PixelBudget
    unread: int


class ZipMember:
    """A zip member not read yet; ``read`` streams it against the zip's running byte budget."""

    __slots__ = ("_state", "cls", "info")

    def __init__(self, state: _ZipState, info: zipfile.ZipInfo, cls: str) -> None:
        self._state, self.info, self.cls = state, info, cls

    @property
    def budget(self) -> PixelBudget:
        return self._state.pixels

    def read(self) -> bytes:
        state = self._state
        try:
            data = _read_member(state.zf, self.info, state.bytes_left, state.label, self.cls)
        finally:
            state.unread -= 1
            if state.unread <= 0:
                state.zf.close()
        state.bytes_left -= len(data)
        return data


def check_zip_directory(zip_path: str | os.PathLike) -> str:
    """Refuse a zip whose end records claim more than ZIP_MAX_MEMBERS entries or a directory
    larger than ZIP_MAX_DIRECTORY_BYTES, before ``zipfile`` reads (and parses) that directory.
    Returns the zip's display name. Every zip a user hands us goes through this first."""
    label = shown_name(zip_path)
    try:
        entries, directory = zip_directory(zip_path, label=label)
    except (ZipRefused, OSError) as exc:
        raise ProjectError(str(exc)) from None
    if entries > ZIP_MAX_MEMBERS:
        raise ProjectError(
            f"'{label}' holds {entries:,} entries; a zip may hold at most {ZIP_MAX_MEMBERS:,}."
        )
    if directory > ZIP_MAX_DIRECTORY_BYTES:
        raise ProjectError(
            f"'{label}' has a {directory / 2**20:.1f} MB table of contents; a zip of at most "
            f"{ZIP_MAX_MEMBERS:,} entries needs at most {ZIP_MAX_DIRECTORY_BYTES / 2**20:.0f} MB."
        )
    return label


_CHUNK = 1 << 20


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, left: int, label: str, cls: str):
    """A member's bytes, streamed: refused before reading when its header claims more than a cap,
    and reading stops at the cap if the data holds more than the header says."""
    where = f"Class '{cls}': '{PurePosixPath(info.filename).name}'"
    too_much = f"'{label}' unpacks to more than {ZIP_MAX_UNCOMPRESSED_BYTES // 2**20} MB of images."
    if info.file_size > MAX_IMAGE_BYTES:
        raise ProjectError(f"{where} is larger than {MAX_IMAGE_MB} MB.")
    if info.file_size > left:
        raise ProjectError(too_much)
    cap = min(left, MAX_IMAGE_BYTES)
    chunks, got = [], 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(min(_CHUNK, cap + 1 - got)):
                chunks.append(chunk)
                got += len(chunk)
                if got > cap:
                    raise ProjectError(
                        too_much
                        if cap < MAX_IMAGE_BYTES
                        else f"{where} is larger than {MAX_IMAGE_MB} MB."
                    )
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
        raise ProjectError(f"{where} cannot be read from '{label}' ({exc}).") from None
    return b"".join(chunks)


def iter_folder_images(root: str | os.PathLike) -> Iterator[tuple[str, str, str]]:
    """Yield ``(class_name, file_name, path)`` from a folder with one sub-folder per class."""
    root = Path(root)
    if not root.is_dir():
        raise ProjectError(f"'{root}' is not a folder.")
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not _ignored(parts) and path.suffix.lower() in IMAGE_SUFFIXES:
            found.append((parts, str(path)))
        if len(found) > ZIP_MAX_MEMBERS:
            raise ProjectError(f"'{root.name}' holds more than {ZIP_MAX_MEMBERS} images.")
    yield from _by_class_folder(found, root.name)


def iter_uploaded_folder(
    files: Sequence[str | os.PathLike], relative_paths: Sequence[str]
) -> Iterator[tuple[str, str, str]]:
    """Yield ``(class_name, file_name, path)`` from a folder a browser uploaded.

    Browsers upload a picked folder's files under their bare names; the page records each file's
    path inside the folder (``webkitRelativePath``, in upload order), which gives the classes.
    """
    if len(files) != len(relative_paths):
        raise ProjectError(
            f"The browser sent {len(files)} files but the paths of {len(relative_paths)}; "
            "upload the folder again, or zip it and use the zip import."
        )
    found = []
    for path, rel in zip(files, _posix(relative_paths), strict=True):
        parts = tuple(p for p in PurePosixPath(rel).parts if p != "/")
        if not parts or ".." in parts or _ignored(parts):
            continue
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            continue
        if Path(str(path)).suffix.lower() != suffix:
            raise ProjectError(
                f"The uploaded files and their folder paths do not match ('{rel}'); upload the "
                "folder again, or zip it and use the zip import."
            )
        found.append((parts, str(path)))
        if len(found) > ZIP_MAX_MEMBERS:
            raise ProjectError(f"The folder holds more than {ZIP_MAX_MEMBERS} images.")
    yield from _by_class_folder(found, uploaded_folder_name(relative_paths))


def _posix(paths: Sequence[str]) -> list[str]:
    return [str(p).replace("\\", "/") for p in paths]


def uploaded_folder_name(relative_paths: Sequence[str]) -> str:
    """The picked folder's name (the first part every path shares), for messages."""
    top = {p.split("/", 1)[0] for p in _posix(relative_paths)}
    return top.pop() if len(top) == 1 else "the folder"


def _by_class_folder(found: list[tuple[tuple[str, ...], str]], label: str):
    """``(parts, path)`` -> ``(class, name, path)``, below at most one wrapping folder."""
    for parts, (_, path) in zip(_class_folders([p for p, _ in found]), found, strict=True):
        if len(parts) < 2:
            raise ProjectError(
                f"'{label}': the image '{'/'.join(parts)}' is not inside a class folder; put "
                "the images of each class in their own folder (cat/1.jpg, dog/1.jpg)."
            )
        yield parts[0], "/".join(parts[1:]), path


# ---- the /imprint API: files and one class name per file -----------------------------------------
def records_from_labels(files: list, labels: Any) -> list[tuple[str, str, str]]:
    """``(class, file name, path)`` records from parallel lists, with clear errors."""
    if isinstance(labels, str):
        raise ProjectError("'labels' must be a list of class names, one per file, not one string.")
    if not isinstance(labels, (list, tuple)):
        raise ProjectError("'labels' must be a list of class names, one per file.")
    if len(files) != len(labels):
        raise ProjectError(
            f"Got {len(files)} files but {len(labels)} labels: give one class name per file."
        )
    if not files:
        raise ProjectError(f"Send images of at least {MIN_CLASSES} classes.")
    names: dict[str, str] = {}  # name_key -> the spelling first seen
    records = []
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        path = path.get("path") if isinstance(path, dict) else path
        try:
            clean = validate_class_name(label)
        except ProjectError as exc:
            raise ProjectError(f"Label {i + 1} (for '{shown_name(path)}'): {exc}") from None
        first = names.setdefault(name_key(clean), clean)
        if first != clean:
            raise ProjectError(
                f"The class names '{first}' and '{clean}' differ only in case or in letters that "
                "look alike: use one spelling."
            )
        if len({*names.values()}) > MAX_CLASSES:
            raise ProjectError(f"At most {MAX_CLASSES} classes are allowed.")
        records.append((clean, shown_name(path), str(path)))
    return records
