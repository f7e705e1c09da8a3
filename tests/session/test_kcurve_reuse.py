"""The accuracy-vs-k curve fits each fold's whitening once (kcurve.py, normalisation.py): its
results equal a straightforward loop that fits every head from scratch, on real embeddings of
the shipped Fashion-MNIST example (the built-in backbone) under the app's default settings."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core import normalisation
from imprint_core.classifier import ImprintClassifier
from imprint_core.kcurve import REFERENCES, accuracy_vs_k, advice_settings
from imprint_core.presets import preset
from imprint_core.session.limits import DEFAULT_PRESET
from imprint_core.threads import one_thread

KS = (1, 2, 5)
GENS = ("kmeans", "fps")


@pytest.fixture(scope="module")
def embedded(backbone, fashion):
    train, _ = fashion
    paths = [p for cls in sorted(train) for p in train[cls]]
    labels = np.array([cls for cls in sorted(train) for _ in train[cls]])
    return backbone.embed([str(p) for p in paths], cache=False), labels


def _reference(X, y, splits, settings) -> list[float]:
    """Accuracy per split of a head fitted from scratch on the split's training rows (on one
    BLAS thread, as the curve: another thread count may round a near tie the other way)."""
    out = []
    for train, test in splits:
        with one_thread():
            clf = ImprintClassifier(**settings).fit(X[train], y[train])
            out.append(float(np.mean(clf.predict(X[test]) == y[test])))
    return out


def _check(curve, X, y, splits, base):
    _, y = np.unique(y, return_inverse=True)  # the curve fits on class indices (seeds per label)
    for gen in GENS:
        for j, k in enumerate(KS):
            expected = _reference(X, y, splits, {**base, "gen": gen, "k": k})
            assert curve["gens"][gen]["folds"][j] == pytest.approx(expected, abs=1e-9)
    for name, p in REFERENCES.items():
        expected = _reference(X, y, splits, {**preset(p), "seed": 0})
        assert curve["references"][name]["mean"] == pytest.approx(np.mean(expected), abs=1e-9)
    auto = _reference(X, y, splits, {**base, "gen": "auto", "k": max(KS)})
    assert curve["references"]["auto"]["mean"] == pytest.approx(np.mean(auto), abs=1e-9)


def test_the_k_fold_curve_equals_refitting_every_head(embedded):
    from sklearn.model_selection import StratifiedKFold

    X, y = embedded
    settings = {**preset(DEFAULT_PRESET), "seed": 0}
    assert settings["norm_pre"] == "whiten"  # the case the reuse is for
    curve = accuracy_vs_k(X, y, ks=KS, gens=GENS, settings=settings)
    assert curve["cv"] == "stratified 5-fold"
    _, y_idx = np.unique(y, return_inverse=True)
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(y_idx, y_idx))
    _check(curve, X, y, splits, {**advice_settings(settings), "seed": 0})


def test_the_leave_one_out_curve_equals_refitting_every_head(embedded):
    X, y = embedded
    rows = np.concatenate([np.flatnonzero(y == c)[:6] for c in np.unique(y)])  # 18 images
    X, y = X[rows], y[rows]
    settings = {**preset(DEFAULT_PRESET), "seed": 0}
    curve = accuracy_vs_k(X, y, ks=KS, gens=GENS, settings=settings)
    assert curve["cv"] == "leave-one-out"
    splits = [(np.flatnonzero(np.arange(len(y)) != i), np.array([i])) for i in range(len(y))]
    _check(curve, X, y, splits, {**advice_settings(settings), "seed": 0})


def test_whitening_is_reused_only_inside_the_block_and_never_shared_by_reference(embedded):
    X, y = embedded
    _, y_idx = np.unique(y, return_inverse=True)
    with normalisation.reusing_whitening():
        w = normalisation.fit_whitener(X, y_idx, "dof")
        assert normalisation.fit_whitener(X.copy(), y_idx, "dof") is w  # same rows: same fit
        assert normalisation.fit_whitener(X, y_idx, 0.5) is not w  # another shrinkage
        assert normalisation.fit_whitener(X[1:], y_idx[1:], "dof") is not w  # other rows
        Z = w.transform(X)
        Z[:] = 0  # a caller writing into the result does not change what the next one gets
        again = w.transform(X)
        assert np.abs(again).max() > 0.01
    assert normalisation.fit_whitener(X, y_idx, "dof") is not w  # nothing kept afterwards
    np.testing.assert_allclose(again, normalisation.fit_whitener(X, y_idx, "dof").transform(X))
