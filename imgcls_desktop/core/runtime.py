"""Process-wide runtime set-up: CPU threads for MXNet and the lazy MXNet import."""

from __future__ import annotations

import functools
import os
from types import ModuleType


def configure_threads() -> None:
    """Let MXNet's OpenMP use every core unless the user chose a thread count.

    MXNet reads ``OMP_NUM_THREADS`` once, when it is first imported; left unset it uses
    half of the cores (measured: about half the training speed on 2 cores).
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


@functools.cache
def mxnet() -> ModuleType:
    """Import MXNet once, after configuring its threads, and return the module."""
    configure_threads()
    import mxnet as mx

    return mx
