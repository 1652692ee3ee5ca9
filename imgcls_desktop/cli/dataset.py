"""``imgcls dataset sample | scan | pack | add``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imgcls_desktop.cli.terminal import CommandError, ProgressBar, print_error
from imgcls_desktop.core.corrections import CORRECTIONS_CSV, add_to_dataset
from imgcls_desktop.core.dataset.findings import FindingKind, findings, format_text
from imgcls_desktop.core.dataset.recordio_export import (
    ExportOptions,
    existing_export_files,
)
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.scan import (
    ScanReport,
    scan_dataset,
)
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split_export import SplitShares, pack
from imgcls_desktop.core.file_names import display_path


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls dataset ...`` to the command line."""
    group = groups.add_parser("dataset", help="make, check and pack data sets")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sample = commands.add_parser("sample", help="generate the sample data set of drawn shapes")
    sample.add_argument("outdir", type=Path, help="new (or empty) folder to write it to")
    sample.add_argument("--classes", type=int, default=4, help="number of shape classes")
    sample.add_argument("--per-class", type=int, default=100, help="images per class")
    sample.add_argument("--size", type=int, default=64, help="image side in pixels")
    sample.add_argument("--seed", type=int, default=0, help="random seed")
    sample.set_defaults(handler=run_sample)

    scan = commands.add_parser("scan", help="check a data set and report its problems")
    _add_source_arguments(scan)
    scan.add_argument(
        "--min-size", type=_shape, metavar="H,W", help="report images smaller than H x W pixels"
    )
    scan.add_argument("--json", action="store_true", help="print the report as JSON")
    scan.set_defaults(handler=run_scan)

    pack = commands.add_parser("pack", help="split a data set and write RecordIO (.lst/.rec/.idx)")
    _add_source_arguments(pack)
    pack.add_argument("outdir", type=Path, help="folder for the RecordIO files")
    pack.add_argument("--name", default="dataset", help="file name prefix (NAME-train.rec, …)")
    pack.add_argument("--val-ratio", type=float, default=0.2, help="validation share per class")
    pack.add_argument("--test-ratio", type=float, default=0.0, help="test share per class")
    pack.add_argument("--seed", type=int, default=0, help="seed of the split")
    pack.add_argument("--resize", type=int, help="resize the shorter side to N pixels")
    pack.add_argument(
        "--quality",
        type=int,
        help="JPEG quality 1-100 (default 95) or PNG compression 0-9 (default 3)",
    )
    pack.add_argument(
        "--encoding",
        choices=[".jpg", ".png"],
        default=".jpg",
        help="image encoding inside the .rec",
    )
    pack.add_argument(
        "--pass-through",
        action="store_true",
        help="copy original bytes when no resizing or conversion is needed",
    )
    pack.add_argument("--workers", type=int, help="parallel image workers (default: all cores)")
    pack.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export of the same name in OUTDIR (never the data being read)",
    )
    pack.set_defaults(handler=run_pack)

    add = commands.add_parser(
        "add",
        help="copy images into a class folder of a data set (originals kept, nothing overwritten)",
    )
    add.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files to add")
    add.add_argument("--label", required=True, metavar="CLASS", help="the images' class")
    add.add_argument(
        "--into",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder-per-class data set; the images go into DIR/CLASS/",
    )
    add.set_defaults(handler=run_add)


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="a class-per-folder directory, a .lst, a manifest or a .rec"
    )
    parser.add_argument("--root", type=Path, help="folder the paths of a .lst/manifest start from")
    parser.add_argument(
        "--label-attribute",
        default="class",
        help="the manifest's label attribute (SageMaker AttributeNames)",
    )
    parser.add_argument(
        "--multi-label-format",
        choices=["multi-hot", "class-id"],
        help="how a manifest's list labels are written",
    )


def _shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W (two integers), got {text!r}") from None
    return height, width


def _load_and_scan(
    args: argparse.Namespace, min_size: tuple[int, int] | None = None, *, decode: bool = True
) -> tuple[Dataset, ScanReport]:
    dataset = load_dataset(
        args.source,
        root=args.root,
        label_attribute=args.label_attribute,
        multi_label_format=args.multi_label_format,
    )
    report = scan_dataset(
        dataset, min_size=min_size, decode=decode, progress=ProgressBar("Scanning")
    )
    for bad in report.bad_files:
        print(f"skipped {bad.path}: {bad.reason}", file=sys.stderr)
    if report.bad_files:
        print(
            f"{len(report.bad_files)} of {len(dataset.samples)} images cannot be used",
            file=sys.stderr,
        )
    return dataset, report


def run_sample(args: argparse.Namespace) -> int:
    """Generate the sample data set."""
    generate_sample_dataset(
        args.outdir,
        classes=args.classes,
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        progress=ProgressBar("Generating"),
    )
    print(f"Wrote {args.classes} classes x {args.per_class} images to {args.outdir}")
    return 0


def run_scan(args: argparse.Namespace) -> int:
    """Scan a data set; exit 1 when no image is usable."""
    _dataset, report = _load_and_scan(args, args.min_size)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_text(report))
    return 0 if report.usable_indices else 1


def run_pack(args: argparse.Namespace) -> int:
    """Scan, split and export RecordIO; exit 1 when nothing usable was written, or when an
    earlier export would be replaced without ``--overwrite``."""
    existing = [] if args.overwrite else existing_export_files(args.outdir, args.name)
    if existing:
        raise CommandError(
            f"{args.outdir} already holds {', '.join(path.name for path in existing)}: "
            "add --overwrite to replace them, or choose another folder or --name"
        )
    options = ExportOptions(
        resize=args.resize,
        quality=args.quality,
        encoding=args.encoding,
        pass_through=args.pass_through,
        **({"workers": args.workers} if args.workers else {}),
    )
    # The export decodes every image and skips those that fail: the scan need not decode.
    dataset, report = _load_and_scan(args, decode=False)
    if not report.usable_indices:
        raise CommandError(f"no usable image in {args.source}; nothing was written")
    packed = pack(
        dataset,
        report,
        args.outdir,
        name=args.name,
        shares=SplitShares(args.val_ratio, args.test_ratio, args.seed),
        options=options,
        overwrite=args.overwrite,
        progress=ProgressBar("Packing"),
    )
    result = packed.result
    for skipped in result.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    for finding in findings(report, packed.leaks):
        if finding.kind is FindingKind.CROSS_SPLIT:
            print(f"warning: {finding.title.lower()}: {finding.detail}", file=sys.stderr)
    counts = ", ".join(f"{count} {split}" for split, count in result.counts.items() if count)
    print(
        f"Wrote {result.written} images ({counts}) to {result.out_dir} "
        f"in {result.seconds:.1f} s ({result.images_per_second:.0f} images/s)"
    )
    for path in result.files:
        print(f"  {path}")
    if not result.written:
        raise CommandError("every image was skipped; nothing usable was written")
    return 0


def run_add(args: argparse.Namespace) -> int:
    """Copy images into ``DIR/CLASS/``; exit 1 when any could not be added."""
    result = add_to_dataset(
        [(image, args.label) for image in args.images], args.into, ProgressBar("Adding")
    )
    for image in result.added:
        print(f"{display_path(image.source)} -> {display_path(image.destination)}")
    for failure in result.failed:
        print_error(f"cannot add {display_path(failure.path)}: {failure.reason}")
    if result.csv_path is not None:
        print(f"Added {len(result.added)} images; {CORRECTIONS_CSV} lists them: {result.csv_path}")
    return 1 if result.failed else 0
