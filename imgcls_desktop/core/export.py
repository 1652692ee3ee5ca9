"""Exporting a model as a SageMaker ``model.tar.gz``, an ONNX file or a plain MXNet checkpoint.

Any model :func:`~imgcls_desktop.core.models.open_model` opens can be exported. Every file
takes raw RGB pixels (0-255, NCHW) and gives probabilities, as the model does:

- ``sagemaker``: ``model.tar.gz`` holding ``image-classification-symbol.json``,
  ``image-classification-NNNN.params`` (NNNN = the model's epoch) and ``model-shapes.json``
  at the archive root, what SageMaker hosting and ``mx.model.load_checkpoint`` load;
- ``onnx``: the probability symbol (logits followed by plain softmax or sigmoid: the
  exporter fails on ``SoftmaxOutput``) with a dynamic batch dimension where the exporter
  manages one, else a batch of 1; the class names are in the model's metadata
  (``class_names``, a JSON list);
- ``mxnet``: ``PREFIX-symbol.json`` and ``PREFIX-0001.params``, with ``model-shapes.json``
  and ``labels.txt`` (one class name per line) beside them.

Every file is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from imgcls_desktop.core.artifacts import CHECKPOINT_PREFIX, SHAPES_FILE, ModelError
from imgcls_desktop.core.atomic import atomic_save, atomic_write_bytes, atomic_write_text
from imgcls_desktop.core.models import LoadedModel, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME

if TYPE_CHECKING:
    from mxnet.symbol import Symbol

ExportFormat = Literal["sagemaker", "onnx", "mxnet"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
LABELS_FILE = "labels.txt"
ARCHIVE_NAME = "model.tar.gz"
ONNX_NAME = "model.onnx"
#: ``mxnet`` exports are written as this epoch.
MXNET_EPOCH = 1


def export_model(
    model_or_run: Path | LoadedModel,
    fmt: ExportFormat,
    output: Path,
    *,
    labels: Path | None = None,
) -> Path:
    """Export a model (a path :func:`open_model` opens, or an opened model); the file written.

    ``output`` is the archive or ONNX file, or for ``mxnet`` the checkpoint prefix; an
    existing folder receives ``model.tar.gz``, ``model.onnx`` or ``image-classification-*``.
    ``labels`` names the classes of a model opened from a path (see :func:`open_model`).
    Returns the archive, the ONNX file or the ``PREFIX-symbol.json`` written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    if isinstance(model_or_run, LoadedModel):
        model = model_or_run
    else:
        model = open_model(Path(model_or_run), labels=labels)
    output = Path(output)
    if fmt == "sagemaker":
        return _export_sagemaker(model, _target(output, ARCHIVE_NAME))
    if fmt == "onnx":
        return _export_onnx(model, _target(output, ONNX_NAME))
    return _export_mxnet(model, _target(output, CHECKPOINT_PREFIX))


def _target(output: Path, name_in_folder: str) -> Path:
    target = output / name_in_folder if output.is_dir() else output
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


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
    symbol_path, _params, _shapes = _write_checkpoint(model, prefix, MXNET_EPOCH)
    atomic_write_text(prefix.parent / LABELS_FILE, "".join(f"{n}\n" for n in model.class_names))
    return symbol_path


def _write_checkpoint(model: LoadedModel, prefix: Path, epoch: int) -> tuple[Path, Path, Path]:
    """``PREFIX-symbol.json``, ``PREFIX-NNNN.params`` and ``model-shapes.json`` beside them."""
    mx = mxnet()
    arrays = {f"arg:{name}": value for name, value in model.arg_params.items()}
    arrays.update({f"aux:{name}": value for name, value in model.aux_params.items()})
    params_path = prefix.with_name(f"{prefix.name}-{epoch:04d}.params")
    atomic_save(params_path, lambda file_name: mx.nd.save(file_name, arrays))
    symbol_path = prefix.with_name(f"{prefix.name}-symbol.json")
    atomic_write_text(symbol_path, model.symbol.tojson())
    shapes_path = prefix.parent / SHAPES_FILE
    shapes = [{"name": DATA_NAME, "shape": [1, *model.input_shape]}]
    atomic_write_text(shapes_path, json.dumps(shapes) + "\n")
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
    """The ONNX model MXNet's exporter makes, with only ``data`` as input and class names."""
    import onnx

    mx = mxnet()
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
