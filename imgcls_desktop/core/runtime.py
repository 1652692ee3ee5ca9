"""Process-wide runtime set-up: CPU threads for MXNet and the lazy MXNet import.

MXNet 1.9.1 is the last release and its Python code predates numpy 2 and Python 3.12, so
:func:`mxnet` first applies a narrow compatibility layer:

- numpy names MXNet reads that newer numpy removed are put back, each only when numpy
  lacks it (``_REMOVED_NUMPY_NAMES`` says which MXNet module needs which name);
- ``distutils`` (gone from Python 3.12) comes from setuptools' copy when nothing else
  provides it;
- on numpy >= 2.3, which removed ``ndarray.tostring()``, ``mx.recordio.pack`` and
  ``pack_img`` are replaced by the same functions written with ``tobytes()``.

Nothing else of numpy changes: our own code uses current numpy names only (ruff's NPY
rules check it).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import numbers
import os
import struct
import sys
from types import ModuleType
from typing import Any, Callable

import numpy as np


def configure_threads() -> None:
    """Let MXNet's OpenMP use every core unless the user chose a thread count.

    MXNet reads ``OMP_NUM_THREADS`` once, when it is first imported; left unset it uses
    half of the cores (measured: about half the training speed on 2 cores).
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def _removed_in_numpy_1_20(name: str) -> Callable[..., Any]:
    """What numpy 1.20 to 1.26 gave for a financial function it had moved out."""

    def removed(*_args: object, **_kwargs: object) -> Any:
        raise RuntimeError(f"numpy.{name} was removed in numpy 1.20: use numpy_financial")

    removed.__name__ = removed.__qualname__ = name
    return removed


def _renamed(call: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A function of its own under an old name (a distinct object, as numpy's were, so
    MXNet's ``__array_function__`` table keeps one entry per name)."""

    def renamed(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    renamed.__name__ = renamed.__qualname__ = name
    return renamed


_FINANCIAL = ("mirr", "npv", "pmt", "ppmt", "pv", "rate")

# name: (value, the MXNet module that reads it when ``import mxnet`` runs). Found by
# importing MXNet under numpy 1.21-2.5: each name below stops the import when missing.
_REMOVED_NUMPY_NAMES: dict[str, tuple[Any, str]] = {
    # numpy 1.24-1.26 only; numpy 2 has np.bool again (as np.bool_)
    "bool": (bool, "mxnet.numpy.utils"),
    # numpy 2.0
    "PZERO": (0.0, "mxnet.numpy.utils"),
    "NZERO": (-0.0, "mxnet.numpy.utils"),
    "PINF": (math.inf, "mxnet.numpy.utils"),
    "NINF": (-math.inf, "mxnet.numpy.utils"),
    "NAN": (math.nan, "mxnet.numpy.utils"),
    "NaN": (math.nan, "mxnet.numpy.utils"),
    "Inf": (math.inf, "mxnet.gluon.contrib.estimator.event_handler"),
    "alltrue": (_renamed(np.all, "alltrue"), "mxnet.numpy.fallback"),
    "msort": (_renamed(lambda a: np.sort(a, axis=0), "msort"), "mxnet.numpy.fallback"),
    "sometrue": (_renamed(np.any, "sometrue"), "mxnet.numpy_dispatch_protocol"),
    "product": (_renamed(np.prod, "product"), "mxnet.numpy_dispatch_protocol"),
    "round_": (_renamed(np.round, "round_"), "mxnet.numpy_dispatch_protocol"),
    # numpy 2.4
    "in1d": (_renamed(lambda *a, **k: np.isin(*a, **k).ravel(), "in1d"), "mxnet.numpy.fallback"),
    "trapz": (_renamed(lambda *a, **k: np.trapezoid(*a, **k), "trapz"), "mxnet.numpy.fallback"),
    # numpy 2.0 (numpy 1.20-1.26 served stubs that raise)
    **{name: (_removed_in_numpy_1_20(name), "mxnet.numpy.fallback") for name in _FINANCIAL},
}


def _numpy_has(name: str) -> bool:
    """Whether numpy provides ``name``, without touching it.

    numpy 1.2x serves some old names from a module ``__getattr__`` that warns on access:
    a deprecated alias (``__deprecated_attrs__``) or a stub (``__expired_functions__``).
    """
    names = vars(np)
    return any(
        name in table
        for table in (
            names,
            names.get("__deprecated_attrs__", {}),
            names.get("__expired_functions__", {}),
        )
    )


def restore_removed_numpy_names() -> list[str]:
    """Put back the removed numpy names MXNet 1.9.1 reads; return those added."""
    missing = [name for name in _REMOVED_NUMPY_NAMES if not _numpy_has(name)]
    for name in missing:
        setattr(np, name, _REMOVED_NUMPY_NAMES[name][0])
    return missing


def _provide_distutils() -> None:
    """Let MXNet's ``from distutils.version import ...`` work on Python 3.12+.

    Python 3.12 removed ``distutils``; setuptools carries a copy that its import hook (a
    ``.pth`` file) normally serves. Where that hook does not run (``python -S``, a frozen
    app, ``SETUPTOOLS_USE_DISTUTILS=stdlib``), the copy is loaded from its folder.
    """
    try:
        import distutils.version  # noqa: F401
    except ModuleNotFoundError:
        setuptools = importlib.util.find_spec("setuptools")
        if setuptools is None or not setuptools.submodule_search_locations:
            raise ModuleNotFoundError(
                "MXNet 1.9.1 needs distutils, which Python 3.12 removed: "
                "install setuptools, which carries a copy (pip install setuptools)"
            ) from None
        folder = os.path.join(setuptools.submodule_search_locations[0], "_distutils")
        spec = importlib.util.spec_from_file_location(
            "distutils", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["distutils"] = module
        spec.loader.exec_module(module)


def _pack(header: Any, s: bytes) -> bytes:
    """``mx.recordio.pack``, converting a label vector with ``tobytes()``."""
    recordio = sys.modules["mxnet.recordio"]
    header = recordio.IRHeader(*header)
    if isinstance(header.label, numbers.Number):
        return struct.pack(recordio._IR_FORMAT, 0, header.label, header.id, header.id2) + s
    label = np.asarray(header.label, dtype=np.float32)
    fields = (label.size, 0, header.id, header.id2)
    return struct.pack(recordio._IR_FORMAT, *fields) + label.tobytes() + s


def _pack_img(header: Any, img: np.ndarray, quality: int = 95, img_fmt: str = ".jpg") -> bytes:
    """``mx.recordio.pack_img``, passing the encoded bytes with ``tobytes()``."""
    import cv2

    parameter = {
        ".JPG": cv2.IMWRITE_JPEG_QUALITY,
        ".JPEG": cv2.IMWRITE_JPEG_QUALITY,
        ".PNG": cv2.IMWRITE_PNG_COMPRESSION,
    }.get(img_fmt.upper())
    ok, encoded = cv2.imencode(img_fmt, img, None if parameter is None else [parameter, quality])
    if not ok:
        raise ValueError(f"failed to encode the image as {img_fmt}")
    return _pack(header, encoded.tobytes())


class MXNetMissingError(ImportError):
    """MXNet is not installed in this Python environment."""


MXNET_MISSING = (
    "MXNet is not installed in this Python environment: install it with "
    "pip install --no-deps mxnet==1.9.1 (make run does this), or mxnet-cu112==1.9.1 for a GPU"
)


@functools.cache
def mxnet() -> ModuleType:
    """Import MXNet once, after configuring its threads and compatibility, and return it.

    Raises :class:`MXNetMissingError` with how to install it when it is not installed (the
    package does not depend on MXNet directly: see pyproject.toml).
    """
    configure_threads()
    # oneDNN's graph passes (int8 inference) would print "Subgraph backend MKLDNN is
    # activated" on stderr each time a network is bound.
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
    restore_removed_numpy_names()
    _provide_distutils()
    try:
        import mxnet as mx
    except ModuleNotFoundError as error:
        if error.name != "mxnet":
            raise
        raise MXNetMissingError(MXNET_MISSING) from None

    if not hasattr(np.ndarray, "tostring"):
        mx.recordio.pack = _pack
        mx.recordio.pack_img = _pack_img
    return mx
