"""Benchmark dataset readers: Fashion-MNIST (real files), MNIST / CIFAR-10 local copies in their
real on-disk formats (tiny files written here), image folders, and clear errors."""

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imprint_core.bench.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_DIR,
    load_dataset,
    load_image_folder,
)


@pytest.mark.fashion_mnist
def test_fashion_mnist_splits():
    test = load_dataset("fashion-mnist", "test")
    assert len(test) == 10_000 and test.arrays.shape == (10_000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    ims = test.images([0, 5])
    assert [im.size for im in ims] == [(28, 28)] * 2 and ims[0].mode == "L"
    assert np.array_equal(np.asarray(ims[1]), test.arrays[5])
    assert test.fingerprint([0, 5]) != test.fingerprint([0, 6])
    assert test.fingerprint([0, 5]) == load_dataset("fashion-mnist", "test").fingerprint([0, 5])


@pytest.mark.fashion_mnist
def test_fashion_mnist_in_torchvision_layout_under_data_root(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in FASHION_MNIST_DIR.iterdir():
        (raw / f.name).symlink_to(f)
    ds = load_dataset("fashion-mnist", "test", tmp_path)
    assert len(ds) == 10_000 and ds.source == str(raw)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_through_torchvision_from_a_local_copy(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {
        p: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        for p, n in [("train", 12), ("t10k", 7)]
    }
    labels = {"train": np.arange(12) % 10, "t10k": np.arange(7)}
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[prefix])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[prefix])
    train = load_dataset("mnist", "train", tmp_path)
    test = load_dataset("mnist", "test", tmp_path)
    assert (
        np.array_equal(train.arrays, images["train"])
        and train.labels.tolist() == labels["train"].tolist()
    )
    assert np.array_equal(test.arrays, images["t10k"]) and len(test) == 7
    assert train.labels.dtype == np.int64


def test_mnist_missing_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST not found in .*MNIST.*raw"):
        load_dataset("mnist", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="needs --data-root"):
        load_dataset("mnist", "train")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_dataset("cifar10", "train", tmp_path / "nowhere")


def _cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)


def test_cifar10_python_batches_with_a_safe_unpickler(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    batches = {f"data_batch_{i}": _cifar_arrays(4, i) for i in range(1, 6)}
    batches["test_batch"] = _cifar_arrays(3, 9)
    for name, (data, labels) in batches.items():
        with open(base / name, "wb") as fh:  # the layout torchvision's download leaves
            pickle.dump(
                {b"data": data, b"labels": labels.tolist(), b"batch_label": b"x"}, fh, protocol=2
            )
    train = load_dataset("cifar10", "train", tmp_path)
    assert train.arrays.shape == (20, 32, 32, 3) and train.class_names == CIFAR10_CLASSES
    first = batches["data_batch_1"][0][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(train.arrays[0], first)
    assert (
        train.labels.tolist()
        == np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)]).tolist()
    )
    test = load_dataset("cifar10", "test", tmp_path)
    assert len(test) == 3 and test.images([0])[0].size == (32, 32)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar10_refuses_a_pickle_that_calls_code(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    (base / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(
        ValueError, match=r"not a CIFAR-10 python batch: refusing to load posix\.getcwd"
    ):
        load_dataset("cifar10", "test", tmp_path)


def test_cifar10_binary_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-bin"
    base.mkdir()
    data, labels = _cifar_arrays(5, 3)
    records = np.concatenate([labels[:, None].astype(np.uint8), data], axis=1)
    (base / "test_batch.bin").write_bytes(records.tobytes())
    test = load_dataset("cifar10", "test", tmp_path)
    assert test.labels.tolist() == labels.tolist()
    assert np.array_equal(test.arrays[2], data[2].reshape(3, 32, 32).transpose(1, 2, 0))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 train batches not found"):
        load_dataset("cifar10", "train", tmp_path)


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def test_image_folder_hold_out_is_stratified_and_disjoint(tmp_path):
    for cls, n in (("cats", 10), ("dogs", 5)):
        for i in range(n):
            _png(tmp_path / cls / f"{i}.png", i)
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    train = load_image_folder(tmp_path, "train")
    test = load_dataset("folder", "test", tmp_path)
    assert train.class_names == test.class_names == ("cats", "dogs")
    assert np.bincount(test.labels).tolist() == [2, 1]  # 20 % of each class, at least one
    assert np.bincount(train.labels).tolist() == [8, 4]
    assert not set(train.paths) & set(test.paths)
    assert len(set(train.paths) | set(test.paths)) == 15
    assert all(p.suffix == ".png" for p in train.images())
    assert train.fingerprint([0, 1]) == load_image_folder(tmp_path).fingerprint([0, 1])


def test_image_folder_with_train_and_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", i)
    _png(tmp_path / "test" / "c" / "0.png", 0)  # a class only in test keeps a consistent label
    train, test = load_image_folder(tmp_path, "train"), load_image_folder(tmp_path, "test")
    assert train.class_names == test.class_names == ("a", "b", "c")
    assert len(train) == 6 and len(test) == 5 and test.labels.tolist() == [0, 0, 1, 1, 2]


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no class subfolders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        load_image_folder(tmp_path)


def test_unknown_dataset_and_split():
    with pytest.raises(
        ValueError,
        match="unknown dataset 'imagenet'; choose one of: fashion-mnist, mnist, cifar10, folder",
    ):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', not 'val'"):
        load_dataset("fashion-mnist", "val")
