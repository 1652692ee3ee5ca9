"""Exporting a trained *model* as a SageMaker ``model.tar.gz``, an ONNX file or a plain MXNet
checkpoint (``imgcls model export``; the Inference tab's Export Model).

Not to be confused with :mod:`imgcls_desktop.core.dataset.recordio_export`, which exports a *data
set* of images as RecordIO files for training.

Any model :func:`~imgcls_desktop.core.models.open_model` opens can be exported. Every file
takes raw RGB pixels (0-255, NCHW) and gives probabilities, as the model does:

- ``sagemaker``: ``model.tar.gz`` holding ``image-classification-symbol.json``,
  ``image-classification-NNNN.params`` (NNNN = the model's epoch) and ``model-shapes.json``
  at the archive root, what SageMaker hosting and ``mx.model.load_checkpoint`` load;
- ``onnx``: the probability symbol (logits followed by plain softmax or sigmoid: the
  exporter fails on ``SoftmaxOutput``) with a dynamic batch dimension where the exporter
  manages one, else a batch of 1, as opset 13 on any onnx (see
  :mod:`~imgcls_desktop.core.onnx_compat`); the class names are in the model's metadata
  (``class_names``, a JSON list);
- ``mxnet``: ``PREFIX-symbol.json`` and ``PREFIX-0001.params``, with ``model-shapes.json``
  and ``labels.txt`` (one class name per line) beside them. They are written in the order
  ``labels.txt``, ``model-shapes.json``, params, symbol: the symbol is what makes the files
  a model, so a killed export never leaves one that opens with an assumed input shape.

Every file is written to a temporary file (``.NAME.xxxxxxxx.tmp``) and renamed into place;
an export first removes such files a killed export of the same names left. An export never
writes over a file of the model it exports (its archive, or the checkpoint and run files in
its folder), and replaces existing files only with ``overwrite``.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from imgcls_desktop.core.artifacts import CHECKPOINT_PREFIX, SHAPES_FILE, ModelError
from imgcls_desktop.core.atomic import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_text,
    files_among,
    remove_leftover_temporaries,
)
from imgcls_desktop.core.models import LoadedModel, SourceKind, open_model
from imgcls_desktop.core.onnx_compat import declare_translated_opset, provide_onnx_mapping
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME
from imgcls_desktop.core.training.run import (
    CLASSES_FILE,
    HYPERPARAMETERS_FILE,
    PREPROCESSING_FILE,
    RUN_FILE,
)

if TYPE_CHECKING:
    from mxnet.symbol import Symbol

ExportFormat = Literal["sagemaker", "onnx", "mxnet"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
LABELS_FILE = "labels.txt"
ARCHIVE_NAME = "model.tar.gz"
ONNX_NAME = "model.onnx"
#: ``mxnet`` exports are written as this epoch.
MXNET_EPOCH = 1
# Files a model's folder may hold besides checkpoints (an export never writes over them).
_MODEL_FOLDER_FILES = frozenset(
    {SHAPES_FILE, LABELS_FILE, CLASSES_FILE, HYPERPARAMETERS_FILE, PREPROCESSING_FILE, RUN_FILE}
)


class ExistingExportError(ModelError):
    """The export would replace existing files (``files``) and overwriting was not allowed."""

    def __init__(self, message: str, files: list[Path]) -> None:
        super().__init__(message)
        self.files = files


def export_model(
    model_or_run: Path | LoadedModel,
    fmt: ExportFormat,
    output: Path,
    *,
    labels: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a model (a path :func:`open_model` opens, or an opened model); the file written.

    ``output`` is the archive or ONNX file, or for ``mxnet`` the checkpoint prefix; an
    existing folder receives ``model.tar.gz``, ``model.onnx`` or ``image-classification-*``.
    ``labels`` names the classes of a model opened from a path (see :func:`open_model`).
    Returns the archive, the ONNX file or the ``PREFIX-symbol.json`` written.

    Refuses (:class:`ModelError`, before writing anything) to write over a file of the model
    itself or over ``labels`` (also when an opened model is given), and, unless
    ``overwrite``, over any of :func:`existing_export_files` (:class:`ExistingExportError`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    if isinstance(model_or_run, LoadedModel):
        model = model_or_run
    else:
        model = open_model(Path(model_or_run), labels=labels)
    files, target = export_files(Path(output), fmt), _target(Path(output), fmt)
    _refuse_to_replace(model, labels, files, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_temporaries(target.parent, names={path.name for path in files})
    if fmt == "sagemaker":
        return _export_sagemaker(model, target)
    if fmt == "onnx":
        return _export_onnx(model, target)
    return _export_mxnet(model, target)


def export_files(output: Path, fmt: ExportFormat) -> list[Path]:
    """The files exporting as ``fmt`` to ``output`` writes (see :func:`export_model`)."""
    target = _target(Path(output), fmt)
    if fmt != "mxnet":
        return [target]
    return [
        target.with_name(f"{target.name}-symbol.json"),
        target.with_name(f"{target.name}-{MXNET_EPOCH:04d}.params"),
        target.parent / SHAPES_FILE,
        target.parent / LABELS_FILE,
    ]


def _target(output: Path, fmt: ExportFormat) -> Path:
    """The archive, the ONNX file or the checkpoint prefix ``output`` names."""
    in_folder = {"sagemaker": ARCHIVE_NAME, "onnx": ONNX_NAME, "mxnet": CHECKPOINT_PREFIX}[fmt]
    return output / in_folder if output.is_dir() else output


def existing_export_files(output: Path, fmt: ExportFormat) -> list[Path]:
    """The files an export as ``fmt`` to ``output`` would replace."""
    return [path for path in export_files(output, fmt) if path.is_file()]


def _refuse_to_replace(
    model: LoadedModel, labels: Path | None, targets: list[Path], overwrite: bool
) -> None:
    """ModelError when an export to ``targets`` would write over the model's own files or
    its ``labels``, or over existing files without ``overwrite``."""
    inputs = files_among(targets, [*_model_files(model), *([Path(labels)] if labels else [])])
    if inputs:
        raise ModelError(
            f"cannot write {', '.join(path.name for path in inputs)} in {inputs[0].parent}: "
            f"they are files of the model being exported ({model.path}); export to another "
            "folder"
        )
    existing = [] if overwrite else [path for path in targets if path.is_file()]
    if existing:
        raise ExistingExportError(
            f"{existing[0].parent} already holds {', '.join(path.name for path in existing)}; "
            "export to another place, or allow overwriting them",
            existing,
        )


def _model_files(model: LoadedModel) -> list[Path]:
    """The files ``model`` was opened from, or may be: its archive, or in its folder (a run
    folder, or the folder of a checkpoint) every checkpoint file and model record."""
    if model.source_kind == SourceKind.SAGEMAKER_ARCHIVE:
        return [model.path]
    folder = model.path if model.path.is_dir() else model.path.parent
    return [
        path
        for path in folder.iterdir()
        if path.name in _MODEL_FOLDER_FILES or path.name.endswith(("-symbol.json", ".params"))
    ]


def _export_sagemaker(model: LoadedModel, archive: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="imgcls-export-") as folder:
        files = _write_checkpoint(model, Path(folder) / CHECKPOINT_PREFIX, model.epoch)

        def write_archive(file_name: str) -> None:
            with tarfile.open(file_name, "w:gz") as tar:
                for path in files:
                    tar.add(path, arcname=path.name, filter=_plain_member)

        atomic_save(archive, write_archive)
    return archive


def _export_mxnet(model: LoadedModel, prefix: Path) -> Path:
    atomic_write_text(prefix.parent / LABELS_FILE, "".join(f"{n}\n" for n in model.class_names))
    symbol_path, _params, _shapes = _write_checkpoint(model, prefix, MXNET_EPOCH)
    return symbol_path


def _write_checkpoint(model: LoadedModel, prefix: Path, epoch: int) -> tuple[Path, Path, Path]:
    """``model-shapes.json``, ``PREFIX-NNNN.params`` and ``PREFIX-symbol.json``, in this
    order: the symbol, which makes the files a model, comes last."""
    mx = mxnet()
    shapes_path = prefix.parent / SHAPES_FILE
    shapes = [{"name": DATA_NAME, "shape": [1, *model.input_shape]}]
    atomic_write_text(shapes_path, json.dumps(shapes) + "\n")
    arrays = {f"arg:{name}": value for name, value in model.arg_params.items()}
    arrays.update({f"aux:{name}": value for name, value in model.aux_params.items()})
    params_path = prefix.with_name(f"{prefix.name}-{epoch:04d}.params")
    atomic_save(params_path, lambda file_name: mx.nd.save(file_name, arrays))
    symbol_path = prefix.with_name(f"{prefix.name}-symbol.json")
    atomic_write_text(symbol_path, model.symbol.tojson())
    return symbol_path, params_path, shapes_path


def _plain_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """An archive member without this machine's owner names."""
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mode = 0o644
    return member


def _export_onnx(model: LoadedModel, path: Path) -> Path:
    symbol = model.probability_symbol()
    wanted = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    weights = {**model.arg_params, **model.aux_params}
    symbol, params = _exporter_ready(
        symbol, {name: value for name, value in weights.items() if name in wanted}
    )
    failure = ""
    for batch in (None, 1):
        try:
            exported = _onnx_bytes(symbol, params, model, batch)
            _check_runs(exported, model.input_shape, batch or 2)
        # MXNet's converters and ONNX Runtime raise all kinds of errors; any of them means
        # this attempt failed (a dynamic batch is tried first, then a fixed one).
        except Exception as error:
            failure = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            continue
        atomic_write_bytes(path, exported)
        return path
    raise ModelError(f"cannot export the model at {model.path} to ONNX: {failure}")


def _onnx_bytes(
    symbol: Symbol, params: dict[str, Any], model: LoadedModel, batch: int | None
) -> bytes:
    """The ONNX model MXNet's exporter makes, with only ``data`` as input, the opset its
    translations are written for, and class names."""
    import onnx

    mx = mxnet()
    provide_onnx_mapping()
    shape = (1, *model.input_shape)
    dynamic = {"dynamic": True, "dynamic_input_shapes": [(None, *shape[1:])]} if not batch else {}
    with tempfile.TemporaryDirectory(prefix="imgcls-export-") as folder:
        exported = Path(folder) / ONNX_NAME
        mx.onnx.export_model(
            symbol,
            params,
            in_shapes=[shape],
            in_types=[np.float32],
            onnx_file_path=str(exported),
            **dynamic,
        )
        onnx_model = onnx.load(str(exported))
    # MXNet's exporter also lists every weight as an input, which stops ONNX Runtime from
    # folding them as constants, and leaves constants no node uses.
    graph = onnx_model.graph
    used = {name for node in graph.node for name in node.input}
    weights = [initializer for initializer in graph.initializer if initializer.name in used]
    inputs = [value for value in graph.input if value.name == DATA_NAME]
    del graph.initializer[:], graph.input[:]
    graph.initializer.extend(weights)
    graph.input.extend(inputs)
    declare_translated_opset(onnx_model)
    for key, value in (("class_names", model.class_names), ("multi_label", model.multi_label)):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    return onnx_model.SerializeToString()


def _check_runs(exported: bytes, input_shape: tuple[int, int, int], batch: int) -> None:
    """Run the exported model once in ONNX Runtime (some exports only fail there)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(exported, providers=["CPUExecutionProvider"])
    session.run(None, {DATA_NAME: np.zeros((batch, *input_shape), dtype=np.float32)})


def _exporter_ready(symbol: Symbol, params: dict[str, Any]) -> tuple[Symbol, dict[str, Any]]:
    """The symbol and weights with the MXNet defaults the ONNX exporter misreads made explicit.

    The exporter reads a missing ``flatten`` of ``FullyConnected`` as False (MXNet's default
    is True; it then fails on a 4-D input) and ignores ``fix_gamma`` of ``BatchNorm`` (MXNet's
    default is True: gamma is taken as 1, whatever is stored).
    """
    mx = mxnet()
    graph = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    params = dict(params)
    for node in nodes:
        attrs = node.setdefault("attrs", {})
        if node["op"] == "FullyConnected":
            attrs["flatten"] = str(_flag(attrs, "flatten"))
        elif node["op"] == "BatchNorm" and _flag(attrs, "fix_gamma"):
            gamma = nodes[node["inputs"][1][0]]["name"]
            params[gamma] = mx.nd.ones_like(params[gamma])
            attrs["fix_gamma"] = "False"
    return mx.sym.load_json(json.dumps(graph)), params


def _flag(attrs: dict[str, str], name: str) -> bool:
    """A boolean operator attribute as MXNet reads it (``flatten`` and ``fix_gamma`` default
    to True)."""
    return attrs.get(name, "True").strip().lower() in ("true", "1")
