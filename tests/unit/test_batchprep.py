"""Batch preprocessing of the built-in model: the pixels and embeddings of the per-image path."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_image

from imprint_core import backbones as B
from imprint_core.backbones.batchprep import lite0_preprocess_batch
from imprint_core.bench.datasets import load_fashion_mnist
from imprint_core.images import load_image


@pytest.fixture(scope="module")
def fashion_pngs() -> list[bytes]:
    X, _ = load_fashion_mnist("test")
    out = []
    for x in X[:40]:
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _photo_crops() -> list[Image.Image]:
    """Real photo crops of many sizes and aspect ratios, small ones (colour) among them."""
    photos = [load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
    sizes = [(400, 300), (301, 517), (224, 224), (90, 60), (28, 28), (97, 41), (640, 427), (5, 3)]
    return [
        Image.fromarray(photos[i % 2][:h, 10 * i : 10 * i + w]) for i, (w, h) in enumerate(sizes)
    ]


def _per_image(images) -> np.ndarray:
    return np.stack([B.lite0_preprocess(im) for im in images])


def test_grey_images_give_exactly_the_per_image_pixels(fashion_pngs):
    images = [load_image(p) for p in fashion_pngs]
    np.testing.assert_allclose(lite0_preprocess_batch(images), _per_image(images), atol=1e-6)


def test_colour_and_grey_images_in_one_batch_give_the_per_image_pixels(fashion_pngs):
    images = _photo_crops() + [load_image(fashion_pngs[0])]
    got, ref = lite0_preprocess_batch(images), _per_image(images)
    assert got.shape == ref.shape == (len(images), 3, 224, 224) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_embeddings_match_the_per_image_path(fashion_pngs):
    """``Backbone.embed`` (batch preprocessing) against per-image preprocessing + the engine."""
    bb = B.get_backbone()
    jpegs = []
    for im in _photo_crops():
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=92)
        jpegs.append(buf.getvalue())
    items = fashion_pngs + jpegs
    got = bb.embed(items, batch_size=16, cache=False)
    ref = bb.engine.features(_per_image([load_image(x) for x in items]))
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999
