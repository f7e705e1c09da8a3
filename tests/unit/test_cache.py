"""EmbeddingCache: bounded LRU, thread-safe, and the backbones never embed the same bytes twice."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from imprint_core import cache as cache_mod
from imprint_core.backbones import get_backbone
from imprint_core.cache import EmbeddingCache, default_cache


@pytest.fixture(scope="module")
def backbone():
    return get_backbone()  # loaded once per process, shared by every test module


def _vec(i: int, d: int = 4) -> np.ndarray:
    return np.full(d, i, dtype=np.float32)


def test_hits_misses_and_copies():
    c = EmbeddingCache(max_bytes=1024)
    assert c.get("bb", "k") is None
    v = _vec(3)
    c.put("bb", "k", v)
    v[:] = 99  # the cache kept a copy
    got = c.get("bb", "k")
    np.testing.assert_array_equal(got, _vec(3))
    assert not got.flags.writeable
    assert c.get("other", "k") is None  # keyed by backbone too
    assert c.stats() == {"hits": 1, "misses": 2, "entries": 1, "bytes": 16, "max_bytes": 1024}
    assert ("bb", "k") in c and len(c) == 1
    c.clear()
    assert len(c) == 0 and c.stats()["hits"] == 0


def test_lru_eviction_by_bytes():
    c = EmbeddingCache(max_bytes=3 * 16)  # room for three 4-float vectors
    for i in range(3):
        c.put("bb", i, _vec(i))
    assert c.get("bb", 0) is not None  # 0 is now the most recently used
    c.put("bb", 3, _vec(3))  # evicts 1, the least recently used
    assert ("bb", 1) not in c
    assert all(("bb", k) in c for k in (0, 2, 3))
    assert c.nbytes == 48
    c.put("bb", 2, _vec(7))  # replacing keeps the byte count right
    assert c.nbytes == 48 and c.get("bb", 2)[0] == 7
    c.put("bb", "huge", np.zeros(100, np.float32))  # bigger than the bound: not stored
    assert ("bb", "huge") not in c and len(c) == 3


def test_invalid_bound():
    with pytest.raises(ValueError, match="max_bytes"):
        EmbeddingCache(max_bytes=-1)


def test_thread_safety_under_contention():
    c = EmbeddingCache(max_bytes=64 * 16)
    errors = []

    def worker(t):
        try:
            for i in range(2000):
                key = (t * 7 + i) % 100
                c.put("bb", key, _vec(key))
                got = c.get("bb", key)
                if got is not None and got[0] != key:
                    errors.append((key, got[0]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(c) <= 64 and c.nbytes == 16 * len(c) <= c.max_bytes
    s = c.stats()
    assert s["hits"] + s["misses"] == 8 * 2000


def test_default_cache_is_shared_and_configurable(monkeypatch):
    assert default_cache() is default_cache()
    monkeypatch.setattr(cache_mod, "_DEFAULT", None)
    monkeypatch.setenv("IMPRINT_CACHE_MB", "1.5")
    assert default_cache().max_bytes == int(1.5 * 2**20)
    monkeypatch.setattr(cache_mod, "_DEFAULT", None)
    monkeypatch.setenv("IMPRINT_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="IMPRINT_CACHE_MB"):
        default_cache()


def _pngs(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def test_backbone_never_re_embeds_the_same_bytes(backbone):
    c = EmbeddingCache()
    images = _pngs(5, seed=11)
    first = backbone.embed(images, cache=c)
    assert c.stats()["misses"] == 5 and c.stats()["hits"] == 0 and len(c) == 5
    # the same bytes again, reordered, with one new image and one duplicate
    extra = _pngs(1, seed=12)
    second = backbone.embed([images[3], *extra, images[0], images[0]], cache=c)
    s = c.stats()
    assert s["hits"] == 3 and s["misses"] == 5 + 1
    np.testing.assert_array_equal(second[0], first[3])
    np.testing.assert_array_equal(second[2], first[0])
    np.testing.assert_array_equal(second[3], first[0])
    assert len(c) == 6  # only the new image was embedded and stored
    uncached = backbone.embed(extra, cache=False)
    np.testing.assert_allclose(second[1], uncached[0], rtol=1e-5, atol=1e-6)


def test_duplicates_in_one_call_are_embedded_once(backbone):
    c = EmbeddingCache()
    new = _pngs(1, seed=13)[0]
    out = backbone.embed([new, new, new], cache=c)
    assert len(c) == 1 and c.stats()["misses"] == 3
    np.testing.assert_array_equal(out[0], out[2])


def test_backbone_uses_the_process_wide_cache_by_default(backbone):
    images = _pngs(2, seed=21)
    before = default_cache().stats()
    a = backbone.embed(images)
    b = backbone.embed(images)
    after = default_cache().stats()
    assert after["hits"] - before["hits"] == 2
    np.testing.assert_array_equal(a, b)
