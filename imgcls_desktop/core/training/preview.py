"""See what training will see: a few training images, as validation and as augmentation
shows them to the network.

The preview goes through training's own code path. The source is scanned like a training
source (:func:`~.data.scan_source`), the shorter side ``S`` is decided by the same rule
(:func:`~.data.shorter_side`; from the training images alone: validation images of other
sizes can change it), and a few images (from as many classes as possible) are packed the
way training packs them (:func:`~.data.packing_options`) into a temporary ``.rec``, each
repeated once per version. That file is read by an ``ImageRecordIter`` built from
training's arguments (:func:`~.data.train_iter_arguments`, which holds the
``augmentation_type`` mapping) with two changes: the records are read in order (so each
row is known), and the augmentation is seeded (``seed_aug``) so a preview can be repeated.
The "original" is the same records read with validation's arguments
(:func:`~.data.val_iter_arguments`): resized to ``S`` and centre-cropped, no augmentation.
"""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from imgcls_desktop.core.dataset.recordio_export import export_recordio
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.hyperparams import HyperparameterError, HyperParameters
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.iterators import (
    augmentation_arguments,
    train_iter_arguments,
    val_iter_arguments,
)
from imgcls_desktop.core.training.packing import (
    ScannedSource,
    packing_options,
    shorter_side,
    single_split,
)

MAX_IMAGES = 16
MAX_VERSIONS = 16
MAX_SEED = 1_000_000
PREVIEW_HYPERPARAMETERS = ("image_shape", "resize", "augmentation_type")
"""The hyperparameters a preview depends on (the others may still be wrong)."""
_NAME = "preview"
_FILE_ARGUMENTS = ("path_imgrec", "path_imgidx")


@dataclass(frozen=True)
class PreviewRow:
    """One training image: its class(es), the original as validation sees it, and the
    augmented versions training could see. Images are H x W x 3 uint8 RGB."""

    class_name: str
    source: str
    original: np.ndarray
    versions: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class AugmentationPreview:
    """Augmented versions of a few training images, and how they were made.

    ``iterator_arguments`` are the augmenting ``ImageRecordIter``'s arguments but the
    (temporary) record files: training's, read in order and seeded.
    """

    augmentation_type: str
    shorter_side: int
    seed: int
    rows: tuple[PreviewRow, ...]
    iterator_arguments: dict[str, Any]

    @property
    def versions(self) -> int:
        """Augmented versions per image."""
        return len(self.rows[0].versions)

    def describe(self) -> str:
        """What was done to the images, in one paragraph."""
        _channels, height, width = self.iterator_arguments["data_shape"]
        arguments = augmentation_arguments(self.augmentation_type)
        applied = ", ".join(f"{name}={value}" for name, value in arguments.items())
        note = mirroring_note(self.augmentation_type)
        return (
            f"Shorter side resized to {self.shorter_side}, then {height} × {width} cropped. "
            f"augmentation_type={self.augmentation_type}: "
            f"{applied or 'no augmentation, every version is the original'}. "
            "The original is what validation sees (centre crop)."
            + (f" Note: {note}." if note else "")
        )


def mirroring_note(augmentation_type: str) -> str | None:
    """Why ``augmentation_type`` may be wrong for the data: it mirrors images left-right
    (None when it does not)."""
    if not augmentation_arguments(augmentation_type).get("rand_mirror"):
        return None
    return (
        f"augmentation_type {augmentation_type} also mirrors images left-right, which is wrong "
        "for text, digits and other things whose mirror image means something else (a mirrored "
        "7 or B is no 7 or B); for such data set augmentation_type to none"
    )


def augmented_samples(
    source: ScannedSource,
    hp: HyperParameters,
    *,
    images: int = 4,
    versions: int = 6,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> AugmentationPreview:
    """``versions`` augmented versions of ``images`` training images of ``source``.

    ``source`` is a scanned training source (:func:`~.data.scan_source`; scan once, then
    preview as many settings as wanted). The same ``seed`` picks the same images and
    augments them the same way, whatever ``augmentation_type`` is; the next seed picks and
    augments afresh. ``progress`` covers packing the chosen images. Raises ValueError for
    counts or a seed out of range, :class:`HyperparameterError` for unusable
    :data:`PREVIEW_HYPERPARAMETERS`, ``ExportError`` when no chosen image can be read (an
    unreadable one is left out) and :class:`~imgcls_desktop.core.jobs.Cancelled` when
    ``cancel`` is set.
    """
    _check_counts(images, versions, seed)
    _check_hyperparameters(hp)
    dataset = source.dataset
    chosen = _choose(dataset, source.usable, images, seed)
    side = shorter_side(hp, source.sizes)
    with tempfile.TemporaryDirectory(prefix="imgcls-preview-") as folder:
        repeated = [dataset.samples[index] for index in chosen for _ in range(versions)]
        result = export_recordio(
            replace(dataset, samples=repeated),
            folder,
            name=_NAME,
            assignment=single_split(range(len(repeated)), "train"),
            options=packing_options(side),
            progress=progress,
            cancel=cancel,
        )
        unreadable = {skipped.path for skipped in result.skipped}
        kept = [index for index in chosen if dataset.samples[index].path not in unreadable]
        check_cancel(cancel)
        rec = Path(folder, f"{_NAME}-train.rec")
        files = (rec, rec.with_suffix(".idx"))
        common = {
            "batch_size": len(kept) * versions,
            "label_width": dataset.num_classes if dataset.multi_label else 1,
            "resize": None,  # packed at S, as training packs
        }
        augmenting = {
            **train_iter_arguments(*files, hp, seed=seed, **common),
            "shuffle": False,
            "seed_aug": seed * len(repeated),  # per record: seed_aug + position
        }
        augmented = _read_all(augmenting)
        originals = _read_all(val_iter_arguments(*files, hp, **common))
    rows = tuple(
        PreviewRow(
            class_name=_class_name(dataset, index),
            source=dataset.samples[index].path,
            original=originals[row * versions],
            versions=tuple(augmented[row * versions : (row + 1) * versions]),
        )
        for row, index in enumerate(kept)
    )
    arguments = {name: value for name, value in augmenting.items() if name not in _FILE_ARGUMENTS}
    return AugmentationPreview(hp.augmentation_type, side, seed, rows, arguments)


def preview_grid(
    preview: AugmentationPreview, *, gap: int = 4, background: int = 255
) -> np.ndarray:
    """One H x W x 3 uint8 RGB image: a row per image, the original first, then its
    versions, ``gap`` pixels of ``background`` between and around the tiles."""
    height, width = preview.rows[0].original.shape[:2]
    columns = 1 + preview.versions
    grid = np.full(
        (gap + len(preview.rows) * (height + gap), gap + columns * (width + gap), 3),
        background,
        dtype=np.uint8,
    )
    for row, entry in enumerate(preview.rows):
        for column, tile in enumerate((entry.original, *entry.versions)):
            top, left = gap + row * (height + gap), gap + column * (width + gap)
            grid[top : top + height, left : left + width] = tile
    return grid


def _check_counts(images: int, versions: int, seed: int) -> None:
    if not 1 <= images <= MAX_IMAGES:
        raise ValueError(f"images must be 1-{MAX_IMAGES} (got {images})")
    if not 1 <= versions <= MAX_VERSIONS:
        raise ValueError(f"versions must be 1-{MAX_VERSIONS} (got {versions})")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be 0-{MAX_SEED} (got {seed})")


def _check_hyperparameters(hp: HyperParameters) -> None:
    """Raise :class:`HyperparameterError` for what would break the preview, nothing else."""
    try:
        hp.validate()
    except HyperparameterError as error:
        problems = [p for p in error.problems if p.name in PREVIEW_HYPERPARAMETERS]
        if problems:
            raise HyperparameterError(problems) from None


def _choose(dataset: Dataset, usable: Sequence[int], count: int, seed: int) -> list[int]:
    """Up to ``count`` distinct usable images, one class (label set) after another in an
    order drawn from ``seed``, each a random image of its class."""
    rng = random.Random(seed)
    by_class: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index in usable:
        by_class[dataset.samples[index].labels].append(index)
    pools = [by_class[labels] for labels in sorted(by_class)]
    rng.shuffle(pools)
    for pool in pools:
        rng.shuffle(pool)
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return chosen


def _class_name(dataset: Dataset, index: int) -> str:
    labels = dataset.samples[index].labels
    return ", ".join(dataset.class_names[label] for label in labels) or "(no class)"


def _read_all(arguments: dict[str, Any]) -> list[np.ndarray]:
    """Every image of one ``ImageRecordIter`` batch, as H x W x 3 uint8 RGB."""
    batch = next(iter(mxnet().io.ImageRecordIter(**arguments)))
    pixels = np.clip(np.rint(batch.data[0].asnumpy()), 0, 255).astype(np.uint8)
    pixels = pixels.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if pixels.shape[3] == 1:
        pixels = np.repeat(pixels, 3, axis=3)
    return list(pixels)
