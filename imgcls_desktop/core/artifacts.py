"""Model files in SageMaker's layout: symbol, per-epoch parameters and input shapes.

A run folder holds ``image-classification-symbol.json``, ``image-classification-NNNN.params``
(NNNN = epoch, 1-based, in ``mx.model.save_checkpoint``'s format: ``arg:``/``aux:`` keys
named as in the symbol) and ``model-shapes.json`` (``[{"name": "data", "shape": [N, C, H,
W]}]``), exactly as a SageMaker training job leaves them, so ``mx.model.load_checkpoint``,
``mx.mod.Module``, ``gluon.SymbolBlock.imports`` and SageMaker hosting load them. Every file
is written atomically: a crash at any moment leaves the last good checkpoint loadable.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from imgcls_desktop.core.atomic import atomic_save, atomic_write_json, atomic_write_text
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME, classifier_symbol

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock, Parameter
    from mxnet.ndarray import NDArray
    from mxnet.symbol import Symbol

CHECKPOINT_PREFIX = "image-classification"
SYMBOL_FILE = f"{CHECKPOINT_PREFIX}-symbol.json"
SHAPES_FILE = "model-shapes.json"


class ModelError(ValueError):
    """A model or weights file cannot be used; the message says why, in a user's words."""


class SymbolModel(NamedTuple):
    """A symbolic model as ``mx.model.load_checkpoint`` gives it, with its input shape."""

    symbol: Symbol
    arg_params: dict[str, NDArray]
    aux_params: dict[str, NDArray]
    #: ``[N, C, H, W]`` from ``model-shapes.json``; None when the file is absent.
    data_shape: tuple[int, ...] | None


def params_file(epoch: int) -> str:
    """The parameter file name of an epoch (1-based): ``image-classification-0003.params``."""
    if epoch < 1:
        raise ValueError(f"checkpoint epochs count from 1, not {epoch}")
    return f"{CHECKPOINT_PREFIX}-{epoch:04d}.params"


def save_checkpoint(
    run_dir: Path,
    net: HybridBlock,
    epoch: int,
    *,
    batch_size: int,
    image_shape: tuple[int, int, int] | None = None,
    multi_label: bool | None = None,
) -> Path:
    """Write epoch ``epoch`` of ``net`` (an ``ImageClassifier``) into ``run_dir``; its path.

    The parameters come first, then the symbol and the shapes file (both the same for
    every epoch of a run), each replaced atomically. ``image_shape`` and ``multi_label``
    default to the network's own. The network must have run once (shapes are known).
    """
    image_shape = tuple(image_shape or net.image_shape)
    symbol = classifier_symbol(net, multi_label=multi_label)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / params_file(epoch)
    _save_arrays(path, _checkpoint_arrays(net, symbol))
    atomic_write_text(run_dir / SYMBOL_FILE, symbol.tojson())
    atomic_write_json(
        run_dir / SHAPES_FILE, [{"name": DATA_NAME, "shape": [batch_size, *image_shape]}]
    )
    return path


def load_into(net: HybridBlock, run_dir: Path, epoch: int) -> None:
    """Load a checkpoint of ``run_dir`` into ``net`` (initialised first) to resume or go on."""
    path = run_dir / params_file(epoch)
    if not path.is_file():
        raise ModelError(f"{run_dir} has no checkpoint for epoch {epoch} ({path.name})")
    arrays = {key.split(":", 1)[-1]: value for key, value in read_arrays(path).items()}
    assign_arrays(net.collect_params(), arrays, f"checkpoint {path}")


def list_checkpoints(run_dir: Path) -> list[int]:
    """The epochs (1-based) with a parameter file in the run folder ``run_dir``, in order."""
    return [epoch for epoch in checkpoint_epochs(run_dir / CHECKPOINT_PREFIX) if epoch >= 1]


def checkpoint_epochs(prefix: Path) -> list[int]:
    """The epochs with a ``PREFIX-NNNN.params`` file, in increasing order; 0 included
    (what Gluon's ``HybridBlock.export`` writes)."""
    pattern = re.compile(rf"{re.escape(prefix.name)}-(\d{{4,}})\.params")
    if not prefix.parent.is_dir():
        return []
    found = (pattern.fullmatch(entry.name) for entry in prefix.parent.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def remove_checkpoint(run_dir: Path, epoch: int) -> None:
    """Delete the parameter file of an epoch (nothing happens when there is none)."""
    (run_dir / params_file(epoch)).unlink(missing_ok=True)


def load_symbol_model(
    prefix_or_dir: str | os.PathLike[str], epoch: int | None = None
) -> SymbolModel:
    """Load ``PREFIX-symbol.json`` + ``PREFIX-NNNN.params`` (highest epoch unless given;
    epoch 0 counts, as ``HybridBlock.export`` writes it).

    A folder means the SageMaker prefix ``image-classification`` inside it. The input
    shape comes from ``model-shapes.json`` beside the files, when there is one.
    """
    path = Path(prefix_or_dir)
    prefix = path / CHECKPOINT_PREFIX if path.is_dir() else path
    symbol_path = prefix.with_name(f"{prefix.name}-symbol.json")
    if not symbol_path.is_file():
        raise ModelError(f"no model at {path}: {symbol_path} is missing")
    epochs = checkpoint_epochs(prefix)
    if not epochs:
        raise ModelError(f"no model at {path}: there is no {prefix.name}-NNNN.params file")
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise ModelError(f"{path} has no parameters for epoch {epoch} (it has {epochs})")
    mx = mxnet()
    try:
        symbol, arg_params, aux_params = mx.model.load_checkpoint(str(prefix), epoch)
    except mx.base.MXNetError as error:
        raise ModelError(f"cannot read the model at {path}: {first_line(error)}") from None
    return SymbolModel(symbol, arg_params, aux_params, _data_shape(prefix.parent / SHAPES_FILE))


def read_arrays(path: Path) -> dict[str, NDArray]:
    """The named arrays of an MXNet ``.params`` file."""
    mx = mxnet()
    try:
        arrays = mx.nd.load(str(path))
    except mx.base.MXNetError as error:
        raise ModelError(f"cannot read {path}: {first_line(error)}") from None
    if not isinstance(arrays, dict):
        raise ModelError(f"{path} holds unnamed arrays, not a network's parameters")
    return arrays


def assign_arrays(
    params: Mapping[str, Parameter], arrays: Mapping[str, NDArray], source: str
) -> None:
    """Set every parameter from the array of the same key, after checking they all fit.

    Nothing is changed unless each parameter has an array of its shape and no array is
    left over (a left-over means another depth). The parameters must be initialised
    (``net.initialize()``); deferred shapes (0) accept any size.
    """
    for key, param in params.items():
        if key not in arrays:
            raise ModelError(f"{source} does not fit this network: it has no {key!r}")
        if not _shape_fits(param.shape, arrays[key].shape):
            raise ModelError(
                f"{source} does not fit this network: {key!r} has shape "
                f"{tuple(arrays[key].shape)}, the network needs {tuple(param.shape)}"
            )
    extra = [key for key in arrays if key not in params]
    if extra:
        raise ModelError(
            f"{source} does not fit this network: it has {extra[0]!r}, which the network "
            f"lacks (a different depth?)"
        )
    for key, param in params.items():
        param.set_data(arrays[key])


def _checkpoint_arrays(net: HybridBlock, symbol: Symbol) -> dict[str, NDArray]:
    """The parameters under the ``arg:``/``aux:`` keys ``mx.model.load_checkpoint`` expects."""
    mx = mxnet()
    aux_names = set(symbol.list_auxiliary_states())
    arrays = {}
    for name, param in net.collect_params().items():
        copies = [data.copyto(mx.cpu()) for data in param.list_data()]
        # Several devices: weights are equal, batch-norm statistics are averaged.
        value = copies[0] if len(copies) == 1 else mx.nd.add_n(*copies) / len(copies)
        arrays[f"{'aux' if name in aux_names else 'arg'}:{name}"] = value
    return arrays


def _save_arrays(path: Path, arrays: dict[str, NDArray]) -> None:
    """Save float32 arrays (what plain MXNet loads, whatever precision trained them)."""
    save_arrays(path, {name: value.astype("float32", copy=False) for name, value in arrays.items()})


def save_arrays(path: Path, arrays: Mapping[str, NDArray]) -> None:
    """Write named arrays in MXNet's ``.params`` format (``mx.nd.save``), atomically.

    Each array is written as it is once the operations queued on it so far have run, even
    when a pass still running uses it (a network's own weights right after a forward pass).
    """
    # mx.nd.save (like asnumpy) waits for the writes queued on an array, then reads it
    # outside MXNet's engine; oneDNN convolutions change their weight's memory layout in
    # place after using it, in an operation queued only when they run, so a direct save
    # during a pass can write a weight half reordered. Copies queued now come before that.
    named = {name: value.copy() for name, value in arrays.items()}
    needed = sum(value.size * np.dtype(value.dtype).itemsize for value in named.values())
    save_with_mxnet(path, lambda file_name: mxnet().nd.save(file_name, named), needed)


def save_with_mxnet(path: Path, save: Callable[[str], object], needed_bytes: int) -> None:
    """``atomic_save`` for MXNet's writers, which report a short write only as an
    ``MXNetError`` ("FileStream.Write incomplete"): raised as an :class:`OSError` instead,
    ENOSPC when the folder has less room than the ``needed_bytes`` being written."""
    mx = mxnet()
    try:
        atomic_save(path, save)
    except mx.base.MXNetError as error:
        if shutil.disk_usage(path.parent).free < needed_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        reason = f"MXNet could not write it ({first_line(error)})"
        raise OSError(errno.EIO, reason, str(path)) from None


def _data_shape(path: Path) -> tuple[int, ...] | None:
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return next(tuple(int(n) for n in e["shape"]) for e in entries if e["name"] == DATA_NAME)
    except (ValueError, TypeError, KeyError, StopIteration):
        raise ModelError(
            f'{path} is not a list like [{{"name": "data", "shape": [N, C, H, W]}}]'
        ) from None


def _shape_fits(wanted: tuple[int, ...], given: tuple[int, ...]) -> bool:
    return len(wanted) == len(given) and all(w in (0, g) for w, g in zip(wanted, given))


def first_line(error: Exception) -> str:
    """An error's message in one line. MXNet's carry a C++ stack trace after it, or come as
    a trace ("Traceback (most recent call last):", frames) ending in ``MXNetError: message``."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if lines[0].startswith("Traceback") and len(lines) > 1:
        return lines[-1].removeprefix("MXNetError:").strip()
    return lines[0]
