"""Rows of a prediction: what a head says about each image, as arrays and as ``PredictionRow``.

``score_embeddings`` turns embeddings into the head's verdict (top classes, probabilities, the
"none of these" score and flag) as arrays; ``rows_from_arrays`` makes rows of them. The rows keep
what a person needs to correct the head: ``rescore`` re-sorts rows under a re-imprinted head from
the embeddings they kept (nothing is read or embedded again), and ``least_sure`` lists first the
rows the head is least sure of ("none of these", then the smallest margin between the two best
classes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .sources import InputImage

TOP = 3  # classes listed per row


@dataclass(frozen=True)
class PredictionRow:
    """One image's prediction; on an ``error`` the label is None and the numbers are NaN."""

    path: str
    label: Any = None
    probability: float = math.nan
    top: tuple[tuple[Any, float], ...] = ()  # (label, probability), best first
    unknown_score: float = math.nan
    unknown: bool = False  # "none of these": unlike every taught class
    error: str = ""
    embedding: np.ndarray | None = None  # with keep_embeddings=True
    source: InputImage | None = None  # where the image came from (for copies of it)

    @property
    def margin(self) -> float:
        """Probability of the best class minus that of the second (NaN on an error)."""
        if len(self.top) < 2:
            return math.nan
        return self.top[0][1] - self.top[1][1]


def score_embeddings(clf, X: np.ndarray, top: int = TOP) -> dict[str, np.ndarray]:
    """The head's verdict on embeddings ``X`` (n, d) as arrays.

    Parameters
    ----------
    clf : ImprintClassifier
        A fitted head.
    X : ndarray of shape (n, d)
        Embeddings from the head's backbone.
    top : int, default=3
        Classes to list per row (fewer when the head has fewer; padded with -1 and NaN).

    Returns
    -------
    dict
        ``top_index`` (n, top) int64 into ``clf.classes_``, best first (ties to the first class,
        as ``predict``); ``top_probability`` (n, top) from ``predict_proba``; ``unknown_score``
        (n,); ``unknown`` (n,) bool, ``clf.is_unknown``.
    """
    n = len(X)
    index = np.full((n, top), -1, dtype=np.int64)
    prob = np.full((n, top), np.nan)
    if n == 0:
        return {
            "top_index": index,
            "top_probability": prob,
            "unknown_score": np.zeros(0),
            "unknown": np.zeros(0, dtype=bool),
        }
    P = clf.predict_proba(X)
    order = np.argsort(-P, axis=1, kind="stable")[:, :top]
    index[:, : order.shape[1]] = order
    prob[:, : order.shape[1]] = np.take_along_axis(P, order, axis=1)
    score = np.asarray(clf.unknown_score(X), dtype=np.float64)
    return {
        "top_index": index,
        "top_probability": prob,
        "unknown_score": score,
        "unknown": score > clf.unknown_threshold(),
    }


def _python(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def rows_from_arrays(
    names: Sequence[str],
    arrays: dict[str, np.ndarray],
    classes: np.ndarray,
    sources: Sequence[InputImage | None] | None = None,
) -> list[PredictionRow]:
    """``PredictionRow`` objects from the arrays of ``finish`` (or a Ray batch)."""
    rows = []
    for i, name in enumerate(names):
        source = sources[i] if sources is not None else None
        error = str(arrays["error"][i])
        if error:
            rows.append(PredictionRow(str(name), error=error, source=source))
            continue
        top = tuple(
            (_python(classes[j]), float(p))
            for j, p in zip(arrays["top_index"][i], arrays["top_probability"][i], strict=True)
            if j >= 0
        )
        embedding = arrays["embedding"][i] if "embedding" in arrays else None
        rows.append(
            PredictionRow(
                str(name),
                label=top[0][0],
                probability=top[0][1],
                top=top,
                unknown_score=float(arrays["unknown_score"][i]),
                unknown=bool(arrays["unknown"][i]),
                embedding=None if embedding is None else np.array(embedding, dtype=np.float32),
                source=source,
            )
        )
    return rows


def rescore(clf, rows: Iterable[PredictionRow]) -> list[PredictionRow]:
    """The rows under another head (say, re-imprinted after a correction), from the embeddings
    they kept (``predict_files(..., keep_embeddings=True)``): nothing is read or embedded again.
    Error rows stay as they are."""
    rows = list(rows)
    done = [i for i, r in enumerate(rows) if not r.error]
    missing = [rows[i].path for i in done if rows[i].embedding is None]
    if missing:
        raise ValueError(
            f"Row {missing[0]!r} kept no embedding: predict with keep_embeddings=True to rescore."
        )
    if not done:
        return rows
    X = np.stack([rows[i].embedding for i in done])
    s = score_embeddings(clf, X)
    out = list(rows)
    for k, i in enumerate(done):
        top = tuple(
            (_python(clf.classes_[j]), float(p))
            for j, p in zip(s["top_index"][k], s["top_probability"][k], strict=True)
            if j >= 0
        )
        out[i] = replace(
            rows[i],
            label=top[0][0],
            probability=top[0][1],
            top=top,
            unknown_score=float(s["unknown_score"][k]),
            unknown=bool(s["unknown"][k]),
        )
    return out


def least_sure_order(margin: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Indices that put "none of these" first, then the smallest margins between the two best
    classes (ties keep their order)."""
    margin = np.where(np.isnan(margin), np.inf, np.asarray(margin, dtype=np.float64))
    return np.lexsort((margin, ~np.asarray(unknown, dtype=bool)))


def least_sure(rows: Iterable[PredictionRow]) -> list[PredictionRow]:
    """The rows a person should look at first: "none of these", then the smallest margin
    between the two best classes. Rows with an error are left out (nothing to learn from)."""
    rows = [r for r in rows if not r.error]
    order = least_sure_order(
        np.array([r.margin for r in rows], dtype=np.float64),
        np.array([r.unknown for r in rows], dtype=bool),
    )
    return [rows[i] for i in order]
