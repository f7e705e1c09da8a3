"""``predict_files(..., engine="ray")``: the same rows, computed by a pool of Ray Data actors.

Each actor (``_Predictor``) loads the head once (its file's bytes travel with the actor, so a
cluster needs no shared copy of it) and the backbone once, then reads, decodes, embeds and scores
whole batches with the local engine's own functions (``predict.decode``, ``predict.finish``): an
image that cannot be read is an error row, as in one process. Local files and zip members travel as
absolute paths (the workers read them, so on a cluster they must be on storage every node sees at
the same path); object-storage URIs (``s3://...``, ``gs://...``) are read by Ray Data itself
(``read_binary_files``). Rows arrive in the order batches finish; sort by path to compare runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from .predict_batch import decode, finish, load_backbone
from .prediction_rows import PredictionRow, rows_from_arrays
from .sources import InputImage, Reader


class _Predictor:
    """A Ray Data actor: loads the head and the backbone once, then predicts each batch."""

    def __init__(
        self,
        head: bytes,
        backbone: str,
        device,
        runtime,
        threads: int,
        keep: bool,
        scheme: str = "",
    ) -> None:
        import tempfile
        from pathlib import Path

        import torch

        from .backbones import get_backbone
        from .classifier import ImprintClassifier

        torch.set_num_threads(max(1, threads))  # ONNX Runtime takes its thread count from here
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "head.safetensors"
            path.write_bytes(head)
            self.clf = ImprintClassifier.load(path)
        self.engine = get_backbone(backbone, device=device, runtime=runtime).engine
        self.reader = Reader()
        self.keep, self.scheme = keep, scheme

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "bytes" in batch:  # read by Ray Data from object storage
            items = [
                InputImage(uri_name(self.scheme, str(p)), data=bytes(b))
                for p, b in zip(batch["path"], batch["bytes"], strict=True)
            ]
        else:
            items = [
                InputImage(str(n), str(p), str(m))
                for n, p, m in zip(batch["name"], batch["path"], batch["member"], strict=True)
            ]
        out = finish(self.engine, self.clf, decode(self.engine, self.reader, items), self.keep)
        out["name"] = np.array([item.name for item in items], dtype=object)
        return out


def uri_name(scheme: str, path: str) -> str:
    """The URI a row read by Ray Data came from (Ray reports it without its scheme)."""
    return path if "://" in path else f"{scheme}://{path}"


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0]


def ray_rows(
    clf,
    backbone: str,
    items: Sequence[InputImage],
    uris: Sequence[str],
    batch_size: int,
    skip,
    keep: bool,
    progress: Any,
    *,
    device: str | None = None,
    runtime: str | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    local_cpus: int | None = None,
) -> Iterator[PredictionRow]:
    """Check the options and the backbone now (before Ray starts); the rows come lazily."""
    from .backbones import resolve_device, resolve_runtime, weights_cached
    from .distributed import import_ray

    ray = import_ray()
    resolve_runtime(runtime)
    if device is not None and ray_address is None:
        resolve_device(device)
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}.")
    if ray_address is None and not weights_cached(backbone):
        load_backbone(backbone, device, runtime)  # offline: says why and names the weights
    actor = {
        "head": _head_bytes(clf),
        "backbone": backbone,
        "device": device,
        "runtime": runtime,
        "threads": max(1, int(cpus_per_worker)),
        "keep": keep,
    }
    pool = {"cpus": cpus_per_worker, "gpus": gpus_per_worker, "workers": workers}
    return _rows(
        ray, clf, items, uris, batch_size, skip, progress, actor, pool, ray_address, local_cpus
    )


def _rows(ray, clf, items, uris, batch_size, skip, progress, actor, pool, address, local_cpus):
    from .backbones.backbone import Progress
    from .distributed import default_workers, first_line, init_ray

    started = not ray.is_initialized()
    if started:
        init_ray(ray, address, local_cpus)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # our bar counts images
        batches = None if uris else -(-len(items) // batch_size)
        workers = pool["workers"] or default_workers(ray, pool["cpus"], pool["gpus"], batches)
        by_name = {item.name: item for item in items}
        bar = Progress(progress, len(items), "predict")
        for ds, scheme in _datasets(ray, items, uris, skip, workers):
            ds = ds.map_batches(
                _Predictor,
                fn_constructor_kwargs={**actor, "scheme": scheme},
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=int(workers)),
                num_cpus=pool["cpus"],
                num_gpus=pool["gpus"],
            )
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    names = [str(n) for n in batch["name"]]
                    sources = [by_name.get(n) for n in names]
                    yield from rows_from_arrays(names, batch, clf.classes_, sources)
                    bar.advance(len(names))
            except Exception as exc:  # Ray wraps worker errors; keep the sentence that says why
                raise RuntimeError(f"Ray prediction failed: {first_line(exc)}") from exc
    finally:
        if started:
            ray.shutdown()


def _datasets(ray, items, uris, skip, workers):
    """``(dataset, uri scheme)``: the listed images as rows of paths, then each scheme's URIs
    as a ``read_binary_files`` dataset (already predicted rows filtered out)."""
    from .images import IMAGE_SUFFIXES

    if items:
        rows = [
            {"name": it.name, "path": os.path.abspath(it.path), "member": it.member} for it in items
        ]
        blocks = max(1, min(len(rows), int(workers) * 4))
        yield ray.data.from_items(rows, override_num_blocks=blocks), ""
    extensions = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
    extensions += [e.upper() for e in extensions]
    for scheme, group in groupby(uris, key=_scheme):
        ds = ray.data.read_binary_files(list(group), include_paths=True, file_extensions=extensions)
        if skip:
            done = frozenset(n for n in skip if n.startswith(f"{scheme}://"))
            ds = ds.filter(lambda row, s=scheme, d=done: uri_name(s, row["path"]) not in d)
        yield ds, scheme


def _head_bytes(clf) -> bytes:
    """The head as its file's bytes (what every actor loads)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "head.safetensors"
        clf.save(path)
        return path.read_bytes()
