"""2-D / 3-D maps of embeddings (PCA or UMAP) with extra points placed in the same map.

The map is fitted on the training embeddings only; proxies, class means and test points are then
transformed into it, so adding a test image never moves the training points.

UMAP is slow to start (its import takes seconds and its first fit JIT-compiles with numba), so an
app calls ``warm_up_umap()`` at start; ``project(method="umap", blocking=False)`` returns a PCA map
with a note until the warm-up has finished, and never blocks. Results are cached (LRU keyed by a
hash of the inputs and options), so showing the same map again is instant.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .normalisation import l2
from .threads import one_thread

# Heavy: umap and scikit-learn imported where used, so that importing this module stays cheap.

CACHE_SIZE = 32
EXACT_SVD_MAX = 512  # exact SVD when the smaller side is at most this; randomized SVD beyond
UMAP_MIN_SAMPLES = 4  # below this UMAP cannot build a neighbour graph; PCA is shown
UMAP_SPECTRAL_MIN = 30  # spectral initialisation needs a reasonably sized graph
DIMS = (2, 3)
UMAP_EPOCHS = 200  # UMAP's own choice for large data; 500 (its small-data default) is 2.5x slower

Extra = np.ndarray | Mapping[str, Any] | None


@dataclass(frozen=True)
class Projection:
    """Map coordinates of the training points and of the extra points (same structure as given)."""

    coords: np.ndarray
    extra: Any
    method: str  # the method actually used
    requested: str
    note: str = ""  # a sentence for the user, e.g. why PCA is shown instead of UMAP
    explained_variance: tuple[float, ...] = field(default_factory=tuple)  # PCA only

    @property
    def fallback(self) -> bool:
        """True when another method than the requested one was used (e.g. UMAP still warming)."""
        return self.method != self.requested


# ------------------------------------------------------------------------------------ helpers
def _as_matrix(a: Any, what: str, d: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1 and d is not None and a.size == d:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, d); got shape {a.shape}.")
    if d is not None and a.shape[1] != d and a.shape[0] > 0:
        raise ValueError(f"{what} has {a.shape[1]} dimensions but the embeddings have {d}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or infinite values.")
    return a


_l2 = l2  # row-wise L2, as the heads do


def _extra_items(extra: Extra, d: int) -> list[tuple[str, np.ndarray]]:
    if extra is None:
        return []
    if isinstance(extra, Mapping):
        return [
            (str(k), _as_matrix(v, f"extra[{k!r}]", d).reshape(-1, d)) for k, v in extra.items()
        ]
    return [("", _as_matrix(extra, "extra", d))]


def _rebuild(extra: Extra, items: list[tuple[str, np.ndarray]], mapped: list[np.ndarray]) -> Any:
    if extra is None:
        return None
    if isinstance(extra, Mapping):
        return {name: m for (name, _), m in zip(items, mapped, strict=True)}
    return mapped[0]


def _raw_items(extra: Extra) -> list[tuple[str, np.ndarray]]:
    if extra is None:
        return []
    if isinstance(extra, Mapping):
        return [(f"extra:{k}", np.asarray(v)) for k, v in extra.items()]
    return [("extra", np.asarray(extra))]


def _cache_key(X: np.ndarray, items: list[tuple[str, np.ndarray]], options: tuple) -> str:
    h = hashlib.blake2b(digest_size=20)
    for name, a in [("X", X), *items]:
        h.update(f"{name}\0{a.shape}\0{a.dtype.str}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes() if a.dtype != object else repr(a).encode())
    h.update(repr(options).encode())
    return h.hexdigest()


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[str, Projection] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Projection | None:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key: str, value: Projection) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_CACHE = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached map."""
    with _CACHE.lock:
        _CACHE.data.clear()


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # cached results are shared: nobody may edit them in place
    return a


# ------------------------------------------------------------------------------------ PCA
def _pca(X: np.ndarray, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, components (dim, d) with a deterministic sign, and explained-variance ratios."""
    mean = X.mean(axis=0)
    Xc = X - mean
    n, d = Xc.shape
    k = min(dim, n, d)
    if min(n, d) <= EXACT_SVD_MAX:
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    else:
        from sklearn.utils.extmath import randomized_svd

        _, s, vt = randomized_svd(Xc, n_components=k, n_iter=7, random_state=seed)
    s, vt = s[:k], vt[:k]
    # sign convention: the largest loading of each component is positive (stable maps)
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt), axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    total = float((Xc**2).sum())
    ratio = (s**2) / total if total > 0 else np.zeros(k)
    comps = np.zeros((dim, d))
    comps[:k] = vt
    return mean, comps, np.pad(ratio, (0, dim - k))


def _project_pca(X, items, dim, seed) -> tuple[np.ndarray, list[np.ndarray], tuple[float, ...]]:
    mean, comps, ratio = _pca(X, dim, seed)
    mapped = [(a - mean) @ comps.T for _, a in items]
    return (X - mean) @ comps.T, mapped, tuple(float(r) for r in ratio)


# ------------------------------------------------------------------------------------ UMAP
class _UmapState:
    lock = threading.Lock()
    done = threading.Event()
    thread: threading.Thread | None = None
    ready = False
    error = ""


def _warm_up() -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = np.random.default_rng(0).standard_normal((60, 8))
            _project_umap(X, [("p", X[:3])], 2, 0, 10, 0.1, 30)  # compiles the path we use
        _UmapState.ready = True
    except Exception as exc:  # a missing or broken umap install must not kill the app
        _UmapState.error = f"UMAP is not available ({type(exc).__name__}: {exc})."
    finally:
        _UmapState.done.set()


def warm_up_umap() -> threading.Thread:
    """Import UMAP and compile it in a background thread (idempotent, thread-safe)."""
    with _UmapState.lock:
        running = _UmapState.thread is not None and (
            _UmapState.thread.is_alive() or _UmapState.ready
        )
        if not running:
            _UmapState.error = ""
            _UmapState.done.clear()
            _UmapState.thread = threading.Thread(target=_warm_up, name="umap-warm-up", daemon=True)
            _UmapState.thread.start()
        return _UmapState.thread


def umap_ready() -> bool:
    """True once UMAP is imported and compiled, so a UMAP map costs only the fit itself."""
    return _UmapState.ready


def umap_error() -> str:
    """Why UMAP could not be loaded ("" when it loaded or is still loading)."""
    return _UmapState.error


def wait_for_umap(timeout: float | None = None) -> bool:
    """Start the warm-up if needed and wait for it; True when UMAP is ready."""
    warm_up_umap()
    _UmapState.done.wait(timeout)
    return _UmapState.ready


def knn(A: np.ndarray, B: np.ndarray, k: int, self_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of B for each row of A (Euclidean): indices and distances, sorted."""
    A = A.astype(np.float32)
    B = B.astype(np.float32)
    sq = (A**2).sum(1)[:, None] - 2.0 * (A @ B.T) + (B**2).sum(1)[None, :]
    if self_first:
        np.fill_diagonal(sq, -1.0)  # each point is its own first neighbour, as UMAP expects
    idx = np.argpartition(sq, k - 1, axis=1)[:, :k]
    d = np.take_along_axis(sq, idx, axis=1)
    order = np.argsort(d, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    d = np.sqrt(np.maximum(np.take_along_axis(d, order, axis=1), 0.0))
    return idx, d


def _project_umap(X, items, dim, seed, n_neighbors, min_dist, n_epochs):
    """UMAP on exact neighbours computed with one matrix product.

    umap-learn's own small-data path (< 4,096 points) calls a Python-level metric for every pair
    (seconds for 2,000 points), so the neighbour graph is computed here and handed over. Extra
    points are placed like UMAP's transform starts: at the fuzzy-membership-weighted mean of their
    nearest training points in the map (without its few refinement epochs).
    """
    import umap
    from umap.umap_ import smooth_knn_dist

    n = len(X)
    nn = max(2, min(n_neighbors, n - 1))
    with one_thread():
        knn_idx, knn_dist = knn(X, X, nn, self_first=True)
    reducer = umap.UMAP(
        n_neighbors=nn,
        n_components=dim,
        min_dist=min_dist,
        init="spectral" if n >= UMAP_SPECTRAL_MIN else "random",
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=1,
        force_approximation_algorithm=True,  # use the neighbours below, not all pairs
        precomputed_knn=(knn_idx, knn_dist),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs/random_state and "no transform" notices
        coords = np.asarray(reducer.fit_transform(X.astype(np.float32)), np.float64)
    mapped = []
    for _, a in items:
        if len(a) == 0:
            mapped.append(np.zeros((0, dim)))
            continue
        with one_thread():
            idx, dist = knn(a, X, nn, self_first=False)
        sigma, rho = smooth_knn_dist(dist.astype(np.float32), float(nn), local_connectivity=1.0)
        w = np.exp(-np.maximum(dist - rho[:, None], 0.0) / sigma[:, None])
        w /= w.sum(axis=1, keepdims=True)
        mapped.append((w[:, :, None] * coords[idx]).sum(axis=1))
    return coords, mapped


# ------------------------------------------------------------------------------------ public
METHODS = ("pca", "umap")


def project(
    X: Any,
    method: str = "pca",
    dim: int = 2,
    extra: Extra = None,
    normalize: bool = False,
    seed: int = 0,
    *,
    blocking: bool = True,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = UMAP_EPOCHS,
) -> Projection:
    """Map training embeddings X (n, d) to `dim` (2 or 3) dimensions; place `extra` in the map.

    extra: an array (m, d) or a dict of arrays (e.g. {"proxies": P, "means": M, "test": T});
    the result's `extra` has the same structure. normalize: L2-normalise everything first.
    method="umap" with blocking=False returns a PCA map (result.fallback, result.note) while UMAP
    is still warming up, and starts the warm-up if nobody did; blocking=True waits for it.
    n_epochs: UMAP optimisation epochs (None: UMAP's own default, 500 below 10,000 points).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown map method {method!r}; allowed: {', '.join(METHODS)}.")
    if dim not in DIMS:
        raise ValueError(f"A map has 2 or 3 dimensions; got dim={dim!r}.")
    raw = np.asarray(X)
    if raw.size == 0:
        raise ValueError("There are no embeddings to map (X is empty).")

    note = ""
    used = method
    if method == "umap":
        if len(raw) < UMAP_MIN_SAMPLES:
            used, note = "pca", f"UMAP needs at least {UMAP_MIN_SAMPLES} images; showing PCA."
        elif blocking and not wait_for_umap():
            raise RuntimeError(umap_error() or "UMAP could not be loaded.")
        elif not blocking and not umap_ready():
            warm_up_umap()
            used = "pca"
            note = umap_error() or "UMAP is still warming up (its first use compiles it)."
            note += " Showing PCA meanwhile."

    umap_opts = (n_neighbors, min_dist, n_epochs) if used == "umap" else ()
    # keyed on the inputs as given: a cache hit skips conversion and normalisation too
    key = _cache_key(raw, _raw_items(extra), (used, dim, normalize, seed, umap_opts))
    cached = _CACHE.get(key)
    if cached is None:
        X = _as_matrix(raw, "X")
        items = _extra_items(extra, X.shape[1])
        if normalize:
            X = _l2(X)
            items = [(name, _l2(a)) for name, a in items]
        if used == "pca":
            from sklearn.utils import extmath  # noqa: F401  (loaded before the thread limit)

            with one_thread():  # small SVDs: BLAS threads only spin on a busy machine
                coords, mapped, ratio = _project_pca(X, items, dim, seed)
        else:
            coords, mapped = _project_umap(X, items, dim, seed, *umap_opts)
            ratio = ()
        cached = Projection(
            coords=_frozen(coords),
            extra=_rebuild(extra, items, [_frozen(m) for m in mapped]),
            method=used,
            requested=used,
            explained_variance=ratio,
        )
        _CACHE.put(key, cached)
    if used == method:
        return cached
    return Projection(cached.coords, cached.extra, used, method, note, cached.explained_variance)
