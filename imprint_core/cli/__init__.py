"""The ``imprint`` command line: ``imprint embed``, ``imprint predict``, ``imprint bench``, ...

Each sub-command lives in its own module and registers itself through ``COMMANDS``
(name -> (module, help)); the module provides ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "embed": ("imprint_core.cli.embed", "embed a folder of images with a backbone"),
    "predict": ("imprint_core.cli.predict", "classify image files, folders and zips with a head"),
    "bench": ("imprint_core.cli.bench", "run the paper's protocol on a dataset, print a table"),
    "export-onnx": ("imprint_core.cli.export_onnx", "a head + its backbone as one ONNX model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imprint", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"imprint {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
