"""Recommended proxies per class from within-class cluster structure."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core.modes import MIN_PER_CLUSTER, recommend_k, recommend_k_per_class


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


def test_per_class_dictionary():
    X = np.vstack(
        [class_with_modes(1, seed=1), class_with_modes(3, seed=2), class_with_modes(2, n=6)]
    )
    y = np.array(["shoes"] * 60 + ["tops"] * 60 + ["bags"] * 6)
    out = recommend_k_per_class(X, y)
    assert list(out) == ["bags", "shoes", "tops"]
    assert {c: k for c, (k, _) in out.items()} == {"bags": 1, "shoes": 1, "tops": 3}
    assert all(isinstance(r, str) and r for _, r in out.values())


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        recommend_k(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        recommend_k(np.full((12, 3), np.nan), label="x")
    with pytest.raises(ValueError, match="n labels"):
        recommend_k_per_class(np.zeros((4, 2)), [0, 1])
