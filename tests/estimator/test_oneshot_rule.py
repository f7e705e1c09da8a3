"""The default preset at one image per class: what docs/benchmarks.md's few-shot analysis rests on.

With one image per class there is no within-class scatter, the "dof" shrinkage d / (d + n - C)
is 1 and the whitening is the identity: `adaptive` is centring on the support mean + L2 + nearest
class by cosine (SimpleShot's recipe, centred on the support instead of a base set). Without the
centre it would be `qi` exactly. benchmarks/bench_oneshot_centring.py measures what less centring
would do (it does not pay: see docs/benchmarks.md, "Few-shot first").
"""

from __future__ import annotations

import numpy as np
import pytest

import imprint_core as ic
from imprint_core.normalisation import dof_shrinkage, fit_whitener, l2


def embeddings(n, d=64, seed=0):
    """Non-negative rows sharing a common direction, as pooled CNN features are."""
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((n, d)) + 1.5).astype(np.float32)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_one_shot_default_is_support_centring_plus_cosine(n_classes):
    S = embeddings(n_classes, seed=n_classes)
    y = np.arange(n_classes)
    Q = embeddings(200, seed=100 + n_classes)
    clf = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(S, y)
    assert clf.whitener_.shrinkage == pytest.approx(dof_shrinkage(S.shape[1], 0)) == 1.0
    centre = l2(S.astype(np.float64)).mean(0)
    proto = l2(l2(S.astype(np.float64)) - centre)
    by_hand = (l2(l2(Q.astype(np.float64)) - centre) @ proto.T).argmax(1)
    assert (clf.predict(Q) == by_hand).all()
    # the whitening matrix is the identity: only the centre acts
    assert np.allclose(fit_whitener(S, y, "dof").matrix, np.eye(S.shape[1]))
    # without the centre the same recipe is the paper's qi
    qi = ic.ImprintClassifier.from_preset("qi").fit(S, y)
    assert (qi.predict(Q) == (l2(Q) @ l2(S).T).argmax(1)).all()
    # with two classes the centre is the midpoint of two unit vectors, orthogonal to their
    # difference: centring changes no decision; with more classes it does
    same = (clf.predict(Q) == qi.predict(Q)).mean()
    assert same == 1.0 if n_classes == 2 else same < 0.95


def test_two_shots_already_whiten_a_little():
    S = embeddings(6, seed=7)
    y = np.repeat(np.arange(3), 2)
    w = fit_whitener(S, y, "dof")
    assert w.shrinkage == pytest.approx(64 / (64 + 3)) and w.shrinkage < 1
    assert not np.allclose(w.matrix, w.matrix[0, 0] * np.eye(64))
