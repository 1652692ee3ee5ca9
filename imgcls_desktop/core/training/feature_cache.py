"""The feature cache of quick transfer (``freeze_backbone=1``).

With a frozen backbone, an image's features never change, so each image is run through
the backbone once: the training images as they are (centre crop) plus
:data:`AUGMENTED_COPIES` augmented versions (``augmentation_type`` decides which; ``none``
gives only the image itself), the validation images once. The features are the input of
the network's final ``FullyConnected`` (:func:`feature_extractor`), so any classifier
network ending in a ``Dense`` head works.

They are kept in ``<cache>/features/<key>/`` as ``.npy`` arrays (read with
``allow_pickle=False``); the folder is written under a temporary name and renamed, so it is
complete or absent. The key hashes what the features depend on: the contents of the record
files, the backbone's weights, the image shape and resizing, the augmentation and the number
of copies. A second run on the same data and backbone reads them at once; other data or
another backbone gets another key. The :data:`KEPT_CACHES` most recently used sets are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls_desktop.core import paths
from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.atomic import sync_folder
from imgcls_desktop.core.hyperparams import NO_AUGMENTATION
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.data import TrainingData
from imgcls_desktop.core.training.iterators import train_iter_arguments, val_iter_arguments
from imgcls_desktop.core.training.network import DATA_NAME, logits_symbol

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock

    from imgcls_desktop.core.hyperparams import HyperParameters

FEATURES_FOLDER = "features"
"""The cache's sub-folder for features."""
AUGMENTED_COPIES = 2
"""Augmented versions of each training image, besides the image itself."""
KEPT_CACHES = 8
"""Feature sets kept: the most recently used; older ones are deleted when one is added."""
_FORMAT = 1  # bump when the cached arrays change meaning
_ARRAYS = ("train", "train_labels", "val", "val_labels")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class CachedFeatures:
    """The backbone's features of a run's images.

    ``train`` is (copies, images, width), copy 0 the images themselves; ``train_labels``
    (copies, images[, classes]) in the same order; ``val`` (images, width) and
    ``val_labels`` in record order. ``reused`` says whether they came from the cache;
    ``seconds`` is how long reading or computing them took; ``not_cached`` why computed
    features could not be written (training goes on without the cache).
    """

    train: np.ndarray
    train_labels: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    folder: Path
    reused: bool
    seconds: float
    not_cached: str | None = None

    @property
    def copies(self) -> int:
        """Versions of each training image: 1 plus the augmented ones."""
        return int(self.train.shape[0])

    def describe(self) -> str:
        """One line for the log: what was cached, and whether it was reused."""
        images = self.train.shape[1]
        versions = f" ({self.copies} versions each)" if self.copies > 1 else ""
        how = "read from the cache" if self.reused else "computed and cached"
        if self.not_cached:
            how = f"computed (not cached: {self.not_cached})"
        return (
            f"quick transfer: frozen backbone, only the final layer trains; features of "
            f"{images:,} training images{versions} and {self.val.shape[0]:,} validation images "
            f"{how} in {self.seconds:.1f} s ({self.folder})"
        )


def features_root() -> Path:
    """Where feature caches are kept: ``<cache>/features``."""
    return paths.cache_dir() / FEATURES_FOLDER


def feature_extractor(net: HybridBlock) -> HybridBlock:
    """A ``SymbolBlock`` from raw pixels to the input of ``net``'s final ``FullyConnected``,
    sharing ``net``'s parameters (hybridized). ModelError when ``net`` has none."""
    mx = mxnet()
    logits = logits_symbol(net)
    graph = json.loads(logits.tojson())
    nodes = graph["nodes"]
    layers = [node for node in nodes if node["op"] == "FullyConnected"]
    if not layers:
        raise ModelError("the network has no final fully connected layer to train on its own")
    source_index, output_index = layers[-1]["inputs"][0][:2]
    name = nodes[source_index]["name"]
    if nodes[source_index]["op"] != "null":
        name += "_output" if output_index == 0 else f"_output{output_index}"
    features = logits.get_internals()[name]
    data = mx.sym.var(DATA_NAME, dtype=_parameter_dtype(net))
    block = mx.gluon.SymbolBlock(features, data, params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def backbone_digest(net: HybridBlock) -> str:
    """A hash of every parameter of ``net`` but its ``output`` head (names, shapes, values)."""
    head = set(net.output.collect_params())
    digest = hashlib.sha256()
    for name, param in sorted(net.collect_params().items()):
        if name in head:
            continue
        values = param.data(param.list_ctx()[0]).asnumpy()
        digest.update(f"{name}:{values.shape}:{values.dtype}".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def cache_key(data: TrainingData, hp: HyperParameters, backbone: str, copies: int) -> str:
    """The cache key of these features: data contents, backbone, preprocessing, copies."""
    digest = hashlib.sha256()
    recipe = {
        "format": _FORMAT,
        "backbone": backbone,
        "image_shape": list(hp.shape),
        "augmentation_type": hp.augmentation_type,
        "copies": copies,
        "train_resize": data.train_resize,
        "val_resize": data.val_resize,
        "label_width": data.label_width,
        "num_train": data.num_train,
        "num_val": data.num_val,
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    for path in (data.train_rec, data.train_idx, data.val_rec, data.val_idx):
        _hash_file(digest, path)
    return digest.hexdigest()[:32]


def cached_features(
    net: HybridBlock,
    data: TrainingData,
    hp: HyperParameters,
    *,
    context: Any = None,
    root: Path | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> CachedFeatures:
    """The features of ``data``'s images through ``net``'s frozen backbone: from the cache
    under ``root`` (default :func:`features_root`) when present, else computed (reporting
    ``progress`` per image, raising :class:`~imgcls_desktop.core.jobs.Cancelled` when
    cancelled) and cached."""
    started = time.perf_counter()
    copies = 1 if hp.augmentation_type == NO_AUGMENTATION else 1 + AUGMENTED_COPIES
    folder = (root or features_root()) / cache_key(data, hp, backbone_digest(net), copies)
    arrays = _read(folder, data, copies)
    reused, not_cached = arrays is not None, None
    if arrays is None:
        arrays = _compute(net, data, hp, copies, context, progress, cancel)
        try:
            _write(folder, arrays)
            _prune(folder.parent, keep=folder)
        except OSError as error:  # a full disk: the cache is a convenience, the run goes on
            not_cached = f"{error.strerror or error} in {folder.parent}"
    else:
        with contextlib.suppress(OSError):
            os.utime(folder)  # recently used: kept by the pruning
    return CachedFeatures(
        **arrays,
        folder=folder,
        reused=reused,
        seconds=time.perf_counter() - started,
        not_cached=not_cached,
    )


def _hash_file(digest: Any, path: Path) -> None:
    digest.update(f"{path.stat().st_size}:".encode())
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)


def _read(folder: Path, data: TrainingData, copies: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or not of the expected shapes."""
    if not folder.is_dir():
        return None
    try:
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
    except (OSError, ValueError):
        shutil.rmtree(folder, ignore_errors=True)  # damaged: computed again
        return None
    train, val = arrays["train"], arrays["val"]
    fits = (
        train.ndim == 3
        and train.shape[:2] == (copies, data.num_train)
        and val.ndim == 2
        and val.shape == (data.num_val, train.shape[2])
        and arrays["train_labels"].shape[:2] == (copies, data.num_train)
        and arrays["val_labels"].shape[0] == data.num_val
    )
    if not fits:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return arrays


def _write(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays into a temporary folder and rename it to ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.mkdir()
        for name in _ARRAYS:
            with (temporary / f"{name}.npy").open("wb") as file:
                np.save(file, arrays[name], allow_pickle=False)
                file.flush()
                os.fsync(file.fileno())
        try:
            os.rename(temporary, folder)
        except OSError:
            if not folder.is_dir():  # else another run cached the same features meanwhile
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    sync_folder(folder.parent)


def _prune(root: Path, keep: Path) -> None:
    """Delete all but the :data:`KEPT_CACHES` most recently used feature sets (and ``keep``)."""
    folders = [path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")]
    folders.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for folder in folders[KEPT_CACHES:]:
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _compute(
    net: HybridBlock,
    data: TrainingData,
    hp: HyperParameters,
    copies: int,
    context: Any,
    progress: ProgressFn,
    cancel: CancelFlag | None,
) -> dict[str, np.ndarray]:
    mx = mxnet()
    context = context or mx.cpu()
    extractor = feature_extractor(net)
    batch_size = hp.mini_batch_size
    total = copies * data.num_train + data.num_val
    counter = _Counter(total, progress, cancel)
    label_width = data.label_width
    plain = val_iter_arguments(
        data.train_rec,
        data.train_idx,
        hp,
        batch_size,
        label_width=label_width,
        resize=data.train_resize,
    )
    passes = [_pass(extractor, mx.io.ImageRecordIter(**plain), data.num_train, context, counter)]
    if copies > 1:
        augmented = train_iter_arguments(
            data.train_rec,
            data.train_idx,
            hp,
            batch_size,
            label_width=label_width,
            resize=data.train_resize,
        )
        augmented["round_batch"] = False  # one pass is each image once
        records = mx.io.ImageRecordIter(**augmented)
        for _ in range(copies - 1):
            records.reset()
            passes.append(_pass(extractor, records, data.num_train, context, counter))
    validation = val_iter_arguments(
        data.val_rec,
        data.val_idx,
        hp,
        batch_size,
        label_width=label_width,
        resize=data.val_resize,
    )
    val, val_labels = _pass(
        extractor, mx.io.ImageRecordIter(**validation), data.num_val, context, counter
    )
    return {
        "train": np.stack([features for features, _ in passes]),
        "train_labels": np.stack([labels for _, labels in passes]),
        "val": val,
        "val_labels": val_labels,
    }


class _Counter:
    """Counts the images done, reporting progress and checking the cancel flag."""

    def __init__(self, total: int, progress: ProgressFn, cancel: CancelFlag | None) -> None:
        self.total, self.done = total, 0
        self._progress, self._cancel = progress, cancel

    def add(self, count: int) -> None:
        self.done += count
        self._progress(self.done, self.total)
        check_cancel(self._cancel)


def _pass(
    extractor: HybridBlock, records: Iterable[Any], count: int, context: Any, counter: _Counter
) -> tuple[np.ndarray, np.ndarray]:
    """The features and labels of the first ``count`` images of one pass over ``records``
    (a last batch's spare rows hold garbage: counted, not trusted)."""
    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    dtype = _parameter_dtype(extractor)
    remaining = count
    for batch in records:
        take = min(batch.data[0].shape[0], remaining)
        pixels = batch.data[0].as_in_context(context).astype(dtype, copy=False)
        output = extractor(pixels).asnumpy()
        features.append(output.reshape(output.shape[0], -1)[:take].astype(np.float32))
        labels.append(batch.label[0].asnumpy()[:take])
        remaining -= take
        counter.add(take)
        if remaining == 0:
            break
    return np.concatenate(features), np.concatenate(labels)


def _parameter_dtype(block: HybridBlock) -> Any:
    """The dtype of ``block``'s weights (float16 after a cast), which its input must have."""
    for param in block.collect_params().values():
        if param.grad_req != "null":
            return param.dtype
    return "float32"
