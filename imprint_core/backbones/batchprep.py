"""Preprocessing of a whole batch for the built-in model, written into one float32 array.

``lite0_preprocess_batch(images)`` gives exactly the pixels of stacking ``lite0_preprocess`` (PIL
bicubic resize of the shorter side to 256, centre crop 224, mean = std = 0.5) with less work:

- Small grey images (R = G = B, e.g. Fashion-MNIST) are resampled once as one channel, not three
  (the channels are resampled independently, so the result is the same).
- The 8-bit crop is normalised by a 256-entry table straight into the batch (no float image per
  image, no final stack copy).

Profiling ``Backbone.embed`` on Fashion-MNIST PNGs showed the PIL resize of every upsampled RGB
image, then the float conversions and the stack, as the largest costs outside the network.
(Resampling only the crop with ``resize(..., box=...)`` would save another 23-45 % of the resize,
but PIL rounds the box arithmetic differently: 1 pixel in 2,000 moves by a grey level, so no.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .base import LITE0_CROP, LITE0_RESIZE

if TYPE_CHECKING:
    from PIL import Image

GREY_CHECK_PIXELS = 128 * 128  # images up to this size are checked for R = G = B (cheap there)

# uint8 -> the model's input, computed as lite0_preprocess computes it: (x / 255 - 0.5) / 0.5
_LUT = (np.arange(256, dtype=np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)


def resize_plan(size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """``lite0_preprocess``'s resized size and its 224 x 224 centre crop box for an image size."""
    w, h = size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(LITE0_RESIZE * long / short)
    nw, nh = (LITE0_RESIZE, new_long) if w <= h else (new_long, LITE0_RESIZE)
    left = int(round((nw - LITE0_CROP) / 2.0))
    top = int(round((nh - LITE0_CROP) / 2.0))
    return (nw, nh), (left, top, left + LITE0_CROP, top + LITE0_CROP)


def _is_grey(image: Image.Image) -> bool:
    if image.width * image.height > GREY_CHECK_PIXELS:
        return False
    px = np.asarray(image)
    return bool((px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all())


def lite0_preprocess_batch(images: Sequence[Image.Image]) -> np.ndarray:
    """RGB PIL images -> float32 ``(n, 3, 224, 224)``, the model's input batch.

    Parameters
    ----------
    images : sequence of PIL.Image.Image
        RGB images of any sizes (``load_image`` output).

    Returns
    -------
    np.ndarray
        The pixels of ``np.stack([lite0_preprocess(im) for im in images])``.
    """
    from PIL import Image

    out = np.empty((len(images), 3, LITE0_CROP, LITE0_CROP), dtype=np.float32)
    for i, image in enumerate(images):
        if _is_grey(image):
            image = image.getchannel(0)  # one channel resampled; copied to three below
        size, box = resize_plan(image.size)
        px = np.asarray(image.resize(size, Image.Resampling.BICUBIC).crop(box))
        if px.ndim == 2:  # grey: one channel looked up, copied to the other two
            np.take(_LUT, px, out=out[i, 0])
            out[i, 1:] = out[i, 0]
        else:
            np.take(_LUT, px.transpose(2, 0, 1), out=out[i])
    return out
