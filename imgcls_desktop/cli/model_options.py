"""Options shared by the commands that open a model (``predict``, ``evaluate``, ``export``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgcls_desktop.core.inference import Predictor, open_predictor
from imgcls_desktop.core.models import LoadedModel, open_model


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


def open_predictor_from(args: argparse.Namespace) -> Predictor:
    """Open ``args.model`` for inference on ``args.device`` in batches of ``args.batch_size``;
    say what was assumed to open it."""
    predictor = open_predictor(
        args.model,
        labels=args.labels,
        input_shape=args.image_shape,
        device=args.device,
        batch_size=args.batch_size,
    )
    _print_notes(predictor.model)
    return predictor
