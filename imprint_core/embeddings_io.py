"""Embeddings on disk as .npz without pickle: X, labels, file names and the backbone name.

Strings are stored as fixed-width unicode arrays so that ``np.load(..., allow_pickle=False)``
reads them back; a folder without classes stores no labels (``labels`` is None on reading).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


@dataclass
class Embeddings:
    """What ``read_embeddings`` returns."""

    X: np.ndarray  # (n, d) float32
    labels: np.ndarray | None  # (n,) str, or None when the images had no classes
    files: np.ndarray  # (n,) str
    backbone: str


def _strings(values: Sequence, what: str, n: int) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=np.str_)
    if arr.shape != (n,):
        raise ValueError(f"write_embeddings: {what} has {len(arr)} entries, X has {n} rows.")
    return arr if n else np.zeros(0, dtype="<U1")


def write_embeddings(
    path: str | os.PathLike,
    X: np.ndarray,
    labels: Sequence | None,
    files: Sequence[str],
    backbone: str,
) -> Path:
    """Write ``X`` (n, d), labels (or None), file names and the backbone name to ``path`` (.npz)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"write_embeddings: X must be 2-D (n, d), got shape {X.shape}.")
    n = X.shape[0]
    arrays = {
        "X": X,
        "files": _strings(files, "files", n),
        "backbone": np.asarray(str(backbone), dtype=np.str_),
        "format_version": np.asarray(FORMAT_VERSION, dtype=np.int64),
    }
    if labels is not None:
        arrays["labels"] = _strings(labels, "labels", n)
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"write_embeddings: output {str(path)!r} must end in .npz.")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def read_embeddings(path: str | os.PathLike) -> Embeddings:
    """Read a file written by ``write_embeddings`` (no pickle is ever loaded)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"X", "files", "backbone"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{str(path)!r} is not an IMPRINT embeddings file (missing {sorted(missing)})."
                )
            X = np.asarray(data["X"], dtype=np.float32)
            files = data["files"].astype(str)
            labels = data["labels"].astype(str) if "labels" in data.files else None
            backbone = str(data["backbone"])
    except FileNotFoundError:
        raise FileNotFoundError(f"Embeddings file {str(path)!r} does not exist.") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if repr(str(path)) in str(exc):
            raise
        raise ValueError(f"{str(path)!r} is not a readable .npz embeddings file ({exc}).") from None
    if X.ndim != 2 or len(files) != len(X) or (labels is not None and len(labels) != len(X)):
        raise ValueError(f"{str(path)!r} is inconsistent: X, files and labels differ in length.")
    return Embeddings(X=X, labels=labels, files=files, backbone=backbone)
