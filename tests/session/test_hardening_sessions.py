"""Sessions do not learn about each other through the process-wide embedding cache (issue 11 §4).

Embedding time used to reveal whether another session had uploaded the same image: a cached
embedding came back in microseconds. A Project now embeds with its own store only, so the shared
cache is neither read nor written by sessions. Real backbone, real images.
"""

from __future__ import annotations

import numpy as np
import pytest

from imprint_core.cache import default_cache
from imprint_core.session import Project, load_backbone


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(None)


def _project(tmp_path, name, train) -> Project:
    p = Project(workdir=tmp_path / name, n_classes=0)
    for cls, paths in train.items():
        p.add_images(p.add_class(cls).uid, paths[:3])
    return p


def test_projects_do_not_share_embeddings_through_the_process_cache(backbone, fashion3, tmp_path):
    train, test = fashion3
    cache = default_cache()
    cache.clear()
    first, second = _project(tmp_path, "a", train), _project(tmp_path, "b", train)
    try:
        first.train(backbone)
        # the first session's embeddings never reach the shared cache ...
        assert len(cache) == 0 and cache.hits == 0 and cache.misses == 0
        second.train(backbone)
        # ... so the second session, with the same images, embeds them itself
        assert len(cache) == 0 and cache.hits == 0 and cache.misses == 0
        X1, y1, _ = first.dataset()
        X2, y2, _ = second.dataset()
        np.testing.assert_allclose(X1, X2, rtol=1e-4, atol=1e-5)
        assert list(y1) == list(y2)
        picture = next(iter(test.values()))[0]
        first.predict(backbone, picture, name="probe.png")
        second.predict(backbone, picture, name="probe.png")
        assert len(cache) == 0 and cache.hits == 0 and cache.misses == 0
    finally:
        first.close()
        second.close()


def test_library_callers_still_use_the_process_cache(backbone, fashion3):
    """The library's default is unchanged: the cache is only bypassed by sessions."""
    train, _ = fashion3
    cache = default_cache()
    cache.clear()
    paths = next(iter(train.values()))[:2]
    backbone.embed(paths)
    assert len(cache) == 2 and cache.misses == 2
    backbone.embed(paths)
    assert cache.hits == 2
