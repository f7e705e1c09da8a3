"""whiten_shrinkage="cv": the held-out scores of every shrinkage from one eigendecomposition per
fold equal a refit per shrinkage, and the choice follows the held-out accuracy."""

import numpy as np
import pytest

import imprint_core as ic
from imprint_core import shrinkage_cv as sc
from imprint_core.normalisation import dof_shrinkage, fit_whitener, l2_strict


def nuisance_classes(n_per_class, n_classes=5, d=60, seed=0):
    """Classes apart along weak directions, with a strong shared within-class nuisance in a few
    others: the class-mean head wins by whitening it away (a small shrinkage)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, d)) * 0.35
    X, y = [], []
    for c in range(n_classes):
        noise = rng.normal(size=(n_per_class, d)) * 0.2
        noise[:, :4] += rng.normal(size=(n_per_class, 4)) * 6.0  # the nuisance
        X.append(5.0 * np.eye(d)[10] + centres[c] + noise)
        y += [c] * n_per_class
    return np.concatenate(X), np.array(y)


@pytest.mark.parametrize("span", [True, False])
def test_fold_scores_equal_a_refit_per_shrinkage(span):
    X, y = nuisance_classes(4)
    U = l2_strict(X)
    A = sc.span_coordinates(U) if span else U
    fold = sc.fold_of(y)
    for f in np.unique(fold[fold >= 0]):
        held, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        scores = sc.fold_scores(A, y, train, held, X.shape[1])
        for g, nu in enumerate(sc.GRID):
            a = sc.pseudo_shrinkage(nu * X.shape[1], len(train) - 5)
            clf = ic.ImprintClassifier(whiten_shrinkage=a).fit(X[train], y[train])
            np.testing.assert_allclose(scores[g], clf.class_scores(X[held]), atol=1e-6)


def test_the_choice_is_the_best_refitted_held_out_score():
    """Held-out accuracy and log-probability (predict_proba at the default temperature) equal
    those of a refit per fold and shrinkage; the shrinkage is the best log-probability's."""
    X, y = nuisance_classes(3, seed=1)
    n, d = X.shape
    fold = sc.fold_of(y)
    hits, loglik = np.zeros(len(sc.GRID)), np.zeros(len(sc.GRID))
    for f in np.unique(fold[fold >= 0]):
        held, train = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        for g, nu in enumerate(sc.GRID):
            a = sc.pseudo_shrinkage(nu * d, len(train) - 5)
            clf = ic.ImprintClassifier(whiten_shrinkage=a).fit(X[train], y[train])
            assert clf.temperature == sc.TEMPERATURE
            hits[g] += (clf.predict(X[held]) == y[held]).sum()
            loglik[g] += np.log(clf.predict_proba(X[held])[np.arange(len(held)), y[held]]).sum()
    accuracy, held_loglik, held_rows = sc.held_out(l2_strict(X), y)
    np.testing.assert_allclose(accuracy, hits / n, atol=1e-12)
    np.testing.assert_allclose(held_loglik, loglik / n, rtol=1e-5, atol=1e-5)
    assert len(held_rows) == n
    expected = sc.pseudo_shrinkage(sc.best_nu(loglik / n) * d, n - 5)
    assert fit_whitener(X, y, "cv").shrinkage == pytest.approx(expected, rel=1e-9)


def test_whitening_more_where_it_pays():
    """On data whose within-class nuisance the dof rule hardly whitens at 4 images per class,
    cv shrinks less, and the head scores better on new images of the same classes."""
    X, y = nuisance_classes(24, seed=2)
    train = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(5)])
    test = np.setdiff1d(np.arange(len(y)), train)
    dof = ic.ImprintClassifier(whiten_shrinkage="dof").fit(X[train], y[train])
    cv = ic.ImprintClassifier(whiten_shrinkage="cv").fit(X[train], y[train])
    assert cv.whitener_.shrinkage < dof.whitener_.shrinkage - 0.2
    assert cv.score(X[test], y[test]) > dof.score(X[test], y[test]) + 0.1


def test_ties_go_to_the_dof_rule_then_nearest_and_less_whitening():
    grid = (4.0, 1.0, 1 / 4, 1 / 16)
    assert sc.best_nu(np.full(4, -0.5), grid) == sc.DOF == 1.0
    assert sc.best_nu(np.array([-0.3, -0.9, -0.3, -0.9]), grid) == 4.0  # as near as 1/4
    assert sc.best_nu(np.array([-0.3, -0.9, -0.9, -0.3]), grid) == 4.0  # nearer
    assert sc.best_nu(np.array([-0.9, -0.5, -0.5, -0.2]), grid) == 1 / 16


def test_one_image_per_class_and_many_images_keep_the_dof_rule():
    X, y = nuisance_classes(1)
    assert (sc.fold_of(y) == -1).all()  # nothing can be held out
    assert fit_whitener(X, y, "cv").shrinkage == dof_shrinkage(X.shape[1], 0) == 1.0
    X, y = nuisance_classes(20, d=30)  # n >= d
    assert fit_whitener(X, y, "cv").shrinkage == pytest.approx(dof_shrinkage(30, 100 - 5))


def test_folds_keep_an_image_of_every_class_for_training():
    y = np.array([0] * 2 + [1] * 12 + [2] * 1 + [3] * 5)
    fold = sc.fold_of(y, folds=10)
    assert fold[y == 2].tolist() == [-1]  # alone in its class: never held out
    for f in range(10):
        for c in (0, 1, 3):
            out = (fold[y == c] == f).sum()
            assert out < (y == c).sum()  # the class keeps training images
            assert out <= 1 or (y == c).sum() > 10


def test_other_generators_keep_the_dof_rule():
    """cv scores the class-mean head; k-means proxies under it lost their gain on classes made of
    several groups (the "merged" example), so a head with another gen whitens by dof."""
    X, y = nuisance_classes(6, seed=3)
    dof = fit_whitener(X, y, "dof").shrinkage
    mean = ic.ImprintClassifier(whiten_shrinkage="cv").fit(X, y)
    kmeans = ic.ImprintClassifier(whiten_shrinkage="cv", gen="kmeans", k=2).fit(X, y)
    assert mean.whitener_.shrinkage < dof - 0.2
    assert kmeans.whitener_.shrinkage == pytest.approx(dof)
    assert kmeans.whiten_shrinkage == "cv"  # the option is kept as given
