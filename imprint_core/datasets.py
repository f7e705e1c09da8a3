"""Datasets on disk: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (IDX files)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(shape)) if shape else 0
    offset = 4 + 4 * ndim
    if len(data) - offset < count * dtype.itemsize:
        raise ValueError(f"{path} is truncated: expected {count} values of shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


def fashion_mnist_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the four Fashion-MNIST IDX files, with a clear error when missing."""
    folder = Path(root) if root is not None else FASHION_MNIST_DIR
    if not (folder / "train-images-idx3-ubyte.gz").exists() and not (
        folder / "train-images-idx3-ubyte"
    ).exists():
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {folder}: install Debian's 'dataset-fashion-mnist' "
            "(apt-get install dataset-fashion-mnist) or pass the folder with the IDX files"
        )
    return folder


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: uint8 images of shape (n, 28, 28) and int64 labels 0..9."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = fashion_mnist_root(root)
    prefix = "train" if split == "train" else "t10k"

    def pick(name: str) -> Path:
        gz = folder / f"{prefix}-{name}.gz"
        return gz if gz.exists() else folder / f"{prefix}-{name}"

    images = read_idx(pick("images-idx3-ubyte"))
    labels = read_idx(pick("labels-idx1-ubyte")).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels
