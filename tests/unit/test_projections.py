"""PCA/UMAP maps: extra points land consistently, caching, UMAP warm-up and fallback."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core import projections as pj


def data(n=40, d=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) + np.linspace(0, 3, d)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("shape", [(40, 50), (700, 600)])  # exact and randomized SVD
def test_pca_places_a_copy_of_a_training_point_on_that_point(dim, shape):
    X = data(*shape)
    mean = X.mean(0)
    r = pj.project(X, "pca", dim=dim, extra={"copies": X[[3, 17]], "mean": mean})
    assert r.method == "pca" and not r.fallback and r.note == ""
    assert r.coords.shape == (shape[0], dim)
    np.testing.assert_allclose(r.extra["copies"], r.coords[[3, 17]], atol=1e-9)
    np.testing.assert_allclose(r.extra["mean"], np.zeros((1, dim)), atol=1e-9)
    # the first axis carries at least as much variance as the second, and the ratios are sane
    ev = r.explained_variance
    assert len(ev) == dim and 1 >= ev[0] >= ev[1] > 0
    coords_var = r.coords.var(0)
    assert coords_var[0] >= coords_var[1]


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    X = data(60, 20, seed=4)
    ours = pj.project(X, "pca", dim=3).coords
    theirs = PCA(3).fit_transform(X)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-8)


def test_array_extra_and_normalize_option():
    X = data()
    T = data(5, seed=1)
    raw = pj.project(X, extra=T)
    assert isinstance(raw.extra, np.ndarray) and raw.extra.shape == (5, 2)
    scaled = pj.project(X * 7.0, extra=T * 3.0, normalize=True)
    unit = pj.project(X / np.linalg.norm(X, axis=1, keepdims=True), extra=T, normalize=True)
    np.testing.assert_allclose(scaled.coords, unit.coords, atol=1e-9)
    np.testing.assert_allclose(scaled.extra, unit.extra, atol=1e-9)


def test_results_are_cached_and_read_only():
    pj.clear_cache()
    X = data(300, 40)
    a = pj.project(X, extra={"p": X[:4]})
    b = pj.project(X.copy(), extra={"p": X[:4].copy()})
    assert a is b
    assert pj.project(X, dim=3) is not a
    with pytest.raises(ValueError):
        a.coords[0, 0] = 1.0


def test_tiny_sets():
    # PCA coordinates come out of an SVD: zero up to rounding (5.55e-17 seen on one machine)
    one = pj.project(np.ones((1, 5)), dim=3)
    assert one.coords.shape == (1, 3)
    np.testing.assert_allclose(one.coords, 0.0, atol=1e-12)
    two = pj.project(np.eye(5)[:2], dim=3)  # rank 1: the missing axes are zeros
    assert two.coords.shape == (2, 3)
    np.testing.assert_allclose(two.coords[:, 1:], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(two.coords[:, 0]), np.sqrt(0.5), rtol=1e-12)
    small = pj.project(np.eye(5)[:3], "umap", dim=2)
    assert small.method == "pca" and small.fallback and "at least" in small.note


def test_bad_input():
    with pytest.raises(ValueError, match="method"):
        pj.project(data(), "tsne")
    with pytest.raises(ValueError, match="2 or 3"):
        pj.project(data(), dim=4)
    with pytest.raises(ValueError, match="dimensions"):
        pj.project(data(), extra={"test": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="NaN"):
        pj.project(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="empty"):
        pj.project(np.zeros((0, 4)))


def test_exact_neighbours_match_sklearn():
    from sklearn.neighbors import NearestNeighbors

    X = data(120, 30, seed=6)
    T = data(7, 30, seed=7)
    idx, dist = pj.knn(T, X, 5, self_first=False)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(T)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4)
    idx, dist = pj.knn(X, X, 4, self_first=True)
    np.testing.assert_array_equal(idx[:, 0], np.arange(len(X)))
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-6)


@pytest.mark.slow
def test_umap_warm_up_fallback_and_map():
    X = data(80, 30, seed=2)
    X[:40] += 6.0  # two groups
    thread = pj.warm_up_umap()
    assert pj.warm_up_umap() is thread  # idempotent
    quick = pj.project(X, "umap", blocking=False)
    if not pj.umap_ready():  # still compiling: a PCA map and a sentence, immediately
        assert quick.method == "pca" and quick.requested == "umap" and quick.fallback
        assert "Showing PCA" in quick.note
    assert pj.wait_for_umap(timeout=300)
    assert pj.umap_ready()
    assert pj.umap_error() == ""
    r = pj.project(X, "umap", dim=2, extra={"copies": X[:3], "far": X[45:47]}, seed=0)
    assert r.method == "umap" and not r.fallback
    assert r.coords.shape == (80, 2) and r.extra["copies"].shape == (3, 2)
    # the two groups stay apart and a copy of a training point lands among its own group
    a, b = r.coords[:40].mean(0), r.coords[40:].mean(0)
    for p, own, other in [(r.extra["copies"][0], a, b), (r.extra["far"][0], b, a)]:
        assert np.linalg.norm(p - own) < np.linalg.norm(p - other)
    assert pj.project(X, "umap", dim=2, extra={"copies": X[:3], "far": X[45:47]}) is r
    r3 = pj.project(X[:12], "umap", dim=3)  # tiny: neighbours capped, random init
    assert r3.method == "umap" and r3.coords.shape == (12, 3)
    assert pj.project(X, "umap", blocking=False).method == "umap"
