"""Bad input gets a clear error naming the problem and what is allowed."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import imprint_core as ic


@pytest.fixture()
def Xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 5))
    y = np.repeat(["cat", "dog"], 10)
    return X, y


def fit(X, y, **kw):
    return ic.ImprintClassifier.from_preset("ours", gen="mean", **kw).fit(X, y)


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        fit(np.zeros((0, 5)), np.array([]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(Xy, bad):
    X, y = Xy
    clf = fit(X, y)
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(
        ValueError, match=r"contain NaN or infinity \(1 rows, first at row 3, class 'cat'\)"
    ):
        fit(X, y)
    with pytest.raises(ValueError, match="embeddings to classify contain NaN or infinity"):
        clf.predict(X)


def test_zero_vector_under_l2_stays_zero_with_a_warning(Xy):
    """sklearn's ``normalize`` rule: a zero row has no direction and stays zeros (no NaN)."""
    from sklearn.preprocessing import normalize

    from imprint_core.normalisation import ZeroVectorWarning, l2_strict

    X, y = Xy
    X = X.copy()
    X[12] = 0
    with pytest.warns(
        ZeroVectorWarning, match=r"embedding row 12 is a zero vector \(1 such rows\)"
    ):
        np.testing.assert_allclose(l2_strict(X), normalize(X), rtol=1e-12, atol=1e-15)
    with pytest.warns(ZeroVectorWarning, match="row 12 is a zero vector"):
        clf = fit(X, y)
    assert np.isfinite(clf.proxies_).all()
    with pytest.warns(ZeroVectorWarning, match="input row 0 is a zero vector"):
        proba = clf.predict_proba(np.zeros((1, 5)))
    np.testing.assert_allclose(proba, [[0.5, 0.5]], atol=1e-9)  # no direction: no preference


def test_one_dimensional_X(Xy):
    with pytest.raises(ValueError, match="Expected 2D array"):
        fit(np.arange(10.0), np.repeat([0, 1], 5))
    clf = fit(*Xy)
    with pytest.raises(ValueError, match="Expected 2D array"):
        clf.predict(np.ones(5))


def test_mismatched_lengths(Xy):
    X, y = Xy
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fit(X, y[:-1])


def test_one_class_only(Xy):
    X, _ = Xy
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 'cat'"):
        fit(X, np.repeat(["cat"], 20))


@pytest.mark.parametrize(
    "option,value",
    [
        ("gen", "lmeans"),
        ("norm_pre", "quantile"),
        ("norm_post", "L2"),
        ("norm_inf", "quantile"),
        ("agg", "mean"),
        ("distance", "chebyshev"),
        ("weighting", "weighted"),
        ("kmeans_impl", "gpu"),
    ],
)
def test_unknown_option_lists_valid_values(Xy, option, value):
    from imprint_core.classifier import OPTIONS

    with pytest.raises(ValueError, match=f"unknown {option} '{value}'; valid values are: ") as e:
        ic.ImprintClassifier(**{option: value}).fit(*Xy)
    assert ", ".join(OPTIONS[option]) in str(e.value)


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_bad_k(Xy, k):
    with pytest.raises(ValueError, match="k must be an integer >= 1.*gen='all'"):
        ic.ImprintClassifier(k=k).fit(*Xy)


@pytest.mark.parametrize("m", [0, -3, 1.5])
def test_bad_m(Xy, m):
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        ic.ImprintClassifier(agg="mnn", distance="euclidean", m=m).fit(*Xy)


def test_bad_temperature_and_lambda(Xy):
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        ic.ImprintClassifier(temperature=0).fit(*Xy)
    with pytest.raises(ValueError, match="lambda_reg must be None or a number >= 0"):
        ic.ImprintClassifier(gen="ls", lambda_reg=-1).fit(*Xy)


def test_dimension_mismatch_at_predict(Xy):
    clf = fit(*Xy)
    with pytest.raises(ValueError, match="X has 4 features, but ImprintClassifier is expecting 5"):
        clf.predict(np.ones((2, 4)))


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        ic.ImprintClassifier().predict(np.ones((2, 4)))


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'imprint'; choose one of: qi, hosoda"):
        ic.ImprintClassifier.from_preset("imprint")


def test_mahalanobis_needs_two_proxies():
    X = np.random.default_rng(0).normal(size=(2, 3))
    clf = ic.ImprintClassifier(gen="mean", agg="mnn", distance="mahalanobis", m=1).fit(X, [0, 1])
    clf.predict(X)  # two proxies: fine
    from imprint_core.aggregation import mahalanobis_vi

    with pytest.raises(ValueError, match="at least 2 proxies"):
        mahalanobis_vi(X[:1])


def test_continuous_target_is_rejected(Xy):
    X, _ = Xy
    with pytest.raises(ValueError, match="Unknown label type"):
        fit(X, np.linspace(0, 1, 20))
