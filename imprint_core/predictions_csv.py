"""Predictions as CSV: one row per image, appended as rows arrive, resumable after a stop.

Columns (``COLUMNS``): ``path``, ``label``, ``probability``, the second and third classes with
their probabilities, ``unknown_score``, ``none_of_these`` (true/false) and ``error`` (empty when the
image was read; then the label and numbers are empty). ``read_predictions`` reads a file back for
``--resume``: a last line cut short by a stopped run is dropped from the file (that image is
predicted again), and a file with other columns is refused rather than appended to.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .prediction_rows import TOP, PredictionRow

COLUMNS = (
    "path",
    "label",
    "probability",
    *(f"{what}_{k}" for k in range(2, TOP + 1) for what in ("label", "probability")),
    "unknown_score",
    "none_of_these",
    "error",
)


def _number(x: float) -> str:
    return f"{x:.6f}"


def csv_record(row: PredictionRow) -> dict[str, str]:
    """The CSV fields of a row (all text)."""
    record = dict.fromkeys(COLUMNS, "")
    record["path"], record["error"] = row.path, row.error
    if row.error:
        return record
    for k, (label, p) in enumerate(row.top, start=1):
        suffix = "" if k == 1 else f"_{k}"
        record[f"label{suffix}"], record[f"probability{suffix}"] = str(label), _number(p)
    record["unknown_score"] = _number(row.unknown_score)
    record["none_of_these"] = "true" if row.unknown else "false"
    return record


class PredictionWriter:
    """Writes rows to ``path`` (a new file with a header, or appended to with ``append=True``),
    flushed after every row so that a stopped run loses nothing it reported."""

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        path = Path(path)
        fresh = not (append and path.exists() and path.stat().st_size > 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w" if fresh else "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.DictWriter(self._fh, COLUMNS, lineterminator="\n")
        if fresh:
            self._csv.writeheader()
            self._fh.flush()

    def write(self, row: PredictionRow) -> dict[str, str]:
        record = csv_record(row)
        self._csv.writerow(record)
        self._fh.flush()
        return record

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_predictions(path: str | os.PathLike, repair: bool = False) -> list[dict[str, str]]:
    """The complete rows of a predictions CSV.

    ``repair=True`` (resuming) cuts a last line that a stopped run left unfinished off the file.
    Raises ``ValueError`` for a file that is not a predictions CSV.
    """
    path = Path(path)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # the run stopped while writing this line
        data = data[: data.rfind(b"\n") + 1]
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(len(data))
    try:
        lines = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{str(path)!r} is not a predictions CSV ({exc}).") from None
    if not lines:
        return []
    if tuple(lines[0]) != COLUMNS:
        raise ValueError(
            f"{str(path)!r} is not a predictions CSV of imprint predict (its columns are "
            f"{', '.join(lines[0][:4])}...; expected {', '.join(COLUMNS[:4])}...): choose "
            "another --output, or --overwrite it."
        )
    bad = next((i for i, r in enumerate(lines[1:], start=2) if len(r) != len(COLUMNS)), None)
    if bad is not None:
        raise ValueError(f"{str(path)!r}: line {bad} does not have the {len(COLUMNS)} columns.")
    return [dict(zip(COLUMNS, r, strict=True)) for r in lines[1:]]


class Tally:
    """Counts over CSV records as they are written: images, per class, "none of these" (counted
    there, not under its nearest class) and errors."""

    def __init__(self, records: Iterable[dict[str, str]] = ()) -> None:
        self.images = self.none_of_these = self.errors = 0
        self.classes: Counter[str] = Counter()
        for record in records:
            self.add(record)

    def add(self, record: dict[str, str]) -> None:
        self.images += 1
        if record["error"]:
            self.errors += 1
        elif record["none_of_these"] == "true":
            self.none_of_these += 1
        else:
            self.classes[record["label"]] += 1

    def line(self) -> str:
        """``Sneaker 4, T-shirt 3; none of these 1; 2 errors``."""
        classes = ", ".join(f"{c} {n:,}" for c, n in sorted(self.classes.items())) or "no class"
        errors = f"{self.errors:,} error{'s' if self.errors != 1 else ''}"
        return f"{classes}; none of these {self.none_of_these:,}; {errors}"
