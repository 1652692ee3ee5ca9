"""What ``Help > About``, ``imgcls about`` and ``--version`` say: versions, folders, devices.

:func:`versions` and :func:`folders` are quick: versions come from the installed
distributions' metadata, without importing MXNet (seconds) or even numpy, so that
``--version`` answers at once. :func:`find_devices` imports MXNet, which takes seconds the first
time, so a window calls it off its GUI thread.
"""

from __future__ import annotations

import importlib.util
import platform
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, PathDistribution, version
from pathlib import Path

from imgcls_desktop import __version__
from imgcls_desktop.core.devices import (
    cuda_build,
    describe_devices,
    gpu_count,
    nvidia_gpu_present,
    unused_gpu_note,
)
from imgcls_desktop.core.paths import cache_dir, config_dir, data_dir

# mxnet, and the builds of the same code published under other names: mxnet-cu112, -mkl...
_MXNET_DISTRIBUTION = re.compile(r"mxnet(-(native|mkl|cu\d+(mkl)?))?")


@dataclass(frozen=True)
class Devices:
    """The devices MXNet can use, and what to tell a user whose NVIDIA GPU it does not use."""

    names: list[str]
    unused_gpu_note: str | None


def mxnet_distribution() -> tuple[str, str] | None:
    """The name (``mxnet``, ``mxnet-cu112``...) and version of the installed MXNet, found
    without importing it; None when MXNet or its metadata is missing."""
    spec = importlib.util.find_spec("mxnet")
    if spec is None or not spec.submodule_search_locations:
        return None
    site = Path(next(iter(spec.submodule_search_locations))).parent
    for info in sorted(site.glob("mxnet*.dist-info")):
        distribution = PathDistribution(info)
        name = distribution.metadata["Name"] or ""
        if _MXNET_DISTRIBUTION.fullmatch(name.lower().replace("_", "-")):
            return name, distribution.version
    return None


def versions() -> dict[str, str]:
    """The versions of the app and what it runs on, by name, in the order to show them."""
    mxnet = mxnet_distribution()
    found = {
        "imgcls-desktop": __version__,
        "MXNet": f"{mxnet[1]} ({mxnet[0]})" if mxnet else "not found",
        "numpy": _installed_version("numpy"),
        "PySide6": _installed_version("PySide6-Essentials", "PySide6"),
        "Python": platform.python_version(),
    }
    return {name: text for name, text in found.items() if text}


def version_line(program: str) -> str:
    """``--version``'s answer: ``imgcls 0.1.0 (mxnet 1.9.1, Python 3.11.7)``."""
    mxnet = mxnet_distribution()
    runs_on = [f"{mxnet[0]} {mxnet[1]}"] if mxnet else []
    runs_on.append(f"Python {platform.python_version()}")
    return f"{program} {__version__} ({', '.join(runs_on)})"


def folders() -> dict[str, Path]:
    """The app's folders (``core.paths``), by what they hold."""
    return {"Data": data_dir(), "Settings": config_dir(), "Cache": cache_dir()}


def find_devices() -> Devices:
    """The devices MXNet can use here (imports MXNet: slow the first time)."""
    return Devices(
        describe_devices(),
        unused_gpu_note(
            gpu_present=nvidia_gpu_present(), gpus_seen=gpu_count(), cuda_build=cuda_build()
        ),
    )


def _installed_version(*names: str) -> str:
    """The version of the first of ``names`` that is installed; empty when none is."""
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return ""
