"""Opening a trained model for inference, whatever its kind: run folder, ``model.tar.gz``,
checkpoint. (Not :mod:`imgcls_desktop.core.dataset.samples`, the data set's in-memory record.)

:func:`open_model` recognises the kind by itself:

- one of our run folders (``run.json``): the best epoch ``run.json`` records (never an
  epoch it does not record: when that file is missing, :class:`ModelError` says so), the
  class names and the preprocessing validation used;
- a SageMaker ``model.tar.gz``: extracted safely into a temporary folder (absolute paths,
  ``..``, links, devices and oversized members are refused), loaded, and the folder removed;
- a plain MXNet checkpoint named by ``PREFIX``, ``PREFIX-symbol.json`` or
  ``PREFIX-NNNN.params`` (or a folder holding one), the highest epoch unless one is named;
  inside a run folder, with the run's class names and preprocessing; epoch 0 is what
  Gluon's ``HybridBlock.export`` writes. A network ending in ``FullyConnected`` (an exported
  Gluon classifier) gives logits: softmax is applied.

The input shape is the one given (``--image-shape``), else ``model-shapes.json``'s, else
the ``image_shape`` of a ``hyperparameters.json`` beside the files, else SageMaker's
default 3,224,224; an assumption is stated in :attr:`LoadedModel.notes`.

Models without a preprocessing record get SageMaker's documented inference preprocessing:
decode, RGB, resize the whole image to H x W, raw 0-255 pixels in NCHW.

Archives are extracted under ``cache/models/archive-*`` and removed once loaded; folders a
killed process left there are removed when an archive is opened (after
:data:`STALE_ARCHIVE_SECONDS`, long after any extraction ends).
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.artifacts import (
    CHECKPOINT_PREFIX,
    SHAPES_FILE,
    ModelError,
    SymbolModel,
    checkpoint_epochs,
    list_checkpoints,
    load_symbol_model,
    params_file,
)
from imgcls_desktop.core.paths import cache_dir
from imgcls_desktop.core.preprocessing import Preprocessing, PreprocessingError
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME, OUTPUT_NAME
from imgcls_desktop.core.training.run import (
    CLASSES_FILE,
    HYPERPARAMETERS_FILE,
    PREPROCESSING_FILE,
    RunError,
    is_run_folder,
    read_run,
    validation_records,
)

if TYPE_CHECKING:
    from mxnet.ndarray import NDArray
    from mxnet.symbol import Symbol

#: Largest size of one archive member, and of all of them together.
MAX_ARCHIVE_BYTES = 2 * 1024**3
#: The input shape assumed for a model that records none (SageMaker's default image_shape).
DEFAULT_INPUT_SHAPE = (3, 224, 224)
#: Age after which an ``archive-*`` extraction folder is a left-over of a killed process.
STALE_ARCHIVE_SECONDS = 3600

_SYMBOL_SUFFIX = "-symbol.json"
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
#: What :func:`open_model` opens, for messages.
WHAT_A_MODEL_IS = (
    "a model is a training run folder, a SageMaker model.tar.gz, or an MXNet checkpoint "
    "(PREFIX-symbol.json with PREFIX-NNNN.params)"
)
_PARAMS_PATTERN = re.compile(r"(.+)-(\d{4,})\.params")
# Output operator -> (multi-label, a loss layer to replace by its forward function).
_HEADS = {
    "SoftmaxOutput": (False, True),
    "softmax": (False, False),
    "SoftmaxActivation": (False, False),
    "LogisticRegressionOutput": (True, True),
    "sigmoid": (True, False),
}


class SourceKind:
    """Where a model came from (:attr:`LoadedModel.source_kind`)."""

    RUN = "run"
    SAGEMAKER_ARCHIVE = "sagemaker_archive"
    CHECKPOINT = "checkpoint"


@dataclass
class LoadedModel:
    """A model ready for inference: network, weights, class names and how to prepare images.

    ``input_shape`` is (C, H, W); ``preprocessing`` is the run's record, or SageMaker's
    inference preprocessing (:meth:`Preprocessing.whole_image`). ``epoch`` is the
    checkpoint's epoch; ``path`` what the user opened; ``notes`` what was assumed to open
    it (an input shape, logits read through softmax), to tell the user.
    """

    symbol: Symbol
    arg_params: dict[str, NDArray]
    aux_params: dict[str, NDArray]
    class_names: list[str]
    input_shape: tuple[int, int, int]
    multi_label: bool
    preprocessing: Preprocessing
    source_kind: str
    path: Path
    epoch: int
    notes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """How many classes the model tells apart."""
        return len(self.class_names)

    def probability_symbol(self) -> Symbol:
        """``data`` -> probabilities ending in plain ``softmax`` or ``sigmoid``, no label input.

        A ``SoftmaxOutput`` / ``LogisticRegressionOutput`` head is replaced by the same
        function of its input; a symbol already ending in softmax or sigmoid is kept.
        """
        return _probability_symbol(self.symbol)


def open_model(
    path: Path,
    *,
    labels: Path | None = None,
    epoch: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> LoadedModel:
    """Open any model kind (see the module docstring); :class:`ModelError` says why not.

    ``labels``: class names, one per line in id order (``labels.txt``) or a JSON list
    (``classes.json``); else the run's, else ``class_0, class_1...``. ``epoch`` picks a
    checkpoint; ``input_shape`` (C, H, W) is used when there is no ``model-shapes.json``
    (else one is assumed, see the module docstring).
    """
    path = Path(path)
    if path.is_file() and tarfile.is_tarfile(path):
        return _open_archive(path, labels, epoch, input_shape)
    if path.is_file() and path.name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise ModelError(
            f"{path} is not a valid archive: it cannot be read as a .tar.gz (damaged, or only "
            "partly downloaded?)"
        )
    if path.is_dir() and is_run_folder(path):
        return _open_run(path, labels, epoch, input_shape)
    if (
        path.is_file()
        and not looks_like_model(path)
        and not path.with_name(path.name + _SYMBOL_SUFFIX).is_file()
    ):
        raise ModelError(f"{path} is not a model: {WHAT_A_MODEL_IS}")
    prefix, named_epoch = _checkpoint_prefix(path)
    # A checkpoint inside a run folder: the run's class names and preprocessing are its own.
    run_dir = prefix.parent if is_run_folder(prefix.parent) else None
    classes = None if run_dir is None else run_dir / CLASSES_FILE
    return _build(
        path,
        SourceKind.CHECKPOINT,
        prefix,
        named_epoch if epoch is None else epoch,
        labels or (classes if classes is not None and classes.is_file() else None),
        input_shape,
        None if run_dir is None else _read_preprocessing(run_dir / PREPROCESSING_FILE),
    )


def looks_like_model(path: Path) -> bool:
    """True when ``path`` names a model :func:`open_model` would try: a run folder, a
    ``.tar.gz``, a ``-symbol.json`` or ``-NNNN.params`` file, or a folder holding one
    checkpoint. Only names are looked at, no file is read."""
    path = Path(path)
    if path.is_dir():
        return is_run_folder(path) or len(list(path.glob(f"*{_SYMBOL_SUFFIX}"))) == 1
    name = path.name
    return name.endswith((".tar.gz", _SYMBOL_SUFFIX)) or _PARAMS_PATTERN.fullmatch(name) is not None


def run_validation_data(model_path: Path) -> Path | None:
    """The labelled images held out for validation by the run a model comes from: the
    run folder itself, or a checkpoint file inside it. None when the model is not a run's,
    or those images are gone."""
    model_path = Path(model_path)
    return validation_records(model_path if model_path.is_dir() else model_path.parent)


def read_class_names(path: Path) -> list[str]:
    """Class names from a ``labels.txt`` (one per line) or a JSON list (``classes.json``)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Notepad writes a BOM
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"cannot read the labels file {path}: {error}") from None
    if Path(path).suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelError(f"{path} is not a JSON list of class names")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ModelError(f"the labels file {path} names no class")
    return names


def _open_run(
    run_dir: Path,
    labels: Path | None,
    epoch: int | None,
    input_shape: tuple[int, int, int] | None,
) -> LoadedModel:
    if epoch is None:
        epoch = run_model_epoch(run_dir)
    classes = run_dir / CLASSES_FILE
    preprocessing = _read_preprocessing(run_dir / PREPROCESSING_FILE)
    return _build(
        run_dir,
        SourceKind.RUN,
        run_dir / CHECKPOINT_PREFIX,
        epoch,
        labels or (classes if classes.is_file() else None),
        input_shape,
        preprocessing,
    )


def run_model_epoch(run_dir: Path) -> int:
    """The epoch of a run folder's model: the best epoch its ``run.json`` records.

    :class:`ModelError` when no epoch has finished, or when that epoch's checkpoint is
    missing: a checkpoint ``run.json`` does not record (of an epoch that never completed) is
    never used silently.
    """
    try:
        best = read_run(run_dir).best_epoch
    except RunError as error:
        raise ModelError(str(error)) from None
    if best is None:
        raise ModelError(f"{run_dir} has no model yet: no epoch has finished (resume the run)")
    if not (Path(run_dir) / params_file(best)).is_file():
        others = [epoch for epoch in list_checkpoints(run_dir) if epoch != best]
        hint = (
            f"; to use another checkpoint anyway, open its file (e.g. {params_file(others[-1])})"
            if others
            else ""
        )
        raise ModelError(
            f"{run_dir} is damaged: its run.json names epoch {best} as the best model, but "
            f"{params_file(best)} is missing{hint}"
        )
    return best


def _open_archive(
    archive: Path,
    labels: Path | None,
    epoch: int | None,
    input_shape: tuple[int, int, int] | None,
) -> LoadedModel:
    folder = cache_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_extractions(folder)
    with tempfile.TemporaryDirectory(prefix="archive-", dir=folder) as temporary:
        extracted = Path(temporary)
        extract_archive(archive, extracted)
        symbols = sorted(extracted.rglob(f"*{_SYMBOL_SUFFIX}"))
        if len(symbols) != 1:
            found = "no" if not symbols else "more than one"
            raise ModelError(f"{archive} holds {found} *{_SYMBOL_SUFFIX} file")
        prefix = symbols[0].with_name(symbols[0].name[: -len(_SYMBOL_SUFFIX)])
        return _build(
            archive, SourceKind.SAGEMAKER_ARCHIVE, prefix, epoch, labels, input_shape, None
        )


def remove_stale_extractions(folder: Path) -> None:
    """Remove the ``archive-*`` folders in ``folder`` older than :data:`STALE_ARCHIVE_SECONDS`
    (left by a process killed while it opened an archive); younger ones may be in use."""
    now = time.time()
    for path in folder.glob("archive-*"):
        try:
            stale = path.is_dir() and now - path.stat().st_mtime > STALE_ARCHIVE_SECONDS
        except OSError:  # removed meanwhile by another process
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


def extract_archive(archive: Path, folder: Path) -> None:
    """Extract a ``model.tar.gz``'s regular files into ``folder``, refusing unsafe members.

    Absolute paths, ``..``, links, devices and members over :data:`MAX_ARCHIVE_BYTES`
    (alone or together) raise :class:`ModelError` before anything is written.
    """
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            files = [member for member in members if _checked_member(archive, member)]
            total = sum(member.size for member in files)
            if total > MAX_ARCHIVE_BYTES:
                raise ModelError(
                    f"{archive} is refused: its files hold {total} bytes, more than a model "
                    f"archive may ({MAX_ARCHIVE_BYTES})"
                )
            for member in files:
                target = folder.joinpath(*PurePosixPath(member.name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ModelError(f"cannot read the model archive {archive}: {error}") from None


def _checked_member(archive: Path, member: tarfile.TarInfo) -> bool:
    """True for a regular file to extract, False for a folder; unsafe members raise."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        reason = "an absolute path"
    elif ".." in parts or "\\" in name:
        reason = "a path outside the archive's folder"
    elif member.issym() or member.islnk():
        reason = "a link"
    elif member.isdir():
        return False
    elif not member.isfile():
        reason = "a device or special file"
    elif member.size > MAX_ARCHIVE_BYTES:
        reason = f"{member.size} bytes, more than a model file may ({MAX_ARCHIVE_BYTES})"
    else:
        return True
    raise ModelError(f"{archive} is refused as unsafe: member {name!r} is {reason}")


def _checkpoint_prefix(path: Path) -> tuple[Path, int | None]:
    """The checkpoint prefix a path names, and the epoch when a ``.params`` file is named."""
    name = path.name
    if name.endswith(_SYMBOL_SUFFIX):
        return path.with_name(name[: -len(_SYMBOL_SUFFIX)]), None
    match = _PARAMS_PATTERN.fullmatch(name)
    if match:
        return path.with_name(match.group(1)), int(match.group(2))
    if path.is_dir():
        symbols = sorted(path.glob(f"*{_SYMBOL_SUFFIX}"))
        if len(symbols) == 1:
            return symbols[0].with_name(symbols[0].name[: -len(_SYMBOL_SUFFIX)]), None
        return path / CHECKPOINT_PREFIX, None
    if not path.exists() and not path.with_name(name + _SYMBOL_SUFFIX).is_file():
        raise ModelError(f"no model at {path}: there is no such file or folder")
    return path, None


def _build(
    path: Path,
    kind: str,
    prefix: Path,
    epoch: int | None,
    labels: Path | None,
    input_shape: tuple[int, int, int] | None,
    preprocessing: Preprocessing | None,
) -> LoadedModel:
    """Load the checkpoint at ``prefix`` and check it fits its shape and class names."""
    if epoch is None:
        epoch = max(checkpoint_epochs(prefix), default=None)
    loaded = load_symbol_model(prefix, epoch)  # raises when there is no epoch
    assert epoch is not None
    shape, notes = _input_shape(path, prefix, input_shape, loaded.data_shape)
    symbol = loaded.symbol
    if _output_op(symbol) == "FullyConnected":
        symbol = mxnet().sym.softmax(symbol, axis=-1, name=OUTPUT_NAME)
        notes.append(
            f"the model at {path} ends in FullyConnected, not softmax (as Gluon's "
            "HybridBlock.export leaves a classifier): its outputs are read as logits"
        )
    multi_label, _loss_layer = _head_kind(symbol)
    outputs = _check_fits(path, _probability_symbol(symbol), shape, loaded, assumed=notes)
    names = read_class_names(labels) if labels else [f"class_{i}" for i in range(outputs)]
    if len(names) != outputs:
        raise ModelError(
            f"the model at {path} has {outputs} outputs but {len(names)} class names were "
            f"given{f' ({labels})' if labels else ''}"
        )
    if preprocessing is None:
        preprocessing = Preprocessing.whole_image(shape, multi_label)
    else:
        recorded = preprocessing.shape
        if recorded != shape:
            raise ModelError(
                f"the preprocessing record of {path} prepares {recorded} images but the "
                f"model takes {shape}"
            )
    return LoadedModel(
        symbol=symbol,
        arg_params=loaded.arg_params,
        aux_params=loaded.aux_params,
        class_names=list(names),
        input_shape=shape,
        multi_label=multi_label,
        preprocessing=preprocessing,
        source_kind=kind,
        path=path,
        epoch=epoch,
        notes=tuple(notes),
    )


def _input_shape(
    path: Path,
    prefix: Path,
    given: tuple[int, int, int] | None,
    data_shape: tuple[int, ...] | None,
) -> tuple[tuple[int, int, int], list[str]]:
    """(C, H, W) and, when it was assumed, a note saying so."""
    notes = []
    if given is not None:
        shape = tuple(int(n) for n in given)
    elif data_shape is not None:
        shape = tuple(int(n) for n in data_shape[1:])
    else:
        recorded = _recorded_image_shape(prefix.parent / HYPERPARAMETERS_FILE)
        shape = recorded or DEFAULT_INPUT_SHAPE
        source = f"the image_shape of {HYPERPARAMETERS_FILE}" if recorded else "SageMaker's default"
        notes.append(
            f"the model at {path} has no {SHAPES_FILE}: assumed input shape "
            f"{','.join(map(str, shape))} ({source}); give another with --image-shape C,H,W"
        )
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise ModelError(f"the input shape {shape} of {path} is not C,H,W with C 1 or 3")
    return shape, notes  # type: ignore[return-value]


def _recorded_image_shape(path: Path) -> tuple[int, ...] | None:
    """The ``image_shape`` of a SageMaker ``hyperparameters.json``, when it has a usable one."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return tuple(int(n) for n in values["image_shape"].split(","))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _output_op(symbol: Symbol) -> str:
    """The operator of the symbol's single output (an activation by its type)."""
    graph = json.loads(symbol.tojson())
    if len(graph["heads"]) != 1:
        raise ModelError(f"the model has {len(graph['heads'])} outputs; one was expected")
    head = graph["nodes"][graph["heads"][0][0]]
    op = head["op"]
    if op == "Activation":
        op = head.get("attrs", {}).get("act_type", op)
    return op


def _head_kind(symbol: Symbol) -> tuple[bool, bool]:
    """(multi-label, ends in a loss layer) for the symbol's single output."""
    op = _output_op(symbol)
    if op not in _HEADS:
        raise ModelError(
            f"the model's output is {op!r}, not probabilities (SoftmaxOutput, softmax or sigmoid)"
        )
    return _HEADS[op]


def _probability_symbol(symbol: Symbol) -> Symbol:
    multi_label, loss_layer = _head_kind(symbol)
    if not loss_layer:
        return symbol
    logits = symbol.get_children()[0]
    sym = mxnet().sym
    if multi_label:
        return sym.sigmoid(logits, name=OUTPUT_NAME)
    return sym.softmax(logits, axis=-1, name=OUTPUT_NAME)


def _check_fits(
    path: Path,
    symbol: Symbol,
    shape: tuple[int, int, int],
    loaded: SymbolModel,
    *,
    assumed: list[str],
) -> int:
    """Check every weight is there with the shape ``shape`` needs; the number of outputs.

    ``assumed``: the notes of an assumed input shape, which a misfit names."""
    mx = mxnet()
    hint = f" ({assumed[0]})" if assumed else ""
    try:
        arg_shapes, out_shapes, aux_shapes = symbol.infer_shape(**{DATA_NAME: (1, *shape)})
    except mx.base.MXNetError:
        raise ModelError(f"the model at {path} cannot take {shape} images{hint}") from None
    if arg_shapes is None:
        raise ModelError(f"the model at {path} does not say what its input is ({DATA_NAME!r})")
    wanted = dict(zip(symbol.list_arguments(), arg_shapes))
    wanted.pop(DATA_NAME, None)
    wanted.update(zip(symbol.list_auxiliary_states(), aux_shapes))
    arrays = {**loaded.arg_params, **loaded.aux_params}
    for name, needed in wanted.items():
        if name not in arrays:
            raise ModelError(f"the weights of {path} lack {name!r}")
        if tuple(arrays[name].shape) != tuple(needed):
            raise ModelError(
                f"the weights of {path} do not fit: {name!r} is {tuple(arrays[name].shape)}, "
                f"the network needs {tuple(needed)} for {shape} images{hint}"
            )
    output = out_shapes[0]
    if len(output) != 2:
        raise ModelError(f"the model at {path} gives {output}-shaped outputs, not N x classes")
    return int(output[1])


def _read_preprocessing(path: Path) -> Preprocessing | None:
    """A run's preprocessing record (None when it has none); :class:`ModelError` if damaged."""
    values = _read_json(path, dict)
    if values is None:
        return None
    try:
        return Preprocessing.from_json(values)
    except PreprocessingError as error:
        raise ModelError(f"{path} is damaged: {error}") from None


def _read_json(path: Path, kind: type) -> Any:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}") from None
    if not isinstance(value, kind):
        raise ModelError(f"{path} is not a JSON {kind.__name__}")
    return value
