"""GEN: which proxy vectors represent a class.

Per-class generators take one class's (NORMpre-normalised) embeddings and return a (k_c, d)
matrix. Joint generators (least squares) see every class at once. The rules of the reference
``select_proxies`` apply in its order: ``all``, or a class with fewer samples than k, gives all
samples; a class of one sample gives that sample; otherwise the method decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Ridge lambda of the least-squares oracle per backbone: the weight decay of each model's
# original training recipe (reference: backbone_lambda_regs); 0.05 elsewhere.
LS_LAMBDA = {"resnet18": 1e-4, "resnet50": 1e-4, "vit_b_16": 0.1, "swin_b": 0.05}
LS_LAMBDA_DEFAULT = 0.05


@dataclass
class GenContext:
    """What a generator may use besides the class data."""

    k: int
    seed: int
    rng: np.random.Generator  # shared across classes and consumed in class order, as the reference
    lambda_reg: float = LS_LAMBDA_DEFAULT
    kmeans_impl: str = "fast"


def _mean(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X.mean(axis=0, keepdims=True)


def _all(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X


def _random(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X[ctx.rng.permutation(len(X))[: ctx.k]]


def kmeans_fit(X: np.ndarray, k: int, seed: int, impl: str = "fast"):
    """k-means with the fast implementation or scikit-learn's (the reference's exact path)."""
    from .kmeans import kmeans, kmeans_sklearn

    return (kmeans_sklearn if impl == "sklearn" else kmeans)(X, k, seed=seed)


def _kmeans(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    # The same seed for every class, as the reference (KMeans(random_state=seed) per class).
    return kmeans_fit(X, ctx.k, ctx.seed, ctx.kmeans_impl).centers.astype(X.dtype, copy=False)


def _pairwise_euclidean(X: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", X, X)
    D2 = sq[:, None] - 2.0 * (X @ X.T) + sq[None, :]
    np.maximum(D2, 0.0, out=D2)
    np.fill_diagonal(D2, 0.0)
    return np.sqrt(D2)


def kmedoids_indices(X: np.ndarray, k: int, max_iter: int = 300) -> np.ndarray:
    """k-medoids, scikit-learn-extra's 'alternate' method with its deterministic heuristic init."""
    D = _pairwise_euclidean(X.astype(np.float64))
    medoids = np.argsort(D.sum(axis=1), kind="stable")[:k]
    for _ in range(max_iter):
        old = medoids.copy()
        labels = np.argmin(D[medoids, :], axis=0)
        for j in range(k):
            members = np.flatnonzero(labels == j)
            if members.size == 0:
                continue
            costs = D[np.ix_(members, members)].sum(axis=1)
            current = costs[np.flatnonzero(members == medoids[j])[0]]
            best = int(np.argmin(costs))
            if costs[best] < current:
                medoids[j] = members[best]
        if np.array_equal(old, medoids):
            break
    return medoids


def _kmedoids(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X[kmedoids_indices(X, ctx.k)]


def fps_indices(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Farthest point sampling from a uniformly random start (Euclidean)."""
    X64 = X.astype(np.float64)
    chosen = [int(rng.integers(len(X)))]
    mind = np.linalg.norm(X64 - X64[chosen[0]], axis=1)
    mind[chosen[0]] = -np.inf
    for _ in range(1, k):
        nxt = int(np.argmax(mind))
        chosen.append(nxt)
        mind = np.minimum(mind, np.linalg.norm(X64 - X64[nxt], axis=1))
        mind[chosen] = -np.inf
    return np.asarray(chosen)


def _fps(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X[fps_indices(X, ctx.k, ctx.rng)]


def cov_max_indices(X: np.ndarray, k: int) -> np.ndarray:
    """Top-k column sums of torch.cov(X) (rows as variables), without forming the N x N matrix.

    sum_i cov(x_i, x_j) = <x_j - mean(x_j), sum_i (x_i - mean(x_i))> / (d - 1).
    """
    X64 = X.astype(np.float64)
    Xc = X64 - X64.mean(axis=1, keepdims=True)
    sums = Xc @ Xc.sum(axis=0) / max(X.shape[1] - 1, 1)
    return np.argsort(-sums, kind="stable")[:k]


def _cov_max(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X[cov_max_indices(X, ctx.k)]


def least_squares(class_data: Sequence[np.ndarray], lambda_reg: float) -> list[np.ndarray]:
    """Least-squares (ridge, no bias) weights: w_c = (1/C) (S + lambda I)^-1 mu_c.

    S = (1/N) sum x x^T is the uncentred second moment (= Sigma_T + mu_G mu_G^T). Solved with a
    linear solve in float64 rather than an explicit inverse.
    """
    C = len(class_data)
    d = class_data[0].shape[1]
    N = sum(len(X) for X in class_data)
    S = np.zeros((d, d), dtype=np.float64)
    for X in class_data:
        Xf = np.ascontiguousarray(X, dtype=np.float32)
        S += (Xf.T @ Xf).astype(np.float64)  # float32 GEMM: the cost is N d^2
    S /= N
    S[np.diag_indices(d)] += lambda_reg
    M = np.stack([X.astype(np.float64).mean(axis=0) for X in class_data], axis=1)  # (d, C)
    W = np.linalg.solve(S, M).T / C
    return [W[c : c + 1].astype(class_data[c].dtype) for c in range(C)]


def _joint_ls(class_data: Sequence[np.ndarray], ctx: GenContext) -> list[np.ndarray]:
    return least_squares(class_data, ctx.lambda_reg)


def _joint_kls(class_data: Sequence[np.ndarray], ctx: GenContext) -> list[np.ndarray]:
    """k-least-squares: k-means pseudo-classes per class, one LS over all of them jointly.

    A class with fewer than k samples keeps its raw samples and takes no part in the LS.
    """
    k = ctx.k
    if k == 1:
        return least_squares(class_data, ctx.lambda_reg)
    out: list[np.ndarray | None] = [None] * len(class_data)
    pseudo: list[np.ndarray] = []
    owner: list[int] = []
    for c, X in enumerate(class_data):
        if len(X) < k:
            out[c] = X
            continue
        labels = kmeans_fit(X, k, ctx.seed, ctx.kmeans_impl).labels
        for j in range(k):
            members = X[labels == j]
            if len(members):
                pseudo.append(members)
                owner.append(c)
    if pseudo:
        weights = least_squares(pseudo, ctx.lambda_reg)
        for c in range(len(class_data)):
            if out[c] is None:
                out[c] = np.concatenate(
                    [w for w, o in zip(weights, owner, strict=True) if o == c], axis=0
                )
    return out  # type: ignore[return-value]


PerClassGen = Callable[[np.ndarray, GenContext], np.ndarray]
JointGen = Callable[[Sequence[np.ndarray], GenContext], list[np.ndarray]]

PER_CLASS: dict[str, PerClassGen] = {
    "mean": _mean,
    "all": _all,
    "random": _random,
    "kmeans": _kmeans,
    "kmedoids": _kmedoids,
    "fps": _fps,
    "cov_max": _cov_max,
}
JOINT: dict[str, JointGen] = {"ls": _joint_ls, "kls": _joint_kls}
GEN_OPTIONS = (*PER_CLASS, *JOINT)
# Generators whose result does not depend on k (one proxy per class or all samples).
K_FREE = frozenset({"mean", "all", "ls"})
# Generators that only use their own class's data: the others are refitted as a whole.
PER_CLASS_ONLY = frozenset(PER_CLASS)

GEN_DOC = {
    "mean": "one proxy per class: the mean embedding (classic imprinting)",
    "all": "every training embedding is a proxy (a nearest-neighbour classifier)",
    "random": "k randomly chosen training embeddings per class",
    "kmeans": "k k-means centroids per class (the IMPRINT method)",
    "kmedoids": "k k-medoids per class (real samples at cluster centres)",
    "fps": "k samples spread out by farthest point sampling",
    "cov_max": "the k samples most covariant with the rest of their class",
    "ls": "least-squares (ridge) weights over all classes jointly: an oracle, not imprinting",
    "kls": "least squares over k k-means sub-clusters per class",
}


def generate_class(X: np.ndarray, gen: str, ctx: GenContext) -> np.ndarray:
    """Proxies of one class with a per-class generator, following the reference's rules."""
    if gen == "mean":
        return _mean(X, ctx)
    if gen == "all" or len(X) < ctx.k:
        return X
    if len(X) == 1:
        return X
    return PER_CLASS[gen](X, ctx)


def generate(class_data: Sequence[np.ndarray], gen: str, ctx: GenContext) -> list[np.ndarray]:
    """Proxies for every class, in class order."""
    if gen in JOINT:
        return JOINT[gen](class_data, ctx)
    return [generate_class(X, gen, ctx) for X in class_data]
