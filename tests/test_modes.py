"""Proxies per class: the advice (auto's cross-validated choice) and the silhouette reading."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core import ImprintClassifier
from imprint_core.kcurve import accuracy_vs_k
from imprint_core.modes import (
    ADVICE_MAX_K,
    MIN_PER_CLUSTER,
    advice_settings,
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
    assert advice["k"] == {"a": m, "b": 1}, advice["reasons"]
    assert advice["gen"] == "auto"
    assert advice["reasons"]["a"].startswith(f"'a': {m} proxies. Cross-validation")
    assert "too few for a second proxy" in advice["reasons"]["b"]
    assert "gen=auto" in advice["summary"] and "accuracy-vs-k curve" in advice["summary"]
    # the advice is exactly what the 'auto' head itself chooses on these images
    clf = ImprintClassifier(**advice["settings"]).fit(X, y)
    assert {str(c): k for c, k in clf.auto_k_.items()} == advice["k"]


def test_advice_uses_the_heads_settings_and_keeps_small_classes_at_the_mean():
    X, y = straddling_classes(2, n_b=12)
    settings = {**PRESETS["ours"], "seed": 3}
    advice = advise_proxies(X, y, settings)
    assert advice["settings"]["gen"] == "auto" and advice["settings"]["k"] == ADVICE_MAX_K
    assert advice["settings"]["seed"] == 3 and advice["settings"]["norm_pre"] == "l2"
    assert advice["k"]["b"] == 1
    assert "12 image(s) are too few for a second proxy" in advice["reasons"]["b"]
    assert recommend_k_per_class(X, y, settings) == {
        c: (advice["k"][c], advice["reasons"][c]) for c in ("a", "b")
    }


def test_a_fitted_auto_head_is_reused_and_a_different_one_is_not():
    X, y = straddling_classes(2, seed=4)
    settings = advice_settings(None)
    head = ImprintClassifier(**settings).fit(X, y)
    head.auto_k_ = {"a": 7, "b": 5}  # marks reuse: a refit could never produce these here
    assert advise_proxies(X, y, settings, head=head)["k"] == {"a": 7, "b": 5}
    other = ImprintClassifier(**{**settings, "seed": 1}).fit(X, y)
    other.auto_k_ = {"a": 7, "b": 5}
    assert advise_proxies(X, y, {**settings, "seed": 2}, head=other)["k"] == {"a": 2, "b": 1}


def test_curve_agreement_on_known_answers():
    X, y = straddling_classes(2, n_a=40)
    curve = accuracy_vs_k(X, y, ks=(1, 2, 3), gens=("kmeans",))
    advice = advise_proxies(X, y)
    assert curve["references"]["auto"]["mean"] > curve["gens"]["kmeans"]["mean"][0]
    text = curve_agreement(advice, curve)
    assert "Both say more proxies help" in text and "a" in text.split("to ")[-1]
    rng = np.random.default_rng(2)
    e = np.eye(32)
    one = np.vstack(  # two single-mode classes: the mean is enough
        [e[0] + 0.05 * rng.standard_normal((40, 32)), e[3] + 0.05 * rng.standard_normal((30, 32))]
    )
    y_one = np.array(["a"] * 40 + ["b"] * 30)
    flat = accuracy_vs_k(one, y_one, ks=(1, 2, 3), gens=("kmeans",))
    flat_advice = advise_proxies(one, y_one)
    assert flat_advice["k"] == {"a": 1, "b": 1}
    assert "more proxies did not raise" in flat_advice["reasons"]["a"]
    text = curve_agreement(flat_advice, flat)
    assert "Both say one proxy per class" in text
    # a gain within the noise is called weak, not "one proxy is enough"
    noisy = {**flat, "gens": {"kmeans": {**flat["gens"]["kmeans"]}}}
    noisy["gens"]["kmeans"]["mean"] = [0.80, 0.83, 0.81]
    noisy["gens"]["kmeans"]["folds"] = [[0.7, 0.9, 0.8], [0.9, 0.8, 0.8], [0.8, 0.8, 0.83]]
    text = curve_agreement(flat_advice, noisy)
    assert "best shared k is 2" in text and "evidence for more proxies is weak" in text


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


@pytest.mark.slow
def test_advice_agrees_with_the_curve_on_the_multimodal_example():
    """The shipped 'merged' example (tops / footwear / other, each several Fashion-MNIST classes)
    embedded by the built-in backbone: the silhouette advice said 1 proxy for every class while
    the curve preferred more; the advice now comes from the curve's kind of evidence."""
    import imprint_core as ic
    from imprint_core.session import examples as ex

    train = ex.train_images("merged")
    X = ic.get_backbone().embed([str(p) for _, p in train])
    y = np.array([c for c, _ in train])
    advice = advise_proxies(X, y)
    curve = accuracy_vs_k(X, y, ks=(1, 2, 3), gens=("kmeans",))
    km = curve["gens"]["kmeans"]["mean"]
    best = int(np.argmax(km))
    assert curve["ks"][best] > 1 and km[best] > km[0]  # the curve prefers more proxies
    assert max(advice["k"].values()) > 1, advice["reasons"]  # and so does the advice
    text = curve_agreement(advice, curve)
    assert "agrees in direction" in text or "Both say more proxies help" in text, text
    head = ImprintClassifier(**advice["settings"]).fit(X, y)
    assert {str(c): k for c, k in head.auto_k_.items()} == advice["k"]


def _has_sized() -> bool:
    from imprint_core import generation

    return hasattr(generation, "sized_k")


@pytest.mark.skipif(not _has_sized(), reason="this tree has no gen 'sized'")
def test_a_sized_head_is_advised_by_its_own_rule():
    from imprint_core.generation import SIZED_PER_PROXY, sized_k

    X, y = straddling_classes(2, n_a=3 * SIZED_PER_PROXY, n_b=SIZED_PER_PROXY - 1)
    advice = advise_proxies(X, y, {**PRESETS["ours"], "gen": "sized"}, max_k=20)
    assert advice["gen"] == "sized" and advice["settings"]["gen"] == "sized"
    assert advice["k"] == {"a": sized_k(3 * SIZED_PER_PROXY, 20), "b": 1}
    assert f"one per {SIZED_PER_PROXY} of its" in advice["reasons"]["a"]
    assert "gen=sized" in advice["summary"]
