"""``--sort-into``: the predicted images as copies (or hard links), one folder per class.

Every readable image goes to the folder of its class, or to ``none-of-these/`` when the head
finds it unlike every class; the originals are never moved or changed (zip members are written out
from the archive). Folder names are the class names made safe for a file system (no path
separators; classes whose names would collide get `` (2)``). Two images with the same file name in
one folder are kept both: the second is ``name-2.jpg``. Each copy is written under a hidden
temporary name and renamed when complete, so a stopped run leaves no half-written image; resuming
(``resume=True``) recognises the copies it already made (same bytes) instead of copying again.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .prediction_rows import PredictionRow
from .sources import InputImage, Reader

NONE_OF_THESE = "none-of-these"
_PARTIAL = ".imprint-partial-"


def _safe(text: str) -> str:
    name = "".join("_" if c in "/\\\0" else c for c in text).strip()
    return "_" if name in ("", ".", "..") else name


def folder_names(classes: Iterable[Any]) -> dict[Any, str]:
    """Class label -> folder name: safe, unique ignoring case, never ``none-of-these``."""
    used = {NONE_OF_THESE.casefold()}
    out = {}
    for label in classes:
        label = label.item() if isinstance(label, np.generic) else label
        base = name = _safe(str(label))
        k = 2
        while name.casefold() in used:
            name, k = f"{base} ({k})", k + 1
        used.add(name.casefold())
        out[label] = name
    return out


def _candidates(folder: Path, name: str) -> Iterator[Path]:
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if stem else (name, "")
    yield folder / name
    k = 2
    while True:
        yield folder / f"{stem}-{k}{suffix}"
        k += 1


class Sorter:
    """Places each row's image under ``root``; ``link=True`` hard-links files instead of copying
    (falling back to a copy across file systems)."""

    def __init__(self, root: str | os.PathLike, classes, link: bool = False, resume: bool = False):
        self.root = Path(root)
        self.folders = folder_names(classes)
        self.link, self.resume = link, resume
        self.reader = Reader()
        if self.root.is_dir():  # copies a stopped run did not finish
            for stale in self.root.glob(f"*/{_PARTIAL}*"):
                stale.unlink(missing_ok=True)

    def place(self, row: PredictionRow) -> Path | None:
        """Write the row's image to its folder; the path written (None for an error row)."""
        if row.error or row.source is None:
            return None
        folder = self.root / (NONE_OF_THESE if row.unknown else self.folders[row.label])
        folder.mkdir(parents=True, exist_ok=True)
        source = row.source
        for dest in _candidates(folder, _safe(source.file_name)):
            if dest.exists():
                if self.resume and self._same(dest, source):
                    return dest
                continue
            self._write(source, dest)
            return dest
        raise AssertionError("unreachable")  # _candidates never ends

    def _write(self, source: InputImage, dest: Path) -> None:
        plain_file = source.data is None and not source.member
        if self.link and plain_file:
            try:
                os.link(source.path, dest)
                return
            except OSError:  # another file system, or links not allowed: copy instead
                pass
        tmp = dest.with_name(f"{_PARTIAL}{os.getpid()}-{dest.name}")
        try:
            if plain_file:
                shutil.copyfile(source.path, tmp)
            else:
                tmp.write_bytes(self.reader.read(source))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _same(self, dest: Path, source: InputImage) -> bool:
        if source.data is None and not source.member:
            return os.path.samefile(dest, source.path) or filecmp.cmp(dest, source.path, False)
        data = self.reader.read(source)
        return dest.stat().st_size == len(data) and dest.read_bytes() == data

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Sorter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
