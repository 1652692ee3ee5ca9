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
    """Print one ``name: value`` line per version and folder, then the devices (exit status
    1 when MXNet cannot be loaded)."""
    for name, version in versions().items():
        print(f"{name}: {version}")
    for name, folder in folders().items():
        print(f"{name} folder: {folder}")
    try:
        devices = find_devices()
    except Exception as error:  # a broken MXNet install is what this report must show
        print(f"Devices: unknown: MXNet could not be loaded ({type(error).__name__}: {error})")
        return 1
    print(f"Devices: {', '.join(devices.names)}")
    if devices.unused_gpu_note:
        print(f"Note: {devices.unused_gpu_note}")
    return 0
