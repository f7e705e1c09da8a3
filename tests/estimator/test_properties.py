"""Property tests: invariances, determinism and save/load round trips on random data."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imprint_core as ic

# The number of examples and whether they are random come from the profile (tests/conftest.py):
# fixed examples by default, `--hypothesis-profile=explore` for many random ones.
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# options whose result does not depend on the order of the classes
ORDER_FREE = [
    {"gen": "mean"},
    {"gen": "all"},
    {"gen": "kmeans", "k": 3},
    {"gen": "kmedoids", "k": 2},
    {"gen": "cov_max", "k": 2},
    {"gen": "ls", "norm_pre": "none", "norm_post": "none", "norm_inf": "none"},
    {"gen": "mean", "agg": "mnn", "distance": "euclidean", "m": 1},
    {"gen": "all", "agg": "mnn", "distance": "manhattan", "m": 3, "weighting": "distance"},
]


@st.composite
def datasets(draw, min_classes=2, max_classes=4):
    C = draw(st.integers(min_classes, max_classes))
    d = draw(st.integers(2, 12))
    n_per = draw(st.integers(3, 9))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3, size=(C, d))
    X = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres])
    y = np.repeat(np.arange(C), n_per)
    Xt = rng.normal(scale=3, size=(15, d))
    return X, y, Xt


@SETTINGS
@given(datasets(), st.sampled_from(ORDER_FREE), st.randoms(use_true_random=False))
def test_invariant_to_permuting_classes(data, params, rnd):
    X, y, Xt = data
    C = y.max() + 1
    perm = list(range(C))
    rnd.shuffle(perm)
    names = np.array([f"c{p}" for p in perm])  # renaming changes the order of classes_
    a = ic.ImprintClassifier(**params).fit(X, y)
    b = ic.ImprintClassifier(**params).fit(X, names[y])
    sa, sb = a.class_scores(Xt), b.class_scores(Xt)
    order = [list(b.classes_).index(n) for n in names]  # b's column of each of a's classes
    np.testing.assert_allclose(sa, sb[:, order], rtol=1e-4, atol=1e-5)
    # rows shuffled: the head is the same up to order of samples within a class
    idx = np.random.default_rng(0).permutation(len(X))
    if params["gen"] in ("mean", "ls", "all", "cov_max"):
        c = ic.ImprintClassifier(**params).fit(X[idx], y[idx])
        # another summation order: float rounding, amplified by an ill-conditioned least
        # squares (fewer samples than dimensions), so the tolerance follows the scores' scale
        np.testing.assert_allclose(c.class_scores(Xt), sa, rtol=1e-4, atol=1e-4 * np.abs(sa).max())


POWERS_OF_TWO = st.integers(-8, 8).map(lambda e: 2.0**e)


@SETTINGS
@given(
    datasets(),
    POWERS_OF_TWO,
    POWERS_OF_TWO,
    st.sampled_from(["mean", "kmeans", "all", "kmedoids", "fps", "random"]),
)
def test_scale_invariance_under_l2(data, a, b, gen):
    """Scaling by a power of two is exact in floating point, so L2 normalisation gives the very
    same vectors and even the discrete generators (k-means, k-medoids) must agree exactly."""
    X, y, Xt = data
    clf = ic.ImprintClassifier(gen=gen, k=2, seed=1).fit(X, y)
    scaled = ic.ImprintClassifier(gen=gen, k=2, seed=1).fit(X * a, y)
    np.testing.assert_array_equal(clf.predict(Xt), scaled.predict(Xt * b))
    # same vectors in theory; a tolerance keeps this independent of BLAS kernels and threads
    np.testing.assert_allclose(
        clf.class_scores(Xt), scaled.class_scores(Xt * b), rtol=1e-6, atol=1e-7
    )


@SETTINGS
@given(datasets(), st.floats(0.01, 100), st.floats(0.01, 100), st.sampled_from(["mean", "all"]))
def test_any_scale_changes_continuous_heads_only_by_rounding(data, a, b, gen):
    """Other scales change the normalised vectors by rounding, which can flip a near-tie inside
    a discrete generator; the mean and all-samples heads move only by rounding."""
    X, y, Xt = data
    clf = ic.ImprintClassifier(gen=gen, seed=1).fit(X, y)
    scaled = ic.ImprintClassifier(gen=gen, seed=1).fit(X * a, y)
    np.testing.assert_allclose(clf.class_scores(Xt), scaled.class_scores(Xt * b), atol=1e-5)


@SETTINGS
@given(datasets(), st.sampled_from(["random", "kmeans", "fps", "kls"]), st.integers(0, 10**6))
def test_deterministic_under_seed(data, gen, seed):
    X, y, _ = data
    a = ic.ImprintClassifier(gen=gen, k=2, seed=seed).fit(X, y)
    b = ic.ImprintClassifier(gen=gen, k=2, seed=seed).fit(X, y)
    np.testing.assert_allclose(a.proxies_, b.proxies_, rtol=1e-6, atol=1e-7)


def test_different_seeds_differ():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = np.repeat([0, 1], 100)
    heads = {
        ic.ImprintClassifier(gen="random", k=3, seed=s).fit(X, y).proxies_.tobytes()
        for s in range(5)
    }
    assert len(heads) > 1


@SETTINGS
@given(
    datasets(),
    st.sampled_from(
        [
            {},
            {"gen": "mean"},
            {"gen": "mean", "norm_post": "quantile", "norm_pre": "none", "norm_inf": "none"},
            {
                "gen": "all",
                "agg": "mnn",
                "m": 3,
                "distance": "mahalanobis",
                "weighting": "distance",
            },
            {"gen": "ls", "norm_pre": "none", "norm_post": "none", "norm_inf": "none"},
        ]
    ),
    st.sampled_from(["int", "str"]),
)
def test_save_load_round_trip(tmp_path_factory, data, params, label_kind):
    X, y, Xt = data
    labels = np.array(["cat", "dog", "emu", "fox"])[y] if label_kind == "str" else y * 7 - 3
    clf = ic.ImprintClassifier(**params).fit(X, labels)
    path = tmp_path_factory.mktemp("heads") / "head.safetensors"
    clf.save(path, backbone="efficientnet_lite0")
    back = ic.ImprintClassifier.load(path)
    np.testing.assert_array_equal(back.predict(Xt), clf.predict(Xt))
    np.testing.assert_allclose(back.class_scores(Xt), clf.class_scores(Xt), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.classes_.dtype == clf.classes_.dtype
    assert back.backbone == "efficientnet_lite0"
    assert back.get_params() == {**clf.get_params(), "backbone": "efficientnet_lite0"}


@pytest.mark.parametrize("params", [{"gen": "random", "k": 2}, {"gen": "kmeans", "k": 2}])
def test_fit_does_not_mutate_input(params):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = np.repeat([0, 1, 2], 10)
    X0 = X.copy()
    ic.ImprintClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(X, X0)
