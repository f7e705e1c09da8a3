"""Datasets on disk: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (IDX files), and the
benchmark readers (``load_dataset``): Fashion-MNIST, MNIST and CIFAR-10 from local copies, and a
folder with one subfolder of images per class. Nothing is downloaded."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Heavy: PIL and torchvision imported where used, so that importing this module stays cheap.

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
    if (
        not (folder / "train-images-idx3-ubyte.gz").exists()
        and not (folder / "train-images-idx3-ubyte").exists()
    ):
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


# ------------------------------------------------------------------------ benchmark datasets
MNIST_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".avif"}
)
FOLDER_TEST_FRACTION = 0.2  # hold-out per class when an image folder has no train/ and test/
SPLITS = ("train", "test")


@dataclass
class ImageDataset:
    """One split of a labelled image dataset: uint8 pixel arrays or image files, int labels."""

    name: str
    split: str
    labels: np.ndarray  # int64 (n,), 0..C-1
    class_names: tuple[str, ...]
    source: str  # where it was read from (named in messages and in the cache fingerprint)
    arrays: np.ndarray | None = None  # uint8 (n, H, W) or (n, H, W, 3)
    paths: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, rows: Sequence[int] | np.ndarray | None = None) -> list:
        """The images at ``rows`` (all when None): PIL images for arrays, paths for files."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.arrays is not None:
            from PIL import Image

            return [Image.fromarray(self.arrays[i]) for i in rows]
        return [self.paths[i] for i in rows]

    def fingerprint(self, rows: Sequence[int] | np.ndarray) -> str:
        """A hash of the content at ``rows`` (pixels, or file names, sizes and mtimes) + labels."""
        rows = np.asarray(rows, dtype=np.int64)
        h = hashlib.sha256(f"{self.name}|{self.split}|{len(self)}".encode())
        h.update(rows.tobytes())
        h.update(self.labels[rows].tobytes())
        if self.arrays is not None:
            h.update(np.ascontiguousarray(self.arrays[rows]).tobytes())
        else:
            for i in rows:
                st = self.paths[i].stat()
                h.update(f"{self.paths[i]}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")


def _fashion_mnist(split: str, root: str | os.PathLike | None) -> ImageDataset:
    folder = Path(root) if root is not None else None
    if folder is not None and (folder / "FashionMNIST" / "raw").is_dir():
        folder = folder / "FashionMNIST" / "raw"  # torchvision's layout under --data-root
    images, labels = load_fashion_mnist(split, folder)
    where = str(fashion_mnist_root(folder))
    return ImageDataset("fashion-mnist", split, labels, FASHION_MNIST_CLASSES, where, arrays=images)


def _need_root(name: str, root: str | os.PathLike | None, layout: str) -> Path:
    if root is None:
        raise FileNotFoundError(
            f"dataset {name!r} needs --data-root DIR, the folder holding a local copy ({layout}); "
            "nothing is downloaded"
        )
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"--data-root {str(folder)!r} is not a folder (dataset {name!r})")
    return folder


def _mnist(split: str, root: str | os.PathLike | None) -> ImageDataset:
    layout = "DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte, as torchvision saves it"
    folder = _need_root("mnist", root, layout)
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(folder), train=split == "train", download=False)
    except RuntimeError:
        raise FileNotFoundError(
            f"MNIST not found in {str(folder / 'MNIST' / 'raw')!r}: expected {layout} "
            "(torchvision.datasets.MNIST(root, download=True) makes it on a machine with internet)"
        ) from None
    return ImageDataset(
        "mnist",
        split,
        ds.targets.numpy().astype(np.int64),
        MNIST_CLASSES,
        str(folder / "MNIST" / "raw"),
        arrays=ds.data.numpy().astype(np.uint8),
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: CIFAR-10's python batches need no more,
    and refusing every other global keeps a tampered file from running code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 stores bytes from Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays and lists"
            )
        if module == "_codecs":
            return codecs.encode
        core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
        if name == "_reconstruct":
            return core.multiarray._reconstruct
        if name == "_frombuffer":
            return core.numeric._frombuffer
        return getattr(np, name)


def _cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        try:
            batch = _ArrayUnpickler(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not a CIFAR-10 python batch: {exc}") from None
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    return data.transpose(0, 2, 3, 1), labels


def _cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{path} is not a CIFAR-10 binary batch (size not a multiple of 3073)")
    raw = raw.reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, 0].astype(np.int64)


# CIFAR-10 layouts: torchvision's python batches, or the binary version (no pickle at all).
_CIFAR_LAYOUTS = {
    "cifar-10-batches-py": (_cifar_python_batch, "data_batch_{}", "test_batch"),
    "cifar-10-batches-bin": (_cifar_binary_batch, "data_batch_{}.bin", "test_batch.bin"),
}


def _cifar10(split: str, root: str | os.PathLike | None) -> ImageDataset:
    layout = "DIR/cifar-10-batches-py (as torchvision saves it) or DIR/cifar-10-batches-bin"
    folder = _need_root("cifar10", root, layout)
    for sub, (reader, train_name, test_name) in _CIFAR_LAYOUTS.items():
        base = folder / sub
        names = [train_name.format(i) for i in range(1, 6)] if split == "train" else [test_name]
        if all((base / n).is_file() for n in names):
            parts = [reader(base / n) for n in names]
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            return ImageDataset("cifar10", split, labels, CIFAR10_CLASSES, str(base), arrays=images)
    raise FileNotFoundError(
        f"CIFAR-10 {split} batches not found under {str(folder)!r}: expected {layout} "
        "(torchvision.datasets.CIFAR10(root, download=True) makes it on a machine with internet)"
    )


def _class_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def held_out(n: int) -> np.ndarray:
    """(n,) bool: which of a class's n images (in sorted file order) an image folder without
    train/ and test/ holds out as test images: a seeded ``FOLDER_TEST_FRACTION`` (at least one
    image, none of a class with one image)."""
    n_test = max(1, round(FOLDER_TEST_FRACTION * n)) if n > 1 else 0
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(0).permutation(n)[:n_test]] = True
    return test


def embeddings_splits(path: str | os.PathLike) -> tuple[dict, tuple[str, ...], str]:
    """The train and test splits of an embeddings file (``imprint embed``'s .npz, with labels):
    ``({split: (Z, int labels)}, class names, backbone)``. The test images of each class are
    those ``held_out`` picks in file order, so a folder's file gives the same split as the
    folder itself (``imprint embed`` writes the files of a class sorted, as the folder reader
    reads them)."""
    from ..embeddings_io import read_embeddings

    emb = read_embeddings(path)
    if emb.labels is None:
        raise ValueError(
            f"embeddings file {str(path)!r} has no labels: benchmarks need one subfolder of "
            "images per class when it is made (imprint embed FOLDER)"
        )
    names, y = np.unique(emb.labels, return_inverse=True)
    if len(names) < 2:
        raise ValueError(f"embeddings file {str(path)!r} holds one class; a benchmark needs 2+")
    test = np.zeros(len(y), dtype=bool)
    for c in range(len(names)):
        rows = np.flatnonzero(y == c)
        test[rows] = held_out(len(rows))
    y = y.astype(np.int64)
    data = {"train": (emb.X[~test], y[~test]), "test": (emb.X[test], y[test])}
    return data, tuple(str(n) for n in names), emb.backbone


def load_image_folder(root: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Images in one subfolder per class (labels follow the sorted folder names).

    With ``root/train`` and ``root/test`` those are the splits; otherwise a seeded hold-out of
    ``FOLDER_TEST_FRACTION`` of each class (at least one image, seed 0) is the test split.
    """
    _check_split(split)
    root = _need_root("folder", root, "one subfolder of images per class")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    bases = [root / "train", root / "test"] if has_splits else [root]
    names = sorted({d.name for b in bases for d in b.iterdir() if d.is_dir()})
    if not names:
        raise FileNotFoundError(f"{str(root)!r} has no class subfolders (one folder per class)")
    base = root / split if has_splits else root
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        files = _class_files(base / name) if (base / name).is_dir() else []
        if not has_splits and files:
            test = held_out(len(files))
            files = [f for i, f in enumerate(files) if test[i] == (split == "test")]
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {str(base)!r}")
    return ImageDataset(
        "folder", split, np.asarray(labels, dtype=np.int64), tuple(names), str(base), paths=paths
    )


def _folder(split: str, root: str | os.PathLike | None) -> ImageDataset:
    return load_image_folder(_need_root("folder", root, "one subfolder per class"), split)


DATASETS: dict[str, tuple[Callable[[str, Any], ImageDataset], str]] = {
    "fashion-mnist": (_fashion_mnist, "Fashion-MNIST IDX files (Debian dataset-fashion-mnist)"),
    "mnist": (_mnist, "MNIST through torchvision from a local copy under --data-root"),
    "cifar10": (_cifar10, "CIFAR-10 from a local copy under --data-root (python or binary)"),
    "folder": (_folder, "--data-root with one subfolder of images per class"),
}


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None):
    """One split of a benchmark dataset (``DATASETS``) as an ``ImageDataset``."""
    _check_split(split)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name][0](split, root)
