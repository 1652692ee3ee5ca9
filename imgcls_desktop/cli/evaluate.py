"""``imgcls evaluate``: a model's accuracy, per-class metrics and confusions on labelled data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgcls_desktop.cli.model_options import (
    add_model_options,
    add_precision_options,
    open_predictor_from,
)
from imgcls_desktop.cli.terminal import ProgressBar
from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.evaluation import evaluate_dataset, format_table


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls evaluate`` to the command line."""
    parser = groups.add_parser(
        "evaluate",
        help="measure a model on a labelled data set",
        description="DATA: a folder per class, a .lst, a manifest or a .rec. Classes are "
        "matched by name, so their order may differ from the model's.",
    )
    parser.add_argument("model", type=Path, help="run folder, model.tar.gz or checkpoint")
    parser.add_argument("data", type=Path, help="the labelled data set")
    add_model_options(parser)
    add_precision_options(parser)
    parser.add_argument("--output", type=Path, metavar="report.json", help="write a JSON report")
    parser.add_argument(
        "--top-k",
        type=int,
        help="also report top-k accuracy (when the model has more than K classes)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--device", help="cpu, gpu or gpu:N (default: a GPU if there is one)")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the table (and write the JSON report when asked)."""
    dataset = load_dataset(args.data)
    predictor = open_predictor_from(args, labelled=(args.data, dataset))
    report = evaluate_dataset(
        predictor, dataset, top_k=args.top_k, progress=ProgressBar("Evaluating")
    )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(format_table(report))
    if args.output is not None:
        atomic_write_json(args.output, report.to_dict())
        print(f"Wrote {args.output}")
    return 0
