"""Evaluation on the user's own images: honest (held out), exact, and the scheme is stated."""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core import evaluation as ev
from imprint_core.classifier import ImprintClassifier
from imprint_core.presets import PRESETS


def blobs(n_per_class=(8, 10, 6), d=16, modes=3, seed=0):
    """Classes made of several Gaussian modes each (multi-modal, like merged Fashion-MNIST)."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c, n in enumerate(n_per_class):
        centres = rng.normal(size=(modes, d)) * 3
        X.append(centres[rng.integers(modes, size=n)] + rng.normal(size=(n, d)))
        y += [f"class {c}"] * n
    return np.concatenate(X).astype(np.float32), np.array(y)


def naive_loo(X, y, settings):
    """Leave-one-out by refitting the whole head n times: the definition."""
    labels = np.unique(y)
    pred = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        clf = ImprintClassifier(**settings).fit(X[keep], y[keep])
        pred.append(np.searchsorted(labels, clf.predict(X[i : i + 1]))[0])
    return np.array(pred)


@pytest.mark.parametrize(
    "settings",
    [
        dict(PRESETS["ours"]),
        {**PRESETS["ours"], "k": 3},
        dict(PRESETS["qi"]),
        {**PRESETS["ours"], "gen": "kmedoids", "k": 2},
        {**PRESETS["ours"], "gen": "random", "k": 4, "seed": 3},
        {**PRESETS["ours"], "gen": "fps", "k": 3},
        {**PRESETS["ours"], "gen": "all", "agg": "mnn", "m": 3, "weighting": "distance"},
        {**PRESETS["janson"]},
    ],
    ids=["ours", "ours-k3", "qi", "kmedoids", "random", "fps", "all-3nn", "janson"],
)
def test_fast_leave_one_out_equals_refitting_everything(settings):
    X, y = blobs()
    assert ev.fast_loo_applies(settings)
    result = ev.evaluate(X, y, settings, scheme="leave-one-out")
    assert np.array_equal(result.predictions, naive_loo(X, y, settings))
    assert result.method == "leave-one-out" and result.n_splits == len(y)


def test_settings_that_look_at_every_class_refit_everything():
    X, y = blobs((5, 6, 5))
    for settings in (
        PRESETS["hosoda"],
        PRESETS["oracle"],
        {**PRESETS["ours"], "distance": "mahalanobis", "agg": "mnn"},
        {**PRESETS["ours"], "norm_pre": "whiten", "norm_inf": "whiten"},
    ):
        assert not ev.fast_loo_applies(dict(settings))
        result = ev.evaluate(X, y, dict(settings), scheme="leave-one-out")
        assert np.array_equal(result.predictions, naive_loo(X, y, dict(settings)))


def test_held_out_images_are_never_in_the_head():
    """With every training image as a proxy, a leaked image would always find itself."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 16)).astype(np.float32)
    y = np.array(["a", "b", "c"] * 40)  # labels carry no information
    settings = {**PRESETS["ours"], "gen": "all"}
    for scheme in ev.SCHEMES:
        acc = ev.evaluate(X, y, settings, scheme=scheme).accuracy
        assert acc < 0.6, scheme  # chance is 1/3; a leak would give 1.0


def test_scheme_follows_size_and_settings():
    ours, oracle = dict(PRESETS["ours"]), dict(PRESETS["oracle"])
    assert ev.choose_scheme(100, ours) == "leave-one-out"
    assert ev.choose_scheme(ev.LOO_MAX_FAST + 1, ours) == "stratified k-fold"
    assert ev.choose_scheme(ev.LOO_MAX_REFIT, oracle) == "leave-one-out"
    assert ev.choose_scheme(ev.LOO_MAX_REFIT + 1, oracle) == "stratified k-fold"
    assert ev.choose_scheme(ev.KFOLD_MAX + 1, ours) == "stratified hold-out"


def test_result_states_the_scheme_and_is_consistent():
    X, y = blobs((30, 25, 20))
    for scheme in ev.SCHEMES:
        r = ev.evaluate(X, y, dict(PRESETS["oracle"]), scheme=scheme)
        words = {"leave-one-out": "Leave-one-out", "stratified k-fold": "Stratified 5-fold"}
        assert r.method == scheme and r.description.startswith(
            words.get(scheme, "Stratified hold-out")
        )
        assert r.confusion.sum() == r.n_evaluated == sum(r.support.values())
        assert r.accuracy == pytest.approx(np.trace(r.confusion) / r.n_evaluated)
        for i, c in enumerate(r.labels):
            if r.support[c]:
                assert r.per_class[c] == pytest.approx(r.confusion[i, i] / r.support[c])
        d = r.as_dict()
        assert d["method"] == scheme and d["confusion"] == r.confusion.tolist()
    hold = ev.evaluate(X, y, dict(PRESETS["oracle"]), scheme="stratified hold-out")
    assert hold.n_evaluated == 15  # 20 % of 75, class-balanced
    assert hold.support == {"class 0": 6, "class 1": 5, "class 2": 4}


def test_k_fold_with_a_tiny_class_keeps_every_class_in_training():
    X, y = blobs((20, 20, 2))
    r = ev.evaluate(X, y, dict(PRESETS["ours"]), scheme="stratified k-fold")
    assert r.n_evaluated == 42 and r.support["class 2"] == 2


def test_no_estimate_when_a_class_has_one_image():
    X, y = blobs((5, 1, 4))
    r = ev.evaluate(X, y, dict(PRESETS["ours"]))
    assert r.method == "none" and r.accuracy is None
    assert "'class 1' has fewer than 2 images" in r.description


def test_unknown_scheme():
    X, y = blobs()
    with pytest.raises(ValueError, match="unknown evaluation scheme"):
        ev.evaluate(X, y, dict(PRESETS["ours"]), scheme="bootstrap")


def test_kmeans_beats_the_mean_on_multimodal_classes():
    """XOR-like: class a lives at +e1 and -e1, class b at +e2 and -e2; their means nearly vanish."""
    rng = np.random.default_rng(2)
    d, n = 16, 20
    E = np.eye(d) * 4
    parts = [E[0], -E[0], E[1], -E[1]]
    X = np.concatenate([p + rng.normal(size=(n, d)) for p in parts]).astype(np.float32)
    y = np.repeat(["a", "a", "b", "b"], n)
    qi = ev.evaluate(X, y, dict(PRESETS["qi"])).accuracy
    ours = ev.evaluate(X, y, {**PRESETS["ours"], "k": 2}).accuracy
    assert ours >= 0.95 and qi < 0.8, (ours, qi)
