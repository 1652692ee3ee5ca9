"""The compute devices MXNet can use on this machine, and device choices written as text."""

from __future__ import annotations

import os
from typing import Any

from imgcls_desktop.core.runtime import mxnet

DEVICE_SPEC_HELP = (
    "cpu, gpu (every GPU), gpu:0,1 (those GPUs) or cpu:0,cpu:1 (several CPU contexts)"
)


class DeviceError(ValueError):
    """A device choice cannot be used here; the message says why and what to choose."""


def gpu_count() -> int:
    """How many GPUs MXNet sees (0 with the CPU build of MXNet)."""
    try:
        return int(mxnet().context.num_gpus())
    except Exception:  # the CPU build raises when asked about CUDA on some systems
        return 0


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
            "Choose the CPU, or install the GPU build (pip install mxnet-cu112==1.9.1, "
            "matching your CUDA version) on a machine with an NVIDIA GPU."
        )
    if index >= available:
        raise DeviceError(
            f"GPU {index} does not exist: MXNet sees {available} GPU(s), numbered 0-{available - 1}"
        )
    return index
