"""``imgcls predict``: label images or folders with any model, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imgcls_desktop.cli.model_options import (
    add_model_options,
    add_precision_options,
    open_predictor_from,
)
from imgcls_desktop.cli.terminal import CommandError, ProgressBar
from imgcls_desktop.core.file_names import display_path
from imgcls_desktop.core.inference import TOP_K
from imgcls_desktop.core.labelling import (
    LabellingResult,
    label_images,
    sort_into_folders,
    write_csv,
    write_jsonl,
)

OUTPUT_WRITERS = {".csv": write_csv, ".jsonl": write_jsonl}


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls predict`` to the command line."""
    parser = groups.add_parser(
        "predict",
        help="label images with a model (run folder, model.tar.gz or checkpoint)",
        description="Label images and folders (walked recursively). Without --output, print "
        "a table. MODEL: one of our run folders, a SageMaker model.tar.gz, or a plain MXNet "
        "checkpoint (PREFIX or PREFIX-symbol.json).",
    )
    parser.add_argument("model", type=Path, help="the model to use")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="INPUT", help="images or folders")
    add_model_options(parser)
    add_precision_options(parser)
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE.csv|FILE.jsonl",
        help="write the predictions (JSON Lines in SageMaker's batch form)",
    )
    parser.add_argument(
        "--top-k", type=int, default=TOP_K, help="also list the K likeliest classes"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument(
        "--sort-into",
        type=Path,
        metavar="DIR",
        help="copy each image into DIR/<label>/ (a CSV says what went where)",
    )
    parser.add_argument("--move", action="store_true", help="with --sort-into: move, not copy")
    parser.add_argument(
        "--min-confidence",
        type=float,
        help="with --sort-into: less sure images go to DIR/_uncertain/",
    )
    parser.add_argument("--device", help="cpu, gpu or gpu:N (default: a GPU if there is one)")
    parser.set_defaults(handler=run_predict)


def _print_table(result: LabellingResult) -> None:
    width = max((len(display_path(p.path)) for p in result.predictions), default=4)
    print(f"{'path':<{width}}  {'label':<16} confidence  top-{result.top_k}")
    for prediction in result.predictions:
        others = ", ".join(f"{label} {p:.3f}" for label, p in prediction.top_k)
        print(
            f"{display_path(prediction.path):<{width}}  {prediction.label:<16} "
            f"{prediction.confidence:>10.3f}  {others}"
        )


def run_predict(args: argparse.Namespace) -> int:
    """Label the inputs; 1 when no image could be labelled."""
    writer = None
    if args.output is not None:
        writer = OUTPUT_WRITERS.get(args.output.suffix.lower())
        if writer is None:
            raise CommandError(f"--output must end in .csv or .jsonl, not {args.output.name}")
    if (args.move or args.min_confidence is not None) and args.sort_into is None:
        raise CommandError("--move and --min-confidence go with --sort-into DIR")
    predictor = open_predictor_from(args)
    result = label_images(
        predictor, args.inputs, top_k=args.top_k, progress=ProgressBar("Labelling")
    )
    for unreadable in result.unreadable:
        print(f"skipped {display_path(unreadable.path)}: {unreadable.reason}", file=sys.stderr)
    if not result.predictions:
        raise CommandError("no image could be labelled")
    if writer is not None:
        writer(result, args.output)
        print(f"Wrote {len(result.predictions)} predictions to {args.output}")
    else:
        _print_table(result)
    if args.sort_into is not None:
        sorted_result = sort_into_folders(
            result,
            args.sort_into,
            move=args.move,
            min_confidence=args.min_confidence,
            progress=ProgressBar("Sorting"),
        )
        not_done = "not moved" if args.move else "not sorted"
        for failed in sorted_result.failed:
            print(f"{not_done} {display_path(failed.path)}: {failed.reason}", file=sys.stderr)
        verb = "Moved" if args.move else "Copied"
        print(
            f"{verb} {len(sorted_result.sorted)} images into {args.sort_into} "
            f"(list: {sorted_result.csv_path})"
        )
    if result.unreadable:
        print(f"{len(result.unreadable)} files could not be read", file=sys.stderr)
    return 0
