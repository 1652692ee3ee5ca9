"""``imgcls preview-augmentation``: a PNG of what training's augmentation makes of a few
training images."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from imgcls_desktop.cli.hyperparameter_options import (
    add_hyperparameter_options,
    hyperparameters_from_options,
)
from imgcls_desktop.cli.terminal import CommandError, ProgressBar
from imgcls_desktop.core.atomic import atomic_write_bytes
from imgcls_desktop.core.hyperparams import (
    AUGMENTATION_TYPES,
    HyperParameters,
)
from imgcls_desktop.core.training.packing import scan_source
from imgcls_desktop.core.training.preview import (
    MAX_IMAGES,
    MAX_VERSIONS,
    augmented_samples,
    preview_grid,
)


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls preview-augmentation`` to the command line."""
    parser = groups.add_parser(
        "preview-augmentation",
        help="write a grid of augmented versions of a few training images (PNG)",
        description="Read a few training images through training's own augmenting "
        "iterator and write them as a grid: a row per image, the image as validation sees it "
        "first, then its augmented versions. Hyperparameters come from SageMaker's defaults, "
        "then --hyperparameters FILE, then --set NAME=VALUE, then --augmentation-type.",
    )
    parser.add_argument("data", type=Path, metavar="DATA", help=".rec, .lst, manifest or folder")
    parser.add_argument("--output", type=Path, required=True, help="the grid image (.png)")
    parser.add_argument(
        "--augmentation-type",
        choices=AUGMENTATION_TYPES,
        help="SageMaker's augmentation_type (wins over the file and --set)",
    )
    add_hyperparameter_options(parser, "image_shape=3,64,64")
    parser.add_argument(
        "--images", type=int, default=4, help=f"training images, one row each (1-{MAX_IMAGES})"
    )
    parser.add_argument(
        "--versions", type=int, default=6, help=f"augmented versions per image (1-{MAX_VERSIONS})"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="picks the images and their augmentation"
    )
    parser.set_defaults(handler=run_preview)


def _hyperparameters(args: argparse.Namespace) -> HyperParameters:
    chosen = [f"augmentation_type={args.augmentation_type}"] if args.augmentation_type else []
    return hyperparameters_from_options(args, HyperParameters(), chosen)


def run_preview(args: argparse.Namespace) -> int:
    """Write the grid; 0 when it was written."""
    if args.output.suffix.lower() != ".png":
        raise CommandError(f"--output must be a .png file (got {args.output.name})")
    hp = _hyperparameters(args)
    source = scan_source(args.data, progress=ProgressBar("Reading the data"))
    preview = augmented_samples(
        source,
        hp,
        images=args.images,
        versions=args.versions,
        seed=args.seed,
        progress=ProgressBar("Packing"),
    )
    grid = cv2.cvtColor(preview_grid(preview), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", grid)
    if not ok:
        raise CommandError("the grid could not be encoded as PNG")
    atomic_write_bytes(args.output, encoded.tobytes())
    height, width = grid.shape[:2]
    print(f"Wrote {args.output} ({width} x {height}): a row per image, the original first.")
    print(preview.describe())
    for number, row in enumerate(preview.rows, start=1):
        print(f"  row {number}: {row.class_name}  {row.source}")
    return 0
