"""Options shared by the commands that open a model (``predict``, ``evaluate``, ``export``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgcls_desktop.cli.terminal import CommandError, ProgressBar
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError
from imgcls_desktop.core.evaluation import EvaluationError
from imgcls_desktop.core.inference import Predictor, open_predictor
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.precision import (
    AUTO_TOLERANCE_POINTS,
    PRECISIONS,
    CheckData,
    PrecisionError,
    choose_precision,
    given_check_data,
    run_check_data,
)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--labels`` and ``--image-shape``."""
    parser.add_argument("--labels", type=Path, help="class names: labels.txt or classes.json")
    parser.add_argument(
        "--image-shape",
        type=image_shape,
        metavar="C,H,W",
        help="the input shape of a plain checkpoint without model-shapes.json "
        "(default: its hyperparameters.json's image_shape, else 3,224,224)",
    )


def add_precision_options(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--check-data``."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="the network's arithmetic on the CPU: int8 (oneDNN, calibrated) or bf16 (CPUs "
        "with AVX512-BF16 or AMX) are checked against fp32 on labelled images first; auto "
        f"takes the fastest within {AUTO_TOLERANCE_POINTS} accuracy points of fp32 "
        "(default: fp32)",
    )
    parser.add_argument(
        "--check-data",
        type=Path,
        metavar="DATA",
        help="labelled images to check (and calibrate) a reduced precision on, for a model "
        "that is not one of our runs (default: the run's validation images)",
    )


def image_shape(text: str) -> tuple[int, int, int]:
    """``3,224,224`` as (3, 224, 224); argparse reports a malformed value in one line."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W with C 1 or 3 (e.g. 3,224,224)")
    return shape  # type: ignore[return-value]


def open_model_from(args: argparse.Namespace) -> LoadedModel:
    """Open ``args.model`` with the options above; say what was assumed to open it."""
    model = open_model(args.model, labels=args.labels, input_shape=args.image_shape)
    _print_notes(model)
    return model


def _print_notes(model: LoadedModel) -> None:
    for note in model.notes:
        print(f"note: {note}", file=sys.stderr)


def open_predictor_from(
    args: argparse.Namespace, labelled: tuple[Path, Dataset] | None = None
) -> Predictor:
    """Open ``args.model`` for inference on ``args.device`` in batches of ``args.batch_size``
    at ``args.precision``; say what was assumed to open it and which precision runs.

    Reduced precisions are checked on ``--check-data``, else the run's own images, else
    ``labelled`` (the data being evaluated: its path and data set).
    """
    predictor = open_predictor(
        args.model,
        labels=args.labels,
        input_shape=args.image_shape,
        device=args.device,
        batch_size=args.batch_size,
    )
    _print_notes(predictor.model)
    if args.precision == "fp32":
        return predictor
    try:
        predictor = choose_precision(
            predictor,
            args.precision,
            _check_data(args, labelled),
            progress=ProgressBar("Checking precision"),
        )
    except (PrecisionError, DatasetError, EvaluationError) as error:
        raise CommandError(str(error)) from None
    print(f"precision: {predictor.network.note}", file=sys.stderr)
    return predictor


def _check_data(
    args: argparse.Namespace, labelled: tuple[Path, Dataset] | None
) -> CheckData | None:
    if args.check_data is not None:
        return given_check_data(args.check_data)
    found = run_check_data(args.model)
    if found is None and labelled is not None:
        path, dataset = labelled
        return CheckData(dataset, dataset, f"images of {path.name}")
    return found
