"""One default: ``ImprintClassifier()`` is ``from_preset(DEFAULT_PRESET)``, everywhere."""

import inspect
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

import imprint_core as ic


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:5] for c in range(10)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


def test_no_arguments_is_the_default_preset():
    assert ic.ImprintClassifier().get_params() == (
        ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).get_params()
    )
    ours = ic.ImprintClassifier.from_preset("ours").get_params()
    assert ic.ImprintClassifier().get_params() != ours  # no longer the paper's k-means head


def test_no_arguments_predicts_as_the_default_preset(digits):
    Xtr, ytr, Xte, _ = digits
    plain = ic.ImprintClassifier().fit(Xtr, ytr)
    named = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(Xtr, ytr)
    np.testing.assert_array_equal(plain.predict(Xte), named.predict(Xte))
    np.testing.assert_allclose(plain.class_scores(Xte), named.class_scores(Xte), atol=1e-6)
    np.testing.assert_allclose(plain.proxies_, named.proxies_, atol=1e-6)


def test_the_paper_presets_do_not_follow_the_default(digits):
    """Every option a preset sets is written out in it, so changing the default changes no
    preset: a preset fitted twice (from its name and from its full option list) agrees."""
    Xtr, ytr, Xte, _ = digits
    signature = set(inspect.signature(ic.ImprintClassifier).parameters)
    for name, options in ic.PRESETS.items():
        named = ic.ImprintClassifier.from_preset(name)
        assert {k: named.get_params()[k] for k in options} == dict(options)
        whitened = options["norm_pre"] == "whiten"
        assert not whitened or "whiten_shrinkage" in options, name
        assert set(options) <= signature
    ours = ic.ImprintClassifier.from_preset("ours").fit(Xtr, ytr)
    assert ours.proxy_counts_.tolist() == [5] * 10  # k=20 capped at 5 images: every image


def test_docstring_states_the_actual_defaults():
    """The numpydoc ``default=`` of every parameter is the constructor's default."""
    doc = ic.ImprintClassifier.__doc__
    for name, param in inspect.signature(ic.ImprintClassifier).parameters.items():
        found = re.search(rf"^    {name} : .*?default=(\S+)$", doc, re.M | re.S)
        assert found, name
        assert found.group(1) == repr(param.default).replace("'", '"'), name


def test_cli_grid_and_app_start_from_the_same_default():
    from imprint_core.bench import parse_grid
    from imprint_core.session import limits

    (method,) = parse_grid("agg=max")  # a grid without preset= varies the classifier defaults
    assert ic.ImprintClassifier(**method.params).get_params() == ic.ImprintClassifier().get_params()
    assert limits.DEFAULT_PRESET == ic.DEFAULT_PRESET
