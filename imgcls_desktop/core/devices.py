"""The compute devices MXNet can use on this machine, and device choices written as text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from imgcls_desktop.core.runtime import mxnet

DEVICE_SPEC_HELP = (
    "cpu, gpu (every GPU), gpu:0,1 (those GPUs) or cpu:0,cpu:1 (several CPU contexts)"
)
CUDA_BUILD_HINT = (
    "make run GPU=cu112, or pip install --no-deps mxnet-cu112==1.9.1, matching your CUDA"
)


class DeviceError(ValueError):
    """A device choice cannot be used here; the message says why and what to choose."""


def gpu_count() -> int:
    """How many GPUs MXNet sees (0 with the CPU build of MXNet)."""
    try:
        return int(mxnet().context.num_gpus())
    except Exception:  # the CPU build raises when asked about CUDA on some systems
        return 0


def cuda_build() -> bool:
    """Whether the installed MXNet was built with CUDA (``mxnet-cu1xx``, not ``mxnet``)."""
    return bool(mxnet().runtime.Features().is_enabled("CUDA"))


def nvidia_gpu_present(proc: Path = Path("/proc"), search_path: str | None = None) -> bool:
    """Whether this machine has an NVIDIA GPU with its driver: the driver's folder in
    ``/proc`` (Linux) or ``nvidia-smi`` on the ``PATH`` (``search_path`` when given)."""
    driver = proc / "driver" / "nvidia"
    return driver.is_dir() or shutil.which("nvidia-smi", path=search_path) is not None


def unused_gpu_note(*, gpu_present: bool, gpus_seen: int, cuda_build: bool) -> str | None:
    """What to tell a user whose NVIDIA GPU MXNet does not use, or None when nothing is amiss."""
    if not gpu_present or gpus_seen:
        return None
    if cuda_build:
        return (
            "An NVIDIA GPU is present, but MXNet's CUDA build sees none: check the NVIDIA "
            "driver and that the CUDA version matches the build. Training runs on the CPU."
        )
    return (
        "An NVIDIA GPU is present, but the CPU build of MXNet is installed: training runs on "
        f"the CPU. To use the GPU, install MXNet's CUDA build ({CUDA_BUILD_HINT})."
    )


def describe_devices() -> list[str]:
    """One line per device MXNet can use, the CPU first."""
    threads = os.environ.get("OMP_NUM_THREADS", "?")
    devices = [f"CPU ({os.cpu_count() or 1} cores, {threads} MXNet threads)"]
    devices += [f"GPU {index}" for index in range(gpu_count())]
    return devices


def parse_devices(spec: str | None) -> list[Any]:
    """The MXNet contexts a device choice names (see :data:`DEVICE_SPEC_HELP`).

    ``None`` (or an empty text) means every GPU when MXNet sees one, else the CPU. A bare
    number continues the kind before it (``gpu:0,1`` is GPUs 0 and 1). Raises
    :class:`DeviceError` for malformed text and for GPUs this machine does not have.
    """
    mx = mxnet()
    text = (spec or "").strip().lower()
    available = gpu_count()
    if not text:
        return [mx.gpu(index) for index in range(available)] or [mx.cpu()]
    contexts = []
    kind = None
    for item in (part.strip() for part in text.split(",")):
        name, _, number = item.partition(":")
        if name in ("cpu", "gpu"):
            kind = name
        elif name.isdigit() and kind is not None:
            name, number = kind, name
        else:
            raise DeviceError(f"{spec!r} is not a device choice; use {DEVICE_SPEC_HELP}")
        if number and not number.isdigit():
            raise DeviceError(f"{item!r} in {spec!r}: a device number is 0, 1, 2...")
        if name == "cpu":
            contexts.append(mx.cpu(int(number or 0)))
        elif number:
            contexts.append(mx.gpu(_checked_gpu(int(number), available)))
        else:
            _checked_gpu(0, available)
            contexts.extend(mx.gpu(index) for index in range(available))
    if len(set(contexts)) != len(contexts):
        raise DeviceError(f"{spec!r} names a device twice")
    return contexts


def _checked_gpu(index: int, available: int) -> int:
    if available == 0:
        raise DeviceError(
            "no GPU is available: this MXNet is the CPU build or sees no CUDA device. "
            f"Choose the CPU, or install the GPU build ({CUDA_BUILD_HINT}) on a machine with "
            "an NVIDIA GPU."
        )
    if index >= available:
        raise DeviceError(
            f"GPU {index} does not exist: MXNet sees {available} GPU(s), numbered 0-{available - 1}"
        )
    return index
