"""`imprint embed` and the .npz embeddings format."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import imprint_core as ic
from imprint_core.cli import main
from imprint_core.embeddings_io import read_embeddings, write_embeddings

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}


@pytest.fixture(scope="module")
def backbone():
    return ic.get_backbone()  # loaded once per process, shared by every test module


def _make_image(path, colour, seed, fmt="PNG"):
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.normal(0, 25, (48, 64, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, format=fmt)


@pytest.fixture
def class_folder(tmp_path):
    root = tmp_path / "data"
    for c, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(3):
            fmt, ext = ("JPEG", "jpg") if i == 2 else ("PNG", "png")
            _make_image(root / name / f"{name}_{i}.{ext}", colour, 10 * c + i, fmt)
    (root / "red" / "notes.txt").write_text("not an image, not listed")
    (root / ".hidden").mkdir()
    return root


def test_embed_class_folders(class_folder, tmp_path, backbone, capsys):
    out = tmp_path / "emb.npz"
    assert main(["embed", str(class_folder), "-o", str(out), "--batch-size", "4"]) == 0
    assert "9 images x 1280 dims, 3 classes" in capsys.readouterr().out
    emb = ic.read_embeddings(out)
    assert emb.backbone == "efficientnet_lite0"
    assert emb.X.shape == (9, 1280) and emb.X.dtype == np.float32
    assert list(emb.labels) == ["blue"] * 3 + ["green"] * 3 + ["red"] * 3
    assert emb.files[0] == os.path.join("blue", "blue_0.png")
    direct = backbone.embed([class_folder / f for f in emb.files], cache=False)
    np.testing.assert_allclose(emb.X, direct, rtol=1e-4, atol=1e-5)
    # real embeddings: each image is closer to its own class mean than to the others
    means = {c: emb.X[emb.labels == c].mean(0) for c in COLOURS}
    for x, y in zip(emb.X, emb.labels, strict=True):
        assert max(means, key=lambda c: x @ means[c] / np.linalg.norm(means[c])) == y


def test_embed_plain_images_has_no_labels(tmp_path, capsys):
    for i in range(3):
        _make_image(tmp_path / f"img{i}.png", COLOURS["green"], i)
    out = tmp_path / "out" / "plain.npz"
    assert main(["embed", str(tmp_path), "-o", str(out)]) == 0
    emb = read_embeddings(out)
    assert emb.labels is None and list(emb.files) == ["img0.png", "img1.png", "img2.png"]
    assert "no classes" in capsys.readouterr().out


def test_console_script_with_progress_bar(class_folder, tmp_path):
    exe = shutil.which("imprint")
    cmd = [exe] if exe else [sys.executable, "-m", "imprint_core.cli"]
    out = tmp_path / "cli.npz"
    proc = subprocess.run(
        [*cmd, "embed", str(class_folder), "--backbone", "efficientnet_lite0", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "9/9" in proc.stderr and "img" in proc.stderr  # the tqdm bar
    assert read_embeddings(out).X.shape == (9, 1280)


def test_bad_image_names_file_and_class(class_folder, tmp_path, capsys):
    (class_folder / "green" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["embed", str(class_folder), "-o", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert os.path.join("green", "zz_broken.png") in err and "Allowed" in err
    assert not (tmp_path / "x.npz").exists()


def test_cli_errors_are_sentences(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["embed", str(empty), "-o", str(tmp_path / "a.npz")]) == 2
    assert "has no images" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "missing"), "-o", str(tmp_path / "a.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    _make_image(empty / "a.png", COLOURS["red"], 0)
    assert main(["embed", str(empty), "--backbone", "alexnet", "-o", str(tmp_path / "a.npz")]) == 2
    assert "Unknown backbone 'alexnet'" in capsys.readouterr().err
    assert main(["embed", str(empty), "-o", str(tmp_path / "a.csv")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert main(["embed", str(empty), "--batch-size", "0", "-o", str(tmp_path / "a.npz")]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_embeddings_io_roundtrip_without_pickle(tmp_path):
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    path = write_embeddings(
        tmp_path / "e.npz", X, ["a", "b", "a", 7], ["1.png", "2.png", "ü.png", "4"], "resnet18"
    )
    with np.load(path, allow_pickle=False) as raw:  # plain unicode arrays, no object arrays
        assert raw["labels"].dtype.kind == "U" and raw["files"].dtype.kind == "U"
    emb = read_embeddings(path)
    np.testing.assert_array_equal(emb.X, X)
    assert list(emb.labels) == ["a", "b", "a", "7"] and emb.files[2] == "ü.png"
    assert emb.backbone == "resnet18"
    empty = read_embeddings(write_embeddings(tmp_path / "z.npz", np.zeros((0, 5)), [], [], "x"))
    assert emb.X.dtype == np.float32 and empty.X.shape == (0, 5) and len(empty.labels) == 0


def test_embeddings_io_rejects_bad_input(tmp_path):
    X = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="labels has 1 entries, X has 2 rows"):
        write_embeddings(tmp_path / "e.npz", X, ["a"], ["1", "2"], "b")
    with pytest.raises(ValueError, match="2-D"):
        write_embeddings(tmp_path / "e.npz", np.zeros(3), None, ["1", "2", "3"], "b")
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        write_embeddings(tmp_path / "e.txt", X, None, ["1", "2"], "b")
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, X=X, files=np.array([object(), object()], dtype=object), backbone="b")
    with pytest.raises(ValueError, match="evil.npz"):
        read_embeddings(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        read_embeddings(junk)
    other = tmp_path / "other.npz"
    np.savez(other, Y=X)
    with pytest.raises(ValueError, match="not an IMPRINT embeddings file"):
        read_embeddings(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_embeddings(tmp_path / "nothing.npz")
