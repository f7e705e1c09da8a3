"""Normalisation points of the IMPRINT framework: NORMpre, NORMpost and NORMinf.

- NORMpre acts on the training embeddings before proxy generation,
- NORMpost on the generated proxies, one class at a time, in class order,
- NORMinf on the embeddings to classify.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# torch.quantile fails above about 2**24 elements; the reference then downsamples the reference
# values by strided slicing. We reproduce that so that `quantile` matches it on large heads.
QUANTILE_MAX_REFERENCE = 2**24
L2_EPS = 1e-12  # torch.nn.functional.normalize's default, used at NORMpost and NORMinf


def identity(X: np.ndarray) -> np.ndarray:
    return X


def l2_strict(X: np.ndarray, what: str = "embedding") -> np.ndarray:
    """x / ||x|| with no epsilon (the reference's NORMpre); a zero row is an error, not NaN."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(
            f"{what} row {int(zero[0])} is a zero vector ({zero.size} such rows): "
            "L2 normalisation is undefined for it; remove it or use 'none'"
        )
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


NORM_PRE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": identity,
    "l2": l2_strict,
}
NORM_INF: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": identity,
    "l2": lambda X: l2_strict(X, "input"),
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
