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

CACHE_SIZE = 32
EXACT_SVD_MAX = 512  # exact SVD when the smaller side is at most this; randomized SVD beyond
UMAP_MIN_SAMPLES = 4  # below this UMAP cannot build a neighbour graph; PCA is shown
UMAP_SPECTRAL_MIN = 30  # spectral initialisation needs a reasonably sized graph
DIMS = (2, 3)

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


def _l2(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


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


def _cache_key(X: np.ndarray, items: list[tuple[str, np.ndarray]], options: tuple) -> str:
    h = hashlib.blake2b(digest_size=20)
    for name, a in [("X", X), *items]:
        h.update(name.encode() + b"\0" + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
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
            import umap

            rng = np.random.default_rng(0)
            X = rng.standard_normal((60, 8)).astype(np.float32)
            reducer = umap.UMAP(n_neighbors=10, n_components=2, random_state=0, n_epochs=30)
            reducer.fit(X)
            reducer.transform(X[:5])  # compiles the transform path too
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


def _project_umap(X, items, dim, seed, n_neighbors, min_dist):
    import umap

    n = len(X)
    nn = max(2, min(n_neighbors, n - 1))
    init = "spectral" if n >= UMAP_SPECTRAL_MIN else "random"
    reducer = umap.UMAP(
        n_neighbors=nn,
        n_components=dim,
        min_dist=min_dist,
        init=init,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs/random_state and tiny-graph notices
        coords = reducer.fit_transform(X.astype(np.float32))
        mapped = [
            reducer.transform(a.astype(np.float32)) if len(a) else np.zeros((0, dim))
            for _, a in items
        ]
    return np.asarray(coords, np.float64), [np.asarray(m, np.float64) for m in mapped]


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
) -> Projection:
    """Map training embeddings X (n, d) to `dim` (2 or 3) dimensions; place `extra` in the map.

    extra: an array (m, d) or a dict of arrays (e.g. {"proxies": P, "means": M, "test": T});
    the result's `extra` has the same structure. normalize: L2-normalise everything first.
    method="umap" with blocking=False returns a PCA map (result.fallback, result.note) while UMAP
    is still warming up, and starts the warm-up if nobody did; blocking=True waits for it.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown map method {method!r}; allowed: {', '.join(METHODS)}.")
    if dim not in DIMS:
        raise ValueError(f"A map has 2 or 3 dimensions; got dim={dim!r}.")
    X = _as_matrix(X, "X")
    if len(X) == 0:
        raise ValueError("There are no embeddings to map (X is empty).")
    items = _extra_items(extra, X.shape[1])
    if normalize:
        X = _l2(X)
        items = [(name, _l2(a)) for name, a in items]

    note = ""
    used = method
    if method == "umap":
        if len(X) < UMAP_MIN_SAMPLES:
            used, note = "pca", f"UMAP needs at least {UMAP_MIN_SAMPLES} images; showing PCA."
        elif blocking and not wait_for_umap():
            raise RuntimeError(umap_error() or "UMAP could not be loaded.")
        elif not blocking and not umap_ready():
            warm_up_umap()
            used = "pca"
            note = umap_error() or "UMAP is still warming up (its first use compiles it)."
            note += " Showing PCA meanwhile."

    options = (used, dim, normalize, seed, n_neighbors if used == "umap" else 0, min_dist)
    key = _cache_key(X, items, options)
    cached = _CACHE.get(key)
    if cached is None:
        if used == "pca":
            from sklearn.utils import extmath  # noqa: F401  (loaded before the thread limit)

            from .collapse import one_thread

            with one_thread():  # small SVDs: BLAS threads only spin on a busy machine
                coords, mapped, ratio = _project_pca(X, items, dim, seed)
        else:
            coords, mapped = _project_umap(X, items, dim, seed, n_neighbors, min_dist)
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
