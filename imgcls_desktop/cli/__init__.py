"""``imgcls``: the command line, a thin layer over ``imgcls_desktop.core``.

Each command group registers its sub-commands; every handler returns an exit code. Errors
the user can act on are printed as one line (no traceback) with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imgcls_desktop.cli import (
    about,
    dataset,
    evaluate,
    export,
    export_job,
    predict,
    preview,
    train,
    weights,
)
from imgcls_desktop.cli.terminal import CommandError, print_error
from imgcls_desktop.core.about import version_line
from imgcls_desktop.core.dataset.images import ImageError
from imgcls_desktop.core.dataset.recordio_export import ExportError
from imgcls_desktop.core.dataset.samples import DatasetError
from imgcls_desktop.core.file_names import show_file_names_on
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.runtime import MXNetMissingError, configure_threads
from imgcls_desktop.core.training.run import RunError

# Errors whose message is written for users (ValueError covers the hyperparameter, model,
# device and evaluation errors).
_USER_ERRORS = (
    CommandError,
    DatasetError,
    ExportError,
    ImageError,
    RunError,
    MXNetMissingError,
    ValueError,
    OSError,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``imgcls`` argument parser with every command group."""
    parser = argparse.ArgumentParser(
        prog="imgcls",
        description="Train and use image classifiers offline, in SageMaker's formats.",
    )
    parser.add_argument("--version", action="version", version=version_line(parser.prog))
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    dataset.register(groups)
    train.register(groups)
    predict.register(groups)
    evaluate.register(groups)
    export.register(groups)
    export_job.register(groups)
    preview.register(groups)
    weights.register(groups)
    about.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``imgcls`` command and return its exit code."""
    configure_threads()
    for stream in (sys.stdout, sys.stderr):
        show_file_names_on(stream)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except _USER_ERRORS as error:
        print_error(str(error))
        return 1
    except (Cancelled, KeyboardInterrupt):
        print_error("stopped; nothing half-written was kept")
        return 130


if __name__ == "__main__":
    sys.exit(main())
