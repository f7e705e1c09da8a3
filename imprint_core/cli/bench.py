"""``imprint bench``: the paper's protocol on a dataset, printed as a table, saved as JSON/CSV.

With ``--shots`` it runs the few-shot protocol instead (``imprint_core.bench.fewshot``): for every shot
count, ``--draws`` random draws of that many images per class from a pool of ``--pool-per-class``
embedded images, the logistic-regression probe and SimpleShot beside the methods, mean and 95 %
interval over the draws.

Example::

    imprint bench --dataset fashion-mnist --per-class 500 --test-per-class 200 \\
        --seeds 0,1,2 --tasks all,even,odd,short --merged --grid "preset=ours k=1,5,10"
    imprint bench --shots 1,2,5,10,20 --draws 10 --methods qi,ours,auto,oracle,fewshot
    imprint bench --shots 1,5,20 --test-per-class 200 --methods qi,adaptive --augment flip,crops
    imprint bench --images my-photos/ --shots 1,2,5,10,20,all --draws 20
    imprint bench --embeddings my-photos.npz --shots 1,5,all --draws 20

``--images DIR`` (one subfolder of images per class; a seeded 20 % of each class is held out
as the test images unless DIR has train/ and test/) is embedded once and cached;
``--embeddings FILE.npz`` (what ``imprint embed`` writes) skips embedding, with the same split.
In the few-shot protocol, logistic regression (C tuned by inner CV from 5 shots), shrinkage LDA
and ridge run beside SimpleShot and the probe on the same draws, and every method is compared
with the default preset, paired by draw (``--reference``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..augment import check_views
from ..bench import (
    DEFAULT_PRESETS,
    PROBE_C,
    BenchConfig,
    load_config,
    parse_grid,
    preset_methods,
    run_bench,
    write_outputs,
)
from ..bench.datasets import DATASETS
from ..bench.fewshot import (
    DEFAULT_DRAWS,
    DEFAULT_POOL,
    POOL,
    FewShotConfig,
    format_paired,
    format_versus,
    run_fewshot,
)
from ..bench.fewshot import write_outputs as write_fewshot_outputs
from ..bench.tasks import PAPER_TASKS
from ..distributed import RayBackbone
from ..presets import DEFAULT_PRESET


def _shots(text: str) -> tuple[int, ...]:
    """--shots: comma-separated integers >= 1, ``all`` for the whole pool."""
    parts = [v.strip() for v in text.split(",") if v.strip()]
    rest = ",".join(v for v in parts if v != "all")
    shots = _ints(rest, "--shots") if rest or "all" not in parts else ()
    # POOL is 0 inside the bench: a typed 0 must not turn into a run on the whole pool
    if any(n < 1 for n in shots):
        raise ValueError(
            f"--shots: shots must be integers >= 1 or all (the whole pool), got {text!r}"
        )
    return (*shots, POOL) if "all" in parts else shots


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} is empty; give comma-separated integers such as 0,1,2")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip() and v.strip() != "none"]


def _count(text: str) -> int | None:
    if text.lower() in ("all", "0"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "example:" + __doc__.split("Example::", 1)[1]
    p.add_argument("--dataset", default="fashion-mnist", help=f"one of: {', '.join(DATASETS)}")
    p.add_argument(
        "--images",
        metavar="DIR",
        help="a folder with one subfolder of images per class (= --dataset folder --data-root DIR)",
    )
    p.add_argument(
        "--embeddings",
        metavar="FILE",
        help="precomputed embeddings with labels (the .npz of 'imprint embed') instead of images",
    )
    p.add_argument(
        "--data-root", help="folder with the local dataset copy (mnist, cifar10, folder)"
    )
    p.add_argument("--backbone", default="efficientnet_lite0", help="backbone name")
    p.add_argument(
        "--per-class", type=_count, default=None, help="training images per class (default: all)"
    )
    p.add_argument(
        "--test-per-class", type=_count, default=None, help="test images per class (default: all)"
    )
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument(
        "--tasks",
        default=",".join(PAPER_TASKS),
        help="comma-separated: all, even, odd, short, merged, merge<d>[s<seed>]",
    )
    p.add_argument("--merged", action="store_true", help="add the multi-modal 'merged' task")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_PRESETS),
        help="comma-separated presets, or 'none' (default: the paper's five, auto and the "
        "default preset)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        help='option grid, e.g. "gen=kmeans,mean k=1,5,20 norm_post=l2" (repeatable)',
    )
    p.add_argument("--config", help="a .json/.toml file with presets, grid and methods")
    p.add_argument(
        "--shots",
        help="few-shot protocol: comma-separated images per class, e.g. 1,2,5,10,20; "
        "'all' adds the whole pool",
    )
    p.add_argument(
        "--draws", type=int, default=DEFAULT_DRAWS, help="few-shot: random draws per shot count"
    )
    p.add_argument(
        "--pool-per-class",
        type=_count,
        default=DEFAULT_POOL,
        help=f"few-shot: embedded training images per class to draw from (default {DEFAULT_POOL})",
    )
    p.add_argument("--no-simpleshot", action="store_true", help="few-shot: skip SimpleShot")
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help="few-shot: skip logistic regression (CV), shrinkage LDA and ridge",
    )
    p.add_argument(
        "--reference",
        default=None,
        help="few-shot: paired differences of this method against every other (default: the "
        "default preset, when it runs; 'none' for no comparison)",
    )
    p.add_argument(
        "--augment",
        default="",
        help="few-shot: also score every method with these views of the support images added "
        "(comma-separated: flip, crops), paired with the plain run by draw",
    )
    p.add_argument("--no-probe", action="store_true", help="skip the linear-probe reference row")
    p.add_argument("--probe-c", type=float, default=PROBE_C, help="C of the linear probe")
    p.add_argument("--cache-dir", help="embedding cache (default ~/.cache/imprint/embeddings)")
    p.add_argument("--out", help="output prefix for PREFIX.json, PREFIX.csv, PREFIX-runs.csv")
    p.add_argument("--batch-size", type=int, default=64, help="embedding batch size")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--engine",
        default="local",
        help="embedding stage: local (this process) or ray (Ray Data actors, needs "
        "imprint_core[distributed]; see docs/distributed.md) (default: %(default)s)",
    )
    p.add_argument("--ray-address", default=None, help="with --engine ray: an existing cluster")
    p.add_argument(
        "--ray-cpus", type=int, default=None, help="with --engine ray: CPUs of a local Ray"
    )


def run(args: argparse.Namespace) -> int:
    if args.images and args.embeddings:
        raise ValueError("give --images or --embeddings, not both")
    if args.images:
        args.dataset, args.data_root = "folder", args.images
    elif args.embeddings:
        if not Path(args.embeddings).is_file():
            raise FileNotFoundError(f"--embeddings {args.embeddings!r} does not exist")
        args.dataset = Path(args.embeddings).stem
    if args.embeddings is None and args.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {args.dataset!r}; choose one of: {', '.join(DATASETS)}")
    methods = preset_methods(_names(args.methods))
    for grid in args.grid:
        methods += parse_grid(grid)
    if args.config:
        methods += load_config(args.config)
    tasks = _names(args.tasks)
    if args.merged and "merged" not in tasks:
        tasks.append("merged")
    if args.shots:
        return _run_fewshot(args, methods, tasks)
    cfg = BenchConfig(
        embeddings=args.embeddings,
        dataset=args.dataset,
        backbone=embedding_backbone(args),
        per_class=args.per_class,
        test_per_class=args.test_per_class,
        seeds=_ints(args.seeds, "--seeds"),
        tasks=tuple(tasks),
        methods=tuple(methods),
        probe=not args.no_probe,
        probe_C=args.probe_c,
        cache_dir=args.cache_dir,
        data_root=args.data_root,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    result = run_bench(cfg)
    per = f"{args.per_class or 'all'}-{args.test_per_class or 'all'}"
    prefix = args.out or f"imprint-bench-{args.dataset}-{result.settings['backbone']}-{per}"
    paths = write_outputs(result, prefix)
    s = result.seconds
    print(
        f"{args.dataset}, {result.settings['backbone']}: "
        f"{result.embeddings['train']['images']} train / {result.embeddings['test']['images']} "
        f"test images, seeds {','.join(map(str, cfg.seeds))}; accuracy % (median over seeds), "
        "mean and rank over the non-merged tasks"
    )
    print(result.table())
    print(
        f"time: embed {s['embed']:.1f} s (cached: train {result.embeddings['train']['cached']}, "
        f"test {result.embeddings['test']['cached']}), imprint {s['imprint']:.1f} s, "
        f"total {s['total']:.1f} s"
    )
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


ENGINES = ("local", "ray")


def embedding_backbone(args: argparse.Namespace):
    """The backbone name (embedded in this process), or a Ray stand-in that embeds on Ray."""
    if args.engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {args.engine!r}.")
    if args.engine == "local":
        return args.backbone

    return RayBackbone(args.backbone, ray_address=args.ray_address, local_cpus=args.ray_cpus)


def _run_fewshot(args: argparse.Namespace, methods: list, tasks: list[str]) -> int:
    reference = args.reference
    if reference is None:
        reference = DEFAULT_PRESET if DEFAULT_PRESET in {m.name for m in methods} else None
    cfg = FewShotConfig(
        embeddings=args.embeddings,
        baselines=not args.no_baselines,
        reference=None if reference == "none" else reference,
        dataset=args.dataset,
        backbone=embedding_backbone(args),
        shots=_shots(args.shots),
        draws=args.draws,
        pool_per_class=args.pool_per_class,
        test_per_class=args.test_per_class,
        tasks=tuple(tasks),
        methods=tuple(methods),
        probe=not args.no_probe,
        simpleshot=not args.no_simpleshot,
        probe_C=args.probe_c,
        cache_dir=args.cache_dir,
        data_root=args.data_root,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        augment=check_views(args.augment, "--augment"),
    )
    result = run_fewshot(cfg)
    name = result.settings["backbone"]
    prefix = args.out or f"imprint-fewshot-{args.dataset}-{name}-{args.test_per_class or 'all'}"
    paths = write_fewshot_outputs(result, prefix)
    e = result.embeddings
    print(
        f"{args.dataset}, {name}: shots drawn from {e['train']['images']} pool images, "
        f"{e['test']['images']} test images, {cfg.draws} draws; accuracy % (mean ± 95 % interval)"
    )
    for task in tasks:
        print(f"task {task}")
        print(result.table(task))
        if result.paired:
            print(f"task {task}: with minus without views, paired by draw (percentage points)")
            print(format_paired(result.paired, task))
        if result.versus:
            print(
                f"task {task}: {cfg.reference} minus each method, paired by draw (per test image "
                "for the pool; percentage points)"
            )
            print(format_versus(result.versus, task))
    if "views" in e:
        v = e["views"]
        how = "from the cache" if v["cached"] else f"embedded in {v['seconds']:.1f} s"
        print(f"views: {v['views']} views of {v['images']} pool images, {how}")
    s = result.seconds
    print(f"time: embed {s['embed']:.1f} s, imprint {s['imprint']:.1f} s, total {s['total']:.1f} s")
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0
