"""The few-shot protocol (imprint_core.bench.fewshot, `imprint bench --shots`), the default preset and
what it is built from: data-driven whitening shrinkage and the closed-form `sized` generator."""

import csv
import json

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.bench import PROBE
from imprint_core.bench.baselines import SimpleShot
from imprint_core.bench.fewshot import (
    SIMPLESHOT,
    FewShotConfig,
    draw_support,
    interval95,
    run_fewshot,
)
from imprint_core.cli import main
from imprint_core.generation import SIZED_PER_PROXY, sized_k
from imprint_core.normalisation import dof_shrinkage, fit_whitener, l2

PAPER = {
    "qi": ("l2", "mean", 1, "l2", "l2", "max", "inner_product", 1, "uniform"),
    "hosoda": ("none", "mean", 1, "quantile", "none", "max", "inner_product", 1, "uniform"),
    "janson": ("none", "mean", 1, "none", "none", "mnn", "euclidean", 1, "distance"),
    "ours": ("l2", "kmeans", 20, "l2", "l2", "max", "inner_product", 1, "uniform"),
    "oracle": ("none", "ls", 1, "none", "none", "max", "inner_product", 1, "uniform"),
}
KEYS = ("norm_pre", "gen", "k", "norm_post", "norm_inf", "agg", "distance", "m", "weighting")


def test_paper_presets_are_unchanged_and_the_default_is_a_preset():
    for name, values in PAPER.items():
        assert ic.PRESETS[name] == dict(zip(KEYS, values, strict=True))
    assert ic.DEFAULT_PRESET in ic.PRESETS and ic.DEFAULT_PRESET not in PAPER
    ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET)._check_params()


# ------------------------------------------------------------------------ protocol pieces
def test_draw_support_is_seeded_per_shots_and_draw():
    labels = np.repeat([3, 7, 9], 12)
    rows = draw_support(labels, 4, draw=0)
    assert np.bincount(labels[rows], minlength=10)[[3, 7, 9]].tolist() == [4, 4, 4]
    assert len(set(rows.tolist())) == 12 and (np.diff(rows) > 0).all()
    assert rows.tolist() == draw_support(labels, 4, draw=0).tolist()
    assert rows.tolist() != draw_support(labels, 4, draw=1).tolist()
    with pytest.raises(ValueError, match="class 3 has 12 images in the pool, fewer than 13 shots"):
        draw_support(labels, 13, draw=0)


def test_interval95_is_the_student_t_half_width():
    mean, half = interval95([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * s / sqrt(n)
    assert interval95([5.0]) == (pytest.approx(5.0), 0.0)


def test_simpleshot_centres_normalises_and_takes_the_nearest_mean():
    X = np.array([[3.0, 1], [3, 3], [1, 3], [1, 1]])
    y = np.array(["a", "a", "b", "b"])
    ss = SimpleShot().fit(X, y)
    np.testing.assert_allclose(ss.mean_, [2, 2])
    # centred: a = (1,-1),(1,1) -> unit vectors, mean (1/sqrt2, 0); b mirrored
    np.testing.assert_allclose(ss.centroids_, [[2**-0.5, 0], [-(2**-0.5), 0]], atol=1e-12)
    assert ss.predict(np.array([[2.5, 9], [1.9, -9]])).tolist() == ["a", "b"]


# ------------------------------------------------------------------------ shrinkage rules
def residuals(X, y):
    U = l2(X)
    return np.concatenate([U[y == c] - U[y == c].mean(0) for c in np.unique(y)])


@pytest.mark.parametrize("n", [12, 200])  # fewer and more residuals than dimensions
def test_oas_and_ledoit_wolf_match_scikit_learn(n):
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 30)) @ rng.normal(size=(30, 30)) + 4
    y = np.repeat([0, 1], n // 2)
    R = residuals(X, y)
    lw = fit_whitener(X, y, "ledoit_wolf").shrinkage
    assert lw == pytest.approx(ledoit_wolf(R, assume_centered=True)[1], rel=1e-6)
    # OAS with n - C degrees of freedom: scikit-learn's formula with n_samples = n - C
    S = R.T @ R / n
    mu, alpha = np.trace(S) / 30, np.mean(S**2)
    expected = min((alpha + mu**2) / ((n - 2 + 1) * (alpha - mu**2 / 30)), 1.0)
    assert fit_whitener(X, y, "oas").shrinkage == pytest.approx(expected, rel=1e-6)
    assert fit_whitener(X, y, "dof").shrinkage == pytest.approx(30 / (30 + n - 2))


def test_dof_shrinkage_falls_with_the_number_of_images():
    assert dof_shrinkage(1280, 0) == pytest.approx(
        1.0
    )  # one image per class: no within-class scatter
    assert dof_shrinkage(1280, 90) == pytest.approx(1280 / 1370)
    assert dof_shrinkage(1280, 4990) == pytest.approx(0.2041, abs=1e-4)


def test_bad_shrinkage_names_the_option_and_what_is_allowed():
    X, y = np.random.default_rng(0).normal(size=(6, 3)), np.repeat([0, 1], 3)
    for bad in ("lots", 0, 1.5, True):
        clf = ic.ImprintClassifier(norm_pre="whiten", norm_inf="whiten", whiten_shrinkage=bad)
        with pytest.raises(ValueError, match=r"whiten_shrinkage must be in \(0, 1\] or one of dof"):
            clf.fit(X, y)
        assert not hasattr(clf, "classes_")


# ------------------------------------------------------------------------ sized generator
def test_sized_gives_one_proxy_per_block_of_images_and_the_mean_below():
    rng = np.random.default_rng(0)
    n_small, n_big = SIZED_PER_PROXY - 1, 3 * SIZED_PER_PROXY + 7
    X = rng.normal(size=(n_small + n_big, 5))
    y = np.r_[np.zeros(n_small), np.ones(n_big)].astype(int)
    clf = ic.ImprintClassifier.from_preset("ours", gen="sized", k=20).fit(X, y)
    assert clf.proxy_counts_.tolist() == [1, 3]
    np.testing.assert_allclose(clf.proxies_of(0)[0], l2(l2(X[:n_small]).mean(0, keepdims=True))[0])
    assert ic.ImprintClassifier.from_preset("ours", gen="sized", k=2).fit(
        X, y
    ).proxy_counts_.tolist() == [1, 2]
    assert [sized_k(n, 20) for n in (1, 49, 50, 999, 5000)] == [1, 1, 1, 19, 20]
    # per-class: adding a class gives it the proxies a full fit would
    part = ic.ImprintClassifier.from_preset("ours", gen="sized").fit(
        X[:n_small].repeat(2, 0), np.repeat([0, 2], n_small)
    )
    part.add_class(X[n_small:], 1)
    np.testing.assert_allclose(part.proxies_of(1), clf.proxies_of(1), atol=1e-6)


# ------------------------------------------------------------------------ real runs
@pytest.mark.fashion_mnist
def test_fewshot_run_and_cli_on_fashion_mnist(tmp_path, capsys):
    from imprint_core.backbones import get_backbone

    cfg = FewShotConfig(
        backbone=get_backbone(),
        shots=(1, 3),
        draws=2,
        pool_per_class=4,
        test_per_class=3,
        tasks=("short",),
        methods=tuple(ic.bench.preset_methods(["qi", ic.DEFAULT_PRESET])),
        cache_dir=tmp_path,
        progress=False,
    )
    result = run_fewshot(cfg)
    names = ["qi", ic.DEFAULT_PRESET, PROBE, SIMPLESHOT]
    assert len(result.runs) == 2 * 2 * len(names)
    assert [s["method"] for s in result.summary if s["shots"] == 1] == names
    for s in result.summary:
        assert s["draws"] == 2 and s["ci95"] >= 0 and 0 <= s["mean"] <= 100
    # 3 shots of 3 classes from a pool of 4: well above chance (33 %) on real embeddings
    three = {s["method"]: s["mean"] for s in result.summary if s["shots"] == 3}
    assert three["qi"] > 50 and three[ic.DEFAULT_PRESET] > 50
    same = [r for r in result.runs if r["method"] == "qi" and r["shots"] == 1]
    assert same[0]["accuracy"] != same[1]["accuracy"] or same[0]["draw"] != same[1]["draw"]
    assert result.table("short").splitlines()[0].split() == ["method", "1", "shot", "3", "shots"]

    out = tmp_path / "res" / "fs"
    argv = [
        "bench", "--shots", "1,3", "--draws", "2", "--pool-per-class", "4",
        "--test-per-class", "3", "--tasks", "short", "--methods", f"qi,{ic.DEFAULT_PRESET}",
        "--cache-dir", str(tmp_path), "--out", str(out), "--no-progress", "--no-baselines",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cached" not in printed and "4 draws" not in printed and "2 draws" in printed
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["settings"]["protocol"] == "few-shot" and data["settings"]["shots"] == [1, 3]
    by_key = {(s["method"], s["shots"]): s["mean"] for s in result.summary}
    for s in data["summary"]:  # the same draws from the same cached embeddings
        assert s["mean"] == pytest.approx(by_key[s["method"], s["shots"]], abs=1e-9)
    with open(f"{out}.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(result.summary)
    assert "| method | 1 shot | 3 shots |" in (tmp_path / "res" / "fs.md").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shots", "1,x"], "--shots must be comma-separated integers"),
        (["--shots", "0,2"], "shots must be integers >= 1"),
        (["--shots", "5", "--draws", "0"], "draws must be >= 1"),
        (["--shots", "30", "--pool-per-class", "20"], "pool_per_class=20 is smaller than"),
    ],
)
def test_fewshot_cli_bad_options(argv, message, tmp_path, capsys):
    code = main(["bench", "--no-progress", "--cache-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not list(tmp_path.iterdir())  # refused before anything is embedded or written
