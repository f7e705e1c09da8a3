"""What ``predict_files`` reads: image files, folders (recursively) and zip archives.

``list_inputs(inputs)`` names every image up front without reading a pixel: a file stands for
itself; a folder is walked recursively in sorted order (hidden files, ``__MACOSX`` and files
without an image extension are left out and counted); a ``.zip`` gives its image members as
``archive.zip/member/path``, after ``zips.image_members`` has checked the archive. Object-storage
URIs (``s3://bucket/photos``) are kept apart: only Ray Data reads them. A missing input or a
refused zip raises at once with a sentence; an image that cannot be read is found when it is read
(``Reader.read`` raises ``ImageError`` naming it), so one bad file never stops a run.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .images import IMAGE_SUFFIXES, ImageError, read_source_bytes
from .zips import MAX_MEMBER_BYTES, ignored, image_members, is_zip

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    KeyError,
    OSError,
    RuntimeError,
    EOFError,
    NotImplementedError,
    zlib.error,
)


@dataclass(frozen=True)
class InputImage:
    """One image to classify: ``name`` as the user sees it (the path as given, or
    ``archive.zip/member``), the file to read (``path``; the archive for a ``member``), or its
    ``data`` when it arrived as bytes."""

    name: str
    path: str = ""
    member: str = ""
    data: bytes | None = field(default=None, repr=False)

    @property
    def file_name(self) -> str:
        """The last part of the name (what a copy of it is called)."""
        return re.split(r"[/\\]", self.name.rstrip("/\\"))[-1]


@dataclass
class Inputs:
    """What ``list_inputs`` found: the images, the files left out, the object-storage URIs."""

    images: list[InputImage]
    ignored: int = 0
    uris: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def is_uri(text: str) -> bool:
    """``scheme://...``: a path only Ray Data (pyarrow's file systems) reads."""
    return bool(_URI.match(text))


def list_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> Inputs:
    """Every image of ``inputs`` (files, folders, zips, URIs), listed in the given order."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = Inputs(images=[])
    for item in inputs:
        text = os.fspath(item)
        if is_uri(text):
            found.uris.append(text)
            continue
        path = Path(text)
        if path.is_dir():
            found.folders.append(path)
            _walk(text, found)
        elif not path.exists():
            raise FileNotFoundError(f"Input {text!r} does not exist.")
        elif is_zip(path):
            members, skipped = image_members(path)
            found.images += [
                InputImage(f"{text.rstrip('/')}/{m.filename}", text, m.filename) for m in members
            ]
            found.ignored += skipped
        else:  # a file named on purpose is read whatever its extension (an error row if not)
            found.images.append(InputImage(text, text))
    found.images = list({item.name: item for item in found.images}.values())  # one row per name
    return found


def _walk(root: str, found: Inputs) -> None:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not ignored((d,)))
        for name in sorted(files):
            if not ignored((name,)) and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                path = os.path.join(folder, name)
                found.images.append(InputImage(path, path))
            else:
                found.ignored += 1


class Reader:
    """Reads ``InputImage`` bytes, keeping each archive open while its members are read (one
    thread at a time; ``close`` when done)."""

    def __init__(self) -> None:
        self._zips: dict[str, zipfile.ZipFile] = {}

    def read(self, item: InputImage) -> bytes:
        """The image's bytes; ``ImageError`` naming it when they cannot be read."""
        if item.data is not None:
            return item.data
        if not item.member:
            return read_source_bytes(item.path, item.name)
        try:
            zf = self._zips.get(item.path)
            if zf is None:
                zf = self._zips[item.path] = zipfile.ZipFile(item.path)
            info = zf.getinfo(item.member)
            if info.file_size > MAX_MEMBER_BYTES:  # listed archives were checked; this is a guard
                raise ImageError(f"Image {item.name!r} is larger than {MAX_MEMBER_BYTES} bytes.")
            return zf.read(info)
        except ImageError:
            raise
        except _ZIP_ERRORS as exc:  # CRC mismatch, encrypted, unknown compression method, ...
            raise ImageError(f"Image {item.name!r} cannot be read from its zip ({exc}).") from None

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
