"""The ``--hyperparameters FILE`` and ``--set NAME=VALUE`` options that training and the
augmentation preview share."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from imgcls_desktop.core.hyperparams import (
    HyperParameters,
    apply_overrides,
    load_hyperparameters,
)


def add_hyperparameter_options(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``--hyperparameters FILE.json`` and the repeatable ``--set NAME=VALUE``."""
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        metavar="FILE.json",
        help="hyperparameters JSON (SageMaker's string form or native values)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"set one hyperparameter (repeatable), e.g. --set {example}",
    )


def hyperparameters_from_options(
    args: argparse.Namespace, base: HyperParameters, extra: Sequence[str] = ()
) -> HyperParameters:
    """``base``, then the values of ``--hyperparameters``, then ``--set``, then ``extra``
    (more ``NAME=VALUE`` settings)."""
    hp = base
    if args.hyperparameters:
        hp = HyperParameters.from_mapping(
            {**hp.to_strings(), **load_hyperparameters(args.hyperparameters).to_strings()}
        )
    return apply_overrides(hp, [*args.set, *extra])
