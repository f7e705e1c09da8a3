"""Proxies per class: the advice (the accuracy-vs-k curve read by the one-standard-error rule) and
the silhouette reading. The advice under the default preset on the shipped multi-modal example:
tests/estimator/test_advice_coherence.py."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core import ImprintClassifier
from imprint_core.kcurve import ADVICE_MAX_K, accuracy_vs_k, advice_settings
from imprint_core.modes import (
    MIN_PER_CLUSTER,
    advise_proxies,
    curve_agreement,
    recommend_k,
    recommend_k_per_class,
)
from imprint_core.presets import PRESETS


def class_with_modes(m, n=60, d=64, seed=0, spread=0.3):
    """One class of n points in m separated modes around a common direction (like embeddings)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(d)
    base *= 2.0 / np.linalg.norm(base)
    centres = rng.standard_normal((m, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    lab = np.arange(n) % m
    return base + centres[lab] + spread / np.sqrt(d) * rng.standard_normal((n, d))


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [64, 1280])
def test_separated_modes_give_k_equal_to_the_number_of_modes(m, d):
    k, reason = recommend_k(class_with_modes(m, d=d, seed=m), label="tops")
    assert k == m, reason
    if m == 1:
        assert "no clear sub-groups" in reason and "'tops'" in reason
    else:
        assert f"'tops' splits into {m} well-separated groups" in reason
        assert f"use {m} proxies" in reason


def test_few_samples_give_one_proxy():
    X = class_with_modes(3, n=2 * MIN_PER_CLUSTER - 1)
    k, reason = recommend_k(X, label="cats")
    assert k == 1
    assert f"only {len(X)} image(s)" in reason and "'cats'" in reason


def test_elongated_single_blob_is_not_split():
    """A cigar-shaped Gaussian scores a high silhouette when cut; the shape-matched reference
    recognises it as one blob."""
    rng = np.random.default_rng(5)
    d = 64
    scales = np.r_[5.0, 3.0, np.full(d - 2, 0.3)]
    X = rng.standard_normal((120, d)) * scales + 20 * np.eye(d)[5]
    k, reason = recommend_k(X)
    assert k == 1, reason
    assert reason.startswith("This class shows no clear sub-groups")


def test_max_k_limits_the_recommendation():
    X = class_with_modes(4, n=80, seed=2)
    assert recommend_k(X, max_k=4)[0] == 4
    assert recommend_k(X, max_k=1)[0] == 1


def test_seeded_and_deterministic():
    X = class_with_modes(3, n=450, d=32, seed=9)  # > MAX_SAMPLES: subsampled with the seed
    assert recommend_k(X, seed=1) == recommend_k(X, seed=1)


def straddling_classes(m, n_a=60, n_b=15, d=32, spread=0.05, seed=0):
    """Class 'a' in m modes around class 'b': a's mean lands on b, so one proxy per class fails
    and m k-means proxies for 'a' are the known right answer ('b', with fewer than 20 images,
    keeps its mean)."""
    rng = np.random.default_rng(seed)
    e = np.eye(d)
    angles = 2 * np.pi * np.arange(m) / m
    modes = e[0] + 0.8 * (np.cos(angles)[:, None] * e[1] + np.sin(angles)[:, None] * e[2])
    a = modes[np.arange(n_a) % m] + spread * rng.standard_normal((n_a, d))
    b = e[0] + spread * rng.standard_normal((n_b, d))
    return np.vstack([a, b]), np.array(["a"] * n_a + ["b"] * n_b)


@pytest.mark.parametrize("m", [2, 3])
def test_advice_finds_the_known_number_of_modes(m):
    X, y = straddling_classes(m)
    advice = advise_proxies(X, y)
    # one k for every class: the smallest k of the curve within one standard error of the best
    assert advice["k"] == {"a": m, "b": m} and advice["k_shared"] == m, advice["summary"]
    assert advice["gen"] == "kmeans" and advice["settings"]["k"] == m
    assert advice["reasons"]["a"].startswith(f"'a': {m} k-means proxies")
    assert "accuracy-vs-k curve" in advice["summary"] and "More proxies help" in advice["summary"]
    # "Apply" fits exactly this head: m proxies per class
    clf = ImprintClassifier(**advice["settings"]).fit(X, y)
    assert clf.proxy_counts_.tolist() == [m, m]


def test_advice_uses_the_heads_settings():
    X, y = straddling_classes(2, n_b=12)
    settings = {**PRESETS["ours"], "seed": 3}
    advice = advise_proxies(X, y, settings)
    assert advice_settings(settings)["k"] == ADVICE_MAX_K
    assert advice["settings"]["seed"] == 3 and advice["settings"]["norm_pre"] == "l2"
    assert advice["settings"]["gen"] == "kmeans" and advice["settings"]["k"] == advice["k_shared"]
    assert recommend_k_per_class(X, y, settings) == {
        c: (advice["k"][c], advice["reasons"][c]) for c in ("a", "b")
    }
    # the head's gen and k do not enter the evidence: a mean head gets the same advice
    assert advise_proxies(X, y, {**settings, "gen": "mean", "k": 1})["k"] == advice["k"]


def test_curve_agreement_on_known_answers():
    X, y = straddling_classes(2, n_a=40)
    curve = accuracy_vs_k(X, y, ks=(1, 2, 3), gens=("kmeans",))
    advice = advise_proxies(X, y, max_k=3)
    assert advice["k_shared"] == 2
    text = curve_agreement(advice, curve)
    assert "best shared k is 2" in text and "The advice (2 proxies per class)" in text
    rng = np.random.default_rng(2)
    e = np.eye(32)
    one = np.vstack(  # two single-mode classes: the mean is enough
        [e[0] + 0.05 * rng.standard_normal((40, 32)), e[3] + 0.05 * rng.standard_normal((30, 32))]
    )
    y_one = np.array(["a"] * 40 + ["b"] * 30)
    flat = accuracy_vs_k(one, y_one, ks=(1, 2, 3), gens=("kmeans",))
    flat_advice = advise_proxies(one, y_one, max_k=3)
    assert flat_advice["k"] == {"a": 1, "b": 1} and flat_advice["gen"] == "mean"
    assert "One proxy per class scores best" in flat_advice["summary"]
    assert "The advice (one proxy per class) is this curve's k" in curve_agreement(
        flat_advice, flat
    )
    # a curve whose line the rule reads differently is not passed off as agreement
    noisy = {**flat, "gens": {"kmeans": {**flat["gens"]["kmeans"]}}}
    noisy["gens"]["kmeans"]["folds"] = [[0.7, 0.7, 0.7], [0.9, 0.9, 0.9], [0.8, 0.8, 0.8]]
    text = curve_agreement(flat_advice, noisy)
    assert "this curve gives k = 2, but the advice says 1" in text


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        recommend_k(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        recommend_k(np.full((12, 3), np.nan), label="x")
    with pytest.raises(ValueError, match="n labels"):
        recommend_k_per_class(np.zeros((4, 2)), [0, 1])
    with pytest.raises(ValueError, match="Unknown classifier setting.*'colour'"):
        advise_proxies(np.zeros((4, 2)), [0, 0, 1, 1], {"colour": "red"})
    with pytest.raises(ValueError, match="max_k must be"):
        advise_proxies(np.zeros((4, 2)), [0, 0, 1, 1], max_k=0)
