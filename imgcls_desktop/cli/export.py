"""``imgcls export``: a model as SageMaker's model.tar.gz, ONNX or a plain MXNet checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgcls_desktop.cli.model_options import add_model_options, open_model_from
from imgcls_desktop.cli.terminal import CommandError
from imgcls_desktop.core.model_export import FORMATS, ExistingExportError, export_model


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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export at --output (never the model's own files)",
    )
    add_model_options(parser)
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the model; exit 1 when it would replace existing files without
    ``--overwrite`` (the other one-line error handling is the common one of ``imgcls``)."""
    model = open_model_from(args)
    try:
        written = export_model(
            model, args.format, args.output, labels=args.labels, overwrite=args.overwrite
        )
    except ExistingExportError as error:
        names = ", ".join(path.name for path in error.files)
        raise CommandError(
            f"{error.files[0].parent} already holds {names}: add --overwrite to replace them, "
            "or choose another --output"
        ) from None
    print(f"Wrote {written}")
    return 0
