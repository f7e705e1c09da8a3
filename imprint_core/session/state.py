"""A session's state as data, and all-or-nothing changes to it.

``Transactional`` gives ``Project`` its ``version`` (changes after every successful edit) and
``transaction()``: a change that raises restores every field in ``STATE`` and deletes the files
stored meanwhile that nothing uses, so a refused request changes nothing and leaves no file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .intake import STORED_SUFFIXES
from .thumbnails import thumb_path


# ---- images --------------------------------------------------------------------------------------
@dataclass
class ImageItem:
    """A validated image of a class: its display name, stored copy and content hash."""

    name: str  # the file name the user gave us, for messages
    path: Path  # our stored copy (the file's own bytes, or a PNG; see session.uploads)
    key: str  # sha256 of the stored copy: the embedding cache key

    @property
    def thumb(self) -> Path:
        """Where its display thumbnail is (see session.thumbnails)."""
        return thumb_path(self.path)

    @property
    def names(self) -> tuple[str, str]:
        """The base names that stand for it: its stored copy's and its thumbnail's (a gallery
        hands back copies of what it shows under the same base name)."""
        return self.path.name, self.thumb.name


@dataclass
class ClassEntry:
    uid: int  # stable across renames: the app keys its class cards on it
    name: str
    images: list[ImageItem] = field(default_factory=list)


class Transactional:
    """Versioned, all-or-nothing state (the fields named in ``STATE``; see Project)."""

    # What a refused request must leave as it was. Every attribute of a Project is here or in
    # NOT_STATE (tests/session/test_state.py checks it).
    STATE = (
        "classes",
        "_next_uid",
        "settings",
        "augment",
        "preset",
        "backbone_name",
        "head",
        "head_source",
        "evaluation",
        "_imprinted_from",
        "seconds",
        "last_test",
        "head_serial",
        "settings_note",
        "undo",
        "example",
        "kcurve",
        "downloads",
        "geometry_inputs",
        "render_epoch",  # a refused bulk change must not redraw the class cards
        "pile",  # a sorted pile (replaced, never changed in place)
    )
    # What a transaction leaves alone, and why.
    NOT_STATE = (
        "_given_workdir",  # the session's folder: fixed for its life
        "_workdir",
        "_cleanup",
        "_download_dir",  # the folder of the downloads, also fixed for the session's life
        "_download_cleanup",
        "_embeddings",  # caches keyed by content (image, backbone): they may grow
        "_view_embeddings",
        "_decoded",  # decoded pictures by content, kept for the embedding (bounded)
        "_geometry",  # a memo keyed by the head, the images and the map options
        "_pile_memo",  # a memo keyed by the pile and the head
        "_explanation",  # a memo keyed by the head, the image tried and the training images
        "_tried",  # the file last tried and the last_test it gave (a memo: the page sends twice)
        "_views",  # memos keyed by the state each group of views reads (session.views)
        "lock",  # the transaction's own machinery
        "_txn_depth",
        "_serial",  # the version: advanced only when a transaction succeeds
    )

    @property
    def version(self) -> int:
        """Changes after every successful edit (views compare it to know they are current)."""
        return self._serial

    def _snapshot(self) -> dict[str, Any]:
        # containers are copied (edits mutate them); heads and evaluations are replaced, never
        # mutated, so the objects themselves are kept
        state = {k: _shallow(getattr(self, k)) for k in self.STATE}
        state["classes"] = [ClassEntry(c.uid, c.name, list(c.images)) for c in self.classes]
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.classes = [ClassEntry(c.uid, c.name, list(c.images)) for c in state["classes"]]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception inside restores the state as it was, and files stored
        meanwhile that nothing uses are deleted. Nested transactions join the outermost one."""
        with self.lock:
            if self._txn_depth:
                self._txn_depth += 1
                try:
                    yield
                finally:
                    self._txn_depth -= 1
                return
            saved = self._snapshot()
            self._txn_depth = 1
            try:
                yield
            except BaseException:
                self._restore(saved)
                raise
            else:
                self._serial += 1
            finally:
                self._txn_depth = 0
                self._collect_files()

    def _collect_files(self) -> None:
        """Delete stored copies no class uses (nor the state an Undo would bring back), and
        their thumbnails."""
        if self._workdir is None or not self._workdir.is_dir():
            return
        entries = list(self.classes)
        for _, state in self.undo:
            entries += state["classes"]
        used = {name for c in entries for i in c.images for name in i.names}
        for path in self._workdir.iterdir():
            if path.suffix in STORED_SUFFIXES and path.name not in used:
                path.unlink(missing_ok=True)


def _shallow(value: Any) -> Any:
    return type(value)(value) if isinstance(value, (dict, list)) else value
