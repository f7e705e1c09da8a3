"""ImprintClassifier against closed-form or hand-computed expectations, option by option."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.neighbors import NearestNeighbors

import imprint_core as ic
from imprint_core.normalisation import quantile_targets


def blobs(n_per=30, d=16, C=3, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(C, d)) + 1.0
    X = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres])
    y = np.repeat(np.array([f"class{i}" for i in range(C)]), n_per)
    return X, y


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    X, y = blobs(spread=3.0)
    Xt, yt = blobs(n_per=20, spread=3.0, seed=1)
    return X, y, Xt, yt


def test_qi_is_nearest_class_mean_under_cosine(data):
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    classes = np.unique(y)
    means = np.stack([unit(X)[y == c].mean(0) for c in classes])
    expected = classes[np.argmax(unit(Xt) @ unit(means).T, axis=1)]
    np.testing.assert_array_equal(clf.predict(Xt), expected)
    np.testing.assert_allclose(clf.proxies_, unit(means), rtol=1e-5)


def test_max_with_l2_all_proxies_is_1nn_cosine(data):
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset("ours", gen="all").fit(X, y)
    expected = y[np.argmax(unit(Xt) @ unit(X).T, axis=1)]
    np.testing.assert_array_equal(clf.predict(Xt), expected)
    assert clf.proxies_.shape == X.shape


def test_janson_is_nearest_class_mean_euclidean(data):
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset("janson").fit(X, y)
    classes = np.unique(y)
    means = np.stack([X[y == c].mean(0) for c in classes])
    dist = np.linalg.norm(Xt[:, None, :] - means[None], axis=2)
    np.testing.assert_array_equal(clf.predict(Xt), classes[np.argmin(dist, axis=1)])


def test_ls_is_ridge_without_bias(data):
    X, y, Xt, _ = data  # balanced classes: (1/C)(S + lam I)^-1 mu_c == ridge with alpha = lam N
    lam = 0.3
    clf = ic.ImprintClassifier.from_preset("oracle", lambda_reg=lam).fit(X, y)
    Y = (y[:, None] == np.unique(y)[None]).astype(float)
    ridge = Ridge(alpha=lam * len(X), fit_intercept=False, solver="cholesky").fit(X, Y)
    np.testing.assert_allclose(clf.proxies_, ridge.coef_, rtol=2e-4, atol=1e-7)
    np.testing.assert_array_equal(clf.predict(Xt), np.unique(y)[ridge.predict(Xt).argmax(1)])


def test_ls_lambda_follows_backbone():
    assert ic.ImprintClassifier.from_preset("ours", backbone="resnet18")._lambda() == 1e-4
    assert ic.ImprintClassifier.from_preset("ours", backbone="vit_b_16")._lambda() == 0.1
    assert ic.ImprintClassifier.from_preset("ours", backbone="efficientnet_lite0")._lambda() == 0.05
    assert (
        ic.ImprintClassifier.from_preset("ours", backbone="resnet18", lambda_reg=2.0)._lambda()
        == 2.0
    )


def test_kls_is_ls_over_kmeans_pseudo_classes(data):
    X, y, _, _ = data
    from imprint_core.generation import kmeans_fit, least_squares

    k = 3
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="kls", k=k, norm_pre="none", norm_post="none", norm_inf="none", lambda_reg=0.1
    ).fit(X, y)
    pseudo = []
    for c in np.unique(y):
        labels = kmeans_fit(X[y == c], k, seed=0).labels
        pseudo += [X[y == c][labels == j] for j in range(k)]
    expected = np.concatenate(least_squares(pseudo, 0.1))
    np.testing.assert_allclose(clf.proxies_, expected, rtol=1e-5, atol=1e-7)
    assert list(clf.proxy_counts_) == [k, k, k]
    k1 = ic.ImprintClassifier.from_preset(
        "ours", gen="kls", k=1, lambda_reg=0.1, norm_pre="none", norm_post="none"
    )
    ls = ic.ImprintClassifier.from_preset(
        "ours", gen="ls", k=1, lambda_reg=0.1, norm_pre="none", norm_post="none"
    )
    np.testing.assert_allclose(k1.fit(X, y).proxies_, ls.fit(X, y).proxies_, rtol=1e-6, atol=1e-9)


def test_kls_small_class_keeps_raw_samples():
    X, y = blobs(n_per=10)
    X, y = X[5:], y[5:]  # class0 has 5 samples < k
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="kls", k=6, norm_pre="none", norm_post="none"
    ).fit(X, y)
    np.testing.assert_allclose(clf.proxies_of("class0"), X[y == "class0"].astype(np.float32))
    assert list(clf.proxy_counts_) == [5, 6, 6]


def test_quantile_first_class_raw_then_reference_quantiles():
    X, y = blobs(n_per=12, d=10)
    clf = ic.ImprintClassifier.from_preset("hosoda").fit(X, y)
    m0, m1, m2 = (X[y == c].mean(0) for c in np.unique(y))
    np.testing.assert_allclose(clf.proxies_of("class0")[0], m0, rtol=1e-6)
    t1 = quantile_targets(m0, 10)
    w1 = clf.proxies_of("class1")[0]
    np.testing.assert_allclose(np.sort(w1), t1, rtol=1e-6)
    np.testing.assert_array_equal(np.argsort(w1), np.argsort(m1))  # ranks preserved
    t2 = quantile_targets(np.concatenate([m0, t1[np.argsort(np.argsort(m1))]]), 10)
    np.testing.assert_allclose(np.sort(clf.proxies_of("class2")[0]), t2, rtol=1e-5)
    np.testing.assert_array_equal(np.argsort(clf.proxies_of("class2")[0]), np.argsort(m2))
    # np.quantile with (j + 1/2)/d levels and linear interpolation, by hand for one level
    ref = np.sort(m0)
    pos = (0.5 / 10) * (10 - 1)
    assert np.isclose(t1[0], ref[0] + (ref[1] - ref[0]) * pos)


def test_quantile_depends_on_class_order():
    X, y = blobs(n_per=12, d=10)
    a = ic.ImprintClassifier.from_preset("hosoda").fit(X, y)
    renamed = np.array([{"class0": "z", "class1": "a", "class2": "m"}[v] for v in y])
    b = ic.ImprintClassifier.from_preset("hosoda").fit(X, renamed)
    assert not np.allclose(a.proxies_of("class0"), b.proxies_of("z"))


def _reference_mnn(X, y, Xt, m, metric, weighting, **kw):
    """The reference code's m-NN vote: sklearn NearestNeighbors over all samples + bincount."""
    classes, yi = np.unique(y, return_inverse=True)
    nn = NearestNeighbors(n_neighbors=m, metric=metric, algorithm="brute", **kw).fit(X)
    dist, idx = nn.kneighbors(Xt)
    out = []
    for d_row, i_row in zip(dist, idx, strict=True):
        w = 1 / (d_row + 1e-10) if weighting == "distance" else np.ones(m)
        out.append(classes[np.bincount(yi[i_row], weights=w, minlength=len(classes)).argmax()])
    return np.array(out)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan", "mahalanobis"])
@pytest.mark.parametrize("weighting", ["uniform", "distance"])
@pytest.mark.parametrize("m", [1, 3, 7])
def test_mnn_matches_reference_vote(data, metric, weighting, m):
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset("ours",
        gen="all", norm_pre="none", norm_post="none", norm_inf="none", agg="mnn",
        distance=metric, m=m, weighting=weighting,
    ).fit(X, y)  # fmt: skip
    kw = {}
    if metric == "mahalanobis":
        VI = np.linalg.inv(
            np.cov(X.astype(np.float32).astype(np.float64), rowvar=False)
            + 1e-6 * np.eye(X.shape[1])
        )
        kw = {"metric_params": {"VI": VI}}
    Xf = X.astype(np.float32).astype(np.float64)
    expected = _reference_mnn(Xf, y, Xt, m, metric, weighting, **kw)
    np.testing.assert_array_equal(clf.predict(Xt), expected)


def test_max_with_distance_is_1nn(data):
    X, y, Xt, _ = data
    a = ic.ImprintClassifier.from_preset("ours", gen="all", agg="max", distance="euclidean").fit(
        X, y
    )
    b = ic.ImprintClassifier.from_preset(
        "ours", gen="all", agg="mnn", distance="euclidean", m=1
    ).fit(X, y)
    np.testing.assert_array_equal(a.predict(Xt), b.predict(Xt))
    expected = y[np.argmin(np.linalg.norm(unit(Xt)[:, None] - unit(X)[None], axis=2), axis=1)]
    np.testing.assert_array_equal(a.predict(Xt), expected)


def test_m_larger_than_proxies_is_clamped_with_warning(data):
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="mean", agg="mnn", distance="euclidean", m=50
    ).fit(X, y)
    with pytest.warns(UserWarning, match="m=50"):
        scores = clf.class_scores(Xt)
    np.testing.assert_allclose(scores.sum(1), 1.0)


def test_kmeans_sklearn_impl_matches_sklearn(data):
    from sklearn.cluster import KMeans

    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="kmeans", k=4, norm_post="none", kmeans_impl="sklearn", seed=7
    )
    clf.fit(X, y)
    for c in np.unique(y):
        km = KMeans(n_clusters=4, random_state=7).fit(unit(X[y == c]))
        np.testing.assert_allclose(clf.proxies_of(c), km.cluster_centers_, rtol=1e-5, atol=1e-6)


def test_kmeans_proxies_are_centroids_of_their_clusters(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="kmeans", k=4, norm_post="none", norm_pre="none"
    ).fit(X, y)
    for c in np.unique(y):
        P = clf.proxies_of(c)
        Xc = X[y == c]
        assign = np.argmin(((Xc[:, None] - P[None]) ** 2).sum(2), axis=1)
        for j in range(4):
            np.testing.assert_allclose(P[j], Xc[assign == j].mean(0), rtol=1e-4, atol=1e-4)


def test_cov_max_matches_torch_cov_column_sums(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="cov_max", k=5, norm_pre="none", norm_post="none"
    ).fit(X, y)
    for c in np.unique(y):
        Xc = X[y == c]
        sums = np.cov(Xc).sum(0)  # rows as variables, as torch.cov(data)
        np.testing.assert_allclose(clf.proxies_of(c), Xc[np.argsort(-sums)[:5]], rtol=1e-6)


def test_fps_is_greedy_farthest(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="fps", k=5, norm_pre="none", norm_post="none", seed=3
    ).fit(X, y)
    for c in np.unique(y):
        Xc, P = X[y == c], clf.proxies_of(c).astype(np.float64)
        idx = [int(np.argmin(np.linalg.norm(Xc - p, axis=1))) for p in P]
        for t in range(1, 5):
            mind = np.linalg.norm(Xc[:, None] - Xc[idx[:t]][None], axis=2).min(1)
            mind[idx[:t]] = -1
            assert idx[t] == int(np.argmax(mind))


def test_kmedoids_returns_samples_at_local_optimum(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="kmedoids", k=3, norm_pre="none", norm_post="none"
    ).fit(X, y)
    for c in np.unique(y):
        Xc, P = X[y == c], clf.proxies_of(c).astype(np.float64)
        D = np.linalg.norm(Xc[:, None] - Xc[None], axis=2)
        med = [int(np.argmin(np.linalg.norm(Xc - p, axis=1))) for p in P]
        np.testing.assert_allclose(Xc[med], P, rtol=1e-6)
        labels = np.argmin(D[med], axis=0)
        for j, mj in enumerate(med):  # each medoid minimises the summed distance of its cluster
            members = np.flatnonzero(labels == j)
            assert D[np.ix_(members, members)].sum(1).min() >= D[mj, members].sum() - 1e-9


def test_random_picks_distinct_samples(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen="random", k=4, norm_pre="none", norm_post="none"
    ).fit(X, y)
    for c in np.unique(y):
        P = clf.proxies_of(c)
        assert len({tuple(p) for p in P}) == 4
        assert all((np.abs(X[y == c].astype(np.float32) - p).max(1) == 0).any() for p in P)


@pytest.mark.parametrize("gen", ["random", "kmeans", "kmedoids", "fps", "cov_max", "kls"])
def test_class_smaller_than_k_keeps_all_samples(gen):
    X, y = blobs(n_per=6)
    clf = ic.ImprintClassifier.from_preset(
        "ours", gen=gen, k=10, norm_pre="none", norm_post="none"
    ).fit(X, y)
    assert list(clf.proxy_counts_) == [6, 6, 6]
    np.testing.assert_allclose(clf.proxies_of("class1"), X[y == "class1"], rtol=1e-6)


def test_multimodal_classes_kmeans_beats_mean():
    # class 0 = two modes at b +- 4 e0, class 1 = two modes at b +- 4 e1: both means are ~b
    rng = np.random.default_rng(0)
    d = 16
    b = np.zeros(d)
    b[-1] = 6.0
    modes = [b + 4 * np.eye(d)[0], b - 4 * np.eye(d)[0], b + 4 * np.eye(d)[1], b - 4 * np.eye(d)[1]]

    def sample(n):
        X = np.concatenate([mu + 0.7 * rng.normal(size=(n, d)) for mu in modes])
        return X, np.repeat([0, 0, 1, 1], n)

    X, y = sample(50)
    Xt, yt = sample(50)
    mean_acc = ic.ImprintClassifier.from_preset("qi").fit(X, y).score(Xt, yt)
    km_acc = ic.ImprintClassifier.from_preset("ours", k=2).fit(X, y).score(Xt, yt)
    assert km_acc > 0.97
    assert km_acc - mean_acc > 0.3


def test_labels_of_any_hashable_type(data):
    X, y, Xt, _ = data
    for labels in (
        np.unique(y, return_inverse=True)[1] + 10,
        np.array(["a", "b", "c"])[np.unique(y, return_inverse=True)[1]],
    ):
        clf = ic.ImprintClassifier.from_preset("qi").fit(X, labels)
        assert set(clf.predict(Xt)) <= set(labels)
        assert clf.predict(Xt).dtype == labels.dtype


def test_predict_proba_rows_sum_to_one_and_argmax_is_predict(data):
    X, y, Xt, _ = data
    for name in ic.PRESETS:
        clf = ic.ImprintClassifier.from_preset(name).fit(X, y)
        p = clf.predict_proba(Xt)
        np.testing.assert_allclose(p.sum(1), 1.0)
        np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(Xt))


def test_temperature_sharpens(data):
    X, y, Xt, _ = data
    soft = ic.ImprintClassifier.from_preset("qi", temperature=1.0).fit(X, y).predict_proba(Xt)
    sharp = ic.ImprintClassifier.from_preset("qi", temperature=0.01).fit(X, y).predict_proba(Xt)
    assert sharp.max(1).mean() > soft.max(1).mean()


def test_decision_function_binary_is_1d():
    X, y = blobs(C=2)
    clf = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    d = clf.decision_function(X)
    assert d.shape == (len(X),)
    np.testing.assert_array_equal(clf.classes_[(d > 0).astype(int)], clf.predict(X))
    assert clf.class_scores(X).shape == (len(X), 2)


def test_torch_tensors_in(data):
    torch = pytest.importorskip("torch")
    X, y, Xt, _ = data
    a = ic.ImprintClassifier.from_preset("qi").fit(
        torch.tensor(X), torch.tensor(np.unique(y, return_inverse=True)[1])
    )
    b = ic.ImprintClassifier.from_preset("qi").fit(X, np.unique(y, return_inverse=True)[1])
    np.testing.assert_array_equal(a.predict(torch.tensor(Xt, dtype=torch.float32)), b.predict(Xt))


def test_float32_and_float64_agree(data):
    X, y, Xt, _ = data
    a = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(X.astype(np.float32), y)
    b = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(X, y)
    assert (a.predict(Xt) == b.predict(Xt)).mean() > 0.98


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"gen": "all", "agg": "mnn", "m": 5, "distance": "manhattan", "weighting": "distance"},
        {"gen": "kmeans", "k": 3, "agg": "mnn", "m": 3, "distance": "mahalanobis"},
        {"gen": "mean", "distance": "cosine"},
        {"gen": "all", "norm_inf": "none", "distance": "euclidean", "agg": "mnn", "m": 4},
        {"gen": "all", "agg": "mnn", "m": 4, "distance": "inner_product", "weighting": "distance"},
    ],
)
def test_torch_head_matches_class_scores(data, params):
    torch = pytest.importorskip("torch")
    X, y, Xt, _ = data
    clf = ic.ImprintClassifier.from_preset("ours", **params).fit(X.astype(np.float32), y)
    head = clf.to_torch()
    Xt32 = Xt.astype(np.float32)
    out = head(torch.from_numpy(Xt32)).numpy()
    np.testing.assert_array_equal(out.argmax(1), clf.class_scores(Xt32).argmax(1))
    np.testing.assert_allclose(out, clf.class_scores(Xt32), rtol=1e-3, atol=1e-3)
    assert head.classes == list(clf.classes_)


@pytest.mark.parametrize("gen", ["mean", "kmeans", "random", "fps"])
@pytest.mark.parametrize("norm_post", ["none", "l2"])
def test_imprint_class_gives_a_fit_s_proxies(data, gen, norm_post):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset("ours", gen=gen, k=3, norm_post=norm_post, seed=5).fit(
        X, y
    )
    for c in np.unique(y):
        np.testing.assert_allclose(clf.imprint_class(X[y == c], c), clf.proxies_of(c), atol=1e-6)
    before = clf.proxies_.copy()
    clf.imprint_class(X[y == "class0"][:-1], "class0")
    np.testing.assert_array_equal(clf.proxies_, before)  # the head is untouched


def test_imprint_class_refuses_joint_generators(data):
    X, y, _, _ = data
    clf = ic.ImprintClassifier.from_preset("ours", gen="ls").fit(X, y)
    with pytest.raises(ValueError, match="needs a per-class generator; gen='ls'"):
        clf.imprint_class(X[y == "class0"], "class0")
