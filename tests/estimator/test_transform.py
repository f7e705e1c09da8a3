"""ImprintClassifier.transform is the head's own space: exactly what class_scores compares with
the proxies, so maps and evidence drawn from it cannot drift from the decisions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

import imprint_core as ic


def blobs(seed: int = 0, d: int = 12):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 2
    y = np.repeat(["a", "b", "c"], 8)
    X = centres[np.repeat(np.arange(3), 8)] + rng.normal(size=(24, d))
    return X, y, rng.normal(size=(10, d)) * 2


@pytest.mark.parametrize("preset", sorted(ic.PRESETS))
def test_class_scores_compare_the_transform_with_the_proxies(preset):
    """Every preset (one proxy decides: max, or 1-NN): the class score is minus the smallest
    distance, in the head's space, from the transformed input to the class's proxies (the
    inner product itself for inner_product)."""
    X, y, T = blobs()
    head = ic.ImprintClassifier.from_preset(preset).fit(X, y)
    D = head.distances(T)
    owner = head.proxy_class_index_
    expected = np.stack([-D[:, owner == c].min(axis=1) for c in range(3)], axis=1)
    assert head.class_scores(T) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    if head.distance == "inner_product":
        Z = head.transform(T)
        ip = Z @ head.proxies_.T.astype(Z.dtype)
        by_hand = np.stack([ip[:, owner == c].max(axis=1) for c in range(3)], axis=1)
        assert head.class_scores(T) == pytest.approx(by_hand, rel=1e-6, abs=1e-9)


def test_transform_is_normalisation_at_inference():
    """none: as given; l2: unit rows; whiten: the fitted whitening; training embeddings go
    through the same map, so transform(X_train) is where the proxies were imprinted from."""
    X, y, T = blobs(1)
    raw = ic.ImprintClassifier.from_preset("janson").fit(X, y)
    assert raw.transform(T) == pytest.approx(T)
    unit = ic.ImprintClassifier.from_preset("qi").fit(X, y)
    assert np.linalg.norm(unit.transform(T), axis=1) == pytest.approx(np.ones(len(T)))
    white = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(X, y)
    assert white.transform(T) == pytest.approx(white.whitener_.transform(T))
    # gen=mean, norm_post=l2: a proxy is the unit vector of its class's mean in the head's space
    Z = white.transform(X)
    mean_a = Z[y == "a"].mean(axis=0)
    assert white.proxies_of("a")[0] == pytest.approx(mean_a / np.linalg.norm(mean_a), abs=1e-6)


def test_transform_keeps_the_float_type_and_works_in_a_pipeline():
    X, y, T = blobs(2)
    head = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET)
    Z = head.fit_transform(X, y)
    assert Z == pytest.approx(head.transform(X))
    assert head.transform(T.astype(np.float32)).dtype == np.float32
    # as a step of a pipeline, it hands the head's space on (here to a second head)
    pipe = make_pipeline(ic.ImprintClassifier.from_preset("adaptive"), ic.ImprintClassifier())
    assert pipe.fit(X, y).score(X, y) > 0.9


def test_distances_to_other_embeddings_use_the_heads_space():
    X, y, T = blobs(3)
    head = ic.ImprintClassifier.from_preset(ic.DEFAULT_PRESET).fit(X, y)
    D = head.distances(T, X)
    assert D.shape == (len(T), len(X))
    assert D == pytest.approx(-(head.transform(T) @ head.transform(X).T), abs=1e-9)
    with pytest.raises(ValueError, match="features"):
        head.distances(T[:, :5])
