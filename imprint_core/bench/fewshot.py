"""The few-shot protocol of ``imprint bench --shots``: many random draws of 1-20 images per class.

A pool of training images (``pool_per_class`` per class, a seeded stratified sample) and the test
images are embedded once through the bench's disk cache. For every task, every shot count and every
draw, ``shots`` images per class are drawn from the pool (``draw_support``: a generator seeded by
``(shots, draw)``, so every method sees the same support), each method is fitted on them and scored
on the task's test images. The summary gives, per (method, task, shots), the mean accuracy over the
draws and the half-width of its 95 % interval (Student t over draws).

Beside the imprinting methods every run holds the two few-shot references: the logistic-regression
probe of the paper's protocol and SimpleShot (Wang et al. 2019, "CL2N": subtract the support mean,
L2-normalise, nearest class mean under the Euclidean distance).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import load_dataset
from .protocol import (
    PROBE,
    PROBE_C,
    Method,
    _backbone_name,
    _bar,
    default_cache_dir,
    embed_cached,
    fit_and_score,
    subset_rows,
    unique_methods,
)
from .tasks import get_task

DEFAULT_SHOTS = (1, 2, 5, 10, 20)
DEFAULT_DRAWS = 10
DEFAULT_POOL = 500  # training images per class embedded once; the shots are drawn from them
SIMPLESHOT = "SimpleShot"


def reference_methods(probe: bool = True, simpleshot: bool = True, probe_C: float = PROBE_C):
    """The few-shot references that go beside the imprinting methods."""
    refs = [Method(PROBE, {"C": probe_C}, kind="probe")] if probe else []
    return refs + ([Method(SIMPLESHOT, {}, kind="simpleshot")] if simpleshot else [])


def draw_support(labels: np.ndarray, shots: int, draw: int) -> np.ndarray:
    """Rows of ``shots`` distinct images per class, drawn at random for (shots, draw), sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(shots), int(draw)])
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < shots:
            raise ValueError(
                f"class {c.item()!r} has {len(members)} images in the pool, fewer than {shots} "
                "shots; raise pool_per_class (--pool-per-class) or lower the shots"
            )
        rows.append(rng.choice(members, shots, replace=False))
    return np.sort(np.concatenate(rows))


def interval95(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % Student-t interval of the mean); 0 width for one value."""
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


@dataclass
class FewShotConfig:
    """Everything a few-shot run depends on (see ``imprint bench --help``)."""

    dataset: str = "fashion-mnist"
    backbone: Any = "efficientnet_lite0"
    shots: tuple[int, ...] = DEFAULT_SHOTS
    draws: int = DEFAULT_DRAWS
    pool_per_class: int | None = DEFAULT_POOL
    test_per_class: int | None = None
    tasks: tuple[str, ...] = ("all",)
    methods: tuple[Method, ...] = ()
    probe: bool = True
    simpleshot: bool = True
    probe_C: float = PROBE_C
    cache_dir: str | os.PathLike | None = None
    data_root: str | os.PathLike | None = None
    subset_seed: int = 0
    batch_size: int = 64
    progress: bool = True


@dataclass
class FewShotResult:
    """Runs (one row per method x task x shots x draw), the summary, embeddings and timings."""

    settings: dict
    runs: list[dict]
    summary: list[dict] = field(default_factory=list)
    embeddings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def table(self, task: str | None = None, markdown: bool = False) -> str:
        return format_table(self.summary, task or self.settings["tasks"][0], markdown)


def _check(cfg: FewShotConfig) -> None:
    if not cfg.shots or any(int(s) < 1 for s in cfg.shots):
        raise ValueError(f"shots must be integers >= 1, got {list(cfg.shots)}")
    if int(cfg.draws) < 1:
        raise ValueError(f"draws must be >= 1, got {cfg.draws}")
    if cfg.pool_per_class is not None and cfg.pool_per_class < max(cfg.shots):
        raise ValueError(
            f"pool_per_class={cfg.pool_per_class} is smaller than the largest shot count "
            f"{max(cfg.shots)}; the shots are drawn from the pool"
        )
    if not cfg.tasks:
        raise ValueError("give at least one task")


def run_fewshot(cfg: FewShotConfig) -> FewShotResult:
    """Embed the pool and the test images (or load them from the cache), then fit and score
    every method on every (task, shots, draw)."""
    _check(cfg)
    t0 = time.perf_counter()
    methods = unique_methods(
        [*cfg.methods, *reference_methods(cfg.probe, cfg.simpleshot, cfg.probe_C)]
    )
    if not methods:
        raise ValueError("no methods to run: give presets, a grid, a config file or a reference")
    backbone = _backbone_name(cfg.backbone)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    splits = {s: load_dataset(cfg.dataset, s, cfg.data_root) for s in ("train", "test")}
    names = splits["train"].class_names
    tasks = [get_task(n, cfg.dataset, len(names), names) for n in cfg.tasks]
    data, embeddings = {}, {}
    for split, per_class in (("train", cfg.pool_per_class), ("test", cfg.test_per_class)):
        ds = splits[split]
        rows = subset_rows(ds.labels, per_class, cfg.subset_seed)
        Z, info = embed_cached(ds, rows, cfg.backbone, cache_dir, cfg.batch_size, cfg.progress)
        data[split] = (Z, ds.labels[rows])
        embeddings[split] = info
    t1 = time.perf_counter()
    runs = []
    total = len(tasks) * len(cfg.shots) * int(cfg.draws) * len(methods)
    bar = _bar(cfg.progress, total, "few-shot", "fit")
    try:
        for task in tasks:
            pool_rows, pool_y = task.select(data["train"][1])
            test_rows, test_y = task.select(data["test"][1])
            Xte = data["test"][0][test_rows]
            for shots in cfg.shots:
                for draw in range(int(cfg.draws)):
                    pick = draw_support(pool_y, shots, draw)
                    split = (data["train"][0][pool_rows[pick]], pool_y[pick], Xte, test_y)
                    for method in methods:
                        acc, fit_s = fit_and_score(method, split, draw, backbone)
                        runs.append(
                            {
                                "method": method.name,
                                "kind": method.kind,
                                "task": task.name,
                                "shots": int(shots),
                                "draw": draw,
                                "accuracy": acc,
                                "fit_seconds": fit_s,
                            }
                        )
                        bar.update(1)
    finally:
        bar.close()
    settings = {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}
    settings.update(
        backbone=backbone,
        shots=[int(s) for s in cfg.shots],
        tasks=list(cfg.tasks),
        methods=[{"name": m.name, "kind": m.kind, "params": m.params} for m in methods],
        cache_dir=str(cfg.cache_dir) if cfg.cache_dir is not None else None,
        data_root=str(cfg.data_root) if cfg.data_root is not None else None,
        protocol="few-shot",
    )
    result = FewShotResult(settings, runs, summarise(runs), embeddings)
    result.seconds = {"embed": t1 - t0, "imprint": time.perf_counter() - t1}
    result.seconds["total"] = time.perf_counter() - t0
    return result


def summarise(runs: Sequence[dict]) -> list[dict]:
    """Per (method, task, shots): draws, mean accuracy, 95 % half-width, median fit time."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["task"], r["shots"]), []).append(r)
    out = []
    for (method, task, shots), rs in groups.items():
        mean, half = interval95([r["accuracy"] for r in rs])
        out.append(
            {
                "method": method,
                "kind": rs[0]["kind"],
                "task": task,
                "shots": shots,
                "draws": len(rs),
                "mean": mean,
                "ci95": half,
                "fit_seconds": float(np.median([r["fit_seconds"] for r in rs])),
            }
        )
    return out


def format_table(summary: Sequence[dict], task: str, markdown: bool = False) -> str:
    """Methods x shots for one task: ``mean ± 95 % half-width`` (accuracy in %)."""
    rows = [s for s in summary if s["task"] == task]
    shots = sorted({s["shots"] for s in rows})
    methods = list(dict.fromkeys(s["method"] for s in rows))
    cell = {(s["method"], s["shots"]): f"{s['mean']:.1f} ± {s['ci95']:.1f}" for s in rows}
    head = ["method", *(f"{n} shot{'s' * (n > 1)}" for n in shots)]
    body = [[m, *(cell.get((m, n), "-") for n in shots)] for m in methods]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = [f"{c:<{widths[0]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(head)]
    lines = ["  ".join(fmt), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    for r in body:
        lines.append(
            "  ".join(
                f"{c:<{widths[0]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(r)
            )
        )
    return "\n".join(lines)


def write_outputs(result: FewShotResult, prefix: str | os.PathLike) -> list[Path]:
    """``PREFIX.json`` (everything), ``PREFIX.csv`` (the summary), ``PREFIX-runs.csv``,
    ``PREFIX.md`` (the markdown table of every task)."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{prefix}{s}") for s in (".json", ".csv", "-runs.csv", ".md")]
    paths[0].write_text(json.dumps(asdict(result), indent=1) + "\n")
    cols = ["method", "kind", "task", "shots", "draws", "mean", "ci95", "fit_seconds"]
    with open(paths[1], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(result.summary)
    with open(paths[2], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(result.runs[0]))
        w.writeheader()
        w.writerows(result.runs)
    md = [f"### {t}\n\n{result.table(t, markdown=True)}\n" for t in result.settings["tasks"]]
    paths[3].write_text("\n".join(md))
    return paths
