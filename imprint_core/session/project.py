"""One user's teaching project: classes, images, embeddings, the imprinted head and its evidence.

Everything the app does lives here, callable and testable without Gradio. A ``Project`` keeps a
validated, size-normalised PNG copy of every image in its own working folder (uploads may be
deleted by the web server at any time), caches embeddings per backbone so that changing a setting
never embeds again, and imprints from those cached embeddings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .insight import Insight
from .intake import (
    _display_name,
    _png_bytes,
    iter_folder_images,
    iter_uploaded_folder,
    iter_zip_images,
    prepare_image,
    uploaded_folder_name,
)
from .limits import (
    DEFAULT_PRESET,
    EMBED_BATCH,
    MAX_CLASSES,
    MAX_IMAGES_PER_CLASS,
    MAX_IMAGES_TOTAL,
    MIN_CLASSES,
    ProgressFn,
    ProjectError,
)
from .names import validate_class_name
from .quotas import WORKDIR_PREFIX
from .settings import (
    AUGMENT_DEFAULT,
    OPTION_ORDER,
    check_augment,
    couple_settings,
    evaluation_scheme,
    make_classifier,
)
from .state import ClassEntry, ImageItem, Transactional

# Live projects, so that a clean stop (SIGTERM) can delete every session's stored images.
LIVE: weakref.WeakSet = weakref.WeakSet()


# ---- the project ---------------------------------------------------------------------------------
class Project(Transactional, Insight):
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
        # support augmentation: view names (imprint_core.augment), () = off; views are extra
        # training samples only, cached per (image key, view) beside the plain embeddings
        self.augment: tuple[str, ...] = AUGMENT_DEFAULT
        self._view_embeddings: dict[str, dict[tuple[str, str], np.ndarray]] = {}
        self.preset: str | None = None
        self.backbone_name: str | None = None
        self.head = None  # a fitted ImprintClassifier
        self.head_source = ""  # "imprinted" or the loaded file's name
        self.evaluation = None
        self._imprinted_from: tuple = ()  # fingerprint of the images the head was imprinted from
        self.seconds: dict[str, float] = {}
        self.last_test: tuple[np.ndarray, str, str] | None = None  # embedding, name, backbone
        self._serial = 0  # the state's version: +1 after every successful change
        self.head_serial = 0  # +1 whenever the head is replaced (views cache on it)
        self.render_epoch = 0  # +1 when the class cards must be drawn anew (bulk changes)
        self._txn_depth = 0
        self.settings_note = ""  # what the last settings change did besides (or why refused)
        self.undo: tuple[str, dict[str, Any]] | None = None  # (what replaced it, old state)
        self.kcurve: tuple[tuple, Any, dict] | None = None  # (data fingerprint, figure, curve)
        # what was downloaded: "head" / "onnx" / "project" -> (what it was made of, the file);
        # a download is shown only while the session still holds what it was made of
        self.downloads: dict[str, tuple[Any, Path]] = {}
        self.geometry_inputs: tuple[str, int, bool] | None = None  # set once the map is asked for
        self._geometry: tuple[tuple, dict[str, Any]] | None = None  # (key, result) cache
        LIVE.add(self)
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
                self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
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

    def cards_key(self) -> dict[str, Any]:
        """What decides whether the class cards are drawn anew: their classes, or a bulk change.
        Renames and image edits update a card in place, so they leave this unchanged."""
        return {"epoch": self.render_epoch, "uids": [c.uid for c in self.classes]}

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
        with self.transaction():
            if len(self.classes) >= MAX_CLASSES:
                raise ProjectError(f"A project can have at most {MAX_CLASSES} classes.")
            name = validate_class_name(self._default_name() if name is None else name, self.names)
            entry = ClassEntry(self._next_uid, name)
            self._next_uid += 1
            self.classes.append(entry)
            return entry

    def rename_class(self, uid: int, name: str) -> ClassEntry:
        with self.transaction():
            entry = self.get(uid)
            others = [c.name for c in self.classes if c.uid != uid]
            entry.name = validate_class_name(name, others)
            return entry

    def remove_class(self, uid: int) -> None:
        with self.transaction():
            entry = self.get(uid)
            self.classes.remove(entry)
            self._release(entry.images)

    def clear_images(self, uid: int) -> None:
        with self.transaction():
            entry = self.get(uid)
            dropped, entry.images = entry.images, []
            self._release(dropped)

    def remove_image(self, uid: int, index: int) -> None:
        with self.transaction():
            entry = self.get(uid)
            if not 0 <= index < len(entry.images):
                raise ProjectError(f"Class '{entry.name}' has no image number {index + 1}.")
            self._release([entry.images.pop(index)])

    def remove_image_file(self, uid: int, file_name: str) -> str:
        """Remove the image whose stored copy (as shown in the card) is named ``file_name``.

        The app gets back a copy of a thumbnail with the same base name, so a deletion names
        its image even when the card changed meanwhile. Returns the image's display name.
        """
        with self.transaction():
            entry = self.get(uid)
            base = Path(str(file_name)).name
            for index, item in enumerate(entry.images):
                if item.path.name == base:
                    self._release([entry.images.pop(index)])
                    return item.name
            raise ProjectError(f"Class '{entry.name}' has no image stored as '{base}'.")

    def _release(self, items: Iterable[ImageItem]) -> None:
        """Stored copies no class uses any more go when the change is complete (one file serves
        identical uploads, and a refused change may still need them)."""

    def reset(self, n_classes: int = 0) -> None:
        """Remove every class and image (keeps cached embeddings: re-adding a file is free)."""
        with self.transaction():
            for entry in list(self.classes):
                self.remove_class(entry.uid)
            self.head, self.evaluation, self.head_source = None, None, ""
            self.head_serial += 1
            self.seconds, self.kcurve, self.downloads, self.last_test = {}, None, {}, None
            self.render_epoch += 1
            for _ in range(n_classes):
                self.add_class()

    def replace(self, records: Iterable[tuple[str, str, Any]], title: str) -> str:
        """Replace every class with ``records`` (an example); the project as it was can be
        brought back with ``undo_replace`` when it held any image."""
        with self.transaction():
            before = self._snapshot() if self.n_images else None
            if before is not None:
                before["undo"] = None
            self.reset()
            message = self.import_images(records, title)
            self.undo = (title, before) if before is not None else None
            return message

    def undo_replace(self) -> str:
        """Bring back the project as it was before the last ``replace``."""
        with self.transaction():
            if self.undo is None:
                raise ProjectError("There is nothing to undo.")
            title, state = self.undo
            self._restore(state)
            self.undo = None
            self.head_serial += 1
            self.render_epoch += 1
            n = sum(len(c.images) for c in self.classes)
            return f"Restored your project from before '{title}': {len(self.classes)} classes, {n} images."

    def view(self, max_thumbs: int = 40) -> dict[str, Any]:
        """Every class card (uid, name, number of images, thumbnails)."""
        return {"classes": [self.card(c.uid, max_thumbs) for c in self.classes]}

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
        with self.transaction():
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
        with self.transaction():
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
            stored = {
                cls: [self._store(names[cls], name, data) for name, data in files]
                for cls, files in staged.items()
            }
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
        from ..presets import PRESETS

        with self.transaction():
            if preset is not None and preset not in PRESETS:
                raise ProjectError(
                    f"Unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}."
                )
            base = {"seed": self.settings.get("seed", 0)}
            base.update(dict(PRESETS[preset]) if preset is not None else self.settings)
            base.update({k: v for k, v in options.items() if v is not None})
            if self.settings:
                base, self.settings_note = couple_settings(self.settings, base)
            make_classifier(base)  # raises ProjectError on a bad combination
            self.settings = base
            self.preset = next(
                (n for n, p in PRESETS.items() if all(base.get(k) == v for k, v in p.items())),
                None,
            )
            return dict(base)

    def set_augment(self, views: Any) -> tuple[str, ...]:
        """Turn support augmentation on (view names, or True for the app's views) or off.

        Takes effect at the next imprint (the app re-imprints). A bad view name is a
        ProjectError naming the option and the allowed views; nothing changes then.
        """
        with self.transaction():
            self.augment = check_augment(views)
            return self.augment

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
        with self.transaction():
            self._check_trainable()
            store = self._embeddings.setdefault(backbone.name, {})
            todo: dict[str, ImageItem] = {}
            for entry in self.classes:
                for item in entry.images:
                    if item.key not in store:
                        todo.setdefault(item.key, item)
            start = time.perf_counter()
            views = self._missing_views(backbone.name)
            total = len(todo) + sum(len(items) * per for items, per in views.values())
            if progress is not None:
                progress(0, total)

            def report(offset: int, per: int = 1):
                if progress is None:
                    return None
                return lambda done, _: progress(offset + done * per, total)

            if todo:
                items = list(todo.values())
                Z = backbone.embed(  # cache=False: the process-wide cache leaks across sessions
                    [str(i.path) for i in items],
                    batch_size=EMBED_BATCH,
                    progress=report(0),
                    cache=False,
                )
                Z = np.asarray(Z, dtype=np.float32)
                for item, z in zip(items, Z, strict=True):
                    store[item.key] = z
            self._embed_views(backbone, views, len(todo), report)
            self.backbone_name = backbone.name
            return time.perf_counter() - start

    def _missing_views(self, backbone_name: str) -> dict[str, tuple[list[ImageItem], int]]:
        """View name -> (images lacking that view's embeddings, outputs per image)."""
        from ..augment import view_labels

        have = self._view_embeddings.get(backbone_name, {})
        out = {}
        for view in self.augment:
            todo = {i.key: i for c in self.classes for i in c.images if (i.key, view) not in have}
            if todo:
                out[view] = (list(todo.values()), len(view_labels((view,))))
        return out

    def _embed_views(self, backbone, views: dict, done: int, report) -> None:
        """Embed the missing views (one batched call per chunk of images and view)."""
        from ..augment import embed_views

        store = self._view_embeddings.setdefault(backbone.name, {})
        for view, (items, per) in views.items():
            Z, source = embed_views(
                backbone,
                [str(i.path) for i in items],
                (view,),
                batch_size=EMBED_BATCH,
                progress=report(done, per),
                cache=False,
                names=[i.name for i in items],
            )
            for j, item in enumerate(items):
                store[(item.key, view)] = Z[source == j]
            done += len(items) * per

    def training_views(
        self, items: Sequence[ImageItem], backbone_name: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The augmented views of ``items`` as ``(Z, source)`` (``source`` indexes ``items``),
        or None when augmentation is off. Training samples only: never shown, never evaluated."""
        if not self.augment:
            return None
        store = self._view_embeddings.get(backbone_name or self.backbone_name or "", {})
        blocks, source = [], []
        for j, item in enumerate(items):
            for view in self.augment:
                block = store.get((item.key, view))
                if block is None:
                    raise ProjectError("Some images are not embedded yet: press Imprint.")
                blocks.append(block)
                source.append(np.full(len(block), j, dtype=np.int64))
        return np.concatenate(blocks), np.concatenate(source)

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
        name = backbone_name or self.backbone_name or ""
        store = self._embeddings.get(name, {})
        keys = [i.key for c in self.classes for i in c.images]
        views = self._view_embeddings.get(name, {})
        return (
            bool(keys)
            and all(k in store for k in keys)
            and all((k, v) in views for k in keys for v in self.augment)
        )

    def imprint(self, evaluate: bool = True) -> dict[str, Any]:
        """Fit the head from cached embeddings (no embedding here) and evaluate it."""
        from ..evaluation import evaluate as run_evaluation

        with self.transaction():
            self._check_trainable()
            X, y, items = self.dataset()
            views = self.training_views(items)
            X_fit, y_fit = X, y
            if views is not None:  # the views are extra samples labelled like their image
                from ..augment import add_views

                X_fit, y_fit = add_views(X, y, *views)
            start = time.perf_counter()
            settings = {**self.settings, "backbone": self.backbone_name}
            clf = make_classifier(settings)
            try:
                from ..collapse import one_thread

                with one_thread():  # small GEMMs: one thread beats spinning against other load
                    clf.fit(X_fit, y_fit)
            except ValueError as exc:
                raise ProjectError(f"These settings cannot imprint this data: {exc}") from None
            self.seconds["imprint"] = time.perf_counter() - start
            # recorded in the head file ("training"): how its samples were made
            clf.training_ = {"augment": list(self.augment), "images": len(y), "samples": len(y_fit)}
            self.head, self.head_source = clf, "imprinted"
            self.head_serial += 1
            self._imprinted_from = self._fingerprint()
            start = time.perf_counter()
            scheme = evaluation_scheme(len(y))
            # a held-out image's views are held out with it (evaluate's ``views``)
            self.evaluation = (
                run_evaluation(X, y, settings, scheme, views=views) if evaluate else None
            )
            self.seconds["evaluate"] = time.perf_counter() - start
            return self.summary()

    def train(self, backbone, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Embed what is missing, then imprint and evaluate."""
        with self.transaction():
            self.seconds = {"embed": self.embed(backbone, progress)}
            return self.imprint()

    def _fingerprint(self) -> tuple:
        """The training data as imprinting sees it: class names and image keys, in order."""
        return tuple((c.name, tuple(i.key for i in c.images)) for c in self.classes if c.images)

    @property
    def stale(self) -> bool:
        """Whether images or class names changed since the head was imprinted."""
        return self.head_source == "imprinted" and self._fingerprint() != self._imprinted_from

    def _head_settings(self) -> dict[str, Any]:
        """The settings the current head was built with (the session's before any head)."""
        if self.head is None:
            return dict(self.settings)
        params = self.head.get_params()
        return {k: params[k] for k in self.settings if k in params}

    # -- reporting ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What was built: classes, images and proxies per class, accuracy, seconds."""
        head = self.head
        out: dict[str, Any] = {
            "backbone": self.backbone_name,
            "preset": self.preset or "custom",
            "settings": self._head_settings(),
            "classes": [],
            "images_per_class": {},
            "proxies_per_class": {},
            "images": 0,
            "proxies": 0,
            "accuracy": None,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "head": self.head_source or None,
            "stale": self.stale,
            "augment": self._head_augment(),
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

    def _head_augment(self) -> list[str]:
        """The views the current head was trained with (the session's setting before any)."""
        if self.head is None:
            return list(self.augment)
        return list(_training(self.head).get("augment", []))

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
            self.downloads["head"] = (self.head_serial, path)
            return path

    def current_export(self) -> Path | None:
        """The exported head file if it holds the current head."""
        return self.current_download("head", self.head_serial)

    def current_download(self, kind: str, made_of: Any) -> Path | None:
        """The file downloaded as ``kind`` if it was made of ``made_of`` and still exists."""
        recorded = self.downloads.get(kind)
        if recorded is None or recorded[0] != made_of:
            return None
        return recorded[1] if recorded[1].exists() else None

    def load_head(
        self,
        path: str | os.PathLike,
        available_backbones: Iterable[str] | None = None,
        dims: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Load a saved head; check its backbone is known and its dimension matches."""
        from ..classifier import ImprintClassifier

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
        from ..presets import PRESETS

        with self.transaction():
            params = head.get_params()
            # exactly the file's settings (the options a preset sets, the seed and any other
            # option the session shows), not the ones the session had before
            # (whiten_shrinkage only for a whitened head: the session's default preset has it)
            keys = set(OPTION_ORDER) | (set(self.settings) - {"whiten_shrinkage"})
            if params.get("norm_pre") == "whiten":
                keys.add("whiten_shrinkage")
            self.settings = {k: params[k] for k in sorted(keys) if k in params}
            self.preset = next(
                (
                    n
                    for n, p in PRESETS.items()
                    if all(self.settings.get(k) == v for k, v in p.items())
                ),
                None,
            )
            self.settings_note = ""
            training = _training(head)
            try:  # the file's augmentation too, so that imprinting again makes the same head
                self.augment = check_augment(training.get("augment", []))
            except ProjectError as exc:
                raise ProjectError(f"'{label}': {exc}") from None
            self.head, self.head_source = head, label
            self.head_serial += 1
            self.backbone_name = backbone
            self.evaluation = None
            self.seconds = {}
            self._imprinted_from = ()
            return self.summary()


# ---- helpers -------------------------------------------------------------------------------------
def _training(head) -> dict[str, Any]:
    """How a head's samples were made: set by ``imprint``, or read from its file's metadata."""
    training = getattr(head, "training_", None)
    if training is None:  # a loaded head
        meta = getattr(head, "metadata_", None)
        training = meta.get("training") if isinstance(meta, dict) else None
    return training if isinstance(training, dict) else {}


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
