"""Embedding a project's images with a backbone, and the cached embeddings imprinting reads.

Embeddings are cached per backbone and image content, so changing a setting never embeds again;
augmented views (``imprint_core.augment``) are cached beside them. The backbone reads each image as
intake decoded it (kept since the upload, or decoded again from its stored copy the same way), so
a stored original and the PNG copy intake used to store embed alike. ``Embedding`` is a part of
``Project``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np

from .intake import prepare_image
from .limits import EMBED_BATCH, ProgressFn, ProjectError
from .quotas import SLICE_IMAGES
from .scheduler import turn
from .state import ImageItem


class Embedding:
    """The embedding cache of a project's images (mixed into ``Project``)."""

    def embed(self, backbone, progress: ProgressFn | None = None) -> float:
        """Embed every image not yet embedded with ``backbone``; returns the seconds spent."""
        with self.transaction():
            self._check_trainable()
            store = self._embeddings.setdefault(backbone.name, {})
            todo: dict[str, ImageItem] = {}
            for entry in self.classes:
                for item in entry.images:
                    if item.key not in store:
                        todo.setdefault(item.key, item)
            start = time.perf_counter()
            views = self._missing_views(backbone.name)
            total = len(todo) + sum(len(items) * per for items, per in views.values())
            if progress is not None:
                progress(0, total)

            def report(offset: int, per: int = 1):
                if progress is None:
                    return None
                return lambda done, _: progress(offset + done * per, total)

            items = list(todo.values())
            chunks = [items[i : i + SLICE_IMAGES] for i in range(0, len(items), SLICE_IMAGES)]
            for n, pictures in enumerate(self._pictures(chunks)):
                chunk, first = chunks[n], n * SLICE_IMAGES
                with turn(self):  # one turn per chunk (scheduler)
                    Z = backbone.embed(  # cache=False: the process-wide cache leaks across sessions
                        pictures,
                        batch_size=EMBED_BATCH,
                        progress=report(first),
                        cache=False,
                        names=[i.name for i in chunk],
                    )
                for item, z in zip(chunk, np.asarray(Z, dtype=np.float32), strict=True):
                    store[item.key] = z
            self._embed_views(backbone, views, len(todo), report)
            for key in {i.key for c in self.classes for i in c.images}:
                self._decoded.drop(key)  # embedded: the pictures are no longer needed
            self.backbone_name = backbone.name
            return time.perf_counter() - start

    def _decode(self, items: Sequence[ImageItem]) -> list:
        """The decoded pictures of ``items``: kept since their upload, else decoded from the
        stored copies as intake decoded them."""
        return [self._decoded.get(i.key) or prepare_image(str(i.path), i.name) for i in items]

    def _pictures(self, chunks: Sequence[Sequence[ImageItem]]) -> Iterator[list]:
        """``_decode`` of each chunk, the next one in a worker thread while the caller embeds
        this one (Pillow's decoders release the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-decode") as pool:
            pending = pool.submit(self._decode, chunks[0]) if chunks else None
            for i in range(len(chunks)):
                pictures = pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(self._decode, chunks[i + 1])
                yield pictures

    def _missing_views(self, backbone_name: str) -> dict[str, tuple[list[ImageItem], int]]:
        """View name -> (images lacking that view's embeddings, outputs per image)."""
        from ..augment import view_labels

        have = self._view_embeddings.get(backbone_name, {})
        out = {}
        for view in self.augment:
            todo = {i.key: i for c in self.classes for i in c.images if (i.key, view) not in have}
            if todo:
                out[view] = (list(todo.values()), len(view_labels((view,))))
        return out

    def _embed_views(self, backbone, views: dict, done: int, report) -> None:
        """Embed the missing views (one batched call, and one turn, per chunk of images and
        view: about SLICE_IMAGES embeddings each)."""
        from ..augment import embed_views

        store = self._view_embeddings.setdefault(backbone.name, {})
        for view, (items, per) in views.items():
            step = max(1, SLICE_IMAGES // per)
            for start in range(0, len(items), step):
                chunk = items[start : start + step]
                with turn(self):
                    Z, source = embed_views(
                        backbone,
                        self._decode(chunk),
                        (view,),
                        batch_size=EMBED_BATCH,
                        progress=report(done + start * per, per),
                        cache=False,
                        names=[i.name for i in chunk],
                    )
                for j, item in enumerate(chunk):
                    store[(item.key, view)] = Z[source == j]
            done += len(items) * per

    def training_views(
        self, items: Sequence[ImageItem], backbone_name: str | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The augmented views of ``items`` as ``(Z, source)`` (``source`` indexes ``items``),
        or None when augmentation is off. Training samples only: never shown, never evaluated."""
        if not self.augment:
            return None
        store = self._view_embeddings.get(backbone_name or self.backbone_name or "", {})
        blocks, source = [], []
        for j, item in enumerate(items):
            for view in self.augment:
                block = store.get((item.key, view))
                if block is None:
                    raise ProjectError("Some images are not embedded yet: press Imprint.")
                blocks.append(block)
                source.append(np.full(len(block), j, dtype=np.int64))
        return np.concatenate(blocks), np.concatenate(source)

    def dataset(self, backbone_name: str | None = None) -> tuple[np.ndarray, np.ndarray, list]:
        """Cached embeddings ``X (n, d)``, class names ``y (n,)`` and the matching ImageItems."""
        name = backbone_name or self.backbone_name
        store = self._embeddings.get(name or "", {})
        items = [(c.name, i) for c in self.classes for i in c.images]
        missing = [i for _, i in items if i.key not in store]
        if not items or missing:
            raise ProjectError("Some images are not embedded yet: press Imprint.")
        X = np.stack([store[i.key] for _, i in items])
        y = np.array([c for c, _ in items], dtype=object)
        return X, y, [i for _, i in items]

    def is_embedded(self, backbone_name: str | None = None) -> bool:
        name = backbone_name or self.backbone_name or ""
        store = self._embeddings.get(name, {})
        keys = [i.key for c in self.classes for i in c.images]
        views = self._view_embeddings.get(name, {})
        return (
            bool(keys)
            and all(k in store for k in keys)
            and all((k, v) in views for k in keys for v in self.augment)
        )
