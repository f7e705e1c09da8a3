"""One batch of a prediction: read, decode and preprocess the images, then embed and score them.

``decode`` turns any failure to read an image into that image's error sentence (a bad file never
stops a run); ``finish`` runs the backbone's forward pass on the readable ones and the head's
``score_embeddings``, giving one entry per image. The local engine (``predict``) and every Ray
actor (``predict_ray``) run exactly these two functions.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .prediction_rows import TOP, score_embeddings
from .sources import InputImage, Reader


@dataclass
class Decoded:
    """A batch read and preprocessed: the model input of the readable images, their positions,
    and an error sentence per image ("" when it was read)."""

    items: list[InputImage]
    batch: np.ndarray | None
    ok: list[int]
    errors: list[str]


def decode(engine, reader: Reader, items: Sequence[InputImage]) -> Decoded:
    """Read, decode (``load_image``: pixel limits, safe formats) and preprocess every image (the
    engine's batch preprocessing, as ``Backbone.embed``); any failure becomes that image's error
    sentence."""
    from .backbones import DECODE_MIN_SIDE
    from .images import ImageError, load_image

    images, ok, errors = [], [], []
    for i, item in enumerate(items):
        try:
            images.append(load_image(reader.read(item), name=item.name, min_side=DECODE_MIN_SIDE))
            ok.append(i)
            errors.append("")
        except ImageError as exc:
            errors.append(str(exc))
        except Exception as exc:  # a decoder bug on a hostile file must not end a long run
            errors.append(_unexpected(items[i], exc))
    if not images:
        return Decoded(list(items), None, [], errors)
    try:
        return Decoded(list(items), engine.batch(images), ok, errors)
    except Exception:  # one image the preprocessing cannot take: find it, keep the others
        return _one_by_one(engine, items, images, ok, errors)


def _unexpected(item: InputImage, exc: Exception) -> str:
    return f"Image {item.name!r} could not be read ({type(exc).__name__}: {exc})."


def _one_by_one(engine, items, images, ok, errors) -> Decoded:
    arrays, kept = [], []
    for i, image in zip(ok, images, strict=True):
        try:
            arrays.append(engine.batch([image])[0])
            kept.append(i)
        except Exception as exc:
            errors[i] = _unexpected(items[i], exc)
    return Decoded(list(items), np.stack(arrays) if arrays else None, kept, errors)


def finish(engine, clf, decoded: Decoded, keep_embeddings: bool = False) -> dict[str, np.ndarray]:
    """The forward pass and the head's scores of a decoded batch, one entry per image (errors
    keep index -1, NaN scores and their sentence in ``error``)."""
    n = len(decoded.items)
    dim = int(clf.n_features_in_)
    X = engine.features(decoded.batch) if decoded.batch is not None else np.zeros((0, dim))
    with _ONE_BLAS_THREAD, _blas().limit(limits=1, user_api="blas"):
        scores = score_embeddings(clf, X)
    out = {
        "top_index": np.full((n, TOP), -1, dtype=np.int64),
        "top_probability": np.full((n, TOP), np.nan),
        "unknown_score": np.full(n, np.nan),
        "unknown": np.zeros(n, dtype=bool),
    }
    for key, value in scores.items():
        out[key][decoded.ok] = value
    out["error"] = np.array(decoded.errors, dtype=object)
    if keep_embeddings:
        out["embedding"] = np.zeros((n, dim), dtype=np.float32)
        out["embedding"][decoded.ok] = X
    return out


# A batch against a head is a product of a few MFLOP: BLAS threads waking up for it cost more than
# the product on a busy CPU (measured: 32 rows x 60 proxies took 210-280 ms with OpenBLAS's 2
# threads at load average 19, 17-28 ms with one). The limit is process-wide, so one batch at a
# time sets and restores it.
_ONE_BLAS_THREAD = threading.Lock()


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def load_backbone(name: str, device: str | None = None, runtime: str | None = None):
    """``get_backbone``; a hub model whose weights are not here says that the head needs it."""
    from .backbones import BackboneUnavailable, get_backbone

    try:
        return get_backbone(name, device=device, runtime=runtime)
    except BackboneUnavailable as exc:
        raise BackboneUnavailable(
            f"The head was imprinted on {name!r}, a hub model this machine cannot load: {exc}"
        ) from None
