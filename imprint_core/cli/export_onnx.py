"""``imprint export-onnx HEAD.safetensors -o classifier.onnx``: one standalone ONNX model.

The model holds the backbone the head was imprinted on, the normalisations and the head: input
``pixels`` uint8 [N, 224, 224, 3] RGB, outputs ``probabilities`` [N, C] and ``unknown_score`` [N];
class names and the unknown threshold in its metadata.
"""

from __future__ import annotations

import argparse

from imprint_core.head_io import HeadFileError
from imprint_core.onnx_export import export_onnx, onnx_snippet

# Heavy: onnx imported where used, so that importing this module stays cheap.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("head", help="a head saved by ImprintClassifier.save or the app")
    parser.add_argument(
        "-o", "--output", default="classifier.onnx", help="output .onnx (default: %(default)s)"
    )
    parser.add_argument(
        "--backbone",
        default=None,
        help="backbone to put in front of the head (default: the one the head names)",
    )
    parser.add_argument(
        "--snippet", action="store_true", help="also print Python that runs the model"
    )


def run(args: argparse.Namespace) -> int:
    """Export ``args.head`` to ``args.output``."""
    import json

    import onnx

    try:
        path = export_onnx(args.head, args.output, backbone=args.backbone)
    except HeadFileError as exc:
        raise ValueError(str(exc)) from None
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    classes = json.loads(meta["classes"])
    size = path.stat().st_size / 2**20
    print(f"wrote {path}: {size:.1f} MB, {len(classes)} classes, backbone {meta['backbone']}")
    if args.snippet:
        print(onnx_snippet(path.name))
    return 0
