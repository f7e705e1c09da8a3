"""A large phone JPEG tried in Try it is decoded at a reduced DCT scale (Pillow's ``draft``)
before the backbone's resize; its prediction matches that of a full decode (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imprint_core.images import decoded_size, load_image
from imprint_core.session import prepare_image
from imprint_core.session.limits import PREDICT_MIN_SIDE, STORE_MAX_SIDE

PHONE = (4000, 3000)  # 12 megapixels


def phone_jpeg(source, path, seed: int = 0):
    """A 12-megapixel JPEG of ``source``: upscaled, with sensor-like grain (a smooth upscale
    compresses to a few hundred KB; a phone photo is 3-4 MB)."""
    rng = np.random.default_rng(seed)
    image = Image.open(source).convert("RGB").resize(PHONE, Image.Resampling.BICUBIC)
    grain = rng.normal(0.0, 5.0, (PHONE[1], PHONE[0], 1)).astype(np.float32)
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def phones(fashion, tmp_path_factory):
    _, test = fashion
    folder = tmp_path_factory.mktemp("phone")
    return {c: phone_jpeg(paths[0], folder / f"{c}.jpg") for c, paths in test.items()}


def test_a_phone_jpeg_is_predicted_as_from_its_full_decode(trained, backbone, phones):
    for cls, path in phones.items():
        # the Try-it decode is 1/8 scale, as is a stored copy's (1/8 still covers its fit in
        # STORE_MAX_SIDE), where keeping both sides >= STORE_MAX_SIDE would decode at 1/4
        assert decoded_size(path, min_side=PREDICT_MIN_SIDE) == (500, 375)
        assert decoded_size(path, fit_side=STORE_MAX_SIDE) == (500, 375)
        assert decoded_size(path, min_side=STORE_MAX_SIDE) == (1000, 750)
        result = trained.predict(backbone, str(path), path.name)
        z = trained.last_test[0]
        full = prepare_image(load_image(path), path.name)  # every pixel decoded, then resized
        z_full = np.asarray(backbone.embed([full], cache=False), dtype=np.float64)[0]
        cosine = z @ z_full / (np.linalg.norm(z) * np.linalg.norm(z_full))
        assert cosine > 0.995, (cls, cosine)
        expected = trained.explain(z_full.astype(np.float32), n_neighbors=0)
        assert result["label"] == expected["label"] == cls
        for c, p in expected["confidences"].items():
            assert result["confidences"][c] == pytest.approx(p, abs=0.02), (cls, c)
