"""Images into a project: a card's files, images dropped on its thumbnails, a zip, a folder.

Every image is validated (``intake``: read once, decoded once, hashed once; INTAKE_THREADS images
at a time inside the session's turn, read and stored in the order sent) and stored in the
project's folder before the project changes: a still JPEG, PNG or WebP as the bytes the user sent,
anything else as a PNG of the decoded image; beside it, the small JPEG the cards show
(``thumbnails``), made from the decoded picture. The decoded picture is kept (``DecodedImages``, up
to DECODED_KEEP_MB) for the embedding that usually follows, so an upload is not decoded twice.
Limits are checked for the whole request, so an upload is all or nothing: one bad file adds none of
them, and the refusal names every bad file and why (so the user can drop the rest again at once).
``Uploads`` is a part of ``Project``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .disk import QuotaError, SessionRoom
from .intake import (
    PixelBudget,
    Staged,
    Validated,
    charge_headers,
    check_display_name,
    decode_staged,
    iter_folder_images,
    iter_uploaded_folder,
    iter_zip_images,
    shown_name,
    stage_image,
    uploaded_folder_name,
)
from .limits import (
    DECODED_KEEP_MB,
    MAX_CLASSES,
    MAX_IMAGES_PER_CLASS,
    MAX_IMAGES_TOTAL,
    ProjectError,
)
from .names import validate_class_name
from .quotas import INTAKE_THREADS
from .scheduler import Slices
from .state import ClassEntry, ImageItem
from .thumbnails import thumb_path, thumbnail_bytes, write_thumbnail


class Uploads:
    """Validated images stored and added to classes, all or nothing (mixed into ``Project``)."""

    def _keep(self, ready: Ready, room: SessionRoom):
        """One decoded file stored (its bytes and its thumbnail): ``(ImageItem, picture)``."""
        valid = ready.valid
        path = self.workdir / f"{ready.key[:24]}{valid.suffix}"
        if not path.exists():
            room.take(len(valid.data))  # the session's disk quota (disk.py)
            path.write_bytes(valid.data)
        write_thumbnail(path, valid.image, room.take, ready.thumb)  # what the cards show: a few kB
        return ImageItem(name=ready.name, path=path, key=ready.key), valid.image

    def _store_all(self, jobs: Sequence[tuple[str, str, Any]]) -> list[ImageItem]:
        """Store ``(class, file name, source)`` jobs; every refused file is named in one
        ProjectError (a refused request adds nothing, so the files stored are collected). The
        file that would pass the session's disk quota ends the request (QuotaError).

        Files are read and charged to their budgets in request order, then decoded (with their
        hash and thumbnail) up to INTAKE_THREADS at a time inside the session's turn (one at a
        time when no core is free: on a saturated machine two threads were measured slower than
        one), and stored in request order while the next ones decode."""
        items, refused, pictures = [], [], []
        room = SessionRoom(self, "Adding these images")

        def keep(outcomes: list) -> None:
            for outcome in outcomes:
                if isinstance(outcome, ProjectError):
                    refused.append(str(outcome))
                else:
                    item, picture = self._keep(outcome, room)  # QuotaError ends the request
                    items.append(item)
                    pictures.append((item.key, picture))

        with Slices(self) as slices, _decoders(len(jobs)) as pool:
            done: list = []
            start = 0
            while start < len(jobs):
                with slices.unit():  # decoding is heavy work: images share turns of the fair queue
                    width = 1 + min(INTAKE_THREADS - 1, free_cores())
                    group, start = jobs[start : start + width], start + width
                    staged = [_stage(*job) for job in group]
                    pending = [pool.submit(_ready, s, self.workdir) for s in staged]
                    keep(done)  # the previous group stored while this one decodes
                    done = [f.result() for f in pending]
            keep(done)
        if refused:
            raise ProjectError(refused_sentence(refused, len(jobs)))
        for key, picture in pictures:
            self._decoded.put(key, picture)
        return items

    def _check_room(self, adding: dict[str, int]) -> None:
        for name, n in adding.items():
            entry = self.find(name)
            have = len(entry.images) if entry else 0
            if have + n > MAX_IMAGES_PER_CLASS:
                raise ProjectError(
                    f"Class '{name}' would have {have + n} images; a class may have at most "
                    f"{MAX_IMAGES_PER_CLASS}."
                )
        total = self.n_images + sum(adding.values())
        if total > MAX_IMAGES_TOTAL:
            raise ProjectError(
                f"The project would have {total} images; at most {MAX_IMAGES_TOTAL} are allowed."
            )

    def add_images(self, uid: int, files: Iterable[str | os.PathLike | tuple]) -> int:
        """Validate and add image files to a class; all or nothing. Returns how many were added.

        ``files`` are paths, or ``(path, display_name)`` pairs. Exact duplicates of an image
        already in the class are skipped.
        """
        with self.transaction():
            entry = self.get(uid)
            pairs = [f if isinstance(f, tuple) else (f, shown_name(f)) for f in files]
            pairs = [(p, n or shown_name(p)) for p, n in pairs if p]
            self._check_room({entry.name: len(pairs)})
            _charge((entry.name, name, path) for path, name in pairs)
            items = self._store_all([(entry.name, name, str(path)) for path, name in pairs])
            return self._append(entry, items)

    def add_gallery_images(self, uid: int, files: Iterable[str | os.PathLike]) -> int:
        """Add what was dropped onto a class's thumbnails.

        A thumbnail gallery hands back all its files: copies of this class's thumbnails (same
        base name) plus the new ones. Only the new ones are added (and counted against limits).
        """
        with self.transaction():
            stored = {name for i in self.get(uid).images for name in i.names}
            new = [f for f in files if f and Path(str(f)).name not in stored]
            return self.add_images(uid, new) if new else 0

    def _append(self, entry: ClassEntry, items: list[ImageItem]) -> int:
        seen = {i.key for i in entry.images}
        added = 0
        for item in items:
            if item.key not in seen:
                seen.add(item.key)
                entry.images.append(item)
                added += 1
        return added

    def import_images(self, records: Iterable[tuple[str, str, Any]], source: str) -> str:
        """Add ``(class, file name, path-or-bytes)`` records, creating classes by name.

        All or nothing: every file is validated before the project changes. Empty classes are
        dropped afterwards (the imported folders define the project). Returns a summary sentence.
        """
        with self.transaction():
            staged: dict[str, list[tuple[str, Any]]] = {}
            for cls, name, data in records:
                staged.setdefault(cls, []).append((name, data))
            if not staged:
                raise ProjectError(
                    f"'{source}' holds no images in class folders (expected cat/1.jpg, dog/2.png)."
                )
            names: dict[str, str] = {}
            for cls in staged:
                existing = self.find(cls)
                others = [n for n in names.values()]
                names[cls] = existing.name if existing else validate_class_name(cls, others)
            kept = [c for c in self.classes if c.images]
            new = [n for n in names.values() if self.find(n) is None]
            if len(kept) + len(new) > MAX_CLASSES:
                raise ProjectError(
                    f"'{source}' would make {len(kept) + len(new)} classes; at most {MAX_CLASSES}."
                )
            self._check_room({names[c]: len(v) for c, v in staged.items()})
            _charge((names[c], name, data) for c, files in staged.items() for name, data in files)
            jobs = [
                (names[cls], name, data) for cls, files in staged.items() for name, data in files
            ]
            items = iter(self._store_all(jobs))
            stored = {cls: [next(items) for _ in files] for cls, files in staged.items()}
            for entry in [c for c in self.classes if not c.images]:
                self.classes.remove(entry)
            self.render_epoch += 1
            added = 0
            for cls, items in stored.items():
                entry = self.find(names[cls]) or self.add_class(names[cls])
                added += self._append(entry, items)
            return f"Imported {added} images into {len(stored)} classes from '{source}'."

    def import_zip(self, zip_path: str | os.PathLike, display_name: str | None = None) -> str:
        """Bulk import from a zip with one folder per class (see ``iter_zip_images``)."""
        label = display_name or shown_name(zip_path)
        return self.import_images(iter_zip_images(zip_path), label)

    def import_folder(self, root: str | os.PathLike) -> str:
        """Bulk import from a folder with one sub-folder per class."""
        return self.import_images(iter_folder_images(root), Path(root).name)

    def import_uploaded_folder(
        self, files: Sequence[str | os.PathLike], relative_paths: Sequence[str]
    ) -> str:
        """Bulk import from a folder a browser uploaded (see ``iter_uploaded_folder``)."""
        records = iter_uploaded_folder(files, relative_paths)
        return self.import_images(records, uploaded_folder_name(relative_paths))


def refused_sentence(refused: Sequence[str], total: int) -> str:
    """One refusal for a request of ``total`` files of which ``refused`` (their sentences)
    failed: nothing was added, and every bad file is named with its reason."""
    if total == 1:
        return refused[0]
    n = len(refused)
    files = "file was" if n == 1 else "files were"
    them = "it" if n == 1 else "them"
    return (
        f"No image was added: {n} of {total} {files} refused. "
        + " ".join(refused)
        + f" Add the others again without {them}."
    )


class DecodedImages:
    """Decoded pictures by image key, kept for the embedding that follows an upload; the oldest
    go first beyond ``max_mb`` (a 448 x 336 picture is 0.45 MB), then are decoded again."""

    def __init__(self, max_mb: float = DECODED_KEEP_MB) -> None:
        self.max_bytes = int(max_mb * 2**20)
        self._pictures: dict[str, Any] = {}
        self._bytes = 0

    def put(self, key: str, picture) -> None:
        size = picture.width * picture.height * len(picture.getbands())
        if key in self._pictures or size > self.max_bytes:
            return
        self._pictures[key] = picture
        self._bytes += size
        while self._bytes > self.max_bytes:
            self.drop(next(iter(self._pictures)))

    def get(self, key: str):
        return self._pictures.get(key)

    def drop(self, key: str) -> None:
        picture = self._pictures.pop(key, None)
        if picture is not None:
            self._bytes -= picture.width * picture.height * len(picture.getbands())

    def __len__(self) -> int:
        return len(self._pictures)


def _charge(records: Iterable[tuple[str, str, Any]]) -> None:
    """One request's images priced from their headers against MAX_REQUEST_PIXELS before any is
    decoded: a request over it decodes nothing. (A file that is no image is skipped here: the
    store names every such file in one refusal.)"""
    records = list(records)
    budget = PixelBudget(request=f"This upload of {len(records)} images")
    sources = ((name, source, cls) for cls, name, source in records)
    charge_headers(sources, budget, skip_bad=True)


@dataclass
class Ready:
    """A file decoded for storing: its display ``name``, ``valid`` (intake's result), content
    ``key`` (SHA-256) and ``thumb`` (its thumbnail's bytes, None when that file exists)."""

    name: str
    valid: Validated
    key: str
    thumb: bytes | None


def _stage(cls: str, name: str, source) -> Staged | ProjectError:
    """A job's file read and charged (in request order), or the sentence refusing it."""
    try:
        check_display_name(name, cls)
        return stage_image(source, name, cls)
    except QuotaError:
        raise
    except ProjectError as exc:
        return exc


def _ready(staged: Staged | ProjectError, workdir: Path) -> Ready | ProjectError:
    """A staged file decoded, hashed and thumbnailed (in a decoding thread: no shared state is
    touched, nothing is written), or the sentence refusing it."""
    if isinstance(staged, ProjectError):
        return staged
    try:
        valid = decode_staged(staged)
    except ProjectError as exc:
        return exc
    key = hashlib.sha256(valid.data).hexdigest()
    exists = thumb_path(workdir / f"{key[:24]}{valid.suffix}").exists()
    return Ready(staged.name, valid, key, None if exists else thumbnail_bytes(valid.image))


def free_cores() -> int:
    """Cores that no runnable task but the caller uses now (Linux: the running count of
    ``/proc/loadavg``, which counts the caller); elsewhere, as many as intake may use."""
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return INTAKE_THREADS - 1
    return max(0, (os.cpu_count() or 1) - running)


class _Inline:
    """What ``ThreadPoolExecutor.submit`` gives, run at once (a single file needs no thread)."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


class _Serial:
    def submit(self, fn, *args):
        return _Inline(fn(*args))


@contextmanager
def _decoders(n_files: int):
    """INTAKE_THREADS decoding threads for a request of ``n_files`` (none for one file):
    Pillow's decoders release the GIL, so two photos decode on two cores."""
    if n_files < 2 or INTAKE_THREADS < 2:
        yield _Serial()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="imprint-intake") as pool:
        yield pool
