"""Normalisation points of the IMPRINT framework: NORMpre, NORMpost and NORMinf.

- NORMpre acts on the training embeddings before proxy generation,
- NORMpost on the generated proxies, one class at a time, in class order,
- NORMinf on the embeddings to classify.
"""

from __future__ import annotations

import hashlib
import numbers
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Heavy: scipy imported where used, so that importing this module stays cheap.

# torch.quantile fails above about 2**24 elements; the reference then downsamples the reference
# values by strided slicing. We reproduce that so that `quantile` matches it on large heads.
QUANTILE_MAX_REFERENCE = 2**24
L2_EPS = 1e-12  # torch.nn.functional.normalize's default, used at NORMpost and NORMinf


def identity(X: np.ndarray) -> np.ndarray:
    return X


class ZeroVectorWarning(UserWarning):
    """An all-zero row met L2 normalisation: it is kept as zeros (sklearn's ``normalize`` rule)."""


def l2_strict(X: np.ndarray, what: str = "embedding") -> np.ndarray:
    """x / ||x|| with no epsilon (the reference's NORMpre).

    A zero row has no direction: it stays a zero row, with a warning, as in
    ``sklearn.preprocessing.normalize`` (raising made integer inputs with a zero row unusable,
    and NaN would poison every score).
    """
    import warnings

    norms = np.linalg.norm(X, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        warnings.warn(
            f"{what} row {int(zero[0])} is a zero vector ({zero.size} such rows): it has no "
            "direction, so L2 normalisation leaves it as zeros",
            ZeroVectorWarning,
            stacklevel=2,
        )
        norms = np.where(norms == 0, 1.0, norms)
    return X / norms


def l2(X: np.ndarray) -> np.ndarray:
    """x / max(||x||, 1e-12) per row, as torch.nn.functional.normalize."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, L2_EPS)


def quantile_targets(reference: np.ndarray, d: int) -> np.ndarray:
    """The d target values Q_ref((j + 1/2)/d), j = 0..d-1, with linear interpolation."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    step = 2
    full = ref
    while ref.size > QUANTILE_MAX_REFERENCE:
        ref = full[::step]
        step *= 2
    levels = (np.arange(d, dtype=np.float64) + 0.5) / d
    return np.quantile(ref, levels, method="linear")


def quantile(P: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """Map every row of P onto the quantiles of `reference` (all proxies stored so far).

    The j-th smallest entry of a row gets the value Q_ref((j + 1/2)/d). With no reference
    (the first class imprinted) the rows stay as they are, exactly as in the reference code.
    """
    if reference is None or np.size(reference) == 0:
        return P
    targets = quantile_targets(reference, P.shape[1]).astype(P.dtype)
    out = np.empty_like(P)
    order = np.argsort(P, axis=1, kind="stable")
    np.put_along_axis(out, order, np.broadcast_to(targets, P.shape), axis=1)
    return out


@dataclass
class Whitener:
    """Shrunk within-class whitening learned from the training embeddings (beyond the paper).

    transform(x) = l2((l2(x) - mean) @ matrix), where matrix M has M M^T = Sigma^-1 and
    Sigma = (1 - a) Sigma_W + a (tr(Sigma_W)/d) I is the pooled within-class covariance of the
    L2-normalised embeddings shrunk towards a multiple of the identity. Directions in which
    classes vary a lot are damped, so nearest-proxy decisions follow what tells classes apart
    (a shrinkage-LDA view of imprinting).
    """

    mean: np.ndarray
    matrix: np.ndarray
    shrinkage: float | str  # the value used; a head loaded from a file keeps its rule's name
    # (mean, matrix) per input dtype: casting a d x d matrix took longer than classifying one
    # image with it (7 ms of a Try-it prediction, once per transform)
    _cast: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def transform(self, X: np.ndarray, what: str = "embedding") -> np.ndarray:
        memo = getattr(_REUSE, "memo", None)
        # only a Whitener the memo fitted (and keeps alive, so that its id is its own)
        mine = memo is not None and memo.get(("whitener", id(self))) is self
        key = (id(self), _digest(X), what) if mine else None
        if key is not None and key in memo:
            return memo[key].copy()  # a copy: callers may write into what they get
        cast = self._cast.get(X.dtype)
        if cast is None:
            cast = self._cast[X.dtype] = (self.mean.astype(X.dtype), self.matrix.astype(X.dtype))
        Z = l2((l2_strict(X, what) - cast[0]) @ cast[1])
        if key is not None and _room(memo, Z.nbytes):
            memo[key] = Z.copy()
        return Z


# ---- reuse within many fits on the same rows (the accuracy-vs-k curve) --------------------------
_REUSE = threading.local()


@contextmanager
def reusing_whitening() -> Iterator[None]:
    """Inside, on this thread, ``fit_whitener`` returns the Whitener it already fitted to the
    same rows, labels and shrinkage, and its ``transform`` the rows it already transformed.

    The accuracy-vs-k curve fits a head per (gen, k) on the same folds: the whitening of a fold
    does not depend on gen or k, so it is fitted once per fold instead of once per head (the
    results are the same arrays). Nothing is kept after the block.
    """
    if getattr(_REUSE, "memo", None) is not None:  # nested: the outer block's memo serves
        yield
        return
    _REUSE.memo = {}
    try:
        yield
    finally:
        _REUSE.memo = None


# What the memo may hold: a 1,280-d whitening matrix is 13 MB, so the 5 folds of a curve fit
# easily; leave-one-out over 30 images (30 training sets) keeps the first ones only.
REUSE_MAX_MB = 160


def _room(memo: dict, nbytes: int) -> bool:
    """Whether ``nbytes`` more fit in the memo (then counted)."""
    used = memo.get("bytes", 0) + nbytes
    if used > REUSE_MAX_MB * 2**20:
        return False
    memo["bytes"] = used
    return True


def _digest(X: np.ndarray) -> tuple:
    X = np.ascontiguousarray(X)
    return X.shape, X.dtype.str, hashlib.blake2b(X.data, digest_size=16).digest()


def oas_shrinkage(trace: float, frob: float, d: int, n: int) -> float:
    """Oracle Approximating Shrinkage (Chen et al. 2010) of a covariance S from tr(S) and
    ||S||_F^2: the formula of ``sklearn.covariance.oas`` (mu = tr/d, alpha = ||S||_F^2 / d^2).
    ``n`` is the number of independent residuals (samples minus classes)."""
    mu = trace / d
    alpha = frob / d**2
    den = (n + 1.0) * (alpha - mu**2 / d)
    return 1.0 if den <= 0 else float(min((alpha + mu**2) / den, 1.0))


def ledoit_wolf_shrinkage(trace: float, frob: float, d: int, n: int, fourth: float) -> float:
    """Ledoit-Wolf (2004) shrinkage towards tr(S)/d I; ``fourth`` = sum_i ||r_i||^4 / n^2."""
    mu = trace / d
    delta = frob - d * mu**2  # ||S - mu I||_F^2
    beta = max(fourth - frob / max(n, 1), 0.0)  # (1/n^2) sum ||r r^T - S||_F^2
    return 1.0 if delta <= 0 else float(min(beta, delta) / delta)


def dof_shrinkage(d: int, n: int) -> float:
    """d / (d + n): the identity weighs as much as d pseudo-samples against n residual degrees of
    freedom. Measured on Fashion-MNIST (docs/benchmarks.md), it tracks the accuracy-best fixed
    shrinkage from 2 to 500 images per class (about 0.9 at 10, 0.75 at 50, 0.2 at 500 with
    d = 1280), where OAS and Ledoit-Wolf, which minimise the covariance's error rather than
    the classifier's, shrink too little below about 50 images per class."""
    return float(d / (d + max(n, 0)))


# How the whitening shrinkage is chosen: a number is used as it is; a name estimates it from the
# within-class residuals (few images: close to 1, i.e. hardly any whitening; many: small).
# "cv" picks it by held-out accuracy of the class-mean head (imprint_core/shrinkage_cv.py).
SHRINKAGE_RULES = ("dof", "oas", "ledoit_wolf", "cv")


def _shrinkage(rule: float | str, trace: float, frob: float, R: np.ndarray, n_indep: int):
    d = R.shape[1]
    if rule == "dof":
        return dof_shrinkage(d, n_indep)
    if rule == "oas":
        return oas_shrinkage(trace, frob, d, n_indep)
    if rule == "ledoit_wolf":
        fourth = float((np.einsum("ij,ij->i", R, R) ** 2).sum()) / len(R) ** 2
        return ledoit_wolf_shrinkage(trace, frob, d, len(R), fourth)
    return float(rule)


def check_shrinkage(shrinkage: Any) -> None:
    """A number in (0, 1] or one of SHRINKAGE_RULES, else a sentence saying so."""
    if isinstance(shrinkage, str):
        if shrinkage not in SHRINKAGE_RULES:
            raise ValueError(
                f"whiten_shrinkage must be in (0, 1] or one of {', '.join(SHRINKAGE_RULES)}, "
                f"got {shrinkage!r}"
            )
    elif not (
        isinstance(shrinkage, numbers.Real)
        and not isinstance(shrinkage, bool)
        and 0 < shrinkage <= 1
    ):
        raise ValueError(
            f"whiten_shrinkage must be in (0, 1] or one of {', '.join(SHRINKAGE_RULES)}, "
            f"got {shrinkage!r}"
        )


def fit_whitener(X: np.ndarray, y_idx: np.ndarray, shrinkage: float | str = 0.3) -> Whitener:
    """Fit a :class:`Whitener` on embeddings X with class indices y_idx.

    ``shrinkage`` is a number in (0, 1] or a rule of SHRINKAGE_RULES that estimates it from the
    within-class residuals; the Whitener records the value used.
    """
    check_shrinkage(shrinkage)
    memo = getattr(_REUSE, "memo", None)
    if memo is not None:
        key = ("fit", _digest(np.asarray(X)), _digest(np.asarray(y_idx)), repr(shrinkage))
        if key in memo:
            return memo[key]
        whitener = _fit_whitener(X, y_idx, shrinkage)
        if _room(memo, whitener.matrix.nbytes):
            memo[key] = memo[("whitener", id(whitener))] = whitener
        return whitener
    return _fit_whitener(X, y_idx, shrinkage)


def _fit_whitener(X: np.ndarray, y_idx: np.ndarray, shrinkage: float | str) -> Whitener:
    U = l2_strict(np.asarray(X, dtype=np.float64))
    C = int(y_idx.max()) + 1
    if shrinkage == "cv":
        from imprint_core.shrinkage_cv import cv_shrinkage

        shrinkage = cv_shrinkage(U, y_idx, len(U) - C)
    means = np.zeros((C, U.shape[1]))
    np.add.at(means, y_idx, U)
    means /= np.bincount(y_idx, minlength=C)[:, None]
    R = U - means[y_idx]
    n, d = R.shape
    if n >= d:
        # many images: Sigma_W from a float32 GEMM (the cost is n d^2, as least squares), then
        # M = L^-T from the Cholesky factor of the shrunk Sigma. M M^T = Sigma^-1 as for the
        # symmetric Sigma^-1/2, so every inner product and norm after the transform is the same,
        # at a fraction of an eigendecomposition's cost (measured in benchmarks/bench_fit.py).
        R32 = np.ascontiguousarray(R, dtype=np.float32)
        S = (R32.T @ R32).astype(np.float64) / n
        trace, frob = float(np.trace(S)), float((S**2).sum())
        shrinkage = _shrinkage(shrinkage, trace, frob, R, n - C)
        tau = trace / d or 1.0
        S *= 1 - shrinkage
        S[np.diag_indices(d)] += shrinkage * tau
        from scipy.linalg import cholesky, solve_triangular

        try:
            L = cholesky(S, lower=True)
        except np.linalg.LinAlgError:  # a tiny shrinkage of a singular Sigma_W: eigh copes
            evals, V = np.linalg.eigh(S)
            matrix = (V * np.clip(evals, 1e-300, None) ** -0.5) @ V.T
        else:
            matrix = solve_triangular(L, np.eye(d), lower=True).T
        return Whitener(U.mean(axis=0), matrix, float(shrinkage))
    # few images: eigen-pairs of Sigma_W = R^T R / n from the small n x n Gram matrix
    g, Ug = np.linalg.eigh(R @ R.T / n)
    keep = g > g.max() * 1e-10 if g.size and g.max() > 0 else np.zeros_like(g, dtype=bool)
    evals, V = np.clip(g[keep], 0, None), R.T @ Ug[:, keep] / np.sqrt(n * g[keep])
    trace, frob = float(evals.sum()), float((evals**2).sum())
    shrinkage = _shrinkage(shrinkage, trace, frob, R, n - C)
    tau = trace / d or 1.0
    base = shrinkage * tau
    scale = ((1 - shrinkage) * evals + base) ** -0.5
    matrix = base**-0.5 * (np.eye(d) - V @ V.T) + (V * scale) @ V.T
    return Whitener(U.mean(axis=0), matrix, float(shrinkage))


NORM_PRE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": identity,
    "l2": l2_strict,
    "whiten": identity,  # fitted: the classifier learns a Whitener and applies it
}
NORM_INF: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": identity,
    "l2": lambda X: l2_strict(X, "input"),
    "whiten": identity,  # applies the Whitener learned at fit
}
FITTED_NORMS = frozenset({"whiten"})
# The space a head compares inputs with its proxies in, named by its NORMinf (for maps and tables)
NORM_INF_SPACE = {
    "none": "raw embeddings",
    "l2": "L2-normalised embeddings",
    "whiten": "centred, whitened, L2",
}
# NORMpost functions take (proxies of one class, proxies stored for earlier classes).
NORM_POST: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "none": lambda P, ref: P,
    "l2": lambda P, ref: l2(P),
    "quantile": quantile,
}
ORDER_DEPENDENT_NORM_POST = frozenset({"quantile"})

NORM_DOC = {
    "none": "leave vectors as they are",
    "l2": "scale every vector to unit length",
    "quantile": "map each proxy's values onto the value distribution of earlier classes' proxies",
    "whiten": "L2, then damp the directions in which classes vary (learned from your images)",
}


def normalise_post_sequential(
    proxies: Sequence[np.ndarray], method: str, stored: Sequence[np.ndarray] = ()
) -> list[np.ndarray]:
    """Apply NORMpost class by class; each class sees the proxies stored before it."""
    fn = NORM_POST[method]
    done: list[np.ndarray] = list(stored)
    out = []
    for P in proxies:
        ref = np.concatenate([w.ravel() for w in done]) if done else None
        Q = fn(P, ref)
        done.append(Q)
        out.append(Q)
    return out
