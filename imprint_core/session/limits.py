"""Limits a session enforces (stated to the user in messages and in docs/app.md), and its error."""

from __future__ import annotations

from collections.abc import Callable

from ..names import MAX_NAME_CHARS  # noqa: F401 - one limit for the app, zips and head files
from ..presets import DEFAULT_PRESET as _LIBRARY_DEFAULT_PRESET

MIN_CLASSES = 2
MAX_CLASSES = 20
MAX_IMAGE_MB = 10
MAX_IMAGE_BYTES = MAX_IMAGE_MB * 1024 * 1024  # one image file
MAX_IMAGE_PIXELS = 40_000_000  # width x height of one image (a 40-megapixel photo)
MAX_IMAGES_PER_CLASS = 250
MAX_IMAGES_TOTAL = 1000
MAX_UPLOAD_MB = 100  # one upload to the server (a zip), enforced by launch(max_file_size=...)
ZIP_MAX_MEMBERS = 5000  # entries in one zip, folders and ignored files included
ZIP_MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024  # sum over the images read from one zip
# A zip's central directory: 46 bytes per entry plus its name and extra fields; 1 KB per entry on
# average is generous, and caps what zipfile would read and parse before any other check.
ZIP_MAX_DIRECTORY_BYTES = ZIP_MAX_MEMBERS * 1024
# Pixels one request may decode, summed over its images (a JPEG counted at its draft scale, see
# images.decoded_size). A 40-megapixel PNG took 0.25 s to decode in the measurement and
# 1.4 s on a loaded 2-core machine (6-36 ns a pixel), so this bounds one request to roughly 3-18 s
# of CPU: 12 full-size 40-megapixel images fit, the reported 60 no longer do; 12-megapixel phone
# JPEGs decode at 1/4 scale (0.76 megapixels), so about 650 of them fit in one request.
MAX_REQUEST_PIXELS = 500_000_000
# Built-in backbone on 2 CPUs, 108 images: batch 8 took 1.3 s and +140 MB of memory, batch 32
# took 1.9 s and +650 MB (ONNX Runtime keeps its largest activations); small batches also give
# a finer progress bar.
EMBED_BATCH = 8
STORE_MAX_SIDE = 448  # images are decoded at most this large (the backbones look at 224 px)
# Decoded pictures a project keeps between an upload and its embedding (about 140 of 448 x 336,
# 0.43 MB each): a 12-megapixel JPEG then costs one decode instead of two. Beyond it, the oldest
# are dropped and decoded again from their stored files at embedding.
DECODED_KEEP_MB = 64
# An image to classify is not stored: a JPEG may be decoded at the smallest DCT scale that keeps
# both sides >= this (every backbone resizes the shorter side to 224-256 px). A 12-megapixel
# phone photo then decodes at 1/8 scale instead of 1/4 and skips a large Lanczos resize.
PREDICT_MIN_SIDE = 256
# What galleries show of a stored image (class cards, Try it's neighbours): a JPEG of this longest
# side (sharp in a 140-px-high card row on a 2x screen), made at intake from the picture already
# decoded: about 10-20 kB against the 3-4 MB of a phone photo stored as sent.
THUMB_MAX_SIDE = 256
THUMB_QUALITY = 85
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
DEFAULT_PRESET = _LIBRARY_DEFAULT_PRESET  # the few-shot-robust preset the library recommends

ProgressFn = Callable[[int, int], None]


class ProjectError(ValueError):
    """A user mistake (bad name, bad file, a limit): the message is meant for the user."""
