"""The spaces of the "none of these" score and every training image's held-out scores in them.

``fit_spaces`` returns what ``imprint_core.unknown`` stores (class means; centre, metric and class
directions of the whitened space) and, for every training image, the two distances a new image
would have: computed without the image, in closed form (no refit per image).

Whitened space. With ``u`` the L2-normalised embeddings, ``mu`` their mean, ``r`` the residuals
from the class means and ``Scatter = sum r r^T = V diag(L) V^T``, the metric is the inverse of
``Sigma = p Scatter + q I`` with ``p = (1 - a) / n``, ``q = a tr(Scatter) / (n d)`` and the
shrinkage ``a = d / (d + n - C)`` (``normalisation.dof_shrinkage``, the default head's). Up to a
factor, ``Sigma^-1 = I - V diag(D) V^T`` with ``D = pL / (pL + q)``: stored as ``F = V sqrt(D)``.
An input ``v = u - mu`` is compared by the cosine ``<v, t_c> / (|v| |t_c|)`` in that metric with
the class direction ``t_c = sum_{j in c} v_j / |v_j|`` (the mean of the whitened unit vectors).

Held out. For image ``i`` of a class with ``n_c >= 2`` images: its class sum without it; the
scatter without it (``Scatter - n_c / (n_c - 1) r_i r_i^T``, exact, and the shrinkage and trace
that follow); the centre without it (``mu - v_i / (n - 1)``). The metric then differs from the
fit's by a diagonal in the eigenbasis (the new trace and shrinkage) and a rank-one term
(Sherman-Morrison). Only the weights ``1 / |v_j|`` of the other images are kept from the fit
(within about 0.02 of refitting without each image, tested). Then the cosine to its own class,
of ``n_c - 1`` images, is turned into the cosine a new image has to a class of ``n_c``
(``_more_images``, one factor per class), in both spaces. An image alone in its class is held
out with its class: scored against the other classes only.
"""

from __future__ import annotations

import numpy as np

CHUNK = 2048  # rows of held-out work at a time: n x rank float64 arrays stay small
# Images held out at most: the 95 % quantile of 2,000 held-out scores is known to about 0.5 % of
# images; more only cost time (a seeded sample, the same share of every class).
HELD_OUT_MAX = 2000


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero (it has no direction)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


def class_sums(U: np.ndarray, y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, d) per-class sums as one GEMM with the one-hot matrix (np.add.at is ~50x slower)."""
    onehot = np.zeros((n_classes, len(U)), dtype=U.dtype)
    onehot[y_idx, np.arange(len(U))] = 1.0
    return onehot @ U


def _scatter_eigen(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, V) with ``R^T R = V diag(L) V^T`` over the non-zero eigenvalues; from the small n x n
    Gram matrix when there are fewer images than dimensions."""
    n, d = R.shape
    if n < d:
        g, W = np.linalg.eigh(R @ R.T)
        keep = g > max(g.max(initial=0.0), 0.0) * 1e-10
        return g[keep], R.T @ (W[:, keep] / np.sqrt(g[keep]))
    R32 = np.ascontiguousarray(R, dtype=np.float32)  # n d^2: a float32 GEMM, as the whitener
    L, V = np.linalg.eigh((R32.T @ R32).astype(np.float64))
    keep = L > max(L.max(initial=0.0), 0.0) * 1e-10
    return L[keep], V[:, keep]


def _shrink(n: np.ndarray | int, trace: np.ndarray | float, n_indep, d: int):
    """(p, q) of ``Sigma = p Scatter + q I`` for n images, the scatter's trace and n_indep = n - C."""
    a = d / (d + np.maximum(n_indep, 0))
    q = a * np.where(np.asarray(trace) > 0, np.asarray(trace) / (np.asarray(n) * d), 1.0)
    return (1 - a) / n, q


def _more_images(sum2: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Factor from a held-out image's cosine to its class mean of ``n_c - 1`` images to the
    cosine a new image has to the mean of all ``n_c``: for unit vectors with mean pairwise cosine
    ``rho`` the cosine to the mean of k of them is ``rho sqrt(k / (1 + (k - 1) rho))``; ``rho``
    from the class sum's squared norm ``sum2``. One factor per class: a factor that depended on
    the image (its own inner product with the sum) would narrow the held-out scores."""
    k = np.maximum(n_c, 2).astype(np.float64)
    rho = np.clip((sum2 - k) / (k * (k - 1)), 0.0, 1.0)
    return np.sqrt(k * (1 + (k - 2) * rho) / ((k - 1) * (1 + (k - 1) * rho)))


def fit_spaces(
    U: np.ndarray, y_idx: np.ndarray, n_classes: int, as_new: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """From L2-normalised embeddings U (n, d), float64: the spaces (``means``, ``center``,
    ``metric``, ``white_means``), the held-out (raw, white) distances (m, 2) of the images held
    out (all, or ``HELD_OUT_MAX`` of them: ``held_out_rows``) and whether each was held out from
    its own class (m,) bool (else with its class). ``as_new=False`` leaves out the correction to
    a class of ``n_c`` images (plain leave-one-out)."""
    n, d = U.shape
    C = n_classes
    counts = np.bincount(y_idx, minlength=C)
    sums = class_sums(U, y_idx, C)
    means = unit_rows(sums)
    mu = U.mean(axis=0)
    R = U - (sums / np.maximum(counts, 1)[:, None])[y_idx]
    L, V = _scatter_eigen(R)
    p, q = _shrink(n, L.sum(), n - C, d)
    D = p * L / (p * L + q)
    # projections on the scatter's eigenvectors: one n x d x rank GEMM (float32 when large)
    if n * d < 2**22:
        Pu = U @ V
    else:
        V32 = np.ascontiguousarray(V, dtype=np.float32)
        Pu = (np.ascontiguousarray(U, dtype=np.float32) @ V32).astype(np.float64)
    Pv = Pu - mu @ V
    Vv = U - mu
    norm2 = np.einsum("ij,ij->i", Vv, Vv) - (Pv**2 * D).sum(axis=1)
    w = 1.0 / np.sqrt(np.maximum(norm2, 1e-30))
    T = class_sums(Vv * w[:, None], y_idx, C)  # class directions t_c
    Pt = T @ V
    KT = T - (Pt * D) @ V.T
    tnorm = np.sqrt(np.maximum(np.einsum("ij,ij->i", T, KT), 1e-30))
    space = {
        "means": means,
        "center": mu,
        # one zero column when nothing is whitened (one image per class): never an empty tensor
        "metric": V * np.sqrt(D) if len(D) else np.zeros((d, 1)),
        "white_means": KT / tnorm[:, None],
    }
    Pr = Pu - ((sums / np.maximum(counts, 1)[:, None]) @ V)[y_idx]  # residuals' projections
    ctx = dict(U=U, y=y_idx, counts=counts, sums=sums, means=means, R=R, L=L, Pr=Pr, Pv=Pv)
    ctx.update(Vv=Vv, w=w, T=T, Pt=Pt, n=n, d=d, C=C, tt=tnorm**2, as_new=as_new)
    rows = held_out_rows(y_idx)
    held = np.concatenate(
        [_held_out(ctx, rows[s : s + CHUNK]) for s in range(0, len(rows), CHUNK)], axis=0
    )
    return space, held, counts[y_idx[rows]] >= 2


def held_out_rows(y_idx: np.ndarray, limit: int = HELD_OUT_MAX) -> np.ndarray:
    """Sorted indices of the images to hold out: all of them up to ``limit``, else a seeded
    sample of the same share of every class (at least two of a class with two or more)."""
    n = len(y_idx)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(0)
    keep = []
    for c in np.unique(y_idx):
        members = np.flatnonzero(y_idx == c)
        take = min(len(members), max(2, round(len(members) * limit / n)))
        keep.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(keep))


def _held_out(ctx: dict, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 2) held-out raw and white distances of the training images ``rows``."""
    U, y, counts = ctx["U"][rows], ctx["y"][rows], ctx["counts"]
    n, d, C = ctx["n"], ctx["d"], ctx["C"]
    k = np.arange(len(U))
    own = np.zeros((len(U), C), dtype=bool)
    own[k, y] = True
    n_c = counts[y]
    alone = n_c < 2
    # the missing image's share: a class of n_c images seen from an image held out of it
    share = n_c / np.maximum(n_c - 1, 1)  # the scatter loses share * r r^T with the image

    # raw: cosine to the class sums; the own class's sum without the image, corrected
    g = U @ ctx["sums"].T
    cos_raw = U @ ctx["means"].T
    sums2 = np.einsum("ij,ij->i", ctx["sums"], ctx["sums"])
    out = np.sqrt(np.maximum(sums2[y] - 2 * g[k, y] + 1.0, 1e-30))
    cos_raw[k, y] = (g[k, y] - 1.0) / out
    if ctx["as_new"]:
        cos_raw[k, y] *= _more_images(sums2[y], n_c)

    # white: metric without the image = diag change in the eigenbasis + rank-one downdate
    R, Pv, w = ctx["R"][rows], ctx["Pv"][rows], ctx["w"][rows]
    Vv, L, T, Pt = ctx["Vv"][rows], ctx["L"], ctx["T"], ctx["Pt"]
    rr = np.einsum("ij,ij->i", R, R)
    p, q = _shrink(n - 1, L.sum() - share * rr, n - 1 - C + alone, d)  # per image
    pL = p[:, None] * L[None, :]
    Di = pL / (pL + q[:, None])
    Pr = ctx["Pr"][rows]
    vv = np.einsum("ij,ij->i", Vv, Vv) - (Pv**2 * Di).sum(axis=1)
    vr = np.einsum("ij,ij->i", Vv, R) - (Pv * Pr * Di).sum(axis=1)
    rk = rr - (Pr**2 * Di).sum(axis=1)
    vt = Vv @ T.T - (Pv * Di) @ Pt.T
    rt = R @ T.T - (Pr * Di) @ Pt.T
    tt = np.einsum("ij,ij->i", T, T)[None, :] - Di @ (Pt**2).T
    beta = p * share / q  # Sigma loses beta r r^T (in units of q)
    gam = beta / np.maximum(1 - beta * rk, 1e-12)
    VV = vv + gam * vr**2
    VT = vt + (gam * vr)[:, None] * rt
    TT = tt + gam[:, None] * rt**2
    # class sums without the image, and every image moved by the centre's shift v_i / (n - 1)
    W = class_sums(ctx["w"][:, None], ctx["y"], C)[:, 0]
    kap = np.where(own, W[None, :] - w[:, None], W[None, :]) / (n - 1)
    VT_out = VT - np.where(own, w[:, None] * VV[:, None], 0.0)
    TT_out = TT - np.where(own, 2 * w[:, None] * VT - (w**2 * VV)[:, None], 0.0)
    num = VT_out + kap * VV[:, None]
    den = TT_out + 2 * kap * VT_out + kap**2 * VV[:, None]
    cos_white = num / np.sqrt(np.maximum(VV[:, None] * den, 1e-30))
    if ctx["as_new"]:
        cos_white[k, y] *= _more_images(ctx["tt"][y], n_c)

    for cos in (cos_raw, cos_white):  # alone in its class: held out with it
        cos[k[alone], y[alone]] = -np.inf
    return np.stack([1.0 - cos_raw.max(axis=1), 1.0 - cos_white.max(axis=1)], axis=1)
