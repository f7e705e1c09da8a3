"""Embedding beyond one process: the same rows as ``Backbone.embed``, computed by Ray Data.

``embed_paths(paths, engine="ray")`` splits the list of image files into batches and streams them
through a fixed pool of model actors (``map_batches`` with a callable class and
``ActorPoolStrategy``): each actor loads the backbone once and embeds whole batches, reading the
files itself (so on a cluster the folder must be on storage every node sees, at the same path).
Rows come back tagged with their index and are put in the caller's order, so the output is the
same array the single-process path gives (up to float rounding of a different thread count).

``ENGINES`` maps an engine name to its function; ``"local"`` is the single-process path.
Ray is optional: ``pip install 'imprint_core[distributed]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Heavy: torch, ray, PIL and backbones imported where used, so that importing this module stays
# cheap.


class _Embedder:
    """A Ray Data actor: loads the backbone once, then embeds each batch of file paths."""

    def __init__(self, backbone: str, device: str | None, runtime: str | None, threads: int):
        import torch

        from imprint_core.backbones import get_backbone

        torch.set_num_threads(max(1, threads))  # ONNX Runtime takes its thread count from here
        self.backbone = get_backbone(backbone, device=device, runtime=runtime)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "path" in batch:
            items = [str(p) for p in batch["path"]]
        else:
            items = [bytes(b) for b in batch["data"]]
        X = self.backbone.embed(items, batch_size=len(items), cache=False, overlap=False)
        return {"row": batch["row"], "embedding": X}


def _rows(images: Sequence[Any]) -> list[dict[str, Any]]:
    """Ray Data rows: file paths travel as paths (read by the workers, so shared storage is
    needed), in-memory images (PIL, arrays, bytes) as encoded bytes (PNG, lossless)."""
    import io

    from PIL import Image

    rows = []
    for i, im in enumerate(images):
        if isinstance(im, (str, os.PathLike)):
            rows.append({"row": i, "path": os.path.abspath(os.fspath(im))})
            continue
        if isinstance(im, np.ndarray):
            im = Image.fromarray(im)
        if isinstance(im, Image.Image):
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            im = buf.getvalue()
        rows.append({"row": i, "data": bytes(im)})
    if len({"path" in r for r in rows}) > 1:
        raise ValueError("embed_ray takes either file paths or in-memory images, not both at once.")
    return rows


def embed_local(
    paths: Sequence[str | os.PathLike],
    backbone: str | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    runtime: str | None = None,
    names: Sequence[str] | None = None,
    progress: Any = None,
    **_: Any,
) -> np.ndarray:
    """The single-process path: ``get_backbone(backbone).embed(paths)``."""
    from imprint_core.backbones import get_backbone

    bb = get_backbone(backbone, device=device, runtime=runtime)
    return bb.embed(list(paths), batch_size=batch_size, progress=progress, names=names)


def embed_ray(
    paths: Sequence[Any],
    backbone: str | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    runtime: str | None = None,
    names: Sequence[str] | None = None,
    progress: Any = None,
    ray_address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    local_cpus: int | None = None,
) -> np.ndarray:
    """Embed ``paths`` (files, or PIL images / uint8 arrays / encoded bytes) on a Ray cluster
    (or a local one) with a pool of model actors.

    ``ray_address``: an existing cluster ("auto", "ray://host:10001", ...); None starts a local
    Ray with ``local_cpus`` CPUs (default: all) and shuts it down afterwards. ``workers``: actors
    in the pool (default: the cluster's CPUs / ``cpus_per_worker``, or its GPUs / ``gpus_per_worker``).
    Each actor uses ``cpus_per_worker`` threads; ``gpus_per_worker=1`` with ``device="cuda"`` puts
    one model per GPU. A file no worker can read raises ``RuntimeError`` naming it.
    """
    ray = import_ray()
    from imprint_core.backbones import (
        DEFAULT_BACKBONE,
        backbone_spec,
        resolve_device,
        resolve_runtime,
    )

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    name = backbone_spec(backbone or DEFAULT_BACKBONE).name
    resolve_runtime(runtime)  # bad options fail here, not in a worker
    if device is not None and ray_address is None:
        resolve_device(device)
    rows = _rows(list(paths))
    if not rows:
        return np.zeros((0, backbone_spec(name).dim), dtype=np.float32)
    started = not ray.is_initialized()
    if started:
        init_ray(ray, ray_address, local_cpus)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # our own bar counts images
        if workers is None:
            batches = -(-len(rows) // int(batch_size))
            workers = default_workers(ray, cpus_per_worker, gpus_per_worker, batches)
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), workers * 4)))
        ds = ds.map_batches(
            _Embedder,
            fn_constructor_kwargs={
                "backbone": name,
                "device": device,
                "runtime": runtime,
                "threads": max(1, int(cpus_per_worker)),
            },
            batch_size=int(batch_size),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=int(workers)),
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
        )
        out = np.empty((len(rows), backbone_spec(name).dim), dtype=np.float32)
        seen = np.zeros(len(rows), dtype=bool)
        bar = _progress(progress, len(rows))
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows = np.asarray(batch["row"], dtype=np.int64)
                out[rows] = batch["embedding"]
                seen[rows] = True
                bar(len(rows))
        except Exception as exc:  # Ray wraps worker errors; keep the first line naming the file
            raise RuntimeError(f"Ray embedding failed: {first_line(exc)}") from exc
        if not seen.all():
            raise RuntimeError(f"Ray returned {int(seen.sum())} of {len(rows)} embeddings.")
        return out
    finally:
        if started:
            ray.shutdown()


def import_ray():
    """The ``ray`` module with Ray Data, or a RuntimeError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RuntimeError(
            "The ray engine needs Ray Data: pip install 'imprint_core[distributed]' "
            f"(or pip install 'ray[data]>=2.9'); {exc}."
        ) from None
    return ray


def default_workers(
    ray, cpus_per_worker: float, gpus_per_worker: float, batches: int | None = None
) -> int:
    """Actors for the pool: the cluster's CPUs (or GPUs) over what one actor takes, at most one
    per batch (``batches``; None when the count is not known before reading)."""
    res = ray.cluster_resources()
    if gpus_per_worker > 0:
        workers = int(res.get("GPU", 0) // gpus_per_worker)
    else:
        workers = int(res.get("CPU", 1) // max(cpus_per_worker, 1e-9))
    return max(1, workers if batches is None else min(workers, batches))


START_ATTEMPTS = 3  # Ray gives its local node a fixed 30 s to start; a busy machine can need more


def init_ray(ray, address: str | None, local_cpus: int | None) -> None:
    """``ray.init``; a local node that times out during start-up (an overloaded machine) is
    shut down and started again, up to ``START_ATTEMPTS`` times."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            ray.init(
                address=address,
                num_cpus=local_cpus if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            return
        except Exception as exc:
            ray.shutdown()
            if address is not None or "timed out" not in str(exc) or attempt == START_ATTEMPTS:
                raise RuntimeError(f"Ray could not start: {exc}") from exc


def first_line(exc: BaseException) -> str:
    """The user-facing sentence of an error Ray re-raised from a worker."""
    cause = exc
    while getattr(cause, "cause", None) is not None:  # RayTaskError keeps the original here
        cause = cause.cause
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Error" in ln and ":" in ln]
    return (useful[-1] if useful else lines[-1] if lines else repr(cause))[:500]


def _progress(progress: Any, total: int) -> Callable[[int], None]:
    """A callback advancing ``progress`` (None, a tqdm bar or ``f(done, total)``)."""
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if hasattr(progress, "update"):
            progress.update(n)
        elif callable(progress):
            progress(done[0], total)

    return advance


class RayBackbone:
    """A stand-in for a ``Backbone`` whose ``embed`` runs on Ray (for code that takes a backbone
    object, e.g. ``imprint_core.bench.embed_cached``): the same name, dim and rows."""

    def __init__(self, name: str | None = None, **ray_options: Any) -> None:
        from imprint_core.backbones import backbone_spec

        spec = backbone_spec(name)
        self.spec, self.name, self.dim = spec, spec.name, spec.dim
        self.runtime = "ray"
        self.ray_options = ray_options

    def embed(self, images, batch_size: int = 32, progress: Any = None, **_: Any) -> np.ndarray:
        from imprint_core.backbones.backbone import as_list

        return embed_ray(
            as_list(images),
            self.name,
            batch_size=batch_size,
            progress=progress,
            **self.ray_options,
        )


ENGINES: dict[str, Callable[..., np.ndarray]] = {"local": embed_local, "ray": embed_ray}


def embed_paths(paths: Sequence[str | os.PathLike], engine: str = "local", **kwargs: Any):
    """Embed image files with the named engine (``ENGINES``): ``(n, dim)`` float32 rows in order."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}.")
    return ENGINES[engine](paths, **kwargs)
