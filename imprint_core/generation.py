"""GEN: which proxy vectors represent a class.

Per-class generators take one class's (NORMpre-normalised) embeddings and return a (k_c, d)
matrix. Joint generators (least squares) see every class at once. The rules of the reference
``select_proxies`` apply in its order: ``all``, or a class with fewer samples than k, gives all
samples; a class of one sample gives that sample; otherwise the method decides.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .aggregation import pairwise
from .kmeans import kmeans, kmeans_sklearn
from .normalisation import l2

# Ridge lambda of the least-squares oracle per backbone: the weight decay of each model's
# original training recipe (reference: backbone_lambda_regs); 0.05 elsewhere.
LS_LAMBDA = {"resnet18": 1e-4, "resnet50": 1e-4, "vit_b_16": 0.1, "swin_b": 0.05}
LS_LAMBDA_DEFAULT = 0.05


@dataclass
class GenContext:
    """What a generator may use besides the class data."""

    k: int
    seed: int
    rng: np.random.Generator | None = None  # the class's own stream (see class_rng)
    lambda_reg: float = LS_LAMBDA_DEFAULT
    kmeans_impl: str = "fast"
    state: dict = field(default_factory=dict)  # what a generator leaves for later (LS statistics)
    # what `auto` needs to score candidate proxies the way the head will
    norm_post: str = "l2"
    norm_inf: str = "l2"
    distance: str = "inner_product"


def class_rng(seed: int, label: Any) -> np.random.Generator:
    """A random stream per (seed, class label).

    The reference consumes one global stream in class order, so a class's random proxies depend
    on the classes before it; seeding per class keeps results reproducible and lets a class be
    added later with exactly the proxies a full fit would give it.
    """
    label = label.item() if isinstance(label, np.generic) else label
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(repr(label).encode())])


def _mean(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X.mean(axis=0, keepdims=True)


def _all(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X


def _random(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    return X[ctx.rng.permutation(len(X))[: ctx.k]]


def kmeans_fit(X: np.ndarray, k: int, seed: int, impl: str = "fast"):
    """k-means with the fast implementation or scikit-learn's (the reference's exact path)."""
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


@dataclass
class LSState:
    """Sufficient statistics of a least-squares head, so classes can be added without the data.

    ``xxT`` is sum x x^T over every sample in the LS, ``n`` their count; ``sums``/``counts`` are
    per (pseudo-)class; ``owner`` holds the class label of each pseudo-class; ``raw`` the raw
    proxies of kls classes too small to take part.
    """

    xxT: np.ndarray
    n: int = 0
    sums: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    owner: list[Any] = field(default_factory=list)
    raw: dict[Any, np.ndarray] = field(default_factory=dict)

    def add(self, groups: Sequence[np.ndarray], owner: Any) -> None:
        for X in groups:
            Xf = np.ascontiguousarray(X, dtype=np.float32)
            self.xxT += (Xf.T @ Xf).astype(np.float64)  # float32 GEMM: the cost is N d^2
            self.n += len(X)
            self.sums.append(X.sum(axis=0, dtype=np.float64))
            self.counts.append(len(X))
            self.owner.append(owner)

    def solve(self, lambda_reg: float) -> np.ndarray:
        """w = (1/C) (S + lambda I)^-1 mu for every (pseudo-)class, C = their number."""
        d = self.xxT.shape[0]
        S = self.xxT / self.n
        S[np.diag_indices(d)] += lambda_reg
        M = (np.stack(self.sums) / np.asarray(self.counts, dtype=np.float64)[:, None]).T
        return np.linalg.solve(S, M).T / M.shape[1]

    def proxies(self, labels: Sequence[Any], lambda_reg: float, dtype) -> list[np.ndarray]:
        """Every class's proxies, in the order of `labels`."""
        W = self.solve(lambda_reg) if self.n else None
        out = []
        for label in labels:
            if label in self.raw:
                out.append(self.raw[label])
            else:
                out.append(W[[i for i, o in enumerate(self.owner) if o == label]].astype(dtype))
        return out


def least_squares(class_data: Sequence[np.ndarray], lambda_reg: float) -> list[np.ndarray]:
    """Least-squares (ridge, no bias) weights: w_c = (1/C) (S + lambda I)^-1 mu_c.

    S = (1/N) sum x x^T is the uncentred second moment (= Sigma_T + mu_G mu_G^T). Solved with a
    linear solve in float64 rather than an explicit inverse.
    """
    state = LSState(np.zeros((class_data[0].shape[1],) * 2))
    for c, X in enumerate(class_data):
        state.add([X], c)
    return state.proxies(range(len(class_data)), lambda_reg, class_data[0].dtype)


def add_to_least_squares(state: LSState, X: np.ndarray, label: Any, gen: str, ctx: GenContext):
    """Add one class to the LS statistics: itself (ls), its k-means clusters (kls), or, for a
    kls class with fewer than k samples, its raw samples as proxies outside the LS."""
    if gen == "ls" or ctx.k == 1:
        state.add([X], label)
    elif len(X) < ctx.k:
        state.raw[label] = X
    else:
        assign = kmeans_fit(X, ctx.k, ctx.seed, ctx.kmeans_impl).labels
        state.add([X[assign == j] for j in range(ctx.k) if (assign == j).any()], label)


def joint_least_squares(
    class_data: Sequence[np.ndarray], labels: Sequence[Any], gen: str, ctx: GenContext
) -> list[np.ndarray]:
    """ls / kls proxies for every class; the statistics are left in ``ctx.state["ls"]``."""
    state = LSState(np.zeros((class_data[0].shape[1],) * 2))
    for X, label in zip(class_data, labels, strict=True):
        add_to_least_squares(state, X, label, gen, ctx)
    ctx.state["ls"] = state
    return state.proxies(labels, ctx.lambda_reg, class_data[0].dtype)


def _joint_ls(class_data, labels, ctx: GenContext) -> list[np.ndarray]:
    return joint_least_squares(class_data, labels, "ls", ctx)


def _joint_kls(class_data, labels, ctx: GenContext) -> list[np.ndarray]:
    """k-least-squares: k-means pseudo-classes per class, one LS over all of them jointly.

    A class with fewer than k samples keeps its raw samples and takes no part in the LS.
    """
    return joint_least_squares(class_data, labels, "kls", ctx)


AUTO_CANDIDATES = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80)
AUTO_MIN_PER_PROXY = 10  # a proxy must stand for at least this many images
AUTO_FOLDS = 3


def auto_candidates(n: int, k_max: int) -> list[int]:
    """The k values `auto` may choose for a class of n samples (always including the mean)."""
    return [k for k in AUTO_CANDIDATES if k == 1 or (k <= k_max and n >= AUTO_MIN_PER_PROXY * k)]


def _proxies_k(X: np.ndarray, k: int, ctx: GenContext) -> np.ndarray:
    P = X.mean(axis=0, keepdims=True) if k == 1 else _kmeans(X, replace(ctx, k=k))
    if ctx.norm_post == "l2":
        P = l2(P)
    return P


def _best_score(Z: np.ndarray, P: np.ndarray, distance: str) -> np.ndarray:
    if distance == "inner_product":
        return (Z @ P.T).max(axis=1)
    return -pairwise(Z, P, distance).min(axis=1)


def choose_k_per_class(
    class_data: Sequence[np.ndarray], labels: Sequence[Any], ctx: GenContext
) -> list[int]:
    """Pick each class's number of k-means proxies by cross-validated accuracy.

    Candidates per class are k = 1 (the mean) and the k of AUTO_CANDIDATES up to ctx.k with at
    least AUTO_MIN_PER_PROXY samples per proxy, so small classes keep the mean (the paper finds
    the mean best when samples are few). Out-of-fold class scores are computed for every
    (class, candidate) once; then coordinate ascent picks, class by class, the k that maximises
    out-of-fold accuracy given the others (ties go to the smaller k).
    """
    cands = [auto_candidates(len(X), ctx.k) for X in class_data]
    if all(c == [1] for c in cands):
        return [1] * len(class_data)
    folds = [
        class_rng(ctx.seed, lab).permutation(len(X)) % AUTO_FOLDS
        for X, lab in zip(class_data, labels, strict=True)
    ]
    held_Z, held_y = [], []
    for f in range(AUTO_FOLDS):
        for c, X in enumerate(class_data):
            held_Z.append(X[folds[c] == f])
            held_y.append(np.full(int((folds[c] == f).sum()), c))
    Z = np.concatenate(held_Z)
    if ctx.norm_inf == "l2":
        Z = l2(Z)
    y = np.concatenate(held_y)
    fold_of = np.concatenate(
        [
            np.full(len(h), f)
            for f in range(AUTO_FOLDS)
            for h in held_Z[f * len(class_data) : (f + 1) * len(class_data)]
        ]
    )
    # scores[c][j]: out-of-fold score of every held-out sample for class c with its j-th candidate
    scores = []
    for c, X in enumerate(class_data):
        per_k = []
        for k in cands[c]:
            s = np.empty(len(Z))
            for f in range(AUTO_FOLDS):
                train = X[folds[c] != f]
                kk = min(k, len(train))
                s[fold_of == f] = _best_score(
                    Z[fold_of == f], _proxies_k(train, kk, ctx), ctx.distance
                )
            per_k.append(s)
        scores.append(per_k)

    def accuracy(choice: list[int]) -> float:
        S = np.stack([scores[c][j] for c, j in enumerate(choice)], axis=1)
        return float((S.argmax(axis=1) == y).mean())

    # Start from the best common k (more proxies for one class alone inflate its max score, so
    # class-by-class moves from the mean get stuck), then refine class by class.
    def common(k: int) -> list[int]:
        return [max(j for j, kc in enumerate(cands[c]) if kc <= k) for c in range(len(cands))]

    all_k = sorted({k for c in cands for k in c})
    accs = [accuracy(common(k)) for k in all_k]
    choice = common(all_k[int(np.argmax(accs))])
    best = max(accs)
    for _ in range(2):
        changed = False
        for c in range(len(class_data)):
            for j in range(len(cands[c])):
                trial = choice[:c] + [j] + choice[c + 1 :]
                acc = accuracy(trial)
                if acc > best + 1e-12:
                    best, choice, changed = acc, trial, True
        if not changed:
            break
    return [cands[c][j] for c, j in enumerate(choice)]


def _joint_auto(class_data, labels, ctx: GenContext) -> list[np.ndarray]:
    ks = choose_k_per_class(class_data, labels, ctx)
    ctx.state["auto_k"] = dict(zip(labels, ks, strict=True))
    return [
        X.mean(axis=0, keepdims=True) if k == 1 else _kmeans(X, replace(ctx, k=k))
        for X, k in zip(class_data, ks, strict=True)
    ]


SIZED_PER_PROXY = 50  # `sized`: one k-means proxy per this many images of a class


def sized_k(n: int, k_max: int) -> int:
    """The number of proxies `sized` gives a class of n images: n // SIZED_PER_PROXY, in [1, k]."""
    return max(1, min(int(k_max), n // SIZED_PER_PROXY))


def _sized(X: np.ndarray, ctx: GenContext) -> np.ndarray:
    # A closed-form k instead of `auto`'s cross-validation: few images give the mean (the paper
    # finds it best below ~100 per class), many give more k-means proxies, up to ctx.k.
    k = sized_k(len(X), ctx.k)
    return _mean(X, ctx) if k == 1 else _kmeans(X, replace(ctx, k=k))


PerClassGen = Callable[[np.ndarray, GenContext], np.ndarray]
JointGen = Callable[[Sequence[np.ndarray], Sequence[Any], GenContext], list[np.ndarray]]

PER_CLASS: dict[str, PerClassGen] = {
    "mean": _mean,
    "all": _all,
    "random": _random,
    "kmeans": _kmeans,
    "kmedoids": _kmedoids,
    "fps": _fps,
    "cov_max": _cov_max,
    "sized": _sized,
}
JOINT: dict[str, JointGen] = {"ls": _joint_ls, "kls": _joint_kls, "auto": _joint_auto}
# Options added after the paper's come last, so that lists shown to users only grow at the end.
ADDED_GEN = ("sized",)
GEN_OPTIONS = (*(g for g in PER_CLASS if g not in ADDED_GEN), *JOINT, *ADDED_GEN)
# Generators whose result does not depend on k (one proxy per class or all samples).
K_FREE = frozenset({"mean", "all", "ls"})
# Generators that decide themselves how many proxies a small class gets (not "all when < k").
OWN_SIZE_RULE = frozenset({"mean", "sized"})
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
    "auto": "k-means with the number of proxies chosen per class by cross-validation (up to k)",
    "sized": f"k-means with one proxy per {SIZED_PER_PROXY} images of a class (up to k; the mean "
    "below that)",
}


def generate_class(X: np.ndarray, gen: str, ctx: GenContext) -> np.ndarray:
    """Proxies of one class with a per-class generator, following the reference's rules."""
    if gen in OWN_SIZE_RULE:
        return PER_CLASS[gen](X, ctx)
    if gen == "all" or len(X) < ctx.k:
        return X
    if len(X) == 1:
        return X
    return PER_CLASS[gen](X, ctx)


def generate(
    class_data: Sequence[np.ndarray], gen: str, ctx: GenContext, labels: Sequence[Any]
) -> list[np.ndarray]:
    """Proxies for every class, in class order; `labels` seed each class's random stream."""
    if gen in JOINT:
        return JOINT[gen](class_data, labels, ctx)
    return [
        generate_class(X, gen, replace(ctx, rng=class_rng(ctx.seed, label)))
        for X, label in zip(class_data, labels, strict=True)
    ]
