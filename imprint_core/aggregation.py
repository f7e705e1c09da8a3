"""AGG: how proxy similarities or distances become per-class scores and a decision.

``max`` with the inner product scores class c by max_j <w_cj, x> (the classic imprinting head).
``max`` with another distance is the reference's reroute to 1-NN under that distance. ``mnn``
votes among the m nearest proxies (uniform, or weighted by 1/(distance + 1e-10)).

Scores are graded wherever the decision allows: for 1-NN the class score is minus the distance to
the class's nearest proxy (its argmax is exactly the 1-NN decision); for m > 1 it is the class's
share of the (weighted) votes. Ties go to the lowest class index, as torch/numpy argmax do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

# Heavy: scipy imported where used, so that importing this module stays cheap.

AGG_OPTIONS = ("max", "mnn")
DISTANCE_OPTIONS = ("inner_product", "cosine", "euclidean", "manhattan", "mahalanobis")
WEIGHTING_OPTIONS = ("uniform", "distance")
VOTE_EPS = 1e-10
MAHALANOBIS_RIDGE = 1e-6


def _inner(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    # "distance" = negative inner product, so that nearest means largest inner product.
    return -(Z @ W.T)


def _cosine(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    zn = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-300)
    wn = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-300)
    return 1.0 - zn @ wn.T


def _euclidean(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    D2 = (
        np.einsum("ij,ij->i", Z, Z)[:, None]
        - 2.0 * (Z @ W.T)
        + np.einsum("ij,ij->i", W, W)[None, :]
    )
    return np.sqrt(np.maximum(D2, 0.0))


def _manhattan(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(Z, W, metric="cityblock")


def mahalanobis_vi(W: np.ndarray) -> np.ndarray:
    """(cov(W) + 1e-6 I)^-1 from the proxies themselves, as the reference."""
    if len(W) < 2:
        raise ValueError(
            "distance='mahalanobis' needs at least 2 proxies to estimate a covariance; "
            f"the head has {len(W)}"
        )
    cov = np.cov(W, rowvar=False)
    cov[np.diag_indices_from(cov)] += MAHALANOBIS_RIDGE
    return np.linalg.inv(cov)


def _mahalanobis(Z: np.ndarray, W: np.ndarray, VI: np.ndarray | None = None) -> np.ndarray:
    from scipy.spatial.distance import cdist

    VI = mahalanobis_vi(W) if VI is None else VI
    return cdist(Z, W, metric="mahalanobis", VI=VI)


DISTANCES: dict[str, Callable[..., np.ndarray]] = {
    "inner_product": _inner,
    "cosine": _cosine,
    "euclidean": _euclidean,
    "manhattan": _manhattan,
    "mahalanobis": _mahalanobis,
}

AGG_DOC = {
    "max": "a class scores its best-matching proxy; the best class wins",
    "mnn": "the m nearest proxies vote for their classes",
}
DISTANCE_DOC = {
    "inner_product": "dot product (with L2-normalised vectors: cosine similarity)",
    "cosine": "1 - cosine similarity",
    "euclidean": "straight-line distance",
    "manhattan": "sum of absolute differences",
    "mahalanobis": "distance scaled by the proxies' covariance",
}
WEIGHTING_DOC = {
    "uniform": "every neighbour has one vote",
    "distance": "closer neighbours weigh more (1/distance)",
}


def pairwise(Z: np.ndarray, W: np.ndarray, distance: str, VI: np.ndarray | None = None):
    if distance == "mahalanobis":
        return _mahalanobis(Z, W, VI)
    return DISTANCES[distance](Z, W)


def _per_class_best(values: np.ndarray, proxy_class: np.ndarray, n_classes: int) -> np.ndarray:
    """max over each class's (contiguous) proxies of `values`, shape (n, C)."""
    starts = np.flatnonzero(np.r_[True, proxy_class[1:] != proxy_class[:-1]])
    out = np.maximum.reduceat(values, starts, axis=1)
    if out.shape[1] != n_classes:  # only if a class had no proxy, which fit prevents
        full = np.full((values.shape[0], n_classes), -np.inf)
        full[:, proxy_class[starts]] = out
        return full
    return out


# Rows of queries scored at once: the (rows, proxies) similarity block stays near this size
# (10,000 queries x 20,000 proxies would be 800 MB in float32 in one piece).
CHUNK_BYTES = 32 * 2**20


def class_scores(
    Z: np.ndarray,
    W: np.ndarray,
    proxy_class: np.ndarray,
    n_classes: int,
    *,
    agg: str = "max",
    distance: str = "inner_product",
    m: int = 1,
    weighting: str = "uniform",
    VI: np.ndarray | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """Per-class scores (n, C); the prediction is their argmax (first index on ties).

    `proxy_class` holds each proxy's class index; a class's proxies are contiguous rows of W.
    Queries are scored in row chunks so that memory stays bounded for big heads; each row's
    scores depend on that row alone, so chunking changes nothing but the peak memory.
    """
    if agg == "max":
        m = 1  # the reference reroutes max + a distance to 1-NN under that distance
    P = W.shape[0]
    if m > P:
        warnings.warn(
            f"m={m} is larger than the {P} proxies of the head; using m={P}", stacklevel=3
        )
        m = P
    if distance == "mahalanobis" and VI is None:
        VI = mahalanobis_vi(W)  # once, not per chunk
    rows = max(1, int(chunk_bytes) // max(1, P * Z.dtype.itemsize))
    if Z.shape[0] <= rows:
        return _block_scores(Z, W, proxy_class, n_classes, distance, m, weighting, VI)
    blocks = [
        _block_scores(Z[i : i + rows], W, proxy_class, n_classes, distance, m, weighting, VI)
        for i in range(0, Z.shape[0], rows)
    ]
    return np.concatenate(blocks)


def _block_scores(Z, W, proxy_class, n_classes, distance, m, weighting, VI) -> np.ndarray:
    if m == 1 and distance == "inner_product":
        return _per_class_best(Z @ W.T, proxy_class, n_classes)
    D = pairwise(Z, W, distance, VI)
    if m == 1:
        return _per_class_best(-D, proxy_class, n_classes)
    # stable sort: among equal distances the lower proxy (hence lower class) index comes first
    nearest = np.argsort(D, axis=1, kind="stable")[:, :m]
    if weighting == "distance":
        d_near = np.take_along_axis(D, nearest, axis=1)
        if distance == "inner_product":
            d_near = d_near - D.min(axis=1, keepdims=True)  # make "distances" non-negative
        weights = 1.0 / (d_near + VOTE_EPS)
    else:
        weights = np.ones(nearest.shape)
    votes = np.zeros((Z.shape[0], n_classes))
    rows = np.repeat(np.arange(Z.shape[0]), m)
    np.add.at(votes, (rows, proxy_class[nearest].ravel()), weights.ravel())
    return votes / votes.sum(axis=1, keepdims=True)
