""" "None of these": how unlike every taught class an input is, from the head alone.

The score is the input's distance to its nearest proxy in the head's own space (after NORMinf,
or the head's whitening): ``1 - <z, p>`` for inner-product heads (``1 - cosine`` when both are
L2-normalised), the head's distance otherwise. It needs nothing but the proxies and the input
transform, so saved-and-loaded heads score exactly as the fitted ones.

The threshold rule needs no held-out images either: an input is unknown when it is farther from
every proxy than a typical proxy is from the nearest proxy of another class (the median over
proxies of that nearest-other-class distance, times ``UNKNOWN_MARGIN``). In words: it lies
farther from all classes than the classes lie from each other.
"""

from __future__ import annotations

import numpy as np

UNKNOWN_MARGIN = 1.0  # see the module docstring; measured in docs/benchmarks.md


def nearest_proxy_distance(
    Z: np.ndarray, W: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> np.ndarray:
    """(n,) distance of every row of Z to its nearest row of W (``1 - inner product`` for the
    inner product, so that 0 means "on a proxy" for unit vectors)."""
    from .aggregation import pairwise

    if distance == "inner_product":
        return 1.0 - (Z @ W.T).max(axis=1)
    return pairwise(Z, W, distance, VI).min(axis=1)


def class_separation(
    W: np.ndarray, proxy_class: np.ndarray, distance: str, VI: np.ndarray | None = None
) -> float:
    """Median over proxies of the distance to the nearest proxy of another class."""
    from .aggregation import pairwise

    D = 1.0 - W @ W.T if distance == "inner_product" else pairwise(W, W, distance, VI)
    D = np.where(proxy_class[:, None] == proxy_class[None, :], np.inf, D)
    nearest = D.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(nearest)) if nearest.size else float("inf")
