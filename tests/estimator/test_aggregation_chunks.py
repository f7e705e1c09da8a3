"""Scoring in row chunks (bounded memory for big heads) gives the unchunked scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from imprint_core import aggregation

CASES = [
    ("max", "inner_product", 1, "uniform"),
    ("max", "euclidean", 1, "uniform"),
    ("max", "mahalanobis", 1, "uniform"),
    ("mnn", "cosine", 5, "uniform"),
    ("mnn", "inner_product", 4, "distance"),
    ("mnn", "manhattan", 3, "distance"),
]


@pytest.mark.parametrize(("agg", "distance", "m", "weighting"), CASES)
def test_chunked_scores_equal_one_block(agg, distance, m, weighting):
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(103, 16)).astype(np.float32)
    W = rng.normal(size=(30, 16)).astype(np.float32)
    proxy_class = np.repeat(np.arange(6), 5)
    kw = dict(agg=agg, distance=distance, m=m, weighting=weighting)
    whole = aggregation.class_scores(Z, W, proxy_class, 6, chunk_bytes=10**9, **kw)
    # 30 proxies x 4 bytes x 7 rows: chunks of 7 queries, the last one shorter
    chunked = aggregation.class_scores(Z, W, proxy_class, 6, chunk_bytes=30 * 4 * 7, **kw)
    assert chunked.shape == whole.shape == (103, 6)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(chunked.argmax(1), whole.argmax(1))


def test_float32_stays_float32_and_m_warns_once():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(50, 8)).astype(np.float32)
    W = rng.normal(size=(6, 8)).astype(np.float32)
    scores = aggregation.class_scores(Z, W, np.repeat(np.arange(3), 2), 3, chunk_bytes=6 * 4 * 5)
    assert scores.dtype == np.float32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aggregation.class_scores(
            Z, W, np.repeat(np.arange(3), 2), 3, agg="mnn", m=9, chunk_bytes=6 * 4 * 5
        )
    assert [str(w.message) for w in caught] == [
        "m=9 is larger than the 6 proxies of the head; using m=6"
    ]
