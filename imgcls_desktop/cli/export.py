"""``imgcls export``: a model as SageMaker's model.tar.gz, ONNX or a plain MXNet checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgcls_desktop.cli.model_options import add_model_options, open_model_from
from imgcls_desktop.core.export import FORMATS, export_model


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls export`` to the command line."""
    parser = groups.add_parser(
        "export",
        help="write a model as SageMaker model.tar.gz, ONNX or an MXNet checkpoint",
        description="MODEL: one of our run folders, a SageMaker model.tar.gz, or a plain MXNet "
        "checkpoint. --output: the archive or .onnx file, the checkpoint prefix for mxnet, or "
        "an existing folder.",
    )
    parser.add_argument("model", type=Path, help="the model to export")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--output", required=True, type=Path, help="where to write it")
    add_model_options(parser)
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the model; the one-line error handling is the common one of ``imgcls``."""
    written = export_model(open_model_from(args), args.format, args.output)
    print(f"Wrote {written}")
    return 0
