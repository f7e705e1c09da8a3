"""``imprint bench`` on any photo set: ``--images DIR`` (embedded once, cached) and
``--embeddings FILE.npz``, with the baselines and the paired comparison in the same run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

import imprint_core as ic
from imprint_core.bench.baselines import TunedLogistic
from imprint_core.bench.datasets import embeddings_splits, load_image_folder
from imprint_core.bench.fewshot import POOL, draw_support
from imprint_core.cli import main

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "examples" / "fashion3"


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    """scikit-learn's digits (real images, 64 pixel values as features) as an embeddings file."""
    X, y = load_digits(return_X_y=True)
    keep = np.concatenate([np.flatnonzero(y == c)[:40] for c in range(4)])
    X, y = X[keep], y[keep]
    names = [f"{c}/{i:04d}.png" for i, c in zip(keep, y, strict=True)]
    path = tmp_path_factory.mktemp("emb") / "digits.npz"
    return ic.write_embeddings(path, X, [str(c) for c in y], names, "pixels")


def test_embeddings_file_bench_runs_every_baseline_on_the_same_draws(digits_file, tmp_path):
    out = tmp_path / "res"
    argv = [
        "bench", "--embeddings", str(digits_file), "--shots", "1,5,all", "--draws", "3",
        "--tasks", "all", "--methods", f"qi,auto,{ic.DEFAULT_PRESET}", "--out", str(out),
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["settings"]["backbone"] == "pixels"  # the file says what made it
    cell = {(s["method"], s["shots"]): s for s in data["summary"]}
    methods = {s["method"] for s in data["summary"]}
    baselines = {"logistic regression (CV)", "shrinkage LDA", "ridge", "SimpleShot"}
    assert baselines | {"qi", "auto", ic.DEFAULT_PRESET, "linear probe"} == methods
    # scikit-learn's LDA refuses one image per class: no draws, no fake figure
    assert cell["shrinkage LDA", 1]["draws"] == 0 and np.isnan(cell["shrinkage LDA", 1]["mean"])
    assert cell["shrinkage LDA", 5]["draws"] == 3
    # the pool is one fit; its interval is over the test images (Student t of 0/1 hits)
    from scipy.stats import t

    n = data["embeddings"]["test"]["images"]
    for method in ("qi", "SimpleShot", ic.DEFAULT_PRESET):
        pool = cell[method, POOL]
        p = pool["mean"] / 100
        half = 100 * t.ppf(0.975, n - 1) * np.sqrt(p * (1 - p) * n / (n - 1) / n)
        assert pool["draws"] == 1 and pool["ci95"] == pytest.approx(half, abs=1e-9)
    assert cell[ic.DEFAULT_PRESET, 5]["mean"] > 60  # 4 digits, far above chance
    # every method is compared with the default, paired on the same draws
    vs = {(v["method"], v["shots"]): v for v in data["versus"]}
    assert ("shrinkage LDA", 1) not in vs and ("shrinkage LDA", 5) in vs
    runs = {(r["method"], r["shots"], r["draw"]): r["accuracy"] for r in data["runs"]}
    diffs = [runs[ic.DEFAULT_PRESET, 5, d] - runs["ridge", 5, d] for d in range(3)]
    assert vs["ridge", 5]["gain"] == pytest.approx(np.mean(diffs), abs=1e-9)
    assert vs["ridge", 5]["draws"] == 3 and vs["ridge", POOL]["draws"] == 1
    md = Path(f"{out}.md").read_text()
    assert "| pool |" in md and f"{ic.DEFAULT_PRESET} - shrinkage LDA | - |" in md


def test_embeddings_file_is_split_as_its_folder(tmp_path):
    """The held-out images of a file are those of the folder it was made from."""
    root = tmp_path / "photos"
    files, labels = [], []
    for c, n in (("cat", 7), ("dog", 12), ("emu", 1)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4), (i, 0, 0)).save(root / c / f"{i:02d}.png")
            files.append(f"{c}/{i:02d}.png")
            labels.append(c)
    path = ic.write_embeddings(tmp_path / "e.npz", np.eye(len(files)), labels, files, "x")
    data, names, _ = embeddings_splits(path)
    assert names == ("cat", "dog", "emu")
    held = load_image_folder(root, "test")
    expected = sorted(str(p.relative_to(root)) for p in held.paths)
    got = sorted(files[int(np.argmax(z))] for z in data["test"][0])
    assert got == expected and len(expected) == 1 + 2  # 20 % of 7 and 12, none of a single image


def test_tuned_logistic_cross_validates_from_five_shots():
    X, y = load_digits(return_X_y=True)
    few = draw_support(y, 2, 0)
    assert TunedLogistic().fit(X[few], y[few]).C_ == 1.0  # 2 per class: no inner CV
    five = draw_support(y, 5, 0)
    model = TunedLogistic().fit(X[five], y[five])
    assert model.C_ in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    assert np.mean(model.predict(X) == y) > 0.7


def test_images_folder_is_embedded_once_and_cached(tmp_path, capsys):
    """--images on the shipped photos (one folder per class, train/ and test/): the real
    backbone embeds them in the first run; the second run reads the cache."""
    root = tmp_path / "fashion3"
    shutil.copytree(ASSETS, root)
    argv = [
        "bench", "--images", str(root), "--shots", "1,2", "--draws", "2", "--tasks", "all",
        "--methods", ic.DEFAULT_PRESET, "--no-baselines", "--no-probe", "--cache-dir",
        str(tmp_path / "cache"), "--out", str(tmp_path / "r"), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    first = json.loads((tmp_path / "r.json").read_text())
    assert first["embeddings"]["train"]["cached"] is False
    assert main(argv) == 0
    second = json.loads((tmp_path / "r.json").read_text())
    assert second["embeddings"]["train"]["cached"] is True
    assert [s["mean"] for s in second["summary"]] == pytest.approx(
        [s["mean"] for s in first["summary"]], abs=1e-9
    )
    assert min(s["mean"] for s in first["summary"]) > 50  # 3 garment classes, real photos


def test_bad_embeddings_options_say_what_is_allowed(digits_file, tmp_path, capsys):
    assert main(["bench", "--embeddings", str(tmp_path / "no.npz"), "--shots", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    argv = ["bench", "--embeddings", str(digits_file), "--images", str(tmp_path), "--shots", "1"]
    assert main(argv) == 2
    assert "not both" in capsys.readouterr().err
    unlabelled = ic.write_embeddings(tmp_path / "u.npz", np.eye(3), None, ["a", "b", "c"], "x")
    assert main(["bench", "--embeddings", str(unlabelled), "--shots", "1"]) == 2
    assert "has no labels" in capsys.readouterr().err
    assert not (tmp_path / "imprint-fewshot-u-x-all.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shots", "0,2"], "shots must be integers >= 1 or all"),  # 0 is the pool inside
        (["--shots=-1,all"], "shots must be integers >= 1 or all"),
        (["--shots", "30", "--pool-per-class", "20"], "pool_per_class=20 is smaller than"),
        (["--shots", "5", "--draws", "0"], "draws must be >= 1"),
    ],
)
def test_bad_shot_options_are_refused_before_any_fit(digits_file, argv, message, tmp_path, capsys):
    """On a small embeddings file a wrongly accepted option would run (and write) in seconds."""
    out = tmp_path / "out"
    argv = ["bench", "--embeddings", str(digits_file), "--out", str(out / "r"), *argv]
    assert main([*argv, "--no-progress", "--methods", ic.DEFAULT_PRESET]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
