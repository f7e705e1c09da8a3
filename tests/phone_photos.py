"""Phone-like photos for tests: scikit-learn's two sample photos upscaled, with sensor-like noise
and an EXIF orientation, written as JPEGs (real pictures, made at run time, nothing shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SKLEARN_IMAGES = Path(__import__("sklearn.datasets").datasets.__file__).parent / "images"


def phone_jpeg(
    path: Path, source: str, seed: int, size: tuple[int, int], orientation: int = 1
) -> Path:
    """Write ``source`` (``china.jpg`` or ``flower.jpg``) upscaled to ``size`` (width, height)
    with noise seeded by ``seed`` to ``path``; ``orientation`` is the EXIF tag (6: the camera was
    turned, shown rotated)."""
    width, height = size
    photo = Image.open(SKLEARN_IMAGES / source).convert("RGB").resize((width, height))
    noise = np.random.default_rng(seed).normal(0, 4, (height, width, 3))
    pixels = np.clip(np.asarray(photo) + noise, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, format="JPEG", quality=92, exif=exif.tobytes())
    return path
