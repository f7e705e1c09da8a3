"""Sort a pile: up to ``MAX_PILE_IMAGES`` images (files or a zip) classified by the session's
head, and a person correcting the head from the images it is least sure of.

The pile is state (``Project.pile``, a ``Pile``): each image's name, where to read it and the
embedding the head's backbone made of it. What the head says about the pile is not state: it is
the current head's scores of those embeddings (``verdicts``, memoised per head), so every imprint
re-sorts the pile at once without reading or embedding an image again (a product of 2,000
embeddings with the proxies: milliseconds). ``Piles.add_from_pile`` puts one of its images into a
class card and imprints again: sort, correct a few, sort again.

Sorting runs in turns of the fair queue (``scheduler``: one turn per ``SLICE_IMAGES`` images), so
a big pile never starves other sessions; a session sorts one pile at a time (its lock). The
request is checked before any image is decoded (count, zip, sizes, the pixel budget); an image
that cannot be decoded is a row with its error, not a refusal.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..images import ImageError, decoded_size
from ..prediction_rows import PredictionRow, least_sure_order, rows_from_arrays, score_embeddings
from ..sources import InputImage, Reader
from ..zips import ZipRefused, image_members, is_zip
from .intake import PixelBudget, check_display_name, check_zip_directory, shown_name
from .limits import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_MB,
    MAX_IMAGE_PIXELS,
    MAX_REQUEST_PIXELS,
    MAX_UPLOAD_MB,
    ZIP_MAX_UNCOMPRESSED_BYTES,
    ProgressFn,
    ProjectError,
)
from .quotas import MAX_PILE_IMAGES, PILE_UNSURE, SLICE_IMAGES
from .scheduler import Slices, turn

FOLDER = "pile"  # in the session's folder; one sub-folder per sorted pile
NONE_OF_THESE = "none of these"
UNREADABLE = "could not be read"
LIMITS = (
    f"Drop up to {MAX_PILE_IMAGES:,} images, or one zip of them (a file at most "
    f"{MAX_UPLOAD_MB} MB, an image at most {MAX_IMAGE_MB} MB and "
    f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels, a zip at most "
    f"{ZIP_MAX_UNCOMPRESSED_BYTES // 2**20} MB unpacked, {MAX_REQUEST_PIXELS / 1e6:g} megapixels "
    "decoded in all)."
)
TABLE_HEADERS = ["file", "class", "confidence", "second class", "margin", "none of these", "error"]
COUNT_HEADERS = ["class", "images"]


@dataclass(frozen=True)
class Pile:
    """A sorted pile: replaced, never changed in place (a refused request restores the old one).

    ``items`` are the images (their files linked into ``folder``), ``errors`` one sentence per
    image ("" when it was read), ``X`` the embeddings of the readable ones (``ok`` indexes
    ``items``), made by ``backbone``. ``taught`` are the names already added to a class card;
    ``sort_by`` orders the table (a key of ``SORTS``)."""

    serial: int
    folder: Path
    items: tuple[InputImage, ...]
    errors: tuple[str, ...]
    ok: np.ndarray
    X: np.ndarray
    backbone: str
    ignored: int = 0
    taught: frozenset[str] = frozenset()
    sort_by: str = "least sure first"

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]


_SERIAL = itertools.count(1)  # piles of every session: a download records which pile it holds


# ---- the request, checked before any image is decoded ------------------------------------------
def _link(src: str, dest: Path) -> None:
    """The upload as a file of the session's folder (a hard link: no copy, and it outlives the
    web server's sweep of its upload cache); a copy across file systems."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _unique(name: str, seen: set[str]) -> str:
    """``name``, or ``name (2)`` ... when another image of the pile has it already."""
    out, k = name, 2
    while out in seen:
        out, k = f"{name} ({k})", k + 1
    seen.add(out)
    return out


def _gather(files: Sequence[Any], folder: Path) -> tuple[list[InputImage], int]:
    """The pile's images (files linked into ``folder``, a zip's image members) and the number of
    files in zips that are not images."""
    items: list[InputImage] = []
    seen: set[str] = set()
    ignored = 0
    for n, file in enumerate(files):
        path = str(file.get("path") if isinstance(file, dict) else file)
        name = check_display_name(shown_name(path))
        if not os.path.isfile(path):
            raise ProjectError(f"'{name}' could not be found (was the upload interrupted?).")
        linked = folder / "in" / str(n) / name  # its own folder: two uploads may share a name
        linked.parent.mkdir(parents=True)
        _link(path, linked)
        if is_zip(path):
            check_zip_directory(linked)  # the session's zip limits, from the end records alone
            try:
                members, skipped = image_members(linked, name)
            except ZipRefused as exc:
                raise ProjectError(str(exc)) from None
            ignored += skipped
            unpacked = sum(m.file_size for m in members)
            if unpacked > ZIP_MAX_UNCOMPRESSED_BYTES:
                raise ProjectError(
                    f"'{name}' unpacks to {unpacked / 2**20:,.1f} MB of images; a zip may hold "
                    f"at most {ZIP_MAX_UNCOMPRESSED_BYTES / 2**20:g} MB."
                )
            for m in members:
                label = _unique(f"{name}/{check_display_name(m.filename)}", seen)
                items.append(InputImage(label, str(linked), m.filename))
        else:
            items.append(InputImage(_unique(name, seen), str(linked)))
        if len(items) > MAX_PILE_IMAGES:
            raise ProjectError(
                f"That is more than {MAX_PILE_IMAGES:,} images; sort at most {MAX_PILE_IMAGES:,} "
                "at a time."
            )
    if not items:
        raise ProjectError("No images to sort: drop image files or a zip of images.")
    return items, ignored


def _price(items: Sequence[InputImage], reader: Reader, owner) -> None:
    """Refuse, from the images' headers, a pile over the size limits or the pixel budget; an
    image that is not readable is skipped here (its row names the problem)."""
    budget = PixelBudget(MAX_REQUEST_PIXELS, f"These {len(items):,} images")
    with Slices(owner) as slices:
        for item in items:
            with slices.unit():
                where = f"Image '{item.name}'"
                try:
                    data = reader.read(item)
                    if len(data) > MAX_IMAGE_BYTES:
                        raise ProjectError(
                            f"{where} is {len(data) / 2**20:.1f} MB; an image may be at most "
                            f"{MAX_IMAGE_MB} MB."
                        )
                    size = decoded_size(data, item.name, MAX_IMAGE_PIXELS)
                except ImageError:
                    continue
                budget.spend(size, where)


# ---- sorting ------------------------------------------------------------------------------------
def _embed(items, engine, reader, owner, progress: ProgressFn | None):
    """Embeddings of the readable images and an error sentence per image, one turn of the
    fair queue per ``SLICE_IMAGES`` images."""
    from ..predict_batch import decode

    errors: list[str] = []
    blocks, ok = [], []
    if progress is not None:
        progress(0, len(items))
    for first in range(0, len(items), SLICE_IMAGES):
        chunk = items[first : first + SLICE_IMAGES]
        with turn(owner):
            decoded = decode(engine, reader, chunk)
            if decoded.batch is not None:
                blocks.append(np.asarray(engine.features(decoded.batch), dtype=np.float32))
        ok += [first + i for i in decoded.ok]
        errors += decoded.errors
        if progress is not None:
            progress(first + len(chunk), len(items))
    return errors, np.array(ok, dtype=np.int64), blocks


class Piles:
    """Sorting a pile and learning from it (mixed into ``Project``)."""

    def sort_pile(self, files: Sequence[Any], progress: ProgressFn | None = None) -> str:
        """Classify ``files`` (image files and zips) with the current head; returns a sentence.

        Parameters
        ----------
        files : sequence of paths (or Gradio file dicts)
            At most ``MAX_PILE_IMAGES`` images in all, zips counted by their image members.
        progress : callable(done, total), optional
            Called after every turn of images.

        Returns
        -------
        str
            What was sorted, e.g. "Sorted 120 images (1 could not be read)."
        """
        from .backbone import load_backbone

        with self.transaction():
            if self.head is None:
                raise ProjectError(
                    "There is no classifier to sort with yet: imprint one (or load a head) first."
                )
            serial = next(_SERIAL)
            folder = self.workdir / FOLDER / str(serial)
            try:
                folder.mkdir(parents=True)
                items, ignored = _gather(list(files or []), folder)
                backbone = load_backbone(self.backbone_name)
                with Reader() as reader:
                    _price(items, reader, self)
                    errors, ok, blocks = _embed(items, backbone.engine, reader, self, progress)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # a refused pile leaves no file
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()  # the piles' folder, when no pile is kept
                raise
            dim = int(self.head.n_features_in_)
            X = np.concatenate(blocks) if blocks else np.zeros((0, dim), dtype=np.float32)
            old, self.pile = (
                self.pile,
                Pile(serial, folder, tuple(items), tuple(errors), ok, X, backbone.name, ignored),
            )
            if old is not None:
                shutil.rmtree(old.folder, ignore_errors=True)
            bad = len(items) - len(ok)
            return f"Sorted {len(items):,} images" + (
                f" ({bad} could not be read)." if bad else "."
            )

    def set_pile_sort(self, sort_by: str) -> None:
        """Order the pile's table by ``sort_by`` (a key of ``SORTS``)."""
        with self.transaction():
            if sort_by not in SORTS:
                raise ProjectError(
                    f"The table cannot be sorted by '{sort_by}'; choose one of: {', '.join(SORTS)}."
                )
            if self.pile is not None:
                self.pile = replace(self.pile, sort_by=sort_by)

    def pile_verdicts(self) -> dict[str, np.ndarray] | None:
        """The current head's scores of the pile's readable images (``score_embeddings``;
        memoised per pile and head), or None when there is no pile or it cannot be scored."""
        pile, head = self.pile, self.head
        if pile is None or head is None or pile.backbone != self.backbone_name:
            return None
        if int(head.n_features_in_) != pile.X.shape[1]:
            return None
        key = (pile.serial, self.head_serial, id(head))
        if self._pile_memo is None or self._pile_memo[0] != key:
            from ..threads import one_thread

            with one_thread():  # one product of a few GFLOP: BLAS threads spin on a busy CPU
                self._pile_memo = (key, score_embeddings(head, pile.X))
        return self._pile_memo[1]

    def pile_rows(self) -> list[PredictionRow]:
        """The pile as ``PredictionRow`` objects under the current head, in upload order."""
        pile, scores = self.pile, self.pile_verdicts()
        if pile is None or scores is None:
            return []
        n = len(pile.items)
        arrays = {
            "top_index": np.full((n, scores["top_index"].shape[1]), -1, dtype=np.int64),
            "top_probability": np.full((n, scores["top_probability"].shape[1]), np.nan),
            "unknown_score": np.full(n, np.nan),
            "unknown": np.zeros(n, dtype=bool),
        }
        for key, value in scores.items():
            arrays[key][pile.ok] = value
        arrays["error"] = np.array(pile.errors, dtype=object)
        return rows_from_arrays(pile.names, arrays, self.head.classes_, pile.items)

    def least_sure_names(self, limit: int = PILE_UNSURE) -> list[str]:
        """The names of the pile's images to correct first ("none of these", then the smallest
        margin between the two best classes), leaving out those already added to a class."""
        pile, scores = self.pile, self.pile_verdicts()
        if pile is None or scores is None:
            return []
        margin = scores["top_probability"][:, 0] - scores["top_probability"][:, 1]
        order = least_sure_order(margin, scores["unknown"])
        names = [pile.items[pile.ok[i]].name for i in order]
        return [n for n in names if n not in pile.taught][:limit]

    def add_from_pile(self, name: str, cls: str, new: bool = False) -> str:
        """Put the pile's image ``name`` into class ``cls`` (a new class when ``new``), then
        imprint again: the pile is re-sorted from its kept embeddings. Returns a sentence."""
        from .backbone import load_backbone

        with self.transaction():
            pile = self.pile
            if pile is None:
                raise ProjectError("There is no sorted pile: drop images to sort first.")
            if self.head_source != "imprinted":
                raise ProjectError(
                    "A loaded head has no class cards to add images to: teach the classes on "
                    "the Teach tab and imprint to learn from the pile."
                )
            index = {n: i for i, n in enumerate(pile.names)}.get(name)
            if index is None or pile.errors[index]:
                raise ProjectError(f"'{name}' is not a readable image of the sorted pile.")
            entry = self.add_class(cls) if new else self.find(cls)
            if entry is None:
                raise ProjectError(f"There is no class '{cls}' (was it renamed or removed?).")
            with self._pile_file(pile, index) as path:
                self.add_images(entry.uid, [(str(path), pile.items[index].file_name)])
            self.pile = replace(pile, taught=pile.taught | {name})
            self.train(load_backbone(self.backbone_name))
            return f"Added '{name}' to class '{entry.name}' and imprinted again."

    @contextlib.contextmanager
    def _pile_file(self, pile: Pile, index: int) -> Iterator[Path]:
        """The image as a file while the block runs (a zip member written out, then deleted)."""
        item = pile.items[index]
        if not item.member:
            yield Path(item.path)
            return
        path = pile.folder / f"member-{index}{Path(item.member).suffix.lower()}"
        try:
            with Reader() as reader:
                path.write_bytes(reader.read(item))
            yield path
        finally:
            path.unlink(missing_ok=True)

    def pile_thumbnail(self, name: str) -> str | None:
        """A small JPEG of the pile's image ``name`` (made once), for the least-sure list."""
        from PIL import Image

        from ..images import load_image

        pile = self.pile
        index = {n: i for i, n in enumerate(pile.names)}.get(name) if pile else None
        if index is None:
            return None
        path = pile.folder / "thumbs" / f"{index}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._pile_file(pile, index) as source:
                image = load_image(str(source), min_side=160)
            image.thumbnail((160, 160), Image.Resampling.LANCZOS)
            image.save(path, quality=85)
        return str(path)


# ---- the table, the counts and the downloads ------------------------------------------------------
def _least_sure_first(rows: list[PredictionRow]) -> list[int]:
    unknown = np.array([r.unknown for r in rows], dtype=bool)
    margin = np.array([r.margin for r in rows], dtype=np.float64)
    return list(least_sure_order(margin, unknown))


def _by_class(rows: list[PredictionRow]) -> list[int]:
    key = [(r.error != "", r.unknown, str(r.label), -_num(r.probability)) for r in rows]
    return sorted(range(len(rows)), key=key.__getitem__)


def _by_confidence(rows: list[PredictionRow]) -> list[int]:
    return sorted(range(len(rows)), key=lambda i: -_num(rows[i].probability))


def _unknown_first(rows: list[PredictionRow]) -> list[int]:
    key = [(not r.unknown, r.error != "", -_num(r.unknown_score)) for r in rows]
    return sorted(range(len(rows)), key=key.__getitem__)


def _num(x: float) -> float:
    return -np.inf if x != x else x  # NaN (an error row) sorts last


# How the table can be ordered: name -> row order.
SORTS: dict[str, Callable[[list[PredictionRow]], list[int]]] = {
    "least sure first": _least_sure_first,
    "class": _by_class,
    "confidence": _by_confidence,
    "none of these first": _unknown_first,
}


def _verdict(row: PredictionRow) -> str:
    return UNREADABLE if row.error else NONE_OF_THESE if row.unknown else str(row.label)


def table_rows(rows: list[PredictionRow], sort_by: str) -> list[list[Any]]:
    """The table: one row per image, in the order ``sort_by``."""
    out = []
    for i in SORTS[sort_by](rows):
        r = rows[i]
        if r.error:
            out.append([r.path, UNREADABLE, None, "", None, "", r.error])
            continue
        second = str(r.top[1][0]) if len(r.top) > 1 else ""
        margin = None if r.margin != r.margin else round(r.margin, 3)
        out.append(
            [
                r.path,
                str(r.label),
                round(r.probability, 3),
                second,
                margin,
                "yes" if r.unknown else "",
                "",
            ]
        )
    return out


def count_rows(rows: list[PredictionRow], classes: Sequence[Any]) -> list[list[Any]]:
    """Images per class (every class of the head), then "none of these" and unreadable ones."""
    counts = dict.fromkeys([*(str(c) for c in classes), NONE_OF_THESE, UNREADABLE], 0)
    for r in rows:
        counts[_verdict(r)] += 1
    return [[k, v] for k, v in counts.items() if v or k not in (NONE_OF_THESE, UNREADABLE)]


def pile_made_of(project) -> Any:
    """What a pile download holds: the pile and the head it was sorted by."""
    pile = project.pile
    return None if pile is None else (pile.serial, project.head_serial)


def write_csv(project, path: Path) -> Path:
    """The pile's rows as ``imprint predict`` writes them (``predictions_csv``)."""
    from ..predictions_csv import PredictionWriter

    rows = _rows_or_refuse(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PredictionWriter(path) as writer:
        for row in rows:
            writer.write(row)
    return path


def write_zip(project, path: Path) -> Path:
    """The pile as a zip of one folder per class plus ``none-of-these/`` (the layout of
    ``imprint predict --sort-into``), written whole or not at all."""
    from ..sorting import Sorter

    rows = _rows_or_refuse(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.stem}-folders"
    shutil.rmtree(staging, ignore_errors=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with Sorter(staging, project.head.classes_, link=True) as sorter:
            placed = [p for p in (sorter.place(r) for r in rows) if p is not None]
        # photos do not compress: stored, not deflated
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zf:
            for p in placed:
                zf.write(p, p.relative_to(staging).as_posix())
        os.replace(partial, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return path


def _rows_or_refuse(project) -> list[PredictionRow]:
    rows = project.pile_rows()
    if not rows:
        raise ProjectError("There is no sorted pile to download: drop images to sort first.")
    return rows


# ---- the views ------------------------------------------------------------------------------------
VIEWS = ("pile_note", "pile_counts", "pile_sort", "pile_table", "pile_unsure")


def views(project) -> dict[str, Any]:
    """The Sort images panel as a function of the project: a note, the counts, the table's order
    and rows, and the least-sure images as ``(name, thumbnail, caption, classes to add to)``."""
    pile = project.pile
    empty = {"pile_counts": None, "pile_table": None, "pile_unsure": []}
    sort_by = pile.sort_by if pile is not None else "least sure first"
    if pile is None:
        note = "" if project.head is not None else "Imprint a classifier first: it sorts the pile."
        return {**empty, "pile_note": note, "pile_sort": sort_by}
    rows = project.pile_rows()
    if not rows:
        note = (
            f"The pile was sorted with backbone '{pile.backbone}'; the classifier now uses "
            f"'{project.backbone_name}': drop the images again to sort them with it."
            if project.head is not None
            else "Imprint a classifier (or load a head): it sorts the pile again."
        )
        return {**empty, "pile_note": note, "pile_sort": sort_by}
    by_name = {r.path: r for r in rows}
    unsure = []
    for name in project.least_sure_names():
        r = by_name[name]
        caption = " · ".join(f"{c} {p:.0%}" for c, p in r.top[:2])
        if r.unknown:
            caption = f"none of these? ({caption})"
        unsure.append((name, project.pile_thumbnail(name), caption, [str(c) for c, _ in r.top[:2]]))
    bad = sum(1 for r in rows if r.error)
    note = f"{len(rows):,} images sorted by the current classifier" + (
        f"; {bad} could not be read." if bad else "."
    )
    if pile.ignored:
        note += f" {pile.ignored} files in the zip were not images and were left out."
    if project.stale:
        note += " Images changed since the last imprint: press Imprint to sort with them."
    return {
        "pile_note": note,
        "pile_counts": count_rows(rows, project.head.classes_),
        "pile_sort": sort_by,
        "pile_table": table_rows(rows, pile.sort_by),
        "pile_unsure": unsure,
    }


def summary(project) -> dict[str, Any]:
    """The sorted pile as JSON (the ``/sort`` endpoint): ``counts`` (class -> images, with
    "none of these" and "could not be read"), ``rows`` (one dict per image of ``TABLE_HEADERS``,
    least sure first) and ``least_sure`` (the names offered for correction)."""
    rows = project.pile_rows()
    if not rows:
        raise ProjectError("There is no sorted pile: drop images to sort first.")
    return {
        "counts": dict(count_rows(rows, project.head.classes_)),
        "rows": [
            dict(zip(TABLE_HEADERS, r, strict=True)) for r in table_rows(rows, "least sure first")
        ],
        "least_sure": project.least_sure_names(),
    }
