"""Reduced-precision inference on the CPU, each precision checked against fp32 before use.

- ``int8``: the network is quantized with oneDNN (``mxnet.contrib.quantization``, smart
  mode: the layers oneDNN runs well in int8), its ranges calibrated on
  :data:`CALIBRATION_IMAGES` images of the model's own training data (else of the check
  images).
- ``bf16``: the network is converted with ``mxnet.contrib.amp``; oneDNN runs it only on CPUs
  with AVX512-BF16 or AMX, which is found out once by running a small bf16 convolution.
- Before a reduced precision is used, fp32 and it label the same labelled images (up to
  :data:`CHECK_IMAGES`, evenly spread: the run's validation images, or data the user gives):
  their accuracies, and their speed ratio (forward passes of one batch, the best of three
  timings of each taken in turn, in one process), are the :class:`PrecisionCheck` the user
  is shown.
- ``auto`` takes the fastest precision whose accuracy is within
  :data:`AUTO_TOLERANCE_POINTS` of fp32's; without labelled images it keeps fp32 and says
  why.

The quantized network and the checks are cached beside the model (``precision/`` in its
run folder; for other models, under the app's cache), keyed by the model's network and
weights, its preprocessing and the images used: a retrained model gets a new key. Only
JSON and MXNet's array files are written and read back, never code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.dataset.images import IMAGE_ERRORS
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset, DatasetError
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.evaluation import align_classes, evaluate_predictions
from imgcls_desktop.core.inference import Network, Predictor, symbol_block
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.models import SourceKind
from imgcls_desktop.core.paths import cache_dir
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import DATA_NAME
from imgcls_desktop.core.training.run import RunError, is_run_folder, read_run

if TYPE_CHECKING:
    from mxnet.context import Context

#: What ``--precision`` and the Inference tab offer.
PRECISIONS = ("auto", "fp32", "int8", "bf16")
REDUCED_PRECISIONS = ("int8", "bf16")
#: ``auto`` keeps a reduced precision only this close to fp32's accuracy (in points).
AUTO_TOLERANCE_POINTS = 0.5
CALIBRATION_IMAGES = 64
CHECK_IMAGES = 256
#: The prepared check images are held in memory: at most this many bytes of them.
MAX_CHECK_BYTES = 256 * 1024**2
PRECISION_FOLDER = "precision"
#: Cached networks and checks kept per folder, the most recently used.
KEEP_CACHED = 4
HOW_TO_CHECK = (
    "give labelled images to check it on (imgcls: --check-data DATA, a folder per class, "
    "a .lst or a .rec), or use fp32"
)
_CHECK_FILE = "check.json"
_SYMBOL_FILE = "network-symbol.json"
_PARAMS_FILE = "network.params"
_NO_BF16 = "this CPU has neither AVX512-BF16 nor AMX, which oneDNN needs to run bf16"
# The speed ratio: best of this many timings of each precision, each at least this long.
_SPEED_ROUNDS = 3
_MIN_TIMING_SECONDS = 0.2
# A cache entry being written by a process that died is removed after this many seconds.
_STALE_SECONDS = 3600
# Bump when the conversion changes, so that older cached networks are not used.
_CONVERSION_VERSION = 1


class PrecisionError(ValueError):
    """A precision cannot be used here, and why."""


@dataclass(frozen=True)
class PrecisionCheck:
    """fp32 and ``precision`` on the same labelled images: accuracies and speed ratio."""

    precision: str
    accuracy: float
    fp32_accuracy: float
    images: int
    #: How many times fp32's speed: one batch's forward pass, the best of three timings.
    speedup: float
    #: What the images were, for the user: "validation images of the run", a data path.
    images_from: str

    @property
    def points(self) -> float:
        """Accuracy change against fp32, in percentage points (negative: worse)."""
        return 100 * (self.accuracy - self.fp32_accuracy)

    @property
    def within_tolerance(self) -> bool:
        """True when the accuracy is within :data:`AUTO_TOLERANCE_POINTS` of fp32's."""
        return self.points >= -AUTO_TOLERANCE_POINTS - 1e-9

    def describe(self) -> str:
        """One line: ``int8: 2.31x fp32's speed, accuracy ... on 256 validation images``."""
        return (
            f"{self.precision}: {self.speedup:.2f}x fp32's speed, accuracy "
            f"{self.accuracy:.1%} against fp32's {self.fp32_accuracy:.1%} "
            f"({self.points:+.1f} points) on {self.images} {self.images_from}"
        )


@dataclass(frozen=True)
class CheckData:
    """Labelled images to check reduced precisions on, and to calibrate int8 with."""

    check: Dataset
    calibration: Dataset
    #: What the check images are, for the user.
    description: str


def unavailable_reason(precision: str, context: Context) -> str | None:
    """Why ``precision`` cannot run on ``context`` here; None when it can."""
    if precision == "fp32":
        return None
    if context.device_type != "cpu":
        return f"MXNet 1.9 runs {precision} on the CPU only, and the model is open on {context}"
    if not mxnet().runtime.Features().is_enabled("MKLDNN"):
        return f"this MXNet build has no oneDNN (MKLDNN), which {precision} needs"
    if precision == "bf16":
        return _bf16_unavailable()
    return None


def run_check_data(model_path: Path) -> CheckData | None:
    """The run's own images for a run folder (or a checkpoint in one): its validation
    images to check on, its training images to calibrate with; None when the model is not
    a run's or its data is gone."""
    model_path = Path(model_path)
    run_dir = model_path if model_path.is_dir() else model_path.parent
    if not is_run_folder(run_dir):
        return None
    try:
        data = read_run(run_dir).data
    except RunError:
        return None
    if data is None or not data.val_rec.is_file():
        return None
    try:
        check = load_dataset(data.val_rec)
        calibration = load_dataset(data.train_rec) if data.train_rec.is_file() else check
    except DatasetError:
        return None
    return CheckData(check, calibration, "validation images of the run")


def given_check_data(path: Path) -> CheckData:
    """Labelled images the user gives (any data set :func:`load_dataset` reads)."""
    dataset = load_dataset(Path(path))
    return CheckData(dataset, dataset, f"images of {Path(path).name}")


def choose_precision(
    predictor: Predictor,
    requested: str,
    data: CheckData | None,
    *,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> Predictor:
    """A predictor running the model in the ``requested`` precision (see the module
    docstring); its :attr:`Network.note` says what was chosen and measured.

    :class:`PrecisionError` when an explicitly requested precision cannot run here, or
    there are no labelled images to check it on.
    """
    if requested not in PRECISIONS:
        raise PrecisionError(f"the precision must be one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return predictor
    candidates = REDUCED_PRECISIONS if requested == "auto" else (requested,)
    reasons = {p: unavailable_reason(p, predictor.context) for p in candidates}
    if requested != "auto" and reasons[requested]:
        raise PrecisionError(f"{requested} cannot be used here: {reasons[requested]}")
    usable = [p for p in candidates if reasons[p] is None]
    if not usable:
        why = "; ".join(f"{p}: {reason}" for p, reason in reasons.items())
        return _noted(predictor, f"auto chose fp32 ({why})")
    if data is None:
        if requested == "auto":
            return _noted(
                predictor,
                "auto chose fp32: there are no labelled images to check int8 and bf16 on "
                "(the model is not a run's, or its data is gone)",
            )
        raise PrecisionError(
            f"{requested} is checked against fp32 on labelled images before it is used, and "
            f"this model's run data is not there: {HOW_TO_CHECK}"
        )
    checked = _check_all(predictor, usable, data, progress, cancel)
    if requested != "auto":
        reduced, check = checked[requested]
        warning = (
            ""
            if check.within_tolerance
            else f" (more than {AUTO_TOLERANCE_POINTS} points below fp32: consider fp32)"
        )
        return _noted(reduced, check.describe() + warning)
    fastest = max(
        (c for _n, c in checked.values() if c.within_tolerance and c.speedup > 1),
        key=lambda c: c.speedup,
        default=None,
    )
    if fastest is None:
        why = "; ".join(check.describe() for _n, check in checked.values())
        return _noted(predictor, f"auto chose fp32: no faster precision kept its accuracy ({why})")
    return _noted(checked[fastest.precision][0], f"auto chose {fastest.describe()}")


def _noted(predictor: Predictor, note: str) -> Predictor:
    predictor.network = replace(predictor.network, note=note)
    return predictor


def _rebuilt(predictor: Predictor, network: Network) -> Predictor:
    return Predictor(
        predictor.model, device=predictor.device, batch_size=predictor.batch_size, network=network
    )


def _check_all(
    predictor: Predictor,
    precisions: Sequence[str],
    data: CheckData,
    progress: ProgressFn,
    cancel: CancelFlag | None,
) -> dict[str, tuple[Predictor, PrecisionCheck]]:
    """Each precision's predictor and check, from the cache or made now."""
    folder = _cache_folder(predictor)
    key = _cache_key(predictor, data)
    found: dict[str, tuple[Predictor, PrecisionCheck]] = {}
    for precision in precisions:
        cached = _read_cached(folder / f"{precision}-{key}", predictor, precision)
        if cached is not None:
            network, check = cached
            found[precision] = (_rebuilt(predictor, network), check)
    missing = [p for p in precisions if p not in found]
    if not missing:
        return found
    check_pixels, labels = _prepared(predictor, data.check, CHECK_IMAGES, cancel)
    calibration = None
    if "int8" in missing:
        calibration, _ = _prepared(predictor, data.calibration, CALIBRATION_IMAGES, cancel)
    steps = 1 + 2 * len(missing)
    progress(0, steps)
    fp32_probabilities = _forward(predictor, check_pixels, cancel)
    fp32_accuracy = _accuracy(predictor, labels, fp32_probabilities)
    progress(1, steps)
    for index, precision in enumerate(missing):
        if precision == "int8":
            assert calibration is not None
            network = int8_network(predictor, calibration)
        else:
            network = bf16_network(predictor.network)
        progress(2 + 2 * index, steps)
        reduced = _rebuilt(predictor, network)
        probabilities = _forward(reduced, check_pixels, cancel)
        check = PrecisionCheck(
            precision,
            _accuracy(predictor, labels, probabilities),
            fp32_accuracy,
            len(labels),
            _speedup(predictor, reduced, check_pixels[: predictor.batch_size], cancel),
            data.description,
        )
        _write_cached(folder, f"{precision}-{key}", network, check)
        found[precision] = (reduced, check)
        progress(3 + 2 * index, steps)
    return found


def _prepared(
    predictor: Predictor, dataset: Dataset, limit: int, cancel: CancelFlag | None
) -> tuple[np.ndarray, list[Any]]:
    """Up to ``limit`` images of ``dataset``, evenly spread, prepared for the network, with
    their labels in the model's class ids; unreadable images are left out."""
    channels, height, width = predictor.model.input_shape
    limit = max(1, min(limit, MAX_CHECK_BYTES // (4 * channels * height * width)))
    samples = dataset.samples
    if len(samples) > limit:
        samples = [samples[i * len(samples) // limit] for i in range(limit)]
    to_model = align_classes(dataset.class_names, predictor.class_names)
    pixels: list[np.ndarray] = []
    labels: list[Any] = []
    with ImageReader(dataset) as reader, ThreadPoolExecutor() as pool:

        def prepare(sample: Any) -> np.ndarray | None:
            check_cancel(cancel)
            try:
                return predictor.preprocess(reader.read(sample))
            except IMAGE_ERRORS:
                return None

        for sample, prepared in zip(samples, pool.map(prepare, samples)):
            if prepared is not None:
                pixels.append(prepared)
                ids = [to_model[label] for label in sample.labels]
                labels.append(ids if dataset.multi_label else ids[0])
    if not pixels:
        raise PrecisionError(f"no image of {dataset.source} could be read to check precision on")
    return np.stack(pixels), labels


def _forward(predictor: Predictor, pixels: np.ndarray, cancel: CancelFlag | None) -> np.ndarray:
    """Probabilities for ``pixels``, batch by batch (cancel between batches)."""
    outputs = []
    for start in range(0, len(pixels), predictor.batch_size):
        check_cancel(cancel)
        outputs.append(predictor.forward(pixels[start : start + predictor.batch_size]))
    return np.concatenate(outputs)


def _speedup(
    fp32: Predictor, reduced: Predictor, batch: np.ndarray, cancel: CancelFlag | None
) -> float:
    """How many times faster ``reduced`` runs a batch than ``fp32``: the best of
    :data:`_SPEED_ROUNDS` timings of each, taken in turn so that a change of the machine's
    load falls on both alike; each timing repeats the batch for at least
    :data:`_MIN_TIMING_SECONDS`."""
    best = [math.inf, math.inf]
    for _round in range(_SPEED_ROUNDS):
        for index, predictor in enumerate((fp32, reduced)):
            check_cancel(cancel)
            best[index] = min(best[index], _seconds_per_batch(predictor, batch))
    return best[0] / best[1]


def _seconds_per_batch(predictor: Predictor, batch: np.ndarray) -> float:
    repeats, started = 0, time.perf_counter()
    while True:
        predictor.forward(batch)
        repeats += 1
        elapsed = time.perf_counter() - started
        if elapsed >= _MIN_TIMING_SECONDS:
            return elapsed / repeats


def _accuracy(predictor: Predictor, labels: list[Any], probabilities: np.ndarray) -> float:
    report = evaluate_predictions(
        labels, probabilities, predictor.class_names, multi_label=predictor.model.multi_label
    )
    return report.accuracy


def int8_network(predictor: Predictor, calibration: np.ndarray) -> Network:
    """The fp32 network quantized with oneDNN, ranges from ``calibration`` images."""
    mx = mxnet()
    quantization = importlib.import_module("mxnet.contrib.quantization")
    symbol, arrays = predictor.network.symbol, predictor.network.arrays
    arg_params, aux_params = _split(symbol, arrays)
    batches = mx.io.NDArrayIter(
        data={DATA_NAME: calibration},
        batch_size=min(predictor.batch_size, len(calibration)),
        last_batch_handle="pad",
    )
    qsymbol, qarg_params, qaux_params = quantization.quantize_model_mkldnn(
        symbol,
        arg_params,
        aux_params,
        data_names=(DATA_NAME,),
        label_names=(),
        ctx=mx.cpu(),
        calib_mode="naive",
        calib_data=batches,
        num_calib_examples=len(calibration),
        quantized_dtype="auto",
        quantize_mode="smart",
    )
    return Network(qsymbol, {**qarg_params, **qaux_params}, "int8")


def bf16_network(network: Network) -> Network:
    """The network with bf16 arithmetic where AMP allows it (the rest stays fp32)."""
    amp = importlib.import_module("mxnet.contrib.amp")
    arg_params, aux_params = _split(network.symbol, network.arrays)
    symbol, args, auxs = amp.convert_model(
        network.symbol, arg_params, aux_params, target_dtype="bfloat16", cast_optional_params=True
    )
    return Network(symbol, {**args, **auxs}, "bf16")


def _split(symbol: Any, arrays: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Weights as (arguments, auxiliary states), as MXNet's converters take them."""
    auxiliary = set(symbol.list_auxiliary_states())
    return (
        {name: value for name, value in arrays.items() if name not in auxiliary},
        {name: value for name, value in arrays.items() if name in auxiliary},
    )


@functools.cache
def _bf16_unavailable() -> str | None:
    """Why this CPU cannot run bf16, or None: on Linux its flags say; where they do not, a
    small bf16 convolution is tried (oneDNN logs its failure)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    if flags and not flags & {"avx512_bf16", "amx_bf16"}:
        return _NO_BF16
    mx = mxnet()
    symbol = mx.sym.Convolution(mx.sym.var(DATA_NAME), num_filter=4, kernel=(3, 3), name="probe")
    arrays = {"probe_weight": mx.nd.ones((4, 3, 3, 3)), "probe_bias": mx.nd.zeros((4,))}
    try:
        net = symbol_block(bf16_network(Network(symbol, arrays)), mx.cpu())
        net(mx.nd.ones((1, 3, 8, 8))).asnumpy()
    except mx.base.MXNetError:
        return _NO_BF16
    return None


def _cache_folder(predictor: Predictor) -> Path:
    """``precision/`` in the model's run folder, else under the app's cache."""
    model = predictor.model
    run_dir = model.path if model.source_kind == SourceKind.RUN else model.path.parent
    if is_run_folder(run_dir):
        return run_dir / PRECISION_FOLDER
    return cache_dir() / PRECISION_FOLDER


def _cache_key(predictor: Predictor, data: CheckData) -> str:
    """What a check and a converted network depend on: the network and its weights, the
    preprocessing, the images, the batch size and how conversions are done."""
    digest = hashlib.sha256()
    network = predictor.network
    digest.update(network.symbol.tojson().encode())
    for name in sorted(network.arrays):
        array = network.arrays[name].asnumpy()
        digest.update(f"{name} {array.dtype} {array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    described = {
        "preprocessing": repr(predictor.model.preprocessing),
        "input_shape": predictor.model.input_shape,
        "batch_size": predictor.batch_size,
        "images": [_dataset_identity(data.check), _dataset_identity(data.calibration)],
        "limits": [CHECK_IMAGES, CALIBRATION_IMAGES, MAX_CHECK_BYTES],
        "version": _CONVERSION_VERSION,
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def _dataset_identity(dataset: Dataset) -> list[Any]:
    source = Path(dataset.source)
    try:
        stat = source.stat()
        state: list[Any] = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        state = []
    return [str(source.resolve()), len(dataset.samples), *state]


def _read_cached(
    entry: Path, predictor: Predictor, precision: str
) -> tuple[Network, PrecisionCheck] | None:
    """A cached network and check, or None when there is none (or it cannot be read)."""
    mx = mxnet()
    try:
        check = PrecisionCheck(**json.loads((entry / _CHECK_FILE).read_text()))
        if precision == "int8":
            symbol = mx.sym.load(str(entry / _SYMBOL_FILE))
            network = Network(symbol, mx.nd.load(str(entry / _PARAMS_FILE)), "int8")
        else:
            network = bf16_network(predictor.network)
        os.utime(entry)
    except (OSError, ValueError, TypeError, mx.base.MXNetError):
        return None
    return network, check


def _write_cached(folder: Path, name: str, network: Network, check: PrecisionCheck) -> None:
    """Keep a network (int8's: bf16 converts in no time) and its check; a cache that cannot
    be written only costs the next open the conversion."""
    temporary = folder / f".{name}.{os.getpid()}.partial"
    try:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        if network.precision == "int8":
            (temporary / _SYMBOL_FILE).write_text(network.symbol.tojson())
            mxnet().nd.save(str(temporary / _PARAMS_FILE), network.arrays)
        atomic_write_json(temporary / _CHECK_FILE, asdict(check))
        shutil.rmtree(folder / name, ignore_errors=True)  # a damaged entry
        try:
            temporary.rename(folder / name)
        except OSError:  # another process cached the same meanwhile
            shutil.rmtree(temporary, ignore_errors=True)
        _prune(folder)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)


def _prune(folder: Path) -> None:
    """Remove all but the :data:`KEEP_CACHED` most recently used entries, and entries a
    killed process left half written."""
    now = time.time()
    entries = []
    for path in folder.iterdir():
        if not path.name.startswith("."):
            entries.append(path)
        elif now - path.stat().st_mtime > _STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
    entries.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for path in entries[KEEP_CACHED:]:
        shutil.rmtree(path, ignore_errors=True)
