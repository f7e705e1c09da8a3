"""Sort a pile: classify image files, folders and zips with a saved head, one row per image.

``predict_files(head, inputs)`` checks everything it can before any work (the head file, that its
backbone makes the embeddings it reads, every input; see ``sources``), then yields a
``PredictionRow`` per image as batches finish: the label, its probability, the top three classes,
the "none of these" score and flag, or the error that kept the image from being read (a bad file
never stops the run). Images stream through in batches (the next batch is decoded while the model
runs the current one), so memory does not grow with the pile; ``keep_embeddings=True`` keeps each
row's embedding (5 KB with the built-in backbone) so that ``rescore`` can re-sort the pile under a
re-imprinted head without embedding again, and ``least_sure`` lists the rows to correct first.
``engine="ray"`` runs the same batches on Ray Data actors (``predict_ray``).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

from .predict_batch import decode, finish, load_backbone
from .prediction_rows import (  # noqa: F401 - the public names of a prediction, here too
    TOP,
    PredictionRow,
    least_sure,
    least_sure_order,
    rescore,
    rows_from_arrays,
    score_embeddings,
)
from .sources import Inputs, Reader, list_inputs


class Prediction:
    """A run of ``predict_files``: iterate it (once) for the rows; ``total`` images to predict
    (None when object-storage URIs are read by Ray), ``ignored`` files left out of folders and
    zips (not images by their extension), ``skipped`` images passed over (already done)."""

    def __init__(self, head, backbone: str, inputs: Inputs, todo: int, skipped: int, rows):
        self.head, self.backbone, self.inputs = head, backbone, inputs
        self.total = None if inputs.uris else todo
        self.ignored, self.skipped = inputs.ignored, skipped
        self._rows = rows

    def __iter__(self) -> Iterator[PredictionRow]:
        return self._rows


def load_head(head):
    """An ``ImprintClassifier`` from a head file path (or the classifier itself)."""
    from .classifier import ImprintClassifier

    if isinstance(head, (str, os.PathLike)):
        return ImprintClassifier.load(head)
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(head)
    return head


def head_backbone(clf, backbone: str | None = None) -> str:
    """The backbone to embed with: the one the head records (``backbone`` must agree), checked
    against the head's embedding size."""
    from .onnx_export import resolve_backbone

    return resolve_backbone(clf, backbone)


def predict_files(
    head,
    inputs,
    *,
    backbone: str | None = None,
    batch_size: int = 32,
    engine: str = "local",
    skip: Container[str] = (),
    keep_embeddings: bool = False,
    progress: Any = None,
    **options: Any,
) -> Prediction:
    """Classify every image of ``inputs`` with ``head``; rows are computed as they are iterated.

    Parameters
    ----------
    head : str, os.PathLike or ImprintClassifier
        A head file (``clf.save``, the app's export) or a fitted classifier.
    inputs : path or list of paths
        Image files, folders (recursive) and ``.zip`` archives; with ``engine="ray"`` also
        object-storage URIs that Ray Data reads (``s3://bucket/photos``).
    backbone : str, optional
        Must be the backbone the head records (default: that one).
    batch_size : int, default=32
        Images per forward pass.
    engine : {"local", "ray"}, default="local"
        This process, or Ray Data actors (``predict_ray``; options ``ray_address``, ``workers``,
        ``gpus_per_worker``, ``local_cpus``).
    skip : container of str
        Row paths already done (``imprint predict --resume``): not read again.
    keep_embeddings : bool, default=False
        Keep each row's embedding (for ``rescore``).
    progress : None, tqdm bar or callable(done, total)
        Advanced after every batch.
    **options
        ``device``, ``runtime`` and the Ray options.

    Returns
    -------
    Prediction
        An iterable of ``PredictionRow``, in input order for ``engine="local"``, in the order
        batches finish for ``engine="ray"``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}.")
    clf = load_head(head)
    name = head_backbone(clf, backbone)
    found = list_inputs(inputs)
    todo = [item for item in found.images if item.name not in skip]
    if found.uris and engine != "ray":
        raise ValueError(
            f"{found.uris[0]!r} is an object-storage URI; only engine 'ray' (Ray Data) reads "
            "those: use --engine ray, or copy the images to a local folder."
        )
    rows = ENGINES[engine](
        clf, name, todo, found.uris, int(batch_size), skip, keep_embeddings, progress, options
    )
    return Prediction(clf, name, found, len(todo), len(found.images) - len(todo), rows)


def _local(clf, name, items, uris, batch_size, skip, keep, progress, options) -> Iterator:
    """Load the backbone now (a hub model that cannot load offline fails here, before any row);
    the rows are computed lazily."""
    extra = sorted(set(options) - {"device", "runtime"})
    if extra:
        raise ValueError(
            f"Option {extra[0]!r} is for engine 'ray'; engine 'local' takes device and runtime."
        )
    engine = load_backbone(name, **options).engine  # the forward without the embedding cache
    return _local_rows(engine, clf, items, batch_size, keep, progress)


def _local_rows(engine, clf, items, batch_size, keep, progress) -> Iterator[PredictionRow]:
    from .backbones.backbone import Progress

    bar = Progress(progress, len(items), "predict")
    with closing(_ahead(_local_batches(engine, clf, items, batch_size, keep))) as batches:
        for rows in batches:
            yield from rows
            bar.advance(len(rows))


def _local_batches(engine, clf, items, batch_size, keep) -> Iterator[list[PredictionRow]]:
    """Decode batch i+1 in a worker thread while the model runs batch i (Pillow and the model
    release the GIL), as ``Backbone.embed`` does."""
    batches = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]
    if not batches:
        return
    with Reader() as reader, ThreadPoolExecutor(1, thread_name_prefix="imprint-decode") as pool:
        pending = pool.submit(decode, engine, reader, batches[0])
        for i in range(len(batches)):
            decoded = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(decode, engine, reader, batches[i + 1])
            arrays = finish(engine, clf, decoded, keep)
            names = [it.name for it in decoded.items]
            yield rows_from_arrays(names, arrays, clf.classes_, decoded.items)


_DONE = object()


def _ahead(batches: Iterator[list], depth: int = 2) -> Iterator[list]:
    """``batches`` computed in a background thread, at most ``depth`` ahead of the consumer: what
    the consumer does with a batch (write the CSV, copy files) overlaps with the model running
    the next one instead of leaving the cores idle. Errors reach the consumer; a consumer that
    stops (or Ctrl-C) stops the producer after its current batch."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, who raises it
            put(exc)
        finally:
            batches.close()

    thread = threading.Thread(target=produce, name="imprint-predict", daemon=True)
    thread.start()
    try:
        while (got := out.get()) is not _DONE:
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        thread.join()


def _ray(clf, name, items, uris, batch_size, skip, keep, progress, options) -> Iterator:
    from .predict_ray import ray_rows

    return ray_rows(clf, name, items, uris, batch_size, skip, keep, progress, **options)


ENGINES: dict[str, Callable[..., Iterator[PredictionRow]]] = {"local": _local, "ray": _ray}
