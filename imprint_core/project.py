"""One user's teaching project: classes, images, embeddings, the imprinted head and its evidence.

Everything the app does lives here, callable and testable without Gradio. A ``Project`` keeps a
validated, size-normalised PNG copy of every image in its own working folder (uploads may be
deleted by the web server at any time), caches embeddings per backbone so that changing a setting
never embeds again, and imprints from those cached embeddings.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

# ---- limits (stated to the user in messages and in docs/app.md) ---------------------------------
MIN_CLASSES = 2
MAX_CLASSES = 20
MAX_NAME_CHARS = 40
MAX_IMAGE_MB = 10
MAX_IMAGE_BYTES = MAX_IMAGE_MB * 1024 * 1024  # one image file
MAX_IMAGE_PIXELS = 40_000_000  # width x height of one image (a 40-megapixel photo)
MAX_IMAGES_PER_CLASS = 250
MAX_IMAGES_TOTAL = 1000
MAX_UPLOAD_MB = 100  # one upload to the server (a zip), enforced by launch(max_file_size=...)
ZIP_MAX_MEMBERS = 5000  # entries in one zip, folders and ignored files included
ZIP_MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024  # sum over the images read from one zip
# Built-in backbone on 2 CPUs, 108 images: batch 8 took 1.3 s and +140 MB of memory, batch 32
# took 1.9 s and +650 MB (ONNX Runtime keeps its largest activations); small batches also give
# a finer progress bar.
EMBED_BATCH = 8
STORE_MAX_SIDE = 448  # stored copies are downscaled to this (the backbones look at 224 px)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
DEFAULT_PRESET = "ours"

ProgressFn = Callable[[int, int], None]


class ProjectError(ValueError):
    """A user mistake (bad name, bad file, a limit): the message is meant for the user."""


# ---- names ---------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_class_name(name: Any, others: Iterable[str] = ()) -> str:
    """The trimmed name, or a ProjectError saying what is wrong with it."""
    if not isinstance(name, str):
        raise ProjectError(f"A class name must be text, not {type(name).__name__}.")
    clean = " ".join(name.split())
    if not clean:
        raise ProjectError("A class name cannot be blank: type a name such as 'cat'.")
    if len(clean) > MAX_NAME_CHARS:
        raise ProjectError(
            f"The class name '{clean[:MAX_NAME_CHARS]}...' is {len(clean)} characters long; "
            f"use at most {MAX_NAME_CHARS}."
        )
    if _CONTROL.search(clean):
        raise ProjectError(f"The class name {clean!r} contains control characters.")
    folded = clean.casefold()
    for other in others:
        if other.casefold() == folded:
            raise ProjectError(
                f"There is already a class named '{other}' (names must differ, ignoring case)."
            )
    return clean


# ---- images --------------------------------------------------------------------------------------
@dataclass
class ImageItem:
    """A validated image of a class: its display name, stored copy and content hash."""

    name: str  # the file name the user gave us, for messages
    path: Path  # our stored PNG copy
    key: str  # sha256 of the stored copy: the embedding cache key


@dataclass
class ClassEntry:
    uid: int  # stable across renames: the app keys its class cards on it
    name: str
    images: list[ImageItem] = field(default_factory=list)


def _display_name(path: str | os.PathLike) -> str:
    return Path(path).name or str(path)


def prepare_image(source: str | os.PathLike | bytes, name: str, cls: str | None = None):
    """Open and validate one image; return it as an RGB PIL image no larger than STORE_MAX_SIDE.

    Raises ProjectError with a sentence naming the file (and the class ``cls``, when given).
    """
    from PIL import Image

    from .images import ImageError, load_image

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


# ---- the project ---------------------------------------------------------------------------------
class Project:
    """A session's classes, images, cached embeddings and imprinted head."""

    def __init__(self, workdir: str | os.PathLike | None = None, n_classes: int = 2) -> None:
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None  # made on first use: a visit without uploads leaves none
        self._cleanup: weakref.finalize | None = None
        self.classes: list[ClassEntry] = []
        self._next_uid = 0
        self._embeddings: dict[str, dict[str, np.ndarray]] = {}  # backbone -> key -> vector
        self.lock = threading.RLock()  # events of one session may overlap
        self.settings: dict[str, Any] = {}
        self.preset: str | None = None
        self.backbone_name: str | None = None
        self.head = None  # a fitted ImprintClassifier
        self.head_source = ""  # "imprinted" or the loaded file's name
        self.evaluation = None
        self._imprinted_from: tuple = ()  # fingerprint of the images the head was imprinted from
        self.seconds: dict[str, float] = {}
        self.last_test: tuple[np.ndarray, str] | None = None
        self.set_settings(DEFAULT_PRESET)
        for _ in range(n_classes):
            self.add_class()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """The folder of the stored image copies (a temporary one unless given)."""
        if self._workdir is None:
            if self._given_workdir is not None:
                self._workdir = self._given_workdir
                self._workdir.mkdir(parents=True, exist_ok=True)
            else:
                self._workdir = Path(tempfile.mkdtemp(prefix="imprint-project-"))
                # also when the project is garbage-collected or the interpreter exits
                self._cleanup = weakref.finalize(
                    self, shutil.rmtree, str(self._workdir), ignore_errors=True
                )
        return self._workdir

    def close(self) -> None:
        """Delete the stored image copies (the app calls this when the session ends)."""
        if self._cleanup is not None:
            self._cleanup()

    def __deepcopy__(self, memo):  # gr.State may try; a project is never shared or copied
        return self

    # -- classes -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, uid: int) -> ClassEntry:
        for entry in self.classes:
            if entry.uid == uid:
                return entry
        raise ProjectError("That class no longer exists (it was removed).")

    def find(self, name: str) -> ClassEntry | None:
        folded = " ".join(name.split()).casefold()
        return next((c for c in self.classes if c.name.casefold() == folded), None)

    def _default_name(self) -> str:
        taken = {n.casefold() for n in self.names}
        i = len(self.classes) + 1
        while f"class {i}" in taken:
            i += 1
        return f"Class {i}"

    def add_class(self, name: str | None = None) -> ClassEntry:
        with self.lock:
            if len(self.classes) >= MAX_CLASSES:
                raise ProjectError(f"A project can have at most {MAX_CLASSES} classes.")
            name = validate_class_name(self._default_name() if name is None else name, self.names)
            entry = ClassEntry(self._next_uid, name)
            self._next_uid += 1
            self.classes.append(entry)
            return entry

    def rename_class(self, uid: int, name: str) -> ClassEntry:
        with self.lock:
            entry = self.get(uid)
            others = [c.name for c in self.classes if c.uid != uid]
            entry.name = validate_class_name(name, others)
            return entry

    def remove_class(self, uid: int) -> None:
        with self.lock:
            entry = self.get(uid)
            self.classes.remove(entry)
            self._release(entry.images)

    def clear_images(self, uid: int) -> None:
        with self.lock:
            entry = self.get(uid)
            dropped, entry.images = entry.images, []
            self._release(dropped)

    def remove_image(self, uid: int, index: int) -> None:
        with self.lock:
            entry = self.get(uid)
            if not 0 <= index < len(entry.images):
                raise ProjectError(f"Class '{entry.name}' has no image number {index + 1}.")
            self._release([entry.images.pop(index)])

    def remove_image_file(self, uid: int, file_name: str) -> str:
        """Remove the image whose stored copy (as shown in the card) is named ``file_name``.

        The app gets back a copy of a thumbnail with the same base name, so a deletion names
        its image even when the card changed meanwhile. Returns the image's display name.
        """
        with self.lock:
            entry = self.get(uid)
            base = Path(str(file_name)).name
            for index, item in enumerate(entry.images):
                if item.path.name == base:
                    self._release([entry.images.pop(index)])
                    return item.name
            raise ProjectError(f"Class '{entry.name}' has no image stored as '{base}'.")

    def _release(self, items: Iterable[ImageItem]) -> None:
        """Delete stored copies no class uses any more (one file serves identical uploads)."""
        used = {i.path for c in self.classes for i in c.images}
        for item in items:
            if item.path not in used:
                item.path.unlink(missing_ok=True)

    def reset(self, n_classes: int = 0) -> None:
        """Remove every class and image (keeps cached embeddings: re-adding a file is free)."""
        with self.lock:
            for entry in list(self.classes):
                self.remove_class(entry.uid)
            self.head, self.evaluation, self.head_source = None, None, ""
            for _ in range(n_classes):
                self.add_class()

    def view(self, max_thumbs: int = 40) -> dict[str, Any]:
        """What the class cards show; ``version`` changes on every call so the UI re-renders."""
        self._version = getattr(self, "_version", 0) + 1
        return {
            "version": self._version,
            "classes": [self.card(c.uid, max_thumbs) for c in self.classes],
        }

    def card(self, uid: int, max_thumbs: int = 40) -> dict[str, Any]:
        """One class card: uid, name, number of images and the latest ``max_thumbs`` thumbnails."""
        c = self.get(uid)
        thumbs = [str(i.path) for i in c.images[-max_thumbs:]] if max_thumbs > 0 else []
        return {"uid": c.uid, "name": c.name, "n": len(c.images), "thumbs": thumbs}

    @property
    def n_images(self) -> int:
        return sum(len(c.images) for c in self.classes)

    # -- images ------------------------------------------------------------------------------------
    def _store(self, entry_name: str, name: str, source) -> ImageItem:
        image = prepare_image(source, name, entry_name)
        data = _png_bytes(image)
        key = hashlib.sha256(data).hexdigest()
        path = self.workdir / f"{key[:24]}.png"
        if not path.exists():
            path.write_bytes(data)
        return ImageItem(name=name, path=path, key=key)

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
        with self.lock:
            entry = self.get(uid)
            pairs = [f if isinstance(f, tuple) else (f, _display_name(f)) for f in files]
            pairs = [(p, n or _display_name(p)) for p, n in pairs if p]
            self._check_room({entry.name: len(pairs)})
            items = [self._store(entry.name, name, str(path)) for path, name in pairs]
            return self._append(entry, items)

    def add_gallery_images(self, uid: int, files: Iterable[str | os.PathLike]) -> int:
        """Add what was dropped onto a class's thumbnails.

        A thumbnail gallery hands back all its files: copies of this class's stored images (same
        base name) plus the new ones. Only the new ones are added (and counted against limits).
        """
        with self.lock:
            stored = {i.path.name for i in self.get(uid).images}
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
        with self.lock:
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
            stored = {
                cls: [self._store(names[cls], name, data) for name, data in files]
                for cls, files in staged.items()
            }
            for entry in [c for c in self.classes if not c.images]:
                self.classes.remove(entry)
            added = 0
            for cls, items in stored.items():
                entry = self.find(names[cls]) or self.add_class(names[cls])
                added += self._append(entry, items)
            return f"Imported {added} images into {len(stored)} classes from '{source}'."

    def import_zip(self, zip_path: str | os.PathLike, display_name: str | None = None) -> str:
        """Bulk import from a zip with one folder per class (see ``iter_zip_images``)."""
        label = display_name or _display_name(zip_path)
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

    # -- settings ----------------------------------------------------------------------------------
    def set_settings(self, preset: str | None = None, **options: Any) -> dict[str, Any]:
        """Choose a preset and/or override options; validated by building a classifier.

        Presets leave the seed alone (it is kept, 0 at first). ``preset`` afterwards names the
        preset whose options all match, or is None ("custom").
        """
        from .presets import PRESETS

        with self.lock:
            if preset is not None and preset not in PRESETS:
                raise ProjectError(
                    f"Unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}."
                )
            base = {"seed": self.settings.get("seed", 0)}
            base.update(dict(PRESETS[preset]) if preset is not None else self.settings)
            base.update({k: v for k, v in options.items() if v is not None})
            make_classifier(base)  # raises ProjectError on a bad combination
            self.settings = base
            self.preset = next(
                (n for n, p in PRESETS.items() if all(base.get(k) == v for k, v in p.items())),
                None,
            )
            return dict(base)

    # -- embedding and imprinting ------------------------------------------------------------------
    def _check_trainable(self) -> None:
        if len(self.classes) < MIN_CLASSES:
            raise ProjectError(
                f"Add at least {MIN_CLASSES} classes to imprint a classifier "
                f"(there {'is' if len(self.classes) == 1 else 'are'} {len(self.classes)})."
            )
        empty = [c.name for c in self.classes if not c.images]
        if empty:
            listed = ", ".join(f"'{n}'" for n in empty)
            raise ProjectError(
                f"Class {listed} has no images: add images or remove the class."
                if len(empty) == 1
                else f"Classes {listed} have no images: add images or remove them."
            )

    def embed(self, backbone, progress: ProgressFn | None = None) -> float:
        """Embed every image not yet embedded with ``backbone``; returns the seconds spent."""
        with self.lock:
            self._check_trainable()
            store = self._embeddings.setdefault(backbone.name, {})
            todo: dict[str, ImageItem] = {}
            for entry in self.classes:
                for item in entry.images:
                    if item.key not in store:
                        todo.setdefault(item.key, item)
            start = time.perf_counter()
            if progress is not None:
                progress(0, len(todo))
            if todo:
                items = list(todo.values())
                Z = backbone.embed(
                    [str(i.path) for i in items], batch_size=EMBED_BATCH, progress=progress
                )
                Z = np.asarray(Z, dtype=np.float32)
                for item, z in zip(items, Z, strict=True):
                    store[item.key] = z
            self.backbone_name = backbone.name
            return time.perf_counter() - start

    def dataset(self, backbone_name: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
        """Cached embeddings ``X (n, d)``, class names ``y (n,)`` and the matching ImageItems."""
        name = backbone_name or self.backbone_name
        store = self._embeddings.get(name or "", {})
        items = [(c.name, i) for c in self.classes for i in c.images]
        missing = [i for _, i in items if i.key not in store]
        if not items or missing:
            raise ProjectError("Some images are not embedded yet: press Imprint.")
        X = np.stack([store[i.key] for _, i in items])
        y = np.array([c for c, _ in items], dtype=object)
        return X, y, [i for _, i in items]

    def is_embedded(self, backbone_name: str | None = None) -> bool:
        store = self._embeddings.get(backbone_name or self.backbone_name or "", {})
        keys = [i.key for c in self.classes for i in c.images]
        return bool(keys) and all(k in store for k in keys)

    def imprint(self, evaluate: bool = True) -> dict[str, Any]:
        """Fit the head from cached embeddings (no embedding here) and evaluate it."""
        from .evaluation import evaluate as run_evaluation

        with self.lock:
            self._check_trainable()
            X, y, _ = self.dataset()
            start = time.perf_counter()
            settings = {**self.settings, "backbone": self.backbone_name}
            clf = make_classifier(settings)
            try:
                from .collapse import one_thread

                with one_thread():  # small GEMMs: one thread beats spinning against other load
                    clf.fit(X, y)
            except ValueError as exc:
                raise ProjectError(f"These settings cannot imprint this data: {exc}") from None
            self.seconds["imprint"] = time.perf_counter() - start
            self.head, self.head_source = clf, "imprinted"
            self._imprinted_from = self._fingerprint()
            start = time.perf_counter()
            self.evaluation = run_evaluation(X, y, settings) if evaluate else None
            self.seconds["evaluate"] = time.perf_counter() - start
            return self.summary()

    def train(self, backbone, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Embed what is missing, then imprint and evaluate."""
        with self.lock:
            self.seconds = {"embed": self.embed(backbone, progress)}
            return self.imprint()

    def _fingerprint(self) -> tuple:
        """The training data as imprinting sees it: class names and image keys, in order."""
        return tuple((c.name, tuple(i.key for i in c.images)) for c in self.classes if c.images)

    @property
    def stale(self) -> bool:
        """Whether images or class names changed since the head was imprinted."""
        return self.head_source == "imprinted" and self._fingerprint() != self._imprinted_from

    # -- reporting ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What was built: classes, images and proxies per class, accuracy, seconds."""
        head = self.head
        out: dict[str, Any] = {
            "backbone": self.backbone_name,
            "preset": self.preset or "custom",
            "settings": dict(self.settings),
            "classes": [],
            "images_per_class": {},
            "proxies_per_class": {},
            "images": 0,
            "proxies": 0,
            "accuracy": None,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "head": self.head_source or None,
            "stale": self.stale,
        }
        if head is None:
            return out
        classes = [str(c) for c in head.classes_]
        counts = dict(zip(classes, (int(n) for n in head.proxy_counts_), strict=True))
        # what the head was imprinted from, not what the cards hold now
        images = (
            {name: len(keys) for name, keys in self._imprinted_from}
            if self.head_source == "imprinted"
            else {}
        )
        out.update(
            classes=classes,
            images_per_class={c: images.get(c, 0) for c in classes},
            proxies_per_class=counts,
            images=sum(images.get(c, 0) for c in classes),
            proxies=int(sum(counts.values())),
        )
        if self.evaluation is not None:
            out["accuracy"] = self.evaluation.as_dict()
        return out

    # -- prediction with evidence ------------------------------------------------------------------
    def predict(self, backbone, image, name: str = "image", n_neighbors: int = 6) -> dict[str, Any]:
        """Classify one image file: confidences, nearest proxy per class, nearest training images."""
        with self.lock:
            if self.head is None:
                raise ProjectError("There is no classifier yet: add images and press Imprint.")
            if backbone.name != self.backbone_name:
                raise ProjectError(
                    f"The classifier was imprinted on '{self.backbone_name}' but the backbone "
                    f"in use is '{backbone.name}'."
                )
            picture = prepare_image(image, name)
            z = np.asarray(backbone.embed([picture]), dtype=np.float32)
            self.last_test = (z[0], name)  # shown as a star on the Geometry map
            return self.explain(z[0], n_neighbors=n_neighbors)

    def explain(self, z: np.ndarray, n_neighbors: int = 6) -> dict[str, Any]:
        """Prediction and evidence for one embedding ``z (d,)``."""
        head = self.head
        Z = z[None, :]
        proba = np.asarray(head.predict_proba(Z))[0]
        classes = [str(c) for c in head.classes_]
        confidences = {c: float(p) for c, p in zip(classes, proba, strict=True)}
        label = str(head.predict(Z)[0])
        unit = _unit(Z)[0]
        sims = _unit(np.asarray(head.proxies_, dtype=np.float32)) @ unit
        owners = np.asarray([str(c) for c in head.proxy_labels_])
        per_class = []
        for c in classes:
            idx = np.flatnonzero(owners == c)
            best = idx[int(np.argmax(sims[idx]))]
            per_class.append(
                {
                    "class": c,
                    "confidence": confidences[c],
                    "nearest_proxy": int(best - idx[0]) + 1,
                    "proxies": int(idx.size),
                    "similarity": float(sims[best]),
                }
            )
        out = {
            "label": label,
            "confidences": confidences,
            "classes": per_class,
            "neighbours": [],
        }
        if self.head_source == "imprinted" and self.is_embedded():
            X, y, items = self.dataset()
            s = _unit(X) @ unit
            for i in np.argsort(-s, kind="stable")[:n_neighbors]:
                out["neighbours"].append(
                    {
                        "class": str(y[i]),
                        "file": items[i].name,
                        "path": str(items[i].path),
                        "similarity": float(s[i]),
                    }
                )
        return out

    # -- geometry ----------------------------------------------------------------------------------
    def geometry(self, method: str = "pca", dim: int = 2, normalize: bool = True) -> dict[str, Any]:
        """The map (samples, proxies, class means, the last test image), neural-collapse readings,
        the class-mean cosines beside the ideal simplex, per-class dispersion and a
        proxies-per-class recommendation, for the imprinted head. `normalize` maps L2-normalised
        embeddings (what the head sees with L2 options) or raw ones."""
        from .collapse import describe_metrics, nc_metrics
        from .figures import cosine_heatmap, dispersion_bars, embedding_map
        from .modes import recommend_k_per_class
        from .projections import project

        with self.lock:
            if self.head is None or self.head_source != "imprinted":
                raise ProjectError("Imprint a classifier first: the map shows its training images.")
            X, y, items = self.dataset()
            head = self.head
            means = np.stack([X[y == c].mean(axis=0) for c in head.classes_])
            extra = {"proxies": head.proxies_, "means": means}
            test = self.last_test
            if test is not None:
                extra["test"] = test[0][None, :]
            p = project(X, method, dim=dim, extra=extra, normalize=normalize, blocking=False)
            figure = embedding_map(
                p.coords,
                y,
                proxies=p.extra["proxies"],
                proxy_labels=head.proxy_labels_,
                means=p.extra["means"],
                mean_labels=head.classes_,
                test_points=p.extra.get("test"),
                test_labels=head.predict(test[0][None, :]) if test is not None else None,
                names=[i.name for i in items],
                test_names=[test[1]] if test is not None else None,
                classes=head.classes_,
            )
            metrics = nc_metrics(X, y, head)
            advice = recommend_k_per_class(X, y)
            return {
                "figure": figure,
                "cosines": cosine_heatmap(means, head.classes_),
                "dispersion": dispersion_bars(metrics),
                "map_note": p.note,
                "readings": describe_metrics(metrics),
                "advice": {str(c): reason for c, (_, reason) in advice.items()},
                "recommended_k": {str(c): int(k) for c, (k, _) in advice.items()},
            }

    def k_curve(self, progress: Any = None) -> Any:
        """Cross-validated accuracy against the number of proxies on this project's images
        (the paper's Figure 6 on your own data), as a Plotly figure with its description."""
        from .figures import accuracy_vs_k_figure
        from .kcurve import accuracy_vs_k

        with self.lock:
            if self.head is None or self.head_source != "imprinted":
                raise ProjectError(
                    "Imprint a classifier first: the curve uses its training images."
                )
            X, y, _ = self.dataset()
        curve = accuracy_vs_k(X, y, progress=progress)
        return accuracy_vs_k_figure(curve), curve

    # -- export and import -------------------------------------------------------------------------
    def export_head(self, folder: str | os.PathLike | None = None) -> Path:
        """Save the head (safetensors + JSON metadata) and return the file's path."""
        with self.lock:
            if self.head is None:
                raise ProjectError("There is no classifier to export yet: press Imprint first.")
            folder = Path(folder) if folder is not None else self.workdir / "export"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "imprint-head.safetensors"
            self.head.save(path, backbone=self.backbone_name)
            return path

    def load_head(
        self,
        path: str | os.PathLike,
        available_backbones: Iterable[str] | None = None,
        dims: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Load a saved head; check its backbone is known and its dimension matches."""
        from .classifier import ImprintClassifier

        label = _display_name(path)
        try:
            head = ImprintClassifier.load(path)
        except Exception as exc:  # a user file: any failure is a user-facing message
            raise ProjectError(f"'{label}' is not a saved IMPRINT head ({exc}).") from None
        backbone = head_backbone(head)
        if not backbone:
            raise ProjectError(f"'{label}' does not say which backbone it was imprinted on.")
        if available_backbones is not None and backbone not in set(available_backbones):
            raise ProjectError(
                f"'{label}' was imprinted on the backbone '{backbone}', which this app does not "
                f"offer (available: {', '.join(available_backbones)})."
            )
        dim = int(np.asarray(head.proxies_).shape[1])
        if dims is not None and backbone in dims and dims[backbone] != dim:
            raise ProjectError(
                f"'{label}' has {dim}-dimensional proxies but the backbone '{backbone}' makes "
                f"{dims[backbone]}-dimensional embeddings: the file does not fit its backbone."
            )
        with self.lock:
            self.head, self.head_source = head, label
            self.backbone_name = backbone
            self.evaluation = None
            self.seconds = {}
            return self.summary()


# ---- backbones: loaded once per process and shared (read-only) by every session ----------------
def backbone_names() -> list[str]:
    """Names the backbone dropdown offers; the built-in default comes first."""
    from .backbones import list_backbones

    return [str(n) for n in list_backbones()]


def default_backbone_name() -> str:
    """The built-in, offline backbone."""
    from .backbones import DEFAULT_BACKBONE

    return DEFAULT_BACKBONE


def load_backbone(name: str | None = None):
    """The shared backbone ``name`` (None: the built-in one); a ProjectError if it cannot load."""
    from .backbones import get_backbone

    try:
        return get_backbone(name or None)
    except Exception as exc:  # weights missing, offline, unknown name: tell the user why
        raise ProjectError(f"The backbone '{name}' cannot be loaded: {exc}") from None


def backbone_or_default(name: str | None) -> tuple[Any, str | None]:
    """The requested backbone, or the built-in one and a sentence saying why."""
    try:
        return load_backbone(name), None
    except ProjectError as exc:
        fallback = load_backbone(None)
        return fallback, f"{exc} Keeping the built-in '{fallback.name}'."


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
            from . import projections

            warm = getattr(projections, "warm_up_umap", None)
            if warm is not None:
                warm()
        except Exception:  # noqa: BLE001 - UMAP is optional (the Geometry tab falls back to PCA)
            pass

    thread = threading.Thread(target=work, name="imprint-warmup", daemon=True)
    thread.start()
    return thread


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
        first = names.setdefault(clean.casefold(), clean)
        if first != clean:
            raise ProjectError(
                f"The class names '{first}' and '{clean}' differ only in case: use one spelling."
            )
        if len({*names.values()}) > MAX_CLASSES:
            raise ProjectError(f"At most {MAX_CLASSES} classes are allowed.")
        records.append((clean, _display_name(path), str(path)))
    return records


# ---- text for the app: sentences and tables built from summaries (tested without Gradio) ---------
def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def status_line(s: dict[str, Any]) -> str:
    """One sentence under the Imprint button."""
    if not s["classes"]:
        return "Nothing imprinted yet: add images to at least two classes and press **Imprint**."
    acc = s["accuracy"]
    if acc is None:
        return f"Loaded the head '{s['head']}': {len(s['classes'])} classes. Go to **Try it**."
    total = sum(s["seconds"].values())
    built = (
        f"Imprinted {len(s['classes'])} classes from {s['images']} images "
        f"({s['proxies']} proxies) in {_duration(total)}."
    )
    if s.get("stale"):
        return f"{built} The images or class names changed since: press **Imprint** to update."
    if acc["accuracy"] is None:
        return f"{built} {acc['description']}"
    return (
        f"{built} Accuracy {percent(acc['accuracy'])} ({acc['method']}). "
        "See **Result** and **Try it**."
    )


def summary_markdown(s: dict[str, Any]) -> str:
    """What was built: head, settings, images and proxies per class, time."""
    if not s["classes"]:
        return status_line(s)
    options = ", ".join(f"{k}={v}" for k, v in s["settings"].items())
    rows = [
        f"| {c} | {s['images_per_class'].get(c, 0)} | {s['proxies_per_class'][c]} |"
        for c in s["classes"]
    ]
    timing = ", ".join(f"{k} {_duration(v)}" for k, v in s["seconds"].items())
    return "\n".join(
        [
            f"**Head**: {s['head']} on backbone `{s['backbone']}`, preset **{s['preset']}** "
            f"({options}).",
            "",
            "| class | images | proxies |",
            "|---|---|---|",
            *rows,
            f"| **total** | **{s['images']}** | **{s['proxies']}** |",
            "",
            f"Time: {timing}." if timing else "",
        ]
    )


def accuracy_markdown(s: dict[str, Any]) -> str:
    """The accuracy estimate and how it was made."""
    acc = s["accuracy"]
    if not s["classes"]:
        return ""
    if acc is None:
        return "No accuracy estimate: a loaded head comes without its training images."
    if acc["accuracy"] is None:
        return acc["description"]
    return (
        f"### Accuracy on your own images: {percent(acc['accuracy'])} ({acc['method']})\n\n"
        f"{acc['description']}"
    )


def per_class_rows(s: dict[str, Any]) -> list[list] | None:
    """[class, images evaluated, accuracy] per class, or None without an estimate."""
    acc = s["accuracy"]
    if not acc or acc["accuracy"] is None:
        return None
    return [[c, acc["support"].get(c, 0), percent(acc["per_class"].get(c))] for c in acc["labels"]]


def evidence_rows(result: dict[str, Any]) -> list[list]:
    """[class, confidence, nearest proxy, cosine] per class, most confident first."""
    return [
        [
            r["class"],
            percent(r["confidence"]),
            f"{r['nearest_proxy']} of {r['proxies']}",
            f"{r['similarity']:.3f}",
        ]
        for r in sorted(result["classes"], key=lambda r: -r["confidence"])
    ]


def preset_description(name: str) -> str:
    """One line on a preset (or on custom settings) for the Method tab."""
    from .presets import PRESET_INFO

    if name in PRESET_INFO:
        return f"**{name}**: {PRESET_INFO[name]}."
    return "**custom**: your own combination of the options below."


def export_metadata(head_path: str | os.PathLike) -> Path:
    """Write the head's JSON metadata (what its safetensors header holds) beside it."""
    import json

    from .head_io import read_head_metadata

    path = Path(head_path)
    meta = read_head_metadata(path)
    out = path.with_suffix(".json")
    out.write_text(json.dumps(meta, indent=1) + "\n")
    return out


def geometry_markdown(g: dict[str, Any]) -> str:
    """Neural-collapse readings and the proxies advice as Markdown."""
    lines = [f"*{g['map_note']}*", ""] if g["map_note"] else []
    lines += ["### What the numbers say", *[f"- {r}" for r in g["readings"]], ""]
    lines += ["### How many proxies per class?", *[f"- {a}" for a in g["advice"].values()]]
    return "\n".join(lines)


# ---- helpers -------------------------------------------------------------------------------------
def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def option_choices() -> dict[str, list[str]]:
    """The allowed values of every choice option (the classifier's registry)."""
    from .classifier import OPTIONS

    return {name: list(values) for name, values in OPTIONS.items()}


def make_classifier(settings: dict[str, Any]):
    """An unfitted ImprintClassifier; bad option values become a ProjectError."""
    from .classifier import ImprintClassifier

    try:
        clf = ImprintClassifier(**settings)
        clf._check_params()  # scikit-learn style: the constructor itself does not validate
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"Invalid settings: {exc}.") from None
    return clf


def head_backbone(head) -> str | None:
    """The backbone name stored with a loaded head."""
    for attr in ("backbone_", "backbone"):
        value = getattr(head, attr, None)
        if isinstance(value, str) and value:
            return value
    meta = getattr(head, "metadata_", None)
    if isinstance(meta, dict) and meta.get("backbone"):
        return str(meta["backbone"])
    return None


def python_snippet(head_file: str = "imprint-head.safetensors", backbone: str | None = None) -> str:
    """A short script that loads an exported head and classifies an image with imprint_core."""
    bb = f'"{backbone}"' if backbone else ""
    return (
        "import imprint_core as ic\n\n"
        f'head = ic.ImprintClassifier.load("{head_file}")\n'
        f"backbone = ic.get_backbone({bb})\n"
        'z = backbone.embed(["my_image.jpg"])  # paths, PIL images or bytes -> (n, d)\n'
        "print(head.predict(z)[0])\n"
        "print(dict(zip(head.classes_, head.predict_proba(z)[0].round(3))))\n"
    )
