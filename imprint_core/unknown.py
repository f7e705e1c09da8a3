""" "None of these": how unlike every taught class an input is, from the head alone.

The score is one minus the input's best cosine to the L2 class means of the training embeddings
(the max-cosine score of Qi et al.'s imprinted weights), whatever the head's own GEN, NORM or AGG.
The head stores those means (``unknown_means_``), so saved-and-loaded heads score exactly as the
fitted ones. Measured on Fashion-MNIST (docs/benchmarks.md, "None of these"), no other score we
tried did clearly better: a head's own space was worse (whitening costs about 0.02 AUROC, one
proxy per image about 0.01), and Mahalanobis, k-NN, density, subspace, energy, margin,
per-class-spread and activation-shaping scores were all within about 0.01 of it or below.

The threshold is calibrated on the training images themselves: each image is scored against its
own class's mean *without it* (leave-one-out, closed form) and against the other classes' means;
an input is "none of these" when it scores above ``UNKNOWN_QUANTILE`` (95 %) of those held-out
scores, i.e. farther from every class than 95 % of the user's own images are from theirs. The
held-out scores are stored in the head (``unknown_calibration_``), so the quantile can be chosen
later (``clf.unknown_threshold(0.99)``). With one image per class nothing can be held out: the
threshold falls back to the classes' separation (the median over class means of the distance to
the nearest other mean), and says so (``unknown_rule_``).
"""

from __future__ import annotations

import numpy as np

from .aggregation import pairwise

UNKNOWN_QUANTILE = 0.95  # share of held-out training images below the threshold


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero (it has no direction)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


def _class_sums(U: np.ndarray, y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, d) per-class sums as one GEMM with the one-hot matrix (np.add.at is ~50x slower)."""
    onehot = np.zeros((n_classes, len(U)), dtype=U.dtype)
    onehot[y_idx, np.arange(len(U))] = 1.0
    return onehot @ U


def class_means(X: np.ndarray, y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, d) float32: the L2-normalised mean of every class's L2-normalised embeddings."""
    U = _unit_rows(np.asarray(X, dtype=np.float64))
    return _unit_rows(_class_sums(U, y_idx, n_classes)).astype(np.float32)


def fit_unknown(X: np.ndarray, y_idx: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The class means (C, d) float32 and the sorted held-out scores (m,) float32 of the
    training images (see held_out_scores), from one normalisation of X."""
    U = _unit_rows(np.asarray(X, dtype=np.float64))
    sums = _class_sums(U, y_idx, n_classes)
    means = _unit_rows(sums).astype(np.float32)
    return means, _held_out(U, y_idx, sums, means)


def unknown_score(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(n,) ``1 - max_c cos(x, mean_c)``: 0 on a class mean, up to 2 opposite every class."""
    U = _unit_rows(np.asarray(X, dtype=np.float64))
    return 1.0 - (U @ means.astype(np.float64).T).max(axis=1)


def held_out_scores(X: np.ndarray, y_idx: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Sorted (m,) float32 scores of the training images held out from their own class mean.

    Image i of class c is compared with the mean of c's other images (closed form: the class sum
    minus the image) and with the other classes' means; classes with one image give no score.
    """
    U = _unit_rows(np.asarray(X, dtype=np.float64))
    return _held_out(U, y_idx, _class_sums(U, y_idx, len(means)), means)


def _held_out(U: np.ndarray, y_idx: np.ndarray, sums: np.ndarray, means: np.ndarray) -> np.ndarray:
    # cosines from inner products with the class sums alone (n x C, no n x d temporaries):
    # <u, S_c - u> = <u, S_c> - |u|^2 and |S_c - u|^2 = |S_c|^2 - 2 <u, S_c> + |u|^2
    counts = np.bincount(y_idx, minlength=len(means))
    keep = counts[y_idx] >= 2
    U, y_idx = U[keep], y_idx[keep]
    if not len(U):
        return np.zeros(0, dtype=np.float32)
    cos = U @ means.astype(np.float64).T
    rows = np.arange(len(U))
    g = U @ sums.T
    uu = np.einsum("ij,ij->i", U, U)
    dot = g[rows, y_idx] - uu
    norm = np.sqrt(np.maximum((sums**2).sum(axis=1)[y_idx] - 2 * g[rows, y_idx] + uu, 0.0))
    cos[rows, y_idx] = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 1e-12)
    return np.sort(1.0 - cos.max(axis=1)).astype(np.float32)


def threshold(calibration: np.ndarray, means: np.ndarray, quantile: float) -> tuple[float, str]:
    """The score above which an input is "none of these", and the rule that gave it."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    if len(calibration):
        value = float(np.quantile(calibration.astype(np.float64), quantile))
        return value, f"held-out training images ({quantile:.0%} score lower)"
    return class_separation(means), "class separation (one image per class: nothing held out)"


def class_separation(means: np.ndarray) -> float:
    """Median over class means of ``1 - cos`` to the nearest other class mean."""
    M = means.astype(np.float64)
    D = 1.0 - M @ M.T
    np.fill_diagonal(D, np.inf)
    return float(np.median(D.min(axis=1))) if len(M) > 1 else float("inf")


def nearest_proxy_distance(
    Z: np.ndarray, W: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> np.ndarray:
    """(n,) distance of every row of Z to its nearest proxy row of W in the head's own space
    (``1 - inner product`` for the inner product). Only for head files saved before the class
    means were stored (format 1 without ``unknown_means``)."""
    if distance == "inner_product":
        return 1.0 - (Z @ W.T).max(axis=1)
    return pairwise(Z, W, distance, VI).min(axis=1)


def proxy_separation(
    W: np.ndarray, proxy_class: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> float:
    """The older heads' threshold: median over proxies of the distance to the nearest proxy of
    another class."""
    D = 1.0 - W @ W.T if distance == "inner_product" else pairwise(W, W, distance, VI)
    D = np.where(proxy_class[:, None] == proxy_class[None, :], np.inf, D)
    nearest = D.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(nearest)) if nearest.size else float("inf")
