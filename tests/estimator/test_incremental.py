"""Adding classes to a fitted head (class-incremental imprinting)."""

import numpy as np
import pytest

import imprint_core as ic


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = np.array(["bird", "cat", "dog", "emu"])
    centres = rng.normal(scale=3, size=(4, 12))
    X = np.concatenate([c + rng.normal(size=(25, 12)) for c in centres])
    y = np.repeat(labels, 25)
    Xt = rng.normal(scale=3, size=(50, 12))
    return X, y, Xt


PER_CLASS = [
    {"gen": "mean"},
    {"gen": "all"},
    {"gen": "kmeans", "k": 3},
    {"gen": "random", "k": 4},
    {"gen": "fps", "k": 4},
    {"gen": "kmedoids", "k": 3},
    {"gen": "cov_max", "k": 3},
    {"gen": "kmeans", "k": 3, "norm_post": "none", "norm_pre": "none", "norm_inf": "none"},
]


@pytest.mark.parametrize("params", PER_CLASS)
@pytest.mark.parametrize("new", ["bird", "dog", "emu"])  # sorts first, in the middle, last
def test_add_class_equals_full_fit(data, params, new):
    X, y, Xt = data
    full = ic.ImprintClassifier.from_preset("ours", **params).fit(X, y)
    inc = ic.ImprintClassifier.from_preset("ours", **params).fit(X[y != new], y[y != new])
    before = {c: inc.proxies_of(c).copy() for c in inc.classes_}
    inc.add_class(X[y == new], new)
    np.testing.assert_array_equal(inc.classes_, full.classes_)
    np.testing.assert_allclose(inc.proxies_, full.proxies_, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(inc.predict(Xt), full.predict(Xt))
    for c, P in before.items():  # the other classes are untouched
        np.testing.assert_array_equal(inc.proxies_of(c), P)


@pytest.mark.parametrize("gen,k", [("ls", 1), ("kls", 3), ("kls", 40)])
def test_least_squares_recomputes_every_class(data, gen, k):
    X, y, Xt = data
    params = dict(gen=gen, k=k, norm_pre="none", norm_post="none", norm_inf="none")
    full = ic.ImprintClassifier.from_preset("ours", **params).fit(X, y)
    inc = ic.ImprintClassifier.from_preset("ours", **params).fit(X[y != "cat"], y[y != "cat"])
    bird = inc.proxies_of("bird").copy()
    inc.add_class(X[y == "cat"], "cat")
    np.testing.assert_allclose(inc.proxies_, full.proxies_, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(inc.predict(Xt), full.predict(Xt))
    if k < 25:  # LS classes change when a class joins the joint solution
        assert not np.allclose(inc.proxies_of("bird"), bird)


def test_quantile_maps_new_class_onto_stored_proxies(data):
    from imprint_core.normalisation import quantile_targets

    X, y, _ = data
    params = ic.PRESETS["hosoda"]
    inc = ic.ImprintClassifier.from_preset("ours", **params).fit(X[y != "bird"], y[y != "bird"])
    stored = inc.proxies_.copy()
    inc.add_class(X[y == "bird"], "bird")
    w = inc.proxies_of("bird")[0]
    np.testing.assert_allclose(np.sort(w), quantile_targets(stored.ravel(), 12), rtol=1e-5)
    # a full fit normalises 'bird' first (raw), so the order of imprinting matters
    full = ic.ImprintClassifier.from_preset("ours", **params).fit(X, y)
    np.testing.assert_allclose(full.proxies_of("bird")[0], X[y == "bird"].mean(0), rtol=1e-5)
    assert not np.allclose(full.proxies_of("bird"), inc.proxies_of("bird"))
    # added last in label order, it equals the full fit
    inc2 = (
        ic.ImprintClassifier.from_preset("ours", **params)
        .fit(X[y != "emu"], y[y != "emu"])
        .add_class(X[y == "emu"], "emu")
    )
    np.testing.assert_allclose(inc2.proxies_, full.proxies_, rtol=1e-5)


def test_add_classes(data):
    X, y, Xt = data
    clf = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3)
    clf.add_classes(X[np.isin(y, ["bird", "cat"])], y[np.isin(y, ["bird", "cat"])])
    clf.add_classes(X[np.isin(y, ["dog", "emu"])], y[np.isin(y, ["dog", "emu"])])
    full = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(X, y)
    np.testing.assert_array_equal(clf.predict(Xt), full.predict(Xt))


def test_add_class_errors(data, tmp_path):
    X, y, _ = data
    clf = ic.ImprintClassifier.from_preset("ours", gen="mean").fit(X, y)
    with pytest.raises(ValueError, match="class 'cat' is already in the head"):
        clf.add_class(X[:3], "cat")
    with pytest.raises(ValueError, match="X has 5 features"):
        clf.add_class(X[:3, :5], "fox")
    with pytest.raises(ValueError, match="class 'fox' contain NaN"):
        clf.add_class(np.full((2, 12), np.nan), "fox")
    with pytest.raises(ValueError, match="cannot be ordered"):
        clf.add_class(X[:3], 7)
    ls = ic.ImprintClassifier.from_preset("oracle").fit(X[y != "emu"], y[y != "emu"])
    ls.save(tmp_path / "ls.safetensors")
    with pytest.raises(ValueError, match="carries no least-squares statistics"):
        ic.ImprintClassifier.load(tmp_path / "ls.safetensors").add_class(X[y == "emu"], "emu")


def test_loaded_head_accepts_new_classes(data, tmp_path):
    X, y, Xt = data
    clf = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(
        X[y != "emu"], y[y != "emu"]
    )
    clf.save(tmp_path / "h.safetensors")
    back = ic.ImprintClassifier.load(tmp_path / "h.safetensors").add_class(X[y == "emu"], "emu")
    full = ic.ImprintClassifier.from_preset("ours", gen="kmeans", k=3).fit(X, y)
    np.testing.assert_array_equal(back.predict(Xt), full.predict(Xt))
