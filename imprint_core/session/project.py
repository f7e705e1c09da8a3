"""One user's teaching project: classes, images, embeddings, the imprinted head and its evidence.

Everything the app does lives here, callable and testable without Gradio. A ``Project`` keeps a
validated, size-normalised PNG copy of every image in its own working folder (uploads may be
deleted by the web server at any time), caches embeddings per backbone so that changing a setting
never embeds again, and imprints from those cached embeddings.

``Project`` holds the state (``__init__``), its settings, imprinting and summary; its other
operations are parts named for what they do: ``Classes`` (classes.py), ``Uploads`` (uploads.py),
``Embedding`` (embedding.py), ``Insight`` (insight.py), ``HeadFiles`` (heads.py), ``Downloads``
(downloads.py), ``Piles`` (pile.py); ``Transactional`` (state.py) makes every change all or nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from ..presets import PRESETS, matching_preset
from .classes import Classes
from .downloads import Downloads
from .embedding import Embedding
from .heads import HeadFiles, head_training
from .insight import Insight
from .limits import DEFAULT_PRESET, ProgressFn, ProjectError
from .pile import Piles
from .quotas import DOWNLOADS_PREFIX, WORKDIR_PREFIX
from .scheduler import turn
from .settings import (
    AUGMENT_DEFAULT,
    check_augment,
    couple_settings,
    evaluation_scheme,
    make_classifier,
)
from .state import ClassEntry, Transactional
from .uploads import DecodedImages, Uploads

# Live projects, so that a clean stop (SIGTERM) can delete every session's stored images.
LIVE: weakref.WeakSet = weakref.WeakSet()


# ---- the project ---------------------------------------------------------------------------------
class Project(Transactional, Classes, Uploads, Embedding, Insight, HeadFiles, Downloads, Piles):
    """A session's classes, images, cached embeddings and imprinted head."""

    def __init__(self, workdir: str | os.PathLike | None = None, n_classes: int = 2) -> None:
        self._given_workdir = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None  # made on first use: a visit without uploads leaves none
        self._cleanup: weakref.finalize | None = None
        self._download_dir: Path | None = None  # made at the first download (download_dir)
        self._download_cleanup: weakref.finalize | None = None
        self.classes: list[ClassEntry] = []
        self._next_uid = 0
        self._embeddings: dict[str, dict[str, np.ndarray]] = {}  # backbone -> key -> vector
        self._decoded = DecodedImages()  # uploads' decoded pictures, until they are embedded
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
        # projects put aside by examples, latest last: (what replaced it, its state)
        self.undo: tuple[tuple[str, dict[str, Any]], ...] = ()
        self.example: tuple[str, tuple] | None = None  # (example key, its images as loaded)
        self.kcurve: tuple[tuple, Any, dict] | None = None  # (data fingerprint, figure, curve)
        # what was downloaded: "head" / "onnx" / "project" -> (what it was made of, the file);
        # a download is shown only while the session still holds what it was made of
        self.downloads: dict[str, tuple[Any, Path]] = {}
        self.geometry_inputs: tuple[str, int, str] | None = None  # method, dim, space
        self._geometry: tuple[tuple, dict[str, Any]] | None = None  # (key, result) cache
        self.pile = None  # a sorted pile (pile.Pile): its images and their embeddings
        self._pile_memo: tuple | None = None  # the current head's scores of the pile
        self._explanation: tuple[tuple, dict[str, Any]] | None = None  # (key, explain's result)
        self._tried: tuple[tuple | None, Any] | None = None  # (the file, the last_test it gave)
        self._views: dict[str, tuple[Any, dict[str, Any]]] = {}  # group -> (state read, views)
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

    @property
    def download_dir(self) -> Path:
        """The folder of the session's downloads (``downloads.make``): inside the project's
        folder when it was given, else a temporary one in Gradio's upload cache, whose files the
        web server serves as they are (a file elsewhere is copied into the cache at every
        download, and the copies pile up)."""
        if self._download_dir is None:
            if self._given_workdir is not None:
                self._download_dir = self.workdir / "downloads"
                self._download_dir.mkdir(exist_ok=True)
            else:
                root = config.gradio_temp_dir()
                root.mkdir(parents=True, exist_ok=True)
                self._download_dir = Path(tempfile.mkdtemp(prefix=DOWNLOADS_PREFIX, dir=root))
                self._download_cleanup = weakref.finalize(
                    self, shutil.rmtree, str(self._download_dir), ignore_errors=True
                )
        return self._download_dir

    def close(self) -> None:
        """Delete the stored image copies and the downloads (the app calls this when the
        session ends)."""
        for cleanup in (self._cleanup, self._download_cleanup):
            if cleanup is not None:
                cleanup()

    def __deepcopy__(self, memo):  # gr.State may try; a project is never shared or copied
        return self

    # -- settings ----------------------------------------------------------------------------------
    def set_settings(self, preset: str | None = None, **options: Any) -> dict[str, Any]:
        """Choose a preset and/or override options; validated by building a classifier.

        Presets leave the seed alone (it is kept, 0 at first). ``preset`` afterwards names the
        preset whose options all match, or is None ("custom").
        """
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
            self.preset = matching_preset(base)
            return dict(base)

    def set_augment(self, views: Any) -> tuple[str, ...]:
        """Turn support augmentation on (view names, or True for the app's views) or off.

        Takes effect at the next imprint (the app re-imprints). A bad view name is a
        ProjectError naming the option and the allowed views; nothing changes then.
        """
        with self.transaction():
            self.augment = check_augment(views)
            return self.augment

    # -- imprinting --------------------------------------------------------------------------------
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
                from ..threads import one_thread

                # small GEMMs: one thread beats spinning against other load; not waiting for
                # another session's limit (the k-curve holds it per step): BLAS is limited then
                with turn(self), one_thread(wait=False):
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
            with turn(self):
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
        return list(head_training(self.head).get("augment", []))
