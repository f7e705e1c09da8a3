"""Intake of user files: single images, zips, folders and browser-uploaded folders, validated.

Every function here raises ProjectError with a sentence naming the class and the file."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ..names import name_key
from .limits import (
    IMAGE_SUFFIXES,
    MAX_CLASSES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_MB,
    MAX_IMAGE_PIXELS,
    MIN_CLASSES,
    STORE_MAX_SIDE,
    ZIP_MAX_MEMBERS,
    ZIP_MAX_UNCOMPRESSED_BYTES,
    ProjectError,
)
from .names import validate_class_name


def _display_name(path: str | os.PathLike) -> str:
    return Path(path).name or str(path)


def prepare_image(source: str | os.PathLike | bytes, name: str, cls: str | None = None):
    """Open and validate one image; return it as an RGB PIL image no larger than STORE_MAX_SIDE.

    Raises ProjectError with a sentence naming the file (and the class ``cls``, when given).
    """
    from PIL import Image

    from ..images import ImageError, load_image

    where = f"Image '{name}'" + (f" in class '{cls}'" if cls else "")
    size = len(source) if isinstance(source, bytes) else _file_size(source, where)
    if size > MAX_IMAGE_BYTES:
        raise ProjectError(
            f"{where} is {size / 2**20:.1f} MB; an image may be at most {MAX_IMAGE_MB} MB."
        )
    try:
        image = load_image(source, name=name, max_pixels=MAX_IMAGE_PIXELS, context=cls)
    except ImageError as exc:
        raise ProjectError(str(exc)) from None
    if max(image.size) > STORE_MAX_SIDE:
        image = image.copy()
        image.thumbnail((STORE_MAX_SIDE, STORE_MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _file_size(path: str | os.PathLike, where: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        raise ProjectError(f"{where} could not be found (was the upload interrupted?).") from None


def _png_bytes(image) -> bytes:
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


def iter_zip_images(zip_path: str | os.PathLike) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(class_name, file_name, bytes)`` from a zip with one folder per class.

    Safe against zip bombs and zip slip: member count and total uncompressed size are capped
    (reading stops at the cap whatever the headers claim), nothing is extracted by member name,
    and ``__MACOSX``, dotfiles and files that are not images (by extension) are ignored.
    """
    label = _display_name(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError):
        raise ProjectError(f"'{label}' is not a readable zip file.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ProjectError(
                f"'{label}' holds {len(infos)} entries; a zip may hold at most {ZIP_MAX_MEMBERS}."
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
        budget = ZIP_MAX_UNCOMPRESSED_BYTES
        for parts, info in layout.items():
            if len(parts) < 2:
                raise ProjectError(
                    f"'{label}': the image '{'/'.join(parts)}' is not inside a class folder; "
                    "put the images of each class in their own folder (cat/1.jpg, dog/1.jpg)."
                )
            data = _read_capped(zf, info, min(budget, MAX_IMAGE_BYTES), label, parts[0])
            budget -= len(data)
            yield parts[0], "/".join(parts[1:]), data


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, label: str, cls: str):
    where = f"Class '{cls}': '{PurePosixPath(info.filename).name}'"
    if cap <= 0:
        raise ProjectError(
            f"'{label}' unpacks to more than {ZIP_MAX_UNCOMPRESSED_BYTES // 2**20} MB of images."
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(cap + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
        raise ProjectError(f"{where} cannot be read from '{label}' ({exc}).") from None
    if len(data) > cap:
        if cap < MAX_IMAGE_BYTES:
            raise ProjectError(
                f"'{label}' unpacks to more than {ZIP_MAX_UNCOMPRESSED_BYTES // 2**20} MB of images."
            )
        raise ProjectError(f"{where} is larger than {MAX_IMAGE_MB} MB.")
    return data


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
    names: dict[str, str] = {}  # case-folded -> the spelling first seen
    records = []
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        path = path.get("path") if isinstance(path, dict) else path
        try:
            clean = validate_class_name(label)
        except ProjectError as exc:
            raise ProjectError(f"Label {i + 1} (for '{_display_name(path)}'): {exc}") from None
        first = names.setdefault(name_key(clean), clean)
        if first != clean:
            raise ProjectError(
                f"The class names '{first}' and '{clean}' differ only in case: use one spelling."
            )
        if len({*names.values()}) > MAX_CLASSES:
            raise ProjectError(f"At most {MAX_CLASSES} classes are allowed.")
        records.append((clean, _display_name(path), str(path)))
    return records
