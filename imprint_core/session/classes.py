"""A project's classes and their cards: add, rename, remove, clear, delete one image, replace the
whole project by an example (and undo that), and what decides a redraw of the cards.

Examples and Undo: a project replaced by an example is put aside on a stack (``undo``), so any
number of examples and Undos never lose what the user made; an example nobody changed is not
kept (one click loads it again), so Undo after two examples brings back the user's own project.

``Classes`` is a part of ``Project`` (its state is set up in ``Project.__init__``); every change
runs in the project's transaction, so a refused one changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .limits import MAX_CLASSES, MIN_CLASSES, ProjectError
from .names import validate_class_name
from .state import ClassEntry, ImageItem
from .thumbnails import thumbnail


class Classes:
    """The class list, the class cards and the example's Undo (mixed into ``Project``)."""

    def cards_key(self) -> dict[str, Any]:
        """What decides whether the class cards are drawn anew: their classes, or a bulk change.
        Renames and image edits update a card in place, so they leave this unchanged."""
        return {"epoch": self.render_epoch, "uids": [c.uid for c in self.classes]}

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
        """Rename a class; a current head is imprinted again from the cached embeddings (the
        same proxies under the new name), so predictions and exports name the class as the card
        does."""
        with self.transaction():
            entry = self.get(uid)
            others = [c.name for c in self.classes if c.uid != uid]
            current = self.head_source == "imprinted" and not self.stale
            old, entry.name = entry.name, validate_class_name(name, others)
            if current and entry.name != old and entry.images:
                self.imprint()
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
        """Remove the image whose stored copy or thumbnail (as shown in the card) is named
        ``file_name``.

        The app gets back a copy of a thumbnail with the same base name, so a deletion names
        its image even when the card changed meanwhile. Returns the image's display name.
        """
        with self.transaction():
            entry = self.get(uid)
            base = Path(str(file_name)).name
            for index, item in enumerate(entry.images):
                if base in item.names:
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
            self.example = None
            self.render_epoch += 1
            for _ in range(n_classes):
                self.add_class()

    def replace(
        self, records: Iterable[tuple[str, str, Any]], title: str, example: str = ""
    ) -> str:
        """Replace every class with ``records`` (the example ``example``). The project as it was
        is put aside on the Undo stack when it holds images, unless it is an example nobody
        changed; ``undo_replace`` brings back the latest one put aside."""
        with self.transaction():
            stack = self.undo
            if self.n_images and not self._pristine_example():
                before = self._snapshot()
                before["undo"] = ()  # the stack is kept beside the states, not inside them
                stack = (*stack, (title, before))
            self.reset()
            message = self.import_images(records, title)
            self.undo = stack
            self.example = (example, self._fingerprint()) if example else None
            return message

    def _pristine_example(self) -> bool:
        """Whether the project is an example exactly as it was loaded (classes and images)."""
        return self.example is not None and self.example[1] == self._fingerprint()

    @property
    def example_key(self) -> str | None:
        """The example the project was made from (its classes and images), or None."""
        return self.example[0] if self.example is not None else None

    def undo_replace(self) -> str:
        """Bring back the project put aside last (by an example replacing it)."""
        with self.transaction():
            if not self.undo:
                raise ProjectError("There is nothing to undo.")
            (title, state), rest = self.undo[-1], self.undo[:-1]
            self._restore(state)
            self.undo = rest
            self.head_serial += 1
            self.render_epoch += 1
            n = sum(len(c.images) for c in self.classes)
            return (
                f"Restored your project from before {title}: {len(self.classes)} classes, "
                f"{n} images."
            )

    def view(self, max_thumbs: int = 40) -> dict[str, Any]:
        """Every class card (uid, name, number of images, thumbnails)."""
        return {"classes": [self.card(c.uid, max_thumbs) for c in self.classes]}

    def card(self, uid: int, max_thumbs: int = 40) -> dict[str, Any]:
        """One class card: uid, name, number of images and the latest ``max_thumbs`` thumbnails
        (the small JPEGs of session.thumbnails, not the stored images)."""
        c = self.get(uid)
        shown = c.images[-max_thumbs:] if max_thumbs > 0 else []
        thumbs = [str(thumbnail(i.path, i.name)) for i in shown]
        return {"uid": c.uid, "name": c.name, "n": len(c.images), "thumbs": thumbs}

    @property
    def n_images(self) -> int:
        return sum(len(c.images) for c in self.classes)

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
