"""The ``ImageRecordIter`` arguments training and validation read the records with.

Training shuffles and augments (SageMaker's ``augmentation_type``, :data:`AUGMENTATIONS`);
validation reads in order with a centre crop. Records not yet at the shorter side ``S``
(a ``.rec`` read where it is) get ``resize=S`` (see :mod:`.packing`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.data import TrainingData

if TYPE_CHECKING:
    from imgcls_desktop.core.hyperparams import HyperParameters

AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "crop": {"rand_crop": True, "rand_mirror": True},
    "crop_color": {
        "rand_crop": True,
        "rand_mirror": True,
        "random_h": 36,
        "random_s": 50,
        "random_l": 50,
    },
    "crop_color_transform": {
        "rand_crop": True,
        "rand_mirror": True,
        "random_h": 36,
        "random_s": 50,
        "random_l": 50,
        "max_rotate_angle": 10,
        "max_shear_ratio": 0.1,
        "max_aspect_ratio": 0.25,
    },
}
"""``ImageRecordIter`` options for each SageMaker ``augmentation_type``."""


def augmentation_arguments(augmentation_type: str) -> dict[str, Any]:
    """The ``ImageRecordIter`` arguments of a SageMaker ``augmentation_type`` (ValueError if
    it is unknown)."""
    options = AUGMENTATIONS.get(augmentation_type)
    if options is None:
        choices = ", ".join(AUGMENTATIONS)
        raise ValueError(f"unknown augmentation_type {augmentation_type!r}; use one of {choices}")
    return dict(options)


def train_iter(
    data: TrainingData, hp: HyperParameters, batch_size: int, *, seed: int = 0, **shard: int
) -> Any:
    """A shuffling ``ImageRecordIter`` over the training records with ``hp``'s augmentation;
    ``shard`` (``num_parts``, ``part_index``) reads one worker's part of them.

    Batches are full: the last one of a pass is completed with the first images of the next
    (shuffled) pass (``round_batch``), and the next pass continues after them, so no image
    is trained on twice as often as another. Batches are float32 RGB 0-255 NCHW on
    ``cpu_pinned`` and reused: copy them to the model's context before asking for the next.
    """
    arguments = train_iter_arguments(
        data.train_rec,
        data.train_idx,
        hp,
        batch_size,
        label_width=data.label_width,
        resize=data.train_resize,
        seed=seed,
    )
    return mxnet().io.ImageRecordIter(**arguments, **shard)


def train_iter_arguments(
    rec: Path,
    idx: Path,
    hp: HyperParameters,
    batch_size: int,
    *,
    label_width: int,
    resize: int | None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every ``ImageRecordIter`` argument training reads ``rec`` with: ``hp``'s augmentation
    (:func:`augmentation_arguments`), shuffled with ``seed``, batches completed from the next
    pass, ``resize`` when the records are not at the shorter side ``S`` yet.

    :func:`train_iter` and the augmentation preview (:mod:`.preview`) both build their
    iterators from it.
    """
    return _record_iter_arguments(
        rec,
        idx,
        hp,
        batch_size,
        label_width,
        resize,
        shuffle=True,
        seed=seed,
        round_batch=True,
        **augmentation_arguments(hp.augmentation_type),
    )


def val_iter(data: TrainingData, hp: HyperParameters, batch_size: int) -> Any:
    """An ``ImageRecordIter`` over the validation records: centre crop, no augmentation.

    Each pass (``reset()`` between them) reads the records in order; its last batch holds
    ``data.num_val`` modulo ``batch_size`` real images first and undefined rows after them
    (MXNet 1.9.1 reports ``pad=0`` there): count the rows, do not trust ``batch.pad``.
    The last batch is not completed from the start, so a reset pass begins at the first
    image again and one iterator serves every epoch.
    """
    arguments = val_iter_arguments(
        data.val_rec,
        data.val_idx,
        hp,
        batch_size,
        label_width=data.label_width,
        resize=data.val_resize,
    )
    return mxnet().io.ImageRecordIter(**arguments)


def val_iter_arguments(
    rec: Path,
    idx: Path,
    hp: HyperParameters,
    batch_size: int,
    *,
    label_width: int,
    resize: int | None,
) -> dict[str, Any]:
    """Every ``ImageRecordIter`` argument validation reads ``rec`` with: in order, centre
    crop, no augmentation, ``resize`` when the records are not at ``S`` yet."""
    return _record_iter_arguments(
        rec, idx, hp, batch_size, label_width, resize, shuffle=False, round_batch=False
    )


def _record_iter_arguments(
    rec: Path,
    idx: Path,
    hp: HyperParameters,
    batch_size: int,
    label_width: int,
    resize: int | None,
    **options: Any,
) -> dict[str, Any]:
    if resize:
        options["resize"] = resize
    return {
        "path_imgrec": str(rec),
        "path_imgidx": str(idx),
        "data_shape": tuple(hp.shape),
        "batch_size": batch_size,
        "label_width": label_width,
        "preprocess_threads": os.cpu_count() or 1,
        **options,
    }
