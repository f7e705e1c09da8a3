"""The paper's protocol on cached embeddings: tasks x methods x seeds, aggregated as in the paper.

``run_bench(BenchConfig(...))`` embeds the train and test images of a dataset once per
(dataset, split, backbone, subset) and caches them on disk (``.npz``, no pickle), so a rerun only
re-imprints. Then every method (presets, option grids, a config file) is fitted on every task
(``imprint_core.bench.tasks``) for every seed, and scored by top-1 accuracy (%) on the task's test images.

Protocol details (the choices the paper leaves to us, written down):

- Subsets: ``per_class=N`` keeps N training images per class, chosen by a seeded stratified
  sample (``subset_rows``: per class a ``numpy.random.default_rng(subset_seed)`` permutation of
  that class's rows, first N, then sorted); ``test_per_class`` does the same on the test split.
  The subset is fixed across method seeds (the seeds only drive GEN), as the paper's full-data
  runs are. None keeps every image.
- Aggregation (spec 3.3): the median over seeds per (task, method); "mean" is the mean of those
  medians over the main tasks (the non-merged ones, or every task when all are merged); "rank" is
  the average over main tasks of the rank among the imprinting methods (1 = best, ties averaged;
  the linear probe is a reference and takes no rank). Merged tasks get their own columns.
- Fit time: wall time of ``fit`` (NORMpre + GEN + NORMpost), median over seeds, mean over tasks;
  every method is first fitted once on a tiny random problem so that imports are not timed.
- Linear probe: ``StandardScaler`` then ``LogisticRegression(C=PROBE_C, solver="lbfgs",
  max_iter=1000)`` on the same embeddings. It is deterministic, so it runs once per task.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import cache_dir as configured_cache_dir
from ..generation import K_FREE
from ..presets import DEFAULT_PRESET, PRESETS, preset
from .baselines import BASELINES
from .datasets import ImageDataset, load_dataset
from .tasks import PAPER_TASKS, Task, get_task

# Heavy: scikit-learn, scipy, tqdm, classifier (scikit-learn) and backbones (PIL) imported where
# used, so that importing this module stays cheap.

PAPER_PRESETS = ("qi", "hosoda", "janson", "ours", "oracle")
# what ``imprint bench`` compares unless told otherwise: the paper's five, ``auto`` and the default
DEFAULT_PRESETS = tuple(dict.fromkeys((*PAPER_PRESETS, "auto", DEFAULT_PRESET)))
PROBE = "linear probe"
PROBE_C = 1.0
PROBE_MAX_ITER = 1000
CHUNK = 4096  # images embedded between two partial saves (a killed run resumes from there)
# Grid values that are not strings: how to read them.
_NUMERIC = {"k": int, "m": int, "lambda_reg": float, "temperature": float}
# Options that take a number or a name (whiten_shrinkage=0.3 or whiten_shrinkage=dof).
_NUMBER_OR_NAME = {"whiten_shrinkage"}
_NOT_IN_GRID = {"seed", "backbone"}  # seeds come from --seeds, the backbone from --backbone


# ------------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class Method:
    """A row of the table: ImprintClassifier keyword arguments, or the linear probe."""

    name: str
    params: dict = field(default_factory=dict, hash=False, compare=False)
    kind: str = "imprint"  # a key of MODELS: imprint, probe or a baselines.BASELINES kind


def _grid_keys() -> list[str]:
    from ..classifier import ImprintClassifier

    names = inspect.signature(ImprintClassifier).parameters  # constructor order, not sorted
    return [k for k in names if k not in _NOT_IN_GRID]


def _check(params: dict, where: str) -> None:
    from ..classifier import ImprintClassifier

    unknown = sorted(set(params) - set(_grid_keys()))
    if unknown:
        raise ValueError(
            f"{where}: unknown option {unknown[0]!r}; options are: {', '.join(_grid_keys())}"
        )
    try:
        ImprintClassifier(**params)._check_params()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def preset_methods(names: Iterable[str]) -> list[Method]:
    """Methods for preset names (qi, hosoda, janson, ours, oracle).

    Parameters
    ----------
    names : iterable of str
        Keys of ``imprint_core.PRESETS``.

    Returns
    -------
    methods : list of Method
        One imprinting method per name, named by it.

    Raises
    ------
    ValueError
        For a name that is not a preset.
    """
    return [Method(name, preset(name)) for name in names]


def _parse_value(key: str, text: str, where: str) -> Any:
    if key == "lambda_reg" and text.lower() == "none":
        return None
    if key in _NUMBER_OR_NAME:
        try:
            return float(text)
        except ValueError:
            return text
    try:
        return _NUMERIC.get(key, str)(text)
    except ValueError:
        kind = _NUMERIC[key].__name__
        raise ValueError(f"{where}: {key}={text!r} is not a valid {kind}") from None


def parse_grid(text: str) -> list[Method]:
    """Methods from a grid such as ``"gen=kmeans,mean k=1,5,20 norm_post=l2"``.

    Space-separated ``option=value[,value...]`` tokens; every combination becomes a method named by
    its grid values. ``preset=NAME[,NAME]`` starts from presets instead of the classifier defaults.
    ``k`` is dropped for generators that ignore it (mean, all, ls), and duplicates are removed.

    Parameters
    ----------
    text : str
        The grid (``imprint bench --grid``).

    Returns
    -------
    methods : list of Method
        One imprinting method per combination of the grid's values.

    Raises
    ------
    ValueError
        Naming the bad token, an unknown option or an invalid value.
    """
    where = f"grid {text!r}"
    axes: dict[str, list[Any]] = {}
    for token in text.split():
        key, sep, values = token.partition("=")
        if not sep or not key or not values or "" in values.split(","):
            raise ValueError(
                f"{where}: bad token {token!r}; write option=value[,value...] "
                "(e.g. gen=kmeans,mean k=1,5,20)"
            )
        if key in axes:
            raise ValueError(f"{where}: option {key!r} is given twice")
        if key == "preset":
            for name in values.split(","):
                preset(name)  # a clear error for unknown preset names
            axes[key] = values.split(",")
        elif key not in _grid_keys():
            raise ValueError(
                f"{where}: unknown option {key!r}; options are: preset, {', '.join(_grid_keys())}"
            )
        else:
            axes[key] = [_parse_value(key, v, where) for v in values.split(",")]
    if not axes:
        raise ValueError(f"{where}: empty grid; write option=value[,value...] tokens")
    return _combinations(axes, where)


def _combinations(axes: dict[str, list[Any]], where: str) -> list[Method]:
    methods: dict[str, Method] = {}
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo, strict=True))
        base_name = chosen.pop("preset", None)
        params = {**(preset(base_name) if base_name else {}), **chosen}
        _check(params, where)
        gen = params.get("gen", "kmeans")
        shown = [f"{k}={v}" for k, v in chosen.items() if not (k == "k" and gen in K_FREE)]
        if base_name:
            shown.insert(0, base_name)
        name = " ".join(shown) or "default"
        methods.setdefault(name, Method(name, params))
    return list(methods.values())


def load_config(path: str | os.PathLike) -> list[Method]:
    """Methods from a small JSON or TOML file with keys ``presets`` (list of names), ``grid``
    (a grid string or a list of them) and ``methods`` (name -> options, may hold ``preset``).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.json`` or ``.toml`` file (``imprint bench --config``).

    Returns
    -------
    methods : list of Method
        The presets', then the grids', then the named methods, in that order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For another suffix, a file that does not parse, an unknown key or an invalid option.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config {str(path)!r} is not valid TOML: {exc}") from None
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"config {str(path)!r} is not valid JSON: {exc}") from None
    else:
        raise ValueError(f"config {str(path)!r}: use a .json or .toml file")
    if not isinstance(data, dict):
        raise ValueError(f"config {str(path)!r} must hold a table/object")
    extra = sorted(set(data) - {"presets", "grid", "methods"})
    if extra:
        raise ValueError(
            f"config {str(path)!r}: unknown key {extra[0]!r}; use presets, grid, methods"
        )
    methods = preset_methods(data.get("presets", []))
    grids = data.get("grid", [])
    for grid in [grids] if isinstance(grids, str) else grids:
        methods += parse_grid(grid)
    for name, options in data.get("methods", {}).items():
        options = dict(options)
        params = {**(preset(options.pop("preset")) if "preset" in options else {}), **options}
        _check(params, f"config {str(path)!r}, method {name!r}")
        methods.append(Method(name, params))
    return methods


def unique_methods(methods: Iterable[Method]) -> list[Method]:
    """Methods in order, the first of each name kept."""
    seen: dict[str, Method] = {}
    for m in methods:
        seen.setdefault(m.name, m)
    return list(seen.values())


# ------------------------------------------------------------------------ embeddings cache
def default_cache_dir() -> Path:
    """``IMPRINT_CACHE_DIR``/embeddings, else ``~/.cache/imprint/embeddings``."""
    return configured_cache_dir() / "embeddings"


def subset_rows(labels: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """A seeded stratified sample: ``per_class`` rows of every class (all when None), sorted."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    if per_class < 1:
        raise ValueError(f"per-class counts must be >= 1 (or None for all), got {per_class}")
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rows.append(members[np.random.default_rng(seed).permutation(len(members))[:per_class]])
    return np.sort(np.concatenate(rows))


def backbone_name(backbone: Any) -> str:
    return backbone if isinstance(backbone, str) else backbone.name


def cache_path(dataset: ImageDataset, rows: np.ndarray, backbone: str, cache_dir: Path) -> Path:
    """Where the embeddings of ``rows`` of ``dataset`` by ``backbone`` are cached."""
    key = hashlib.sha256(f"{backbone}|{dataset.fingerprint(rows)}".encode()).hexdigest()[:20]
    return Path(cache_dir) / dataset.name / backbone / f"{dataset.split}-n{len(rows)}-{key}.npz"


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written cache file


def load_npz(path: Path, rows: np.ndarray) -> np.ndarray | None:
    with np.load(path, allow_pickle=False) as data:
        if not np.array_equal(data["rows"], rows):
            return None
        return data["embeddings"].astype(np.float32, copy=False)


def _embed(backbone: Any, images: list, batch_size: int, progress: Callable) -> np.ndarray:
    kwargs = {"batch_size": batch_size, "progress": progress}
    if "cache" in inspect.signature(backbone.embed).parameters:
        kwargs["cache"] = False  # this disk cache replaces the in-memory one (memory would grow)
    return np.asarray(backbone.embed(images, **kwargs), dtype=np.float32)


def embed_cached(
    dataset: ImageDataset,
    rows: np.ndarray,
    backbone: Any,
    cache_dir: str | os.PathLike,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[np.ndarray, dict]:
    """Embeddings of ``dataset[rows]``, from the disk cache when present; ``(Z, info)``.

    ``backbone`` is a name (loaded only when something must be embedded) or a Backbone object.
    Work is saved every ``CHUNK`` images, so an interrupted run resumes where it stopped.
    """
    rows = np.asarray(rows, dtype=np.int64)
    name = backbone_name(backbone)
    path = cache_path(dataset, rows, name, Path(cache_dir))
    info = {"file": str(path), "images": len(rows), "cached": True, "seconds": 0.0}
    if path.is_file():
        Z = load_npz(path, rows)
        if Z is not None:
            return Z, info
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(backbone, str):
        from ..backbones import get_backbone

        backbone = get_backbone(backbone)
    bar = progress_bar(progress, len(rows), f"embed {dataset.name} {dataset.split} ({name})", "img")
    start = time.perf_counter()
    parts = []
    try:
        for i, lo in enumerate(range(0, len(rows), CHUNK)):
            chunk = rows[lo : lo + CHUNK]
            part = path.with_name(f"{path.stem}.part{i}.npz")
            Z = load_npz(part, chunk) if part.is_file() else None
            if Z is None:
                done = bar.n
                Z = _embed(backbone, dataset.images(chunk), batch_size, _advance(bar, done))
                save_npz(part, embeddings=Z, rows=chunk)
            bar.n = lo + len(chunk)
            bar.refresh()
            parts.append(part)
        Z = np.concatenate(
            [load_npz(p, rows[i * CHUNK : (i + 1) * CHUNK]) for i, p in enumerate(parts)]
        )
    finally:
        bar.close()
    if Z.shape != (len(rows), Z.shape[1]):
        raise RuntimeError(
            f"backbone {name!r} returned {Z.shape} embeddings for {len(rows)} images"
        )
    save_npz(path, embeddings=Z, rows=rows)
    for p in parts:
        p.unlink(missing_ok=True)
    info.update(cached=False, seconds=time.perf_counter() - start)
    return Z, info


def progress_bar(progress: bool, total: int, desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False)


def _advance(bar, offset: int) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        bar.n = offset + done
        bar.refresh()

    return update


# ------------------------------------------------------------------------- fitting
def _probe(method: Method, seed: int, backbone: str):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    C = method.params.get("C", PROBE_C)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=PROBE_MAX_ITER))


def _imprint(method: Method, seed: int, backbone: str):
    from ..classifier import ImprintClassifier

    return ImprintClassifier(**{**method.params, "seed": seed, "backbone": backbone})


def _baseline(kind: str) -> Callable[[Method, int, str], Any]:
    def make(method: Method, seed: int, backbone: str):
        return BASELINES[kind][1]()

    return make


# Method.kind -> a fresh unfitted model with fit/predict
MODELS: dict[str, Callable[[Method, int, str], Any]] = {
    "imprint": _imprint,
    "probe": _probe,
    **{kind: _baseline(kind) for kind in ("simpleshot", "logreg_cv", "lda", "ridge")},
}


def fit_and_score(method: Method, data: tuple, seed: int, backbone: str) -> tuple[float, float]:
    """``(accuracy %, fit seconds)`` of one method on ``(X_train, y_train, X_test, y_test)``.

    A baseline that refuses the data (scikit-learn's LDA with one image per class) scores NaN,
    which the summaries leave out; a refusal by one of our heads is an error and propagates."""
    acc, fit_s, _ = fit_and_predict(method, data, seed, backbone)
    return acc, fit_s


def fit_and_predict(method: Method, data: tuple, seed: int, backbone: str):
    """``(accuracy %, fit seconds, per-test-image correctness or None)``: see fit_and_score."""
    Xtr, ytr, Xte, yte = data
    model = MODELS[method.kind](method, seed, backbone)
    start = time.perf_counter()
    try:
        model.fit(Xtr, ytr)
    except ValueError:
        if method.kind == "imprint":
            raise
        return float("nan"), time.perf_counter() - start, None
    fit_s = time.perf_counter() - start
    correct = model.predict(Xte) == yte
    return 100.0 * float(np.mean(correct)), fit_s, correct


# ------------------------------------------------------------------------- aggregation
def aggregate(runs: Sequence[dict], main_tasks: Sequence[str] | None = None) -> list[dict]:
    """The paper's aggregation of run rows (method, task, seed, accuracy, fit_seconds[, kind]).

    Per (method, task) the median over seeds; ``mean`` = mean over ``main_tasks`` (default: every
    task) of those medians; ``rank`` = mean over main tasks of the rank among imprinting methods
    (1 = best, ties averaged; probes get None); ``fit_seconds`` = mean over main tasks of the
    median fit time. Methods and tasks keep their first-seen order.
    """
    from scipy.stats import rankdata

    methods = list(dict.fromkeys(r["method"] for r in runs))
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    main = list(main_tasks) if main_tasks is not None else tasks
    kind: dict[str, str] = {}
    for r in runs:
        kind.setdefault(r["method"], r.get("kind", "imprint"))
    acc: dict[tuple[str, str], list[float]] = {}
    fit: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        acc.setdefault((r["method"], r["task"]), []).append(float(r["accuracy"]))
        fit.setdefault((r["method"], r["task"]), []).append(float(r.get("fit_seconds", 0.0)))
    missing = [(m, t) for m in methods for t in main if (m, t) not in acc]
    if missing:
        raise ValueError(f"no runs of method {missing[0][0]!r} on task {missing[0][1]!r}")
    median = {key: statistics.median(v) for key, v in acc.items()}
    ranked = [m for m in methods if kind[m] != "probe"]
    ranks: dict[str, list[float]] = {m: [] for m in ranked}
    for t in main:
        for m, r in zip(ranked, rankdata([-median[m, t] for m in ranked]), strict=True):
            ranks[m].append(float(r))
    return [
        {
            "method": m,
            "kind": kind[m],
            "mean": float(np.mean([median[m, t] for t in main])),
            "rank": float(np.mean(ranks[m])) if m in ranks and main else None,
            "fit_seconds": float(np.mean([statistics.median(fit[m, t]) for t in main])),
            "tasks": {t: median[m, t] for t in tasks if (m, t) in median},
            "seeds": {t: len(acc[m, t]) for t in tasks if (m, t) in acc},
        }
        for m in methods
    ]


def format_table(summary: Sequence[dict], main_tasks: Sequence[str], extra_tasks=()) -> str:
    """The summary as a fixed-width text table (accuracy in %)."""
    width = max([len("method"), *(len(s["method"]) for s in summary)])
    cols = [*main_tasks, *extra_tasks]
    head = f"{'method':<{width}}  {'mean':>6}  {'rank':>5}  " + "  ".join(f"{t:>6}" for t in cols)
    lines = [head + f"  {'fit s':>8}", "-" * (len(head) + 10)]
    for s in summary:
        rank = f"{s['rank']:5.2f}" if s["rank"] is not None else f"{'-':>5}"
        cells = "  ".join(f"{s['tasks'][t]:6.2f}" for t in cols)
        lines.append(
            f"{s['method']:<{width}}  {s['mean']:6.2f}  {rank}  {cells}  {s['fit_seconds']:8.4f}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------- the run
def embed_splits(cfg: Any, train_per_class: int | None) -> tuple[dict, list, dict, dict]:
    """The embedding stage every protocol shares: the dataset's train and test splits, the tasks
    of ``cfg.tasks`` (checked before any work), and the embeddings of each split's subset
    (``train_per_class`` / ``cfg.test_per_class`` images per class, from the disk cache when
    present). ``cfg``: a BenchConfig or FewShotConfig.

    Returns (splits, tasks, data {split: (Z, labels)}, embeddings {split: cache info}).
    """
    if getattr(cfg, "embeddings", None) is not None:
        return _file_splits(cfg, train_per_class)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    splits = {s: load_dataset(cfg.dataset, s, cfg.data_root) for s in ("train", "test")}
    names = splits["train"].class_names
    tasks = [get_task(n, cfg.dataset, len(names), names) for n in cfg.tasks]
    data, embeddings = {}, {}
    for split, per_class in (("train", train_per_class), ("test", cfg.test_per_class)):
        ds = splits[split]
        rows = subset_rows(ds.labels, per_class, cfg.subset_seed)
        Z, info = embed_cached(ds, rows, cfg.backbone, cache_dir, cfg.batch_size, cfg.progress)
        data[split] = (Z, ds.labels[rows])
        embeddings[split] = info
    return splits, tasks, data, embeddings


def _file_splits(cfg: Any, train_per_class: int | None) -> tuple[dict, list, dict, dict]:
    """embed_splits for precomputed embeddings (``cfg.embeddings``, ``imprint embed``'s .npz):
    no images (splits is empty), the held-out split of ``datasets.embeddings_splits``."""
    from .datasets import embeddings_splits

    full, names, backbone = embeddings_splits(cfg.embeddings)
    tasks = [get_task(n, cfg.dataset, len(names), names) for n in cfg.tasks]
    data, embeddings = {}, {}
    for split, per_class in (("train", train_per_class), ("test", cfg.test_per_class)):
        Z, y = full[split]
        rows = subset_rows(y, per_class, cfg.subset_seed)
        data[split] = (Z[rows], y[rows])
        info = {"file": str(cfg.embeddings), "images": len(rows), "cached": True, "seconds": 0.0}
        embeddings[split] = {**info, "backbone": backbone}
    return {}, tasks, data, embeddings


@dataclass
class BenchConfig:
    """Everything a benchmark run depends on (see ``imprint bench --help``)."""

    dataset: str = "fashion-mnist"
    backbone: Any = "efficientnet_lite0"  # a name, or a Backbone object
    per_class: int | None = None
    test_per_class: int | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    tasks: tuple[str, ...] = PAPER_TASKS
    methods: tuple[Method, ...] = ()
    probe: bool = True
    probe_C: float = PROBE_C
    cache_dir: str | os.PathLike | None = None
    data_root: str | os.PathLike | None = None
    subset_seed: int = 0
    batch_size: int = 64
    progress: bool = True
    embeddings: str | os.PathLike | None = None  # an ``imprint embed`` .npz instead of images


@dataclass
class BenchResult:
    """Runs, the aggregated summary, where the embeddings came from, and timings."""

    settings: dict
    tasks: list[dict]
    runs: list[dict]
    summary: list[dict]
    embeddings: dict
    seconds: dict

    def main_tasks(self) -> list[str]:
        main = [t["name"] for t in self.tasks if not t["merged"]]
        return main or [t["name"] for t in self.tasks]

    def extra_tasks(self) -> list[str]:
        return [t["name"] for t in self.tasks if t["name"] not in self.main_tasks()]

    def table(self) -> str:
        return format_table(self.summary, self.main_tasks(), self.extra_tasks())


def _settings(cfg: BenchConfig, methods: list[Method]) -> dict:
    settings = {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}
    settings["backbone"] = backbone_name(cfg.backbone)
    settings["methods"] = [{"name": m.name, "kind": m.kind, "params": m.params} for m in methods]
    for key in ("cache_dir", "data_root", "embeddings"):
        settings[key] = str(settings[key]) if settings[key] is not None else None
    settings["seeds"] = list(cfg.seeds)
    settings["tasks"] = list(cfg.tasks)
    return settings


def run_bench(cfg: BenchConfig) -> BenchResult:
    """Embed (or load from the cache), then fit and score every method x task x seed.

    Parameters
    ----------
    cfg : BenchConfig
        The dataset, backbone, images per class, seeds, tasks and methods (the linear probe is
        added when ``cfg.probe``).

    Returns
    -------
    result : BenchResult
        One run per (method, task, seed), the summary (median over seeds per task, their mean
        over the main tasks, the mean rank), where the embeddings came from, and timings;
        ``result.table()`` formats it.

    Raises
    ------
    ValueError
        For no seeds, no tasks or no methods, and for unknown datasets or tasks.
    """
    t0 = time.perf_counter()
    if not cfg.seeds:
        raise ValueError("give at least one seed")
    if not cfg.tasks:
        raise ValueError("give at least one task")
    methods = unique_methods(cfg.methods)
    if cfg.probe:
        methods.append(Method(PROBE, {"C": cfg.probe_C}, kind="probe"))
    if not methods:
        raise ValueError("no methods to run: give presets, a grid, a config file or the probe")
    backbone = backbone_name(cfg.backbone)
    splits, tasks, data, embeddings = embed_splits(cfg, cfg.per_class)
    backbone = embeddings["train"].get("backbone", backbone)  # a file says what made it
    t1 = time.perf_counter()
    runs = _run_all(cfg, methods, tasks, data, backbone)
    result = BenchResult(
        settings=_settings(cfg, [m for m in methods if m.kind != "probe"]),
        tasks=[_task_info(t, data) for t in tasks],
        runs=runs,
        summary=[],
        embeddings=embeddings,
        seconds={"embed": t1 - t0, "imprint": time.perf_counter() - t1},
    )
    result.summary = aggregate(runs, result.main_tasks())
    result.seconds["total"] = time.perf_counter() - t0
    return result


def _task_info(task: Task, data: dict) -> dict:
    n_train = len(task.select(data["train"][1])[0])
    n_test = len(task.select(data["test"][1])[0])
    return {
        "name": task.name,
        "merged": task.merged,
        "groups": [list(g) for g in task.groups],
        "class_names": list(task.class_names),
        "train_images": n_train,
        "test_images": n_test,
    }


def _warm_up(methods: list[Method], dim: int, backbone: str) -> None:
    """Fit each method once on a tiny random problem, so that one-time costs (imports, torch
    start-up) are not timed as the first task's fit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, dim)).astype(np.float32)
    y = np.repeat([0, 1], 30)
    for method in methods:
        fit_and_score(method, (X, y, X[:4], y[:4]), 0, backbone)


def _run_all(cfg, methods: list[Method], tasks: list[Task], data: dict, backbone: str) -> list:
    _warm_up(methods, data["train"][0].shape[1], backbone)
    total = sum(len(cfg.seeds) if m.kind != "probe" else 1 for m in methods) * len(tasks)
    bar = progress_bar(cfg.progress, total, "imprint", "fit")
    runs = []
    try:
        for task in tasks:
            tr, te = task.select(data["train"][1]), task.select(data["test"][1])
            split = (data["train"][0][tr[0]], tr[1], data["test"][0][te[0]], te[1])
            for method in methods:
                # the probe (lbfgs) is deterministic: one run per task
                for seed in cfg.seeds[:1] if method.kind == "probe" else cfg.seeds:
                    acc, fit_s = fit_and_score(method, split, seed, backbone)
                    runs.append(
                        {
                            "method": method.name,
                            "kind": method.kind,
                            "task": task.name,
                            "seed": seed,
                            "accuracy": acc,
                            "fit_seconds": fit_s,
                        }
                    )
                    bar.update(1)
    finally:
        bar.close()
    return runs


# ------------------------------------------------------------------------- outputs
def write_outputs(result: BenchResult, prefix: str | os.PathLike) -> list[Path]:
    """``PREFIX.json`` (everything), ``PREFIX.csv`` (the summary), ``PREFIX-runs.csv`` (runs).

    Parameters
    ----------
    result : BenchResult
        What ``run_bench`` returned.
    prefix : str or os.PathLike
        Path prefix of the three files (its folder is created).

    Returns
    -------
    paths : list of pathlib.Path
        The JSON, summary CSV and runs CSV files, in that order.
    """
    import csv

    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{prefix}.json"), Path(f"{prefix}.csv"), Path(f"{prefix}-runs.csv")]
    paths[0].write_text(json.dumps(asdict(result), indent=1) + "\n")
    cols = [*result.main_tasks(), *result.extra_tasks()]
    with open(paths[1], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "kind", "mean", "rank", *cols, "fit_seconds"])
        for s in result.summary:
            rank = "" if s["rank"] is None else f"{s['rank']:.4f}"
            accs = [f"{s['tasks'][t]:.4f}" for t in cols]
            w.writerow(
                [s["method"], s["kind"], f"{s['mean']:.4f}", rank, *accs, f"{s['fit_seconds']:.6f}"]
            )
    with open(paths[2], "w", newline="") as fh:
        fields = ["method", "kind", "task", "seed", "accuracy", "fit_seconds"]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(result.runs)
    return paths


def preset_names() -> list[str]:
    """The preset names, for help texts."""
    return list(PRESETS)
