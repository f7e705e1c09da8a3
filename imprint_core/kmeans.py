"""Fast k-means (greedy k-means++ init + Lloyd) in torch on the CPU, and the sklearn reference.

``kmeans`` follows scikit-learn's ``KMeans(init="k-means++", n_init=1, algorithm="lloyd")``
step for step (same seeding rule, same stopping rule, same empty-cluster relocation) but skips
the distance computations that the triangle inequality proves cannot change a label (Elkan's
per-centre bounds), so late iterations touch only a fraction of the points. docs/kmeans.md
explains the method, the deviations and the benchmark figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Heavy: torch and scikit-learn imported where used, so that importing this module stays cheap.

# Allowance for rounding in the GEMM distance ||x||^2 - 2 x.c + ||c||^2, relative to
# ||x||^2 + max ||x'||^2 (every centre is a mean of points, so its norm is at most the largest
# point norm). Bounds are widened by it, so rounding never lets a bound skip a label change.
_SLACK = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


@dataclass
class KMeansResult:
    """A k-means fit: centres (k, d) float32, labels (n,) int64, inertia, Lloyd iterations."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def _validate(X: Any, k: Any, tol: Any = 0.0, max_iter: Any = 1) -> np.ndarray:
    """Return X as a C-contiguous float32/float64 2-D array, or raise a clear ValueError."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor, possibly on a GPU
        X = X.detach().cpu()
        X = (X.float() if str(X.dtype) == "torch.bfloat16" else X).numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"kmeans: X must be a 2-D array of shape (n_samples, n_features); got a {X.ndim}-D "
            f"array of shape {X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"kmeans: X is empty (shape {X.shape}); it needs >= 1 sample and feature.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"kmeans: X must hold real numbers; got dtype {X.dtype}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"kmeans: k must be an integer >= 1; got {k!r}.")
    if k < 1:
        raise ValueError(f"kmeans: k must be >= 1; got k={k}.")
    if k > X.shape[0]:
        raise ValueError(
            f"kmeans: k={k} is larger than the number of samples n={X.shape[0]}; k must be <= n "
            "(a class with fewer samples than k keeps all its samples as proxies instead)."
        )
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.number)) or not tol >= 0:
        raise ValueError(f"kmeans: tol must be a finite number >= 0; got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"kmeans: max_iter must be an integer >= 1; got {max_iter!r}.")
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    return np.ascontiguousarray(X, dtype=dtype)


def _check_finite(X: np.ndarray, x_sq: np.ndarray) -> None:
    """x_sq is non-finite iff X holds NaN/inf or overflows; only then look at X itself."""
    if np.isfinite(x_sq).all():
        return
    if not np.isfinite(X).all():
        raise ValueError("kmeans: X contains NaN or infinite values; all entries must be finite.")
    raise ValueError(
        f"kmeans: X has values too large for {X.dtype} distances (max |x| = "
        f"{float(np.abs(X).max()):.3g}); rescale X or pass float64."
    )


def _validate_init(init: Any, k: int, X: np.ndarray) -> np.ndarray:
    init = np.asarray(init)
    if init.shape != (k, X.shape[1]) or init.dtype.kind not in "biuf":
        raise ValueError(
            f"kmeans: init must be a real array of shape (k, n_features) = {(k, X.shape[1])}; "
            f"got shape {init.shape}, dtype {init.dtype}."
        )
    if not np.isfinite(init).all():
        raise ValueError("kmeans: init contains NaN or infinite values; all must be finite.")
    return np.ascontiguousarray(init, dtype=X.dtype)


def _sq_dist(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared distances (k, n) = ||x||^2 - 2 x.c + ||c||^2, clamped at 0; the GEMM in torch."""
    import torch

    c_sq = np.einsum("ij,ij->i", C, C)
    Xt, Ct = torch.from_numpy(X), torch.from_numpy(C)
    # MKL is fastest with the long side as the streamed operand: X @ C.T for a few centres
    # (k-means++ candidates), C @ X.T for a full set of centres
    G = torch.mm(Xt, Ct.T).numpy().T if len(C) <= 8 else torch.mm(Ct, Xt.T).numpy()
    D = c_sq[:, None] - 2 * G
    D += x_sq
    return np.maximum(D, 0, out=D)


class Lloyd:
    """Lloyd's algorithm on centred data with Elkan's bounds; all state lives here.

    labels/sums/counts describe the current partition (sums in float64, updated only by the
    points that change cluster). upper[i] >= d(x_i, own centre) and lower[j, i] <= d(x_i, c_j)
    (own centre: inf); after the centres move, upper grows and lower shrinks by the shifts.
    A point whose upper bound is below all its lower bounds provably keeps its label, so each
    E-step only computes distances for the other points. Only the distance GEMMs run in torch
    (multi-threaded BLAS); the O(n k) bookkeeping is plain numpy, single-threaded, so it never
    pays a thread fork/join, which is costly on a busy machine.
    """

    def __init__(self, Xc: np.ndarray, x_sq: np.ndarray, slack: float):
        self.X, self.x_sq, self.slack = Xc, x_sq, slack
        # squared-distance rounding allowance; valid for any centre (a mean of points)
        self.margin = (x_sq.astype(np.float64) + float(x_sq.max())) * slack

    def seed(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Greedy k-means++ (sklearn's rule); also sets labels and exact bounds for the seeds.

        The chosen candidate's distance row is computed anyway, so the first Lloyd assignment
        comes for free from those rows.
        """
        X, x_sq, n = self.X, self.x_sq, self.X.shape[0]
        n_trials = 2 + int(math.log(k))
        idx = [int(rng.integers(n))]
        closest = _sq_dist(X, x_sq, X[idx])[0]
        rows = [closest]
        labels = np.zeros(n, dtype=np.int64)
        for c in range(1, k):
            cum = np.cumsum(closest, dtype=np.float64)
            cand = np.searchsorted(cum, rng.uniform(size=n_trials) * cum[-1])
            cand = np.minimum(cand, n - 1)
            D = _sq_dist(X, x_sq, X[cand])
            best = int(np.argmin(np.minimum(D, closest).sum(1, dtype=np.float64)))
            row = D[best]
            labels[row < closest] = c  # strict: ties keep the earlier seed, like argmin
            closest = np.minimum(closest, row)
            rows.append(row)
            idx.append(int(cand[best]))
        C = X[idx]
        self._start(C, np.stack(rows), labels)
        return C

    def start_from(self, C: np.ndarray) -> None:
        """First assignment for given initial centres (one full GEMM)."""
        # given centres need not be means of points: widen the allowance to their norms too
        c_max = float(np.einsum("ij,ij->i", C, C).max())
        self.margin = np.maximum(self.margin, (self.x_sq + c_max) * self.slack)
        D = _sq_dist(self.X, self.x_sq, C)
        self._start(C, D, D.argmin(0))

    def _start(self, C: np.ndarray, D: np.ndarray, labels: np.ndarray) -> None:
        """Exact bounds from the full (k, n) squared distances D and the labels."""
        k, n = D.shape
        cols = np.arange(n)
        D = D.astype(np.float64)
        self.labels = labels
        self.upper = np.sqrt(D[labels, cols] + self.margin)
        D -= self.margin
        self.lower = np.sqrt(np.maximum(D, 0, out=D), out=D)
        self.lower[labels, cols] = np.inf
        self.counts = np.bincount(labels, minlength=k)
        self.sums = self._sums()  # float64 from here on, updated by the movers only

    def assign(self, C: np.ndarray) -> int:
        """E-step restricted to points whose bounds allow a change; returns #label changes."""
        if C.shape[0] == 1:
            return 0
        active = np.flatnonzero(self.upper > self.lower.min(0))
        if len(active) == 0:
            return 0
        if 4 * len(active) > 3 * len(self.X):  # nearly everyone: skip the gather copy
            active = np.arange(len(self.X))
            Xa = self.X
        else:
            Xa = self.X[active]
        D = _sq_dist(Xa, self.x_sq[active], C).astype(np.float64)
        j1 = D.argmin(0)  # first minimum on ties, like sklearn
        cols = np.arange(len(active))
        margin = self.margin[active]
        self.upper[active] = np.sqrt(D[j1, cols] + margin)
        D -= margin
        low = np.sqrt(np.maximum(D, 0, out=D), out=D)
        low[j1, cols] = np.inf
        self.lower[:, active] = low
        moved = j1 != self.labels[active]
        if moved.any():
            self._move(active[moved], j1[moved])
        return int(moved.sum())

    def _move(self, idx: np.ndarray, new: np.ndarray) -> None:
        """Points idx change cluster to `new`; update the float64 sums and counts."""
        import torch

        old = self.labels[idx]
        self.counts += np.bincount(new, minlength=len(self.counts))
        self.counts -= np.bincount(old, minlength=len(self.counts))
        self.labels[idx] = new
        if 8 * len(idx) > len(self.X):  # many movers (early iterations): re-add from scratch
            self.sums = self._sums()
            return
        xm = self.X[idx].astype(np.float64)
        sums = torch.from_numpy(self.sums)  # shares memory
        # alpha != 1 takes torch's serial loop; alpha == 1 forks threads even for a few rows
        sums.index_add_(0, torch.from_numpy(new), torch.from_numpy(-xm), alpha=-1)
        sums.index_add_(0, torch.from_numpy(old), torch.from_numpy(xm), alpha=-1)

    def _sums(self) -> np.ndarray:
        """Cluster sums of the current labels, accumulated in X's dtype like sklearn's."""
        k = len(self.counts)
        return np.stack([self.X[self.labels == j].sum(0) for j in range(k)]).astype(np.float64)

    def relocate_empty(self, C: np.ndarray) -> int:
        """sklearn's rule: each empty cluster takes a point farthest from its own centre."""
        empty = np.flatnonzero(self.counts == 0)
        if len(empty) == 0:
            return 0
        diff = self.X - C[self.labels]
        dist = np.einsum("ij,ij->i", diff, diff)
        if dist.max() == 0:  # fewer distinct points than clusters: nothing to move
            return 0
        far = np.argsort(dist, kind="stable")[::-1][: len(empty)]
        self.sums[empty] = 0.0  # drop float residue left by the incremental updates
        self._move(far, empty)
        # sklearn leaves the labels and lets the next E-step move them; we move them now (so
        # the sums stay a function of the labels) and force that E-step to look at them again
        self.upper[far] = np.inf
        self.lower[:, far] = 0.0
        return len(far)

    def centres(self, C_old: np.ndarray) -> np.ndarray:
        """Cluster means; a cluster still empty sits on the largest one, like sklearn."""
        C = (self.sums / np.maximum(self.counts, 1)[:, None]).astype(C_old.dtype)
        empty = self.counts == 0
        if empty.any():
            C[empty] = C[int(np.argmax(self.counts))]
        return C

    def loosen(self, shift: np.ndarray) -> None:
        """The centres moved by `shift`: widen the bounds so they stay valid."""
        self.upper += shift[self.labels]
        self.lower -= shift[:, None]  # a negative lower bound is still a valid one

    def inertia(self, C: np.ndarray, chunk: int = 256) -> float:
        """Sum of squared distances to the assigned centres, computed directly (no cancellation).

        Chunked so the differences stay in cache; chunk totals are summed in float64."""
        total = 0.0
        for s in range(0, self.X.shape[0], chunk):
            diff = self.X[s : s + chunk] - C[self.labels[s : s + chunk]]
            total += float(np.einsum("ij,ij->", diff, diff))
        return total


def kmeans(
    X: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    tol: float = 1e-4,
    max_iter: int = 300,
    init: np.ndarray | None = None,
) -> KMeansResult:
    """k-means with scikit-learn's semantics (greedy k-means++, Lloyd, centre-shift tol), fast.

    X: (n, d) array; float64 input is computed in float64, anything else in float32.
    init: optional (k, d) initial centres instead of k-means++ (like sklearn's init=array).
    Deterministic for a given seed. Returns centres (k, d) float32 with labels and inertia
    consistent with them. Raises ValueError for non-2-D or non-finite X and k outside 1..n.
    """

    X = _validate(X, k, tol, max_iter)
    k = int(k)
    rng = np.random.default_rng(seed)
    # Centre like sklearn: GEMM distances lose far less precision near the origin.
    with np.errstate(all="ignore"):  # NaN/inf/overflow are reported just below
        mean = X.mean(axis=0)  # any shift works (undone at the end); float32 is accurate enough
        Xc = X - mean
        x_sq = np.einsum("ij,ij->i", Xc, Xc)
    _check_finite(X, x_sq)
    # sklearn's _tolerance: tol * mean of the per-feature (population) variances = mean(x_sq)/d
    tol_abs = float(tol) * float(x_sq.sum(dtype=np.float64)) / X.size

    state = Lloyd(Xc, x_sq, _SLACK[X.dtype])
    if init is None:
        C = state.seed(k, rng)
    else:
        C = _validate_init(init, k, X) - mean
        state.start_from(C)
    n_changed = X.shape[0]  # sklearn compares the first labels with -1: never strict at once
    pending = 0
    strict = False
    for it in range(max_iter):
        if it > 0:
            n_changed = state.assign(C) + pending
        # sklearn only sees relocated points change label at its next E-step
        pending = state.relocate_empty(C)
        C_new = state.centres(C)
        shift = np.linalg.norm(C_new.astype(np.float64) - C, axis=1)
        state.loosen(shift)
        C = C_new
        if n_changed == 0:
            strict = pending == 0  # a relocation moved centres: labels need one more look
            break
        if float(shift @ shift) <= tol_abs:
            break
    n_iter = it + 1
    if not strict:  # final E-step so that the labels match the returned centres
        state.assign(C)
    centers = (C + mean).astype(np.float32)
    return KMeansResult(centers, state.labels.astype(np.int64), state.inertia(C), n_iter)


def kmeans_sklearn(X: np.ndarray, k: int, *, seed: int = 0) -> KMeansResult:
    """The paper's exact path: sklearn KMeans(n_clusters=k, random_state=seed), its defaults."""
    from sklearn.cluster import KMeans

    X = _validate(X, k)
    if not np.isfinite(X).all():
        raise ValueError("kmeans: X contains NaN or infinite values; all entries must be finite.")
    km = KMeans(n_clusters=int(k), random_state=seed).fit(X)
    return KMeansResult(
        km.cluster_centers_.astype(np.float32),
        km.labels_.astype(np.int64),
        float(km.inertia_),
        int(km.n_iter_),
    )
