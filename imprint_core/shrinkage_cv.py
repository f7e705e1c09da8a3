"""The whitening shrinkage chosen on held-out support images (``whiten_shrinkage="cv"``).

The ``dof`` rule shrinks the within-class covariance by ``a = nu / (nu + n - C)`` with
``nu = d`` pseudo-samples of the identity. The best ``nu`` depends on the data set, not only on
n and d (docs/benchmarks.md: hand signs and digits want less, clothing as much), so ``cv``
scores the whitened class-mean head for a few values of ``nu`` (``GRID``, in units of d) on
held-out support images (10 folds: each image held out once) and keeps the best; ties go to
``nu = d``, the ``dof`` rule.

Cheap: the head's scores depend on the embeddings only through the metric ``Sigma^-1`` of the
shrunk covariance ``Sigma = (1 - a) S + a tau I``, and with ``S = V diag(L) V^T`` its inverse is
``(I - V V^T) / (a tau) + V diag(1 / ((1 - a) L + a tau)) V^T``: one eigendecomposition per
fold, then only the eigenvalue weights change with ``a``. With fewer images than dimensions every
vector involved lies in the span of the images, so all of it runs in the n coordinates of that
span (from the n x n Gram matrix) instead of d.

The chosen ``nu`` is turned into the shrinkage of all the images, ``nu / (nu + n - C)``: a number
of pseudo-samples carries over from a fold's images to all of them, where a shrinkage would not.
Where nothing can be held out (one image per class: no class keeps an image when its only one
is held out) and from ``n >= d`` images on (a fold would cost a d x d eigendecomposition; the
``dof`` rule was tuned there on Fashion-MNIST) it is the ``dof`` value.
"""

from __future__ import annotations

import numpy as np

# Pseudo-samples nu of the identity, in units of d: 1 is the ``dof`` rule, the others whiten
# more (hand signs and digits gained, docs/benchmarks.md). More values (4, 1/64, 1/256) chose
# worse on held-out test images: the choice among them is noisier than their gain.
GRID = (1.0, 1 / 4, 1 / 16)
DOF = 1.0
FOLDS = 10  # every image is held out once; a fold holds at most one image of a class of <= 10
# The held-out score is the log-probability of the true class under ``predict_proba`` at the
# classifier's default temperature: smoother than held-out accuracy, which at 2-5 images per
# class ties or flips on one image and chose worse (docs/benchmarks.md).
TEMPERATURE = 0.05


def pseudo_shrinkage(nu: float, n_indep: int) -> float:
    """nu / (nu + n - C): the shrinkage of ``nu`` pseudo-samples against n - C residual
    degrees of freedom (1 when there are none)."""
    return float(nu / (nu + max(int(n_indep), 0)))


def fold_of(y_idx: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Fold of every image (-1: never held out, alone in its class). Images are taken class by
    class and dealt to the folds in turn, so a class of at most ``folds`` images has at most one
    image in a fold and always keeps one for training; deterministic, no random draw."""
    order = np.argsort(y_idx, kind="stable")
    fold = np.empty(len(y_idx), dtype=np.int64)
    fold[order] = np.arange(len(y_idx)) % max(int(folds), 1)
    counts = np.bincount(y_idx)
    fold[counts[y_idx] < 2] = -1
    return fold


def span_coordinates(U: np.ndarray) -> np.ndarray:
    """Rows of U in an orthonormal basis of their span: ``A A^T = U U^T`` (n x rank)."""
    g, W = np.linalg.eigh(U @ U.T)
    keep = g > max(g.max(initial=0.0), 0.0) * 1e-12
    return W[:, keep] * np.sqrt(g[keep])


def fold_scores(
    A: np.ndarray, y_idx: np.ndarray, train: np.ndarray, held: np.ndarray, d: int, grid=GRID
) -> np.ndarray:
    """(len(grid), len(held), C) cosine class scores of the held-out rows under the whitened
    class-mean head fitted on the ``train`` rows, one slice per ``nu`` of ``grid`` (units of d).

    ``A`` are L2-normalised embeddings, or their coordinates in the span of the images
    (``span_coordinates``); ``d`` is the embeddings' true dimension (the identity's trace).
    """
    At, yt = A[train], y_idx[train]
    C = int(y_idx.max()) + 1
    counts = np.bincount(yt, minlength=C)
    present = counts > 0
    means = np.zeros((C, A.shape[1]))
    np.add.at(means, yt, At)
    means[present] /= counts[present, None]
    R = At - means[yt]
    n_t = len(At)
    L, V = np.linalg.eigh(R.T @ R / n_t)
    keep = L > max(L.max(initial=0.0), 0.0) * 1e-10
    L, V = L[keep], V[:, keep]
    tau = L.sum() / d or 1.0
    mu = At.mean(axis=0)
    Vt, Vh = At - mu, A[held] - mu
    Pt, Ph = Vt @ V, Vh @ V
    # x . y - (xV) . (yV): the part outside the residuals' span, weighted 1 / (a tau)
    out_t = np.einsum("ij,ij->i", Vt, Vt) - np.einsum("ij,ij->i", Pt, Pt)
    out_h = np.einsum("ij,ij->i", Vh, Vh) - np.einsum("ij,ij->i", Ph, Ph)
    onehot = np.zeros((C, n_t))
    onehot[yt, np.arange(n_t)] = 1.0
    scores = np.full((len(grid), len(Vh), C), -np.inf)
    for g, nu in enumerate(grid):
        a = pseudo_shrinkage(nu * d, n_t - int(present.sum()))
        base = a * tau
        s = 1.0 / ((1 - a) * L + base)
        w = 1.0 / np.sqrt(np.maximum(out_t / base + (Pt**2 * s).sum(axis=1), 1e-300))
        T = (onehot * w) @ Vt  # class sums of the whitened unit vectors, before whitening
        PT = T @ V
        tt = (np.einsum("ij,ij->i", T, T) - (PT**2).sum(axis=1)) / base + (PT**2 * s).sum(axis=1)
        ht = (Vh @ T.T - Ph @ PT.T) / base + (Ph * s) @ PT.T
        hh = out_h / base + (Ph**2 * s).sum(axis=1)
        cos = ht / np.sqrt(np.maximum(hh[:, None] * tt[None, :], 1e-300))
        scores[g][:, present] = cos[:, present]
    return scores


def held_out(U: np.ndarray, y_idx: np.ndarray, grid=GRID, folds: int = FOLDS):
    """Held-out accuracy and mean log-probability of the true class (``softmax(scores /
    TEMPERATURE)``), each (len(grid),), for every ``nu`` of ``grid``, and the images held out
    (m,): every image of a class of two or more, once. ``U``: L2-normalised embeddings (n, d)."""
    fold = fold_of(y_idx, folds)
    A = span_coordinates(U) if len(U) < U.shape[1] else U
    hits, loglik = np.zeros(len(grid)), np.zeros(len(grid))
    held_any = np.flatnonzero(fold >= 0)
    for f in np.unique(fold[held_any]):
        held = np.flatnonzero(fold == f)
        S = fold_scores(A, y_idx, np.flatnonzero(fold != f), held, U.shape[1], grid)
        hits += (S.argmax(axis=2) == y_idx[held][None, :]).sum(axis=1)
        Z = S / TEMPERATURE
        top = Z.max(axis=2, keepdims=True)
        logp = Z - top - np.log(np.exp(Z - top).sum(axis=2, keepdims=True))
        loglik += logp[:, np.arange(len(held)), y_idx[held]].sum(axis=1)
    m = max(len(held_any), 1)
    return hits / m, loglik / m, held_any


def best_nu(score: np.ndarray, grid=GRID) -> float:
    """The ``nu`` of the best held-out score; ties go to the ``dof`` rule's, then to the values
    nearest it (larger first: less whitening)."""
    nus = np.asarray(grid, dtype=np.float64)
    key = [
        (-round(float(v), 9), abs(np.log(nu / DOF)), -nu) for v, nu in zip(score, nus, strict=True)
    ]
    return float(nus[min(range(len(nus)), key=key.__getitem__)])


def cv_shrinkage(U: np.ndarray, y_idx: np.ndarray, n_indep: int) -> float:
    """The shrinkage of ``whiten_shrinkage="cv"`` for L2-normalised embeddings U (n, d) with
    class indices y_idx and n_indep = n - C residual degrees of freedom."""
    n, d = U.shape
    if n_indep <= 0 or n >= d:
        return pseudo_shrinkage(DOF * d, n_indep)
    from imprint_core.threads import one_thread

    # n x n eigendecompositions: multi-threaded BLAS spins on a busy machine (a 200 x 200 eigh
    # measured 1.2 s against 0.02 s on one thread)
    with one_thread(wait=False):
        _, loglik, held = held_out(U, y_idx)
    nu = best_nu(loglik) if len(held) else DOF
    return pseudo_shrinkage(nu * d, n_indep)
