"""In-memory embedding cache: (backbone name, image-content hash) -> embedding vector.

Bounded LRU: the least recently used vectors are dropped once the stored vectors exceed
``max_bytes`` (default 256 MiB, about 52,000 embeddings of 1,280 float32 values; set
``IMPRINT_CACHE_MB`` to change the process-wide default). Thread-safe. Backbones share one
process-wide cache (``default_cache()``), so re-imprinting after a settings change, or uploading the
same images again, never recomputes an embedding.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from .config import env

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class EmbeddingCache:
    """Thread-safe LRU of embedding vectors, bounded by the bytes of the stored vectors."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if int(max_bytes) < 0:
            raise ValueError(f"EmbeddingCache max_bytes must be >= 0, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[tuple[str, Hashable], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, backbone: str, key: Hashable) -> np.ndarray | None:
        """The cached vector (read-only) or None; counts a hit or a miss."""
        with self._lock:
            vec = self._data.get((backbone, key))
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end((backbone, key))
            self.hits += 1
            return vec

    def put(self, backbone: str, key: Hashable, vector: np.ndarray) -> None:
        """Store a copy of ``vector`` (float32, read-only), evicting least recently used ones."""
        vec = np.array(vector, dtype=np.float32, copy=True).reshape(-1)
        vec.setflags(write=False)
        if vec.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop((backbone, key), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._data[(backbone, key)] = vec
            self._bytes += vec.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._data.popitem(last=False)
                self._bytes -= dropped.nbytes

    def __contains__(self, item: tuple[str, Hashable]) -> bool:
        with self._lock:
            return item in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored vectors."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry and reset the hit/miss counters."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self.hits = 0
            self.misses = 0

    def stats(self) -> dict[str, int]:
        """``{"hits", "misses", "entries", "bytes", "max_bytes"}``."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._data),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
            }

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"EmbeddingCache(entries={s['entries']}, bytes={s['bytes']}/{s['max_bytes']}, "
            f"hits={s['hits']}, misses={s['misses']})"
        )


_DEFAULT: EmbeddingCache | None = None
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> EmbeddingCache:
    """The process-wide cache the backbones use (bound: ``IMPRINT_CACHE_MB`` or 256 MiB)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            raw = env("IMPRINT_CACHE_MB", "")
            try:
                mb = float(raw) if raw else DEFAULT_MAX_BYTES / 2**20
            except ValueError:
                raise ValueError(
                    f"IMPRINT_CACHE_MB must be a number of megabytes, got {raw!r}."
                ) from None
            _DEFAULT = EmbeddingCache(int(mb * 2**20))
        return _DEFAULT
