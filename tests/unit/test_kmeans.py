"""The fast k-means: same algorithm as scikit-learn's KMeans, checked against it and by properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans, kmeans_plusplus

from imprint_core.kmeans import KMeansResult, Lloyd, kmeans, kmeans_sklearn


def _mixture(seed: int, n_modes: int = 6, n: int = 1200, d: int = 16, spread: float = 6.0):
    """Anisotropic Gaussian modes; returns X (float32) and the mode of each row."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_modes, n)
    centres = rng.normal(0, spread, (n_modes, d))
    shapes = rng.normal(0, 1, (n_modes, d, d)) / np.sqrt(d)
    X = centres[y] + np.einsum("nd,nde->ne", rng.normal(0, 1, (n, d)), shapes[y])
    return X.astype(np.float32), y


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Labels equal up to a renaming of the clusters."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _sq_dists(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    X, C = X.astype(np.float64), C.astype(np.float64)
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_well_separated_blobs_are_recovered_exactly(seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (5, 8)) * 50
    y = np.repeat(np.arange(5), 80)
    X = (centres[y] + rng.normal(0, 1, (400, 8))).astype(np.float32)
    res = kmeans(X, 5, seed=seed)
    assert isinstance(res, KMeansResult)
    assert _same_partition(res.labels, y)
    for j in range(5):  # each centre is the mean of its blob
        np.testing.assert_allclose(res.centers[j], X[res.labels == j].mean(0), atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_init_gives_sklearns_lloyd_run_step_for_step(seed, dtype):
    # The bounds only skip work: from the same start the run must be sklearn's Lloyd run.
    X, _ = _mixture(seed, n_modes=10, spread=1.5)
    X = X.astype(dtype)
    C0, _ = kmeans_plusplus(X, 12, random_state=seed)
    ours = kmeans(X, 12, init=C0)
    ref = KMeans(12, init=C0, n_init=1).fit(X)
    assert np.array_equal(ours.labels, ref.labels_)
    assert ours.n_iter == ref.n_iter_
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-5)


class _SklearnStream:
    """Feeds our seeding the exact random draws sklearn's kmeans_plusplus makes."""

    def __init__(self, seed: int):
        self.rs = np.random.RandomState(seed)

    def integers(self, n):
        return self.rs.choice(n, p=np.full(n, 1.0 / n))

    def uniform(self, size):
        return self.rs.uniform(size=size)


@pytest.mark.parametrize("k", [1, 2, 7, 20])
def test_seeding_is_sklearns_greedy_kmeans_plusplus(k):
    X, _ = _mixture(3, n=500)
    X = X.astype(np.float64)
    _, ref_idx = kmeans_plusplus(X, k, random_state=11)
    Xc = X - X.mean(0)
    C = Lloyd(Xc, np.einsum("ij,ij->i", Xc, Xc), 1e-12).seed(k, _SklearnStream(11))
    np.testing.assert_array_equal(C, Xc[ref_idx])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inertia_within_one_percent_of_sklearn_on_clustered_data(seed):
    X, _ = _mixture(seed + 10, n_modes=8, n=3000, d=24, spread=8.0)
    ours, ref = kmeans(X, 8, seed=seed), kmeans_sklearn(X, 8, seed=seed)
    assert ours.inertia == pytest.approx(ref.inertia, rel=0.01)


def test_inertia_within_one_percent_of_sklearn_with_more_clusters_than_modes():
    # k > modes: many local optima, single runs differ by ~1-2 % either way; medians agree
    X, _ = _mixture(15, n_modes=8, n=1500, d=16, spread=1.0)
    ours = np.median([kmeans(X, 20, seed=s).inertia for s in range(5)])
    ref = np.median([kmeans_sklearn(X, 20, seed=s).inertia for s in range(5)])
    assert ours == pytest.approx(ref, rel=0.01)


def test_kmeans_sklearn_is_plain_sklearn_kmeans():
    X, _ = _mixture(4)
    res = kmeans_sklearn(X, 5, seed=7)
    ref = KMeans(n_clusters=5, random_state=7).fit(X)
    assert res.centers.dtype == np.float32 and res.labels.dtype == np.int64
    # two sklearn runs: its OpenMP reductions may round differently with other thread counts
    np.testing.assert_allclose(res.centers, ref.cluster_centers_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(res.labels, ref.labels_)
    assert res.inertia == pytest.approx(ref.inertia_, rel=1e-6) and res.n_iter == ref.n_iter_


def test_deterministic_under_a_seed_and_seeds_differ():
    X = np.random.default_rng(0).random((300, 4)).astype(np.float32)  # no clear structure
    a, b = kmeans(X, 7, seed=3), kmeans(X, 7, seed=3)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-9) and a.n_iter == b.n_iter
    others = [kmeans(X, 7, seed=s).labels for s in range(4, 9)]
    assert any(not _same_partition(a.labels, o) for o in others)


def test_k_equal_n_gives_each_point_its_own_centre():
    X = np.random.default_rng(1).normal(size=(9, 3)).astype(np.float32)
    res = kmeans(X, 9, seed=0)
    assert sorted(res.labels.tolist()) == list(range(9))
    np.testing.assert_allclose(res.centers[res.labels], X, atol=1e-6)
    assert res.inertia == pytest.approx(0.0, abs=1e-9)


def test_k_equal_one_is_the_mean():
    X, _ = _mixture(5, n=200)
    res = kmeans(X, 1)
    np.testing.assert_allclose(res.centers[0], X.mean(0), atol=1e-5)
    assert set(res.labels.tolist()) == {0}
    assert res.inertia == pytest.approx(((X - X.mean(0)) ** 2).sum(), rel=1e-5)


def test_empty_cluster_is_relocated_like_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5))
    C0 = X[:4].copy()
    C0[2] += 100.0  # far from every point: empty after the first assignment
    ours = kmeans(X, 4, init=C0)
    ref = KMeans(4, init=C0, n_init=1).fit(X)
    assert np.bincount(ours.labels, minlength=4).min() > 0
    assert np.array_equal(ours.labels, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-9)


def test_more_clusters_than_distinct_points():
    # 3 distinct points, duplicated: k=5 leaves clusters that nothing can fill
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]], np.float32), 10, axis=0)
    res = kmeans(X, 5, seed=0)
    assert np.isfinite(res.centers).all() and res.inertia == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(res.centers[res.labels], X, atol=1e-6)
    assert {tuple(c) for c in res.centers.round(4)} == {tuple(x) for x in X}


def test_duplicates_with_spread_points_relocate_and_stay_consistent():
    rng = np.random.default_rng(4)
    X = np.concatenate([np.zeros((200, 3)), rng.normal(0, 1, (6, 3)) + 10]).astype(np.float32)
    res = kmeans(X, 6, seed=1)
    D = _sq_dists(X, res.centers)
    assert np.all(D[np.arange(len(X)), res.labels] <= D.min(1) + 1e-3)
    assert np.bincount(res.labels, minlength=6).min() > 0


def test_float64_input_is_computed_in_float64():
    X, _ = _mixture(6, n=800)
    X = X.astype(np.float64) + 1e4  # a large offset: float32 would lose the structure
    C0, _ = kmeans_plusplus(X, 6, random_state=0)
    ours = kmeans(X, 6, init=C0)
    ref = KMeans(6, init=C0, n_init=1).fit(X)
    assert ours.centers.dtype == np.float32 and ours.labels.dtype == np.int64
    assert np.array_equal(ours.labels, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-9)


def test_tol_zero_stops_at_strict_convergence():
    X, _ = _mixture(7, n=600)
    res = kmeans(X, 6, seed=0, tol=0.0)
    ref = kmeans(X, 6, seed=0, tol=0.0, max_iter=res.n_iter + 5)
    assert res.n_iter < 300
    np.testing.assert_array_equal(res.labels, ref.labels)


def test_max_iter_caps_the_iterations_and_labels_follow_centres():
    X, _ = _mixture(8, n=1000, spread=1.0)
    res = kmeans(X, 15, seed=0, max_iter=2)
    assert res.n_iter == 2
    D = _sq_dists(X, res.centers)
    assert np.all(D[np.arange(len(X)), res.labels] <= D.min(1) * (1 + 1e-5) + 1e-4)


def test_accepts_torch_tensors_and_integer_arrays():
    import torch

    X, y = _mixture(9, n=300)
    a = kmeans(torch.from_numpy(X), 4, seed=0)
    b = kmeans(X, 4, seed=0)
    np.testing.assert_array_equal(a.labels, b.labels)
    Xi = np.repeat(np.array([[0, 0], [100, 0], [0, 100]]), 5, axis=0)
    assert _same_partition(kmeans(Xi, 3).labels, np.repeat(np.arange(3), 5))


@pytest.mark.parametrize(
    ("X", "k", "kwargs", "match"),
    [
        (np.ones((5, 2)), 0, {}, "k must be >= 1"),
        (np.ones((5, 2)), -3, {}, "k must be >= 1"),
        (np.ones((5, 2)), 6, {}, r"k=6 is larger than the number of samples n=5"),
        (np.ones((5, 2)), 2.5, {}, "k must be an integer"),
        (np.ones((5, 2)), True, {}, "k must be an integer"),
        (np.ones(5), 2, {}, "must be a 2-D array.*got a 1-D"),
        (np.ones((2, 3, 4)), 2, {}, "must be a 2-D array.*got a 3-D"),
        (np.ones((0, 3)), 1, {}, "X is empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), 1, {}, "NaN or infinite"),
        (np.array([[1.0, np.inf], [0.0, 1.0]], np.float32), 1, {}, "NaN or infinite"),
        (np.full((3, 2), 1e30, np.float32), 1, {}, "too large"),
        (np.array([["a", "b"]]), 1, {}, "real numbers"),
        (np.ones((5, 2)), 2, {"tol": -1.0}, "tol must be"),
        (np.ones((5, 2)), 2, {"max_iter": 0}, "max_iter must be"),
        (np.ones((5, 2)), 2, {"init": np.ones((3, 2))}, r"init must be .* shape"),
        (np.ones((5, 2)), 2, {"init": np.array([[0.0, np.nan], [1, 1]])}, "init contains NaN"),
    ],
)
def test_bad_input_gives_a_clear_error(X, k, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kmeans(X, k, **kwargs)


def test_sklearn_path_validates_too():
    with pytest.raises(ValueError, match="larger than the number of samples"):
        kmeans_sklearn(np.ones((3, 2)), 4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        kmeans_sklearn(np.array([[np.nan, 1.0], [0.0, 1.0]]), 1)


@st.composite
def _data_and_k(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    elements = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
    X = draw(arrays(dtype, (n, d), elements=elements))
    return X, draw(st.integers(1, n)), draw(st.integers(0, 2**31 - 1))


@settings(max_examples=120, deadline=None)
@given(_data_and_k())
def test_labels_are_nearest_centres_and_inertia_is_their_sum(case):
    X, k, seed = case
    res = kmeans(X, k, seed=seed)
    assert res.centers.shape == (k, X.shape[1]) and res.centers.dtype == np.float32
    assert res.labels.shape == (len(X),) and res.labels.dtype == np.int64
    assert res.labels.min() >= 0 and res.labels.max() < k
    assert 1 <= res.n_iter <= 300
    D = _sq_dists(X, res.centers)
    own = D[np.arange(len(X)), res.labels]
    scale = (X.astype(np.float64) ** 2).sum(1).max() + 1.0
    assert np.all(own <= D.min(1) + 1e-5 * scale)  # argmin up to float rounding
    assert res.inertia == pytest.approx(own.sum(), rel=1e-4, abs=1e-5 * scale)
