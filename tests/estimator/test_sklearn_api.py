"""scikit-learn conventions: estimator checks, clone, Pipeline, cross_val_score, GridSearchCV."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import imprint_core as ic


@parametrize_with_checks(
    [
        *(ic.ImprintClassifier.from_preset(name) for name in sorted(ic.PRESETS)),
        ic.ImprintClassifier(),
        ic.ImprintClassifier(gen="all", agg="mnn", m=3, distance="cosine", weighting="distance"),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    """Every preset passes every check of scikit-learn's suite: no expected failures."""
    check(estimator)


def test_pipeline_cross_val_and_grid_search():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(loc=i, size=(30, 5)) for i in range(3)])
    y = np.repeat(["a", "b", "c"], 30)
    pipe = make_pipeline(StandardScaler(), ic.ImprintClassifier(gen="kmeans", k=2))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.6
    grid = GridSearchCV(ic.ImprintClassifier(), {"gen": ["mean", "kmeans"], "k": [1, 3]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["gen"] in ("mean", "kmeans")
    c = clone(ic.ImprintClassifier.from_preset("janson"))
    assert c.get_params()["distance"] == "euclidean"
    assert not hasattr(c, "classes_")


@pytest.mark.parametrize("name", ["qi", "hosoda", "janson", "ours", "oracle"])
def test_presets_have_reference_values(name):
    expected = {
        "qi": ("l2", "mean", "l2", "l2", "max", "inner_product"),
        "hosoda": ("none", "mean", "quantile", "none", "max", "inner_product"),
        "janson": ("none", "mean", "none", "none", "mnn", "euclidean"),
        "ours": ("l2", "kmeans", "l2", "l2", "max", "inner_product"),
        "oracle": ("none", "ls", "none", "none", "max", "inner_product"),
    }[name]
    p = ic.PRESETS[name]
    assert (
        p["norm_pre"],
        p["gen"],
        p["norm_post"],
        p["norm_inf"],
        p["agg"],
        p["distance"],
    ) == expected
    assert ic.ImprintClassifier.from_preset(name).get_params()["gen"] == p["gen"]
    if name == "ours":
        assert p["k"] == 20
    if name == "janson":
        assert p["m"] == 1
