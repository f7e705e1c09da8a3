"""``Backbone``: a loaded, shared encoder; ``embed`` decodes, caches and batches."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from imprint_core.cache import EmbeddingCache, default_cache
from imprint_core.images import ImageSource, hash_image_source, load_image, source_name

from .base import DECODE_MIN_SIDE, DEFAULT_BACKBONE, BackboneSpec
from .engines import Engine

# Heavy: PIL, timm and tqdm imported where used, so that importing this module stays cheap.


class Progress:
    """Adapts ``progress`` (None, True for a tqdm bar, a tqdm bar, or ``f(done, total)``)."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.bar = None
        self.callback = None
        self.done = 0
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img")
        elif hasattr(progress, "update") and hasattr(progress, "total"):
            self.bar = progress
        elif callable(progress):
            self.callback = progress
        elif progress not in (None, False):
            raise TypeError("progress must be None, True, a tqdm bar or a callable(done, total).")
        self.total = total

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self, owned: bool) -> None:
        if owned and self.bar is not None:
            self.bar.close()


def as_list(images: Any) -> list:
    """One image (path, bytes or PIL image) as a one-item list, any other iterable as a list."""
    from PIL import Image

    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)):
        return [images]
    return list(images)


class Backbone:
    """A loaded, shared, thread-safe image encoder. Get one with ``get_backbone``."""

    def __init__(self, spec: BackboneSpec, engine: Engine, device: torch.device) -> None:
        self.spec = spec
        self.name = spec.name
        self.dim = spec.dim
        self.ls_lambda = spec.ls_lambda
        self.licence = spec.licence
        self.device = device
        self.engine = engine

    @property
    def runtime(self) -> str:
        """How the forward pass runs: "onnxruntime", "torch+channels_last" or "torch"."""
        return self.engine.runtime

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, dim={self.dim}, device={self.device}, {self.runtime})"

    def preprocess(
        self, images: Sequence[ImageSource], names: Sequence | None = None
    ) -> np.ndarray:
        """Decode and transform images into the model's float32 ``(n, 3, H, W)`` input batch."""
        items = as_list(images)
        names = list(names) if names is not None else [None] * len(items)
        return self.engine.batch(
            [
                load_image(im, name=nm, min_side=DECODE_MIN_SIDE)
                for im, nm in zip(items, names, strict=True)
            ]
        )

    def embed(
        self,
        images: ImageSource | Sequence[ImageSource],
        batch_size: int = 32,
        progress: Any = None,
        cache: EmbeddingCache | bool | None = None,
        names: Sequence[str] | None = None,
        overlap: bool = True,
    ) -> np.ndarray:
        """Embed images (PIL images, paths or bytes) -> ``(n, dim)`` float32.

        Parameters
        ----------
        images : PIL image, path or bytes, or a sequence of them
            A sequence may also hold binary file objects; a single image is embedded as a
            batch of one.
        batch_size : int, default=32
            Images per forward pass.
        progress : None, True, tqdm bar or callable, default=None
            None for no progress, True for a tqdm bar, a tqdm bar to advance, or
            ``progress(done, total)``.
        cache : EmbeddingCache or bool or None, default=None
            None or True for the process-wide cache, an ``EmbeddingCache``, or False for none.
        names : sequence of str or None, default=None
            Names of the images in error messages (paths name themselves).
        overlap : bool, default=True
            Decode the next batch in a background thread while the model runs.

        Returns
        -------
        embeddings : ndarray of shape (n_images, dim), float32
            One row per image, in the order given.

        Raises
        ------
        ImageError
            Naming the first image that cannot be read.
        ValueError
            For a batch size below 1, or names that do not match the images.
        """
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        items = as_list(images)
        if names is not None and len(names) != len(items):
            raise ValueError(f"names has {len(names)} entries for {len(items)} images.")
        store = default_cache() if cache is None or cache is True else cache
        if store is False:
            store = None
        elif store is not None and not isinstance(store, EmbeddingCache):
            raise TypeError("cache must be None, True, False or an EmbeddingCache.")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        bar = Progress(progress, len(items), f"embed {self.name}")
        bounds = [
            (start, min(start + int(batch_size), len(items)))
            for start in range(0, len(items), int(batch_size))
        ]
        try:
            if overlap and len(bounds) > 1:
                self._embed_overlapped(items, names, bounds, out, store, bar)
            else:
                for start, stop in bounds:
                    self._finish(self._prepare(items, names, start, stop, out, store), out, store)
                    bar.advance(stop - start)
        finally:
            bar.close(owned=progress is True)
        return out

    def _embed_overlapped(self, items, names, bounds, out, store, bar) -> None:
        """Decode batch i+1 in a worker thread while the model runs batch i: Pillow's decoders
        and ONNX Runtime / PyTorch release the GIL, so the two overlap on separate cores."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-decode") as pool:
            pending = pool.submit(self._prepare, items, names, *bounds[0], out, store)
            for i, (start, stop) in enumerate(bounds):
                prepared = pending.result()  # re-raises ImageError naming the image
                if i + 1 < len(bounds):
                    pending = pool.submit(self._prepare, items, names, *bounds[i + 1], out, store)
                try:
                    self._finish(prepared, out, store)
                except BaseException:
                    pending.cancel()
                    raise
                bar.advance(stop - start)

    def _prepare(self, items, names, start, stop, out, store):
        """Cache lookups, then decode + preprocess the misses of rows ``start:stop``.

        Returns ``(keys, rows per key, batch)``; cached rows are written to ``out`` at once."""
        todo: dict[str, list[int]] = {}  # content hash -> rows (duplicates embedded once)
        payloads: dict[str, tuple[Any, str | None]] = {}
        for i in range(start, stop):
            name = source_name(items[i], names[i] if names is not None else None)
            key, payload = hash_image_source(items[i])
            cached = store.get(self.name, key) if store is not None else None
            if cached is not None:
                out[i] = cached
            else:
                todo.setdefault(key, []).append(i)
                payloads.setdefault(key, (payload, name))
        keys = list(todo)
        if not keys:
            return keys, todo, None
        batch = self.engine.batch(
            [load_image(*payloads[k], min_side=DECODE_MIN_SIDE) for k in keys]
        )
        return keys, todo, batch

    def _finish(self, prepared, out, store) -> None:
        """The forward pass of a prepared batch; rows written to ``out`` and the cache."""
        keys, todo, batch = prepared
        if not keys:
            return
        feats = self.engine.features(batch)
        for key, vec in zip(keys, feats, strict=True):
            out[todo[key]] = vec
            if store is not None:
                store.put(self.name, key, vec)

    def classify(self, images: ImageSource | Sequence[ImageSource], batch_size: int = 32):
        """ImageNet-1k logits ``(n, 1000)`` float32 (built-in backbone only; never cached)."""
        items = as_list(images)
        if self.spec.family != "builtin":
            raise NotImplementedError(
                f"Backbone {self.name!r} has its classifier removed; only "
                f"{DEFAULT_BACKBONE!r} keeps its ImageNet head."
            )
        chunks = [
            self.engine.logits(self.preprocess(items[s : s + batch_size]))
            for s in range(0, len(items), batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 1000))

    @property
    def class_names(self) -> list[str]:
        """ImageNet-1k class descriptions for ``classify``'s columns."""
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(info.num_classes())]
