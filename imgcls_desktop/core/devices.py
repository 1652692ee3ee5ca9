"""The compute devices MXNet can use on this machine."""

from __future__ import annotations

import os

from imgcls_desktop.core.runtime import mxnet


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
