"""``imgcls about``: the versions, folders and devices the app runs with (as *Help > About*
shows them), for a bug report or a check of a GPU install."""

from __future__ import annotations

import argparse

from imgcls_desktop.core.about import find_devices, folders, versions


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls about`` to the command line."""
    parser = groups.add_parser(
        "about",
        help="print the versions, folders and devices the app runs with",
        description="Print the versions of the app, MXNet, numpy, PySide6 and Python, the "
        "app's folders and the devices MXNet can use (this loads MXNet: a few seconds).",
    )
    parser.set_defaults(handler=run_about)


def run_about(args: argparse.Namespace) -> int:
    """Print one ``name: value`` line per version, folder and device."""
    for name, version in versions().items():
        print(f"{name}: {version}")
    for name, folder in folders().items():
        print(f"{name} folder: {folder}")
    devices = find_devices()
    print(f"Devices: {', '.join(devices.names)}")
    if devices.unused_gpu_note:
        print(f"Note: {devices.unused_gpu_note}")
    return 0
