"""Options shared by the commands that run a backbone: runtime, device and the Ray engine."""

from __future__ import annotations

import argparse
from typing import Any


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--batch-size``, ``--device``, ``--runtime``, ``--engine`` and the Ray options."""
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--runtime",
        default=None,
        help="built-in backbone on the CPU: auto, onnxruntime or torch (fp32 PyTorch) "
        "(default: IMPRINT_RUNTIME or auto)",
    )
    parser.add_argument(
        "--engine",
        default="local",
        help="local (this process) or ray (Ray Data actors; needs imprint_core[distributed]) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="with --engine ray: an existing cluster (auto, ray://HOST:10001); default: "
        "start a local Ray for this run",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --engine ray: model actors (default: all CPUs)",
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="with --engine ray: GPUs per model actor, e.g. 1 with --device cuda (default: 0)",
    )
    parser.add_argument(
        "--ray-cpus",
        type=int,
        default=None,
        help="with --engine ray and no --ray-address: CPUs of the local Ray (default: all)",
    )


def engine_options(args: argparse.Namespace, engines) -> dict[str, Any]:
    """The keyword options of an engine from the parsed arguments, checked before any work."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}.")
    if args.engine not in engines:
        raise ValueError(f"--engine {args.engine!r} is not one of: {', '.join(engines)}.")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {args.workers}.")
    options: dict[str, Any] = {"device": args.device, "runtime": args.runtime}
    if args.engine == "ray":
        options |= {
            "ray_address": args.ray_address,
            "workers": args.workers,
            "gpus_per_worker": args.gpus_per_worker,
            "local_cpus": args.ray_cpus,
        }
    return options
