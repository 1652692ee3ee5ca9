"""``imgcls weights``: the ImageNet backbones on this computer, fetched once or imported."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgcls_desktop.cli.terminal import ProgressBar
from imgcls_desktop.core.jobs import Cancelled, ProgressFn
from imgcls_desktop.core.weights import backbone_named, backbone_states, store_folder
from imgcls_desktop.core.weights.download import download_backbone, download_url
from imgcls_desktop.core.weights.importing import import_weights
from imgcls_desktop.core.weights.store import BackboneState


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls weights list|download|import`` to the command line."""
    parser = groups.add_parser(
        "weights",
        help="the ImageNet backbones for use_pretrained_model: list, download, import",
        description="Pretrained ResNet v1 backbones (the Gluon model zoo's, as SageMaker's "
        "use_pretrained_model uses them) are kept in the app's weights store. Only "
        "'download' uses the network.",
    )
    commands = parser.add_subparsers(dest="command", metavar="ACTION", required=True)
    listing = commands.add_parser("list", help="the backbones, whether on disk, size, source")
    listing.set_defaults(handler=run_list)
    fetch = commands.add_parser(
        "download",
        help="fetch a backbone from the Gluon model zoo (checksum verified; Ctrl-C stops, "
        "the next call resumes)",
    )
    fetch.add_argument("backbone", help="resnet18_v1, resnet34_v1, resnet50_v1, ...")
    fetch.add_argument(
        "--repo",
        metavar="URL",
        help="a model-zoo mirror (default: $MXNET_GLUON_REPO, else MXNet's own)",
    )
    fetch.set_defaults(handler=run_download)
    importing = commands.add_parser(
        "import",
        help="copy a backbone into the store: a .params, the model zoo's .zip, or a folder "
        "holding one (for computers that never go online)",
    )
    importing.add_argument("path", type=Path, help="the file or folder to import")
    importing.set_defaults(handler=run_import)


def run_list(args: argparse.Namespace) -> int:
    """Print a table of the backbones."""
    rows = [("BACKBONE", "STATE", "SIZE", "SOURCE")]
    rows += [
        (
            state.backbone.name,
            "on disk" if state.on_disk else "not on disk",
            megabytes(state.size) if state.on_disk else "",
            state.source,
        )
        for state in backbone_states()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        print("  ".join([*cells, row[3]]).rstrip())
    print(f"\nStore: {store_folder()}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download one backbone (resuming a partial download); exit 130 when stopped."""
    backbone = backbone_named(args.backbone)
    state = _state_of(backbone.name)
    if state.on_disk:
        print(f"{backbone.name} is already on this computer: {state.path}")
        return 0
    print(f"Downloading {backbone.name} from {download_url(backbone, args.repo)}")
    try:
        state = download_backbone(
            backbone, repo=args.repo, progress=_megabyte_bar(f"{backbone.name} (MB)")
        )
    except (KeyboardInterrupt, Cancelled):
        print(f"\nStopped; run `imgcls weights download {backbone.name}` again to resume.")
        return 130
    print(f"Saved {backbone.name} ({megabytes(state.size)}, SHA-1 verified) to {state.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import a backbone file, zip or folder into the store."""
    state = import_weights(args.path, progress=_megabyte_bar("Copying (MB)"))
    print(f"Imported {state.backbone.name} ({megabytes(state.size)}) to {state.path}")
    return 0


def megabytes(size: int) -> str:
    """``46.8 MB``."""
    return f"{size / 1e6:.1f} MB"


def _state_of(name: str) -> BackboneState:
    return next(state for state in backbone_states() if state.backbone.name == name)


def _megabyte_bar(label: str) -> ProgressFn:
    bar = ProgressBar(label)

    def report(done: int, total: int) -> None:
        if total:
            bar(done // 1_000_000, total // 1_000_000)

    return report
