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

With ``augment`` (view names of ``imprint_core.augment``, e.g. ``("flip", "crops")``) every method is
also fitted on the same supports plus the augmented views of their images (each view a sample with
its source's label), in the same run: rows ``method + flip+crops`` beside ``method``, and the paired
difference per draw (``FewShotResult.paired``). The views of the pool images any draw uses are
embedded once and cached on disk beside the plain embeddings, keyed by the view set.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..augment import VIEWS_VERSION, add_views, check_views, embed_views, view_labels
from .baselines import BASELINES
from .protocol import (
    PROBE,
    PROBE_C,
    Method,
    backbone_name,
    cache_path,
    default_cache_dir,
    embed_splits,
    fit_and_predict,
    load_npz,
    progress_bar,
    save_npz,
    subset_rows,
    unique_methods,
)

# Heavy: scipy, and backbones (PIL; torch once a model loads) imported where used, so that importing
# this module stays cheap.

DEFAULT_SHOTS = (1, 2, 5, 10, 20)
DEFAULT_DRAWS = 10
DEFAULT_POOL = 500  # training images per class embedded once; the shots are drawn from them
SIMPLESHOT = BASELINES["simpleshot"][0]
POOL = 0  # the shot count that stands for "every image of the pool" (``--shots ...,all``)
# The baselines beside SimpleShot (``baselines=True``): C-tuned logistic regression, shrinkage
# LDA, ridge.
EXTRA_BASELINES = ("logreg_cv", "lda", "ridge")


def reference_methods(
    probe: bool = True, simpleshot: bool = True, probe_C: float = PROBE_C, baselines: bool = False
):
    """The few-shot references that go beside the imprinting methods."""
    refs = [Method(PROBE, {"C": probe_C}, kind="probe")] if probe else []
    refs += [Method(SIMPLESHOT, {}, kind="simpleshot")] if simpleshot else []
    return refs + [Method(BASELINES[k][0], {}, kind=k) for k in EXTRA_BASELINES if baselines]


def shots_label(shots: int) -> str:
    """A shot count in tables: ``5 shots``, or ``pool`` for every image of the pool."""
    return "pool" if shots == POOL else f"{shots} shot{'s' * (shots > 1)}"


def draw_support(labels: np.ndarray, shots: int, draw: int) -> np.ndarray:
    """Rows of ``shots`` distinct images per class, drawn at random for (shots, draw), sorted;
    every row for ``shots=POOL``."""
    labels = np.asarray(labels)
    if shots == POOL:
        return np.arange(len(labels))
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
    baselines: bool = False  # also logistic regression (CV), shrinkage LDA and ridge
    reference: str | None = None  # a method name: paired differences against it, per draw
    embeddings: str | os.PathLike | None = None  # an ``imprint embed`` .npz instead of images
    probe_C: float = PROBE_C
    cache_dir: str | os.PathLike | None = None
    data_root: str | os.PathLike | None = None
    subset_seed: int = 0
    batch_size: int = 64
    progress: bool = True
    augment: tuple[str, ...] = ()  # view names (imprint_core.augment): also score with views


@dataclass
class FewShotResult:
    """Runs (one row per method x task x shots x draw), the summary, embeddings and timings."""

    settings: dict
    runs: list[dict]
    summary: list[dict] = field(default_factory=list)
    embeddings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    paired: list[dict] = field(default_factory=list)  # with minus without views, per draw
    versus: list[dict] = field(default_factory=list)  # the reference minus each method

    def table(self, task: str | None = None, markdown: bool = False) -> str:
        return format_table(self.summary, task or self.settings["tasks"][0], markdown)


def _check(cfg: FewShotConfig) -> None:
    if not cfg.shots or any(int(s) < 0 for s in cfg.shots):
        raise ValueError(
            f"shots must be integers >= 1 (or {POOL} for the whole pool), got {list(cfg.shots)}"
        )
    if int(cfg.draws) < 1:
        raise ValueError(f"draws must be >= 1, got {cfg.draws}")
    if cfg.augment and cfg.embeddings is not None:
        raise ValueError("augment needs the images; precomputed embeddings have none")
    if cfg.pool_per_class is not None and cfg.pool_per_class < max(cfg.shots):
        raise ValueError(
            f"pool_per_class={cfg.pool_per_class} is smaller than the largest shot count "
            f"{max(cfg.shots)}; the shots are drawn from the pool"
        )
    if not cfg.tasks:
        raise ValueError("give at least one task")

    check_views(cfg.augment, "augment (--augment)")


def views_cache_path(dataset, rows: np.ndarray, backbone: str, cache_dir, views) -> Path:
    """Where the views ``views`` of ``dataset[rows]`` are cached (next to the plain file)."""
    base = cache_path(dataset, rows, backbone, Path(cache_dir))
    return base.with_name(f"{base.stem}-views-{'+'.join(views)}-v{VIEWS_VERSION}.npz")


def embed_views_cached(
    dataset, rows: np.ndarray, backbone: Any, cache_dir, views, batch_size: int = 64, progress=True
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(Z, source, info)``: the views of ``dataset[rows]`` (``source`` indexes ``rows``),
    from the disk cache when present (keyed by the rows' content, the backbone and the views)."""
    views = check_views(views)
    rows = np.asarray(rows, dtype=np.int64)
    name = backbone_name(backbone)
    path = views_cache_path(dataset, rows, name, cache_dir, views)
    per = len(view_labels(views))
    source = np.repeat(np.arange(len(rows), dtype=np.int64), per)
    info = {"file": str(path), "images": len(rows), "views": len(source), "cached": True}
    info["seconds"] = 0.0
    if path.is_file():
        Z = load_npz(path, rows)
        if Z is not None and len(Z) == len(source):
            return Z, source, info
    if isinstance(backbone, str):
        from ..backbones import get_backbone

        backbone = get_backbone(backbone)
    bar = progress_bar(progress, len(rows), f"embed {'+'.join(views)} views ({name})", "img")
    # the disk cache replaces the in-memory one (memory would grow)
    cache = False if "cache" in inspect.signature(backbone.embed).parameters else None
    start = time.perf_counter()
    try:

        def advance(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        Z, _ = embed_views(
            backbone,
            dataset.images(rows),
            views,
            batch_size=batch_size,
            progress=advance,
            cache=cache,
            chunk=256,
        )
    finally:
        bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, embeddings=Z, rows=rows)
    info.update(cached=False, seconds=time.perf_counter() - start)
    return Z, source, info


def run_fewshot(cfg: FewShotConfig) -> FewShotResult:
    """Embed the pool and the test images (or load them from the cache), then fit and score
    every method on every (task, shots, draw).

    Parameters
    ----------
    cfg : FewShotConfig
        The dataset, backbone, shots, draws, pool and test sizes, tasks, methods, references
        (``probe``, ``simpleshot``) and augmented views.

    Returns
    -------
    result : FewShotResult
        One run per (method, task, shots, draw), the summary (mean accuracy over the draws and
        the half-width of its 95 % interval), with ``augment`` the paired gains of the views,
        where the embeddings came from, and timings.

    Raises
    ------
    ValueError
        For shots or draws below 1, no methods, unknown views, or a class with fewer pool
        images than shots.
    """
    _check(cfg)
    t0 = time.perf_counter()
    refs = reference_methods(cfg.probe, cfg.simpleshot, cfg.probe_C, cfg.baselines)
    methods = unique_methods([*cfg.methods, *refs])
    if not methods:
        raise ValueError("no methods to run: give presets, a grid, a config file or a reference")
    if cfg.reference is not None and cfg.reference not in {m.name for m in methods}:
        raise ValueError(f"reference {cfg.reference!r} is not one of the methods run")
    backbone = backbone_name(cfg.backbone)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    splits, tasks, data, embeddings = embed_splits(cfg, cfg.pool_per_class)
    backbone = embeddings["train"].get("backbone", backbone)  # a file says what made it
    aug = "+".join(cfg.augment)
    plans = [
        (task, *task.select(data["train"][1]), *task.select(data["test"][1])) for task in tasks
    ]
    picks = {  # (task, shots, draw) -> (rows of the embedded pool, task labels)
        (task.name, shots, draw): (pool_rows[pick], pool_y[pick])
        for task, pool_rows, pool_y, _, _ in plans
        for shots in cfg.shots
        for draw in range(_draws(cfg, shots))
        for pick in [draw_support(pool_y, shots, draw)]
    }
    views = None
    if cfg.augment:  # the views of every pool image some draw uses, embedded once
        used = np.unique(np.concatenate([rows for rows, _ in picks.values()]))
        train_rows = subset_rows(splits["train"].labels, cfg.pool_per_class, cfg.subset_seed)
        Zv, source, info = embed_views_cached(
            splits["train"],
            train_rows[used],
            cfg.backbone,
            cache_dir,
            cfg.augment,
            cfg.batch_size,
            cfg.progress,
        )
        embeddings["views"] = info
        order = np.argsort(used[source], kind="stable")  # views grouped by pool row
        views = (Zv[order], used[source][order])
    t1 = time.perf_counter()
    runs = []
    correct: dict[tuple, np.ndarray] = {}  # (method, augment, task) -> pool run, per test image
    total = len(picks) * len(methods) * (2 if views is not None else 1)
    bar = progress_bar(cfg.progress, total, "few-shot", "fit")
    try:
        for task, _, _, test_rows, test_y in plans:
            Xte = data["test"][0][test_rows]
            for shots in cfg.shots:
                for draw in range(_draws(cfg, shots)):
                    rows, ytr = picks[(task.name, shots, draw)]
                    Xtr = data["train"][0][rows]
                    supports = [("", (Xtr, ytr, Xte, test_y))]
                    if views is not None:
                        Xa, ya = with_views(Xtr, ytr, rows, views)
                        supports.append((aug, (Xa, ya, Xte, test_y)))
                    for method in methods:
                        for augment, split in supports:
                            acc, fit_s, hits = fit_and_predict(method, split, draw, backbone)
                            if shots == POOL and hits is not None:
                                correct[(method.name, augment, task.name)] = hits
                            runs.append(
                                {
                                    "method": method.name,
                                    "kind": method.kind,
                                    "augment": augment,
                                    "task": task.name,
                                    "shots": int(shots),
                                    "draw": draw,
                                    "n_train": len(split[1]),
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
    settings.update(
        embeddings=str(cfg.embeddings) if cfg.embeddings is not None else None,
        backbone=backbone,
    )
    result = FewShotResult(settings, runs, summarise(runs, correct), embeddings)
    result.paired = paired_differences(runs)
    if cfg.reference is not None:
        result.versus = versus(runs, cfg.reference, correct)
    result.seconds = {"embed": t1 - t0, "imprint": time.perf_counter() - t1}
    result.seconds["total"] = time.perf_counter() - t0
    return result


def _draws(cfg: FewShotConfig, shots: int) -> int:
    """Draws of a shot count: the pool is the same support every time, so it is fitted once
    (its interval is over the test images instead)."""
    return 1 if shots == POOL else int(cfg.draws)


def with_views(X, y, rows, views) -> tuple[np.ndarray, np.ndarray]:
    """The support ``(X, y)`` (pool rows ``rows``) plus the views of exactly those rows."""
    Zv, owner = views  # owner: the pool row of each view, sorted
    lo, hi = np.searchsorted(owner, rows, "left"), np.searchsorted(owner, rows, "right")
    take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    source = np.repeat(np.arange(len(rows)), hi - lo)
    return add_views(X, y, Zv[take], source)


def row_name(method: str, augment: str = "") -> str:
    """A method's name in tables: ``qi``, or ``qi + flip+crops`` when fitted with views."""
    return f"{method} + {augment}" if augment else method


def summarise(runs: Sequence[dict], correct: dict | None = None) -> list[dict]:
    """Per (method, augment, task, shots): draws, mean accuracy, 95 % half-width, median fit time.

    The interval is over the draws; for the whole pool (one fit, ``shots=POOL``) it is over the
    test images, from ``correct`` ((method, augment, task) -> per-image hits) when given. Runs a
    baseline refused (NaN) are left out; a cell with none left has a NaN mean and 0 draws."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = (r["method"], r.get("augment", ""), r["task"], r["shots"])
        groups.setdefault(key, []).append(r)
    out = []
    for (method, augment, task, shots), rs in groups.items():
        hits = (correct or {}).get((method, augment, task)) if shots == POOL else None
        done = [r["accuracy"] for r in rs if not np.isnan(r["accuracy"])]
        if hits is not None:
            mean, half = interval95(100.0 * hits.astype(np.float64))
        elif done:
            mean, half = interval95(done)
        else:
            mean, half = float("nan"), 0.0
        out.append(
            {
                "method": row_name(method, augment),
                "kind": rs[0]["kind"],
                "augment": augment,
                "task": task,
                "shots": shots,
                "draws": len(done),
                "mean": mean,
                "ci95": half,
                "fit_seconds": float(np.median([r["fit_seconds"] for r in rs])),
            }
        )
    return out


def _paired(a: dict, b: dict, correct: dict | None) -> list[float] | None:
    """Paired differences a - b of two cells' runs ({draw: run}): per draw, or per test image
    for the whole pool when both have their hits in ``correct``; None when one was refused."""
    shots = next(iter(a.values()))["shots"]
    if shots == POOL and correct is not None:
        ra, rb = a[0], b[0]
        ha = correct.get((ra["method"], ra.get("augment", ""), ra["task"]))
        hb = correct.get((rb["method"], rb.get("augment", ""), rb["task"]))
        if ha is not None and hb is not None:
            return list(100.0 * (ha.astype(np.float64) - hb))
    diffs = [a[d]["accuracy"] - b[d]["accuracy"] for d in a if d in b]
    return None if not diffs or np.isnan(diffs).any() else diffs


def versus(runs: Sequence[dict], reference: str, correct: dict | None = None) -> list[dict]:
    """Per (method, task, shots): the reference's accuracy minus the method's, paired by draw
    (per test image for the whole pool), mean and 95 % half-width, and the draws the reference
    won; a method refused in that cell gets none."""
    cells: dict[tuple, dict] = {}
    for r in runs:
        if not r.get("augment"):
            cells.setdefault((r["method"], r["task"], r["shots"]), {})[r["draw"]] = r
    out = []
    for (method, task, shots), cell in cells.items():
        ref = cells.get((reference, task, shots))
        if method == reference or ref is None:
            continue
        diffs = _paired(ref, cell, correct)
        if diffs is None:
            continue
        mean, half = interval95(diffs)
        wins = [ref[d]["accuracy"] > cell[d]["accuracy"] for d in cell if d in ref]
        out.append(
            {
                "reference": reference,
                "method": method,
                "task": task,
                "shots": shots,
                "draws": len(wins),
                "gain": mean,
                "ci95": half,
                "better_draws": int(sum(wins)),
            }
        )
    return out


def paired_differences(runs: Sequence[dict]) -> list[dict]:
    """Per (method, task, shots): accuracy with views minus without, paired by draw (the same
    support), mean and 95 % half-width over the draws, and the draws it helped in."""
    plain = {(r["method"], r["task"], r["shots"], r["draw"]): r for r in runs if not r["augment"]}
    groups: dict[tuple, list[float]] = {}
    augments: dict[tuple, str] = {}
    for r in runs:
        base = plain.get((r["method"], r["task"], r["shots"], r["draw"]))
        if r.get("augment") and base is not None:
            key = (r["method"], r["task"], r["shots"])
            groups.setdefault(key, []).append(r["accuracy"] - base["accuracy"])
            augments[key] = r["augment"]
    out = []
    for (method, task, shots), diffs in groups.items():
        mean, half = interval95(diffs)
        out.append(
            {
                "method": method,
                "augment": augments[(method, task, shots)],
                "task": task,
                "shots": shots,
                "draws": len(diffs),
                "gain": mean,
                "ci95": half,
                "better_draws": int(sum(d > 0 for d in diffs)),
            }
        )
    return out


def format_paired(paired: Sequence[dict], task: str, markdown: bool = False) -> str:
    """Methods x shots for one task: ``gain ± 95 % half-width`` (percentage points).

    Parameters
    ----------
    paired : sequence of dict
        ``FewShotResult.paired``: per method and shots, the gain of the views over the plain
        support, and its interval.
    task : str
        The task to show.
    markdown : bool, default=False
        A Markdown table instead of aligned text.

    Returns
    -------
    table : str
    """
    rows = [
        {**p, "mean": p["gain"], "method": row_name(p["method"], p["augment"]) + " (gain)"}
        for p in paired
    ]
    return format_table(rows, task, markdown, signed=True)


def format_versus(rows: Sequence[dict], task: str, markdown: bool = False) -> str:
    """Methods x shots for one task: the reference minus the method, ``gain ± 95 % half-width``
    (percentage points, paired by draw; per test image for the pool)."""
    shown = [{**v, "mean": v["gain"], "method": f"{v['reference']} - {v['method']}"} for v in rows]
    return format_table(shown, task, markdown, signed=True)


def format_table(
    summary: Sequence[dict], task: str, markdown: bool = False, signed: bool = False
) -> str:
    """Methods x shots for one task: ``mean ± 95 % half-width`` (accuracy in %)."""
    rows = [s for s in summary if s["task"] == task]
    shots = sorted({s["shots"] for s in rows}, key=lambda n: (n == POOL, n))  # the pool last
    methods = list(dict.fromkeys(s["method"] for s in rows))
    sign = "+" if signed else ""
    cell = {
        (s["method"], s["shots"]): "-"
        if np.isnan(s["mean"])
        else f"{s['mean']:{sign}.1f} ± {s['ci95']:.1f}"
        for s in rows
    }
    head = ["method", *(shots_label(n) for n in shots)]
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
    ``PREFIX.md`` (the markdown table of every task).

    Parameters
    ----------
    result : FewShotResult
        What ``run_fewshot`` returned; the JSON file keeps all of it (runs, summary, paired
        gains, embeddings, timings).
    prefix : str or os.PathLike
        Path prefix of the four files (its folder is created).

    Returns
    -------
    paths : list of pathlib.Path
        The JSON, summary CSV, runs CSV and Markdown files, in that order.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{prefix}{s}") for s in (".json", ".csv", "-runs.csv", ".md")]
    paths[0].write_text(json.dumps(asdict(result), indent=1) + "\n")
    cols = ["method", "kind", "augment", "task", "shots", "draws", "mean", "ci95", "fit_seconds"]
    with open(paths[1], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(result.summary)
    with open(paths[2], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(result.runs[0]))
        w.writeheader()
        w.writerows(result.runs)
    md = [f"### {t}\n\n{result.table(t, markdown=True)}\n" for t in result.settings["tasks"]]
    if result.paired:
        md += [
            f"### {t}: with minus without views (paired by draw, points)\n\n"
            f"{format_paired(result.paired, t, markdown=True)}\n"
            for t in result.settings["tasks"]
        ]
    if result.versus:
        ref = result.versus[0]["reference"]
        md += [
            f"### {t}: {ref} minus each method (paired by draw; per test image for the pool, "
            f"points)\n\n{format_versus(result.versus, t, markdown=True)}\n"
            for t in result.settings["tasks"]
        ]
    paths[3].write_text("\n".join(md))
    return paths
