"""How many proxies should a class get? Read it off the class's own cluster structure.

For k = 2..max_k the L2-normalised class embeddings are clustered with k-means and scored with
the silhouette (how much closer each image is to its own group than to the next one). A silhouette
alone is fooled by a single elongated blob (cutting a cigar in two scores well), so every score is
compared with the score of the same procedure on a unimodal Gaussian of the same shape (same
covariance spectrum): only a clear gain over that "one blob" reference counts as sub-groups. Small
classes get one proxy (the mean), which the paper finds best when samples are few.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_PER_CLUSTER = 5  # a proxy needs at least this many images behind it
MAX_SAMPLES = 400  # larger classes are subsampled (seeded): enough to see the groups
KMEANS_DIMS = 64  # k-means runs in the top principal directions; silhouettes use all of them
N_INIT = 3  # k-means restarts per k
SIL_MIN = 0.2  # below this the groups are not "well separated" (Kaufman & Rousseeuw: < 0.25 weak)
GAP_MIN = 0.1  # required gain over a single Gaussian blob of the same shape
N_NULL = 2  # Gaussian reference draws averaged per k


def _kmeans_labels(Y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Labels of the best of N_INIT k-means runs.

    scikit-learn's Cython k-means: the data here are small (<= MAX_SAMPLES x KMEANS_DIMS), where it
    is fast and, unlike torch's thread pool, does not slow down badly on a busy 2-core machine.
    """
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(Y).labels_


def _silhouettes(Y: np.ndarray, ks: list[int], seed: int, min_size: int) -> np.ndarray:
    """Silhouette of the k-means solution for each k (NaN where a group is below min_size)."""
    from sklearn.metrics import silhouette_score

    sq = (Y**2).sum(1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * Y @ Y.T, 0.0))
    np.fill_diagonal(D, 0.0)
    Yk = Y[:, :KMEANS_DIMS].astype(np.float32)
    out = np.full(len(ks), np.nan)
    for i, k in enumerate(ks):
        labels = _kmeans_labels(Yk, k, seed)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() >= min_size:
            out[i] = silhouette_score(D, labels, metric="precomputed")
    return out


def _name(label: Any) -> str:
    return "This class" if label is None else f"'{label}'"


def recommend_k(X_c: Any, *, max_k: int = 10, seed: int = 0, label: Any = None) -> tuple[int, str]:
    """The recommended number of proxies for one class's embeddings, and why, in words."""
    import sklearn.cluster  # noqa: F401  (load its OpenMP runtime before limiting it)
    import sklearn.metrics  # noqa: F401

    from .collapse import one_thread

    # tiny problems (<= MAX_SAMPLES points): worker threads only spin on a busy machine (100x)
    with one_thread():
        return _recommend_k(X_c, max_k=max_k, seed=seed, label=label)


def _recommend_k(X_c: Any, *, max_k: int, seed: int, label: Any) -> tuple[int, str]:
    X = np.asarray(X_c, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(
            f"recommend_k needs a 2-D array (n, d) of embeddings; got shape {X.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError(
            f"The embeddings of {_name(label)} contain NaN or infinite values.".replace(
                "This class", "this class"
            )
        )
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    n = len(X)
    need = 2 * MIN_PER_CLUSTER
    if n < need or max_k < 2:
        why = (
            f"has only {n} image(s): too few to see sub-groups (at least {need} needed)"
            if n < need
            else "is limited to one proxy (max_k < 2)"
        )
        return (
            1,
            f"{_name(label)} {why}; use 1 proxy (the class mean), which is best with few samples.",
        )
    rng = np.random.default_rng(seed)
    if n > MAX_SAMPLES:
        X = X[rng.choice(n, MAX_SAMPLES, replace=False)]
    centred = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(centred, full_matrices=False)
    Y = U * S  # exact coordinates (distances unchanged) in the principal directions
    ks = list(range(2, min(max_k, len(X) // MIN_PER_CLUSTER) + 1))
    sil = _silhouettes(Y, ks, seed, MIN_PER_CLUSTER)
    scale = S / np.sqrt(len(X))  # the Gaussian with the class's covariance spectrum
    null = np.mean(
        [_silhouettes(rng.standard_normal(Y.shape) * scale, ks, seed, 2) for _ in range(N_NULL)],
        axis=0,
    )
    gap = sil - null
    if np.all(np.isnan(gap)):
        return 1, (
            f"{_name(label)}: k-means only finds groups of fewer than "
            f"{MIN_PER_CLUSTER} images, so there are no clear sub-groups; use 1 proxy (the mean)."
        )
    clear = (sil >= SIL_MIN) & (gap >= GAP_MIN)
    best = int(np.nanargmax(np.where(clear, gap, np.nan) if clear.any() else gap))
    k, s, g = ks[best], float(sil[best]), float(gap[best])
    if clear[best]:
        return k, (
            f"{_name(label)} splits into {k} well-separated groups (silhouette "
            f"{s:.2f}, against {s - g:.2f} for a single blob of the same shape): use {k} proxies."
        )
    return 1, (
        f"{_name(label)} shows no clear sub-groups (best silhouette {s:.2f} at "
        f"k={k}, a single blob of the same shape scores {s - g:.2f}): 1 proxy (the mean) is a "
        "safe choice; with many images, more k-means proxies can still help a little."
    )


def recommend_k_per_class(
    X: Any, y: Any, *, max_k: int = 10, seed: int = 0
) -> dict[Any, tuple[int, str]]:
    """recommend_k for every class of (X, y): {label: (k, reason)} in sorted label order."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"recommend_k_per_class needs embeddings (n, d) and n labels; got {X.shape} and "
            f"{y.shape}."
        )
    out: dict[Any, tuple[int, str]] = {}
    for c in np.unique(y):
        key = c.item() if isinstance(c, np.generic) else c
        out[key] = recommend_k(X[y == c], max_k=max_k, seed=seed, label=key)
    return out
