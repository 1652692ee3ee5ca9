"""Packing training data: from the user's sources to the records ``ImageRecordIter`` reads.

A ``.rec`` with its ``.idx`` is used as it is. A folder, ``.lst`` or manifest (or a ``.rec``
that must be split, has no ``.idx``, holds unreadable records, or is a validation ``.rec``
whose class ids are not the training data's) is health-scanned and packed into
``<run>/data/`` with the dataset pipeline. Validation classes are matched to the training
classes by name and packed with the training ids (a class training lacks is refused).
Unreadable images are left out and reported. Without a validation source, 20% of each
class of the training source is set aside for validation (stratified, seeded) and the split
is recorded.

**Image size.** Every image reaches the network with the same shorter side ``S``, from which
the iterators crop ``H x W`` (random crop when training with augmentation, centre crop for
validation and inference):

- ``S = resize`` when the ``resize`` hyperparameter is set (SageMaker's meaning);
- else the images' own shorter side when all share one between ``max(H, W)`` and the cap;
- else the cap: ``max(H, W)`` without augmentation (the centre crop then keeps the whole
  width of a square image), ``max(H, W) * 8/7`` with it (the usual 256 for 224 px), which
  leaves a random crop room to move (a crop of a ``max(H, W)`` square image could only
  flip it). Larger images are shrunk, so every epoch decodes small records, and images
  smaller than ``H x W`` are enlarged instead of crashing ``ImageRecordIter``.

Packed images are stored at ``S``; a ``.rec`` used as it is gets ``resize=S`` in its
iterator unless its images already have that shorter side.
:func:`~.data.inference_preprocessing` records ``S`` and the crop, so inference prepares
images exactly as validation does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from imgcls_desktop.core.dataset.images import shorter_side_size
from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.samples import (
    Dataset,
    DatasetError,
    Sample,
    SkippedImage,
    SourceKind,
)
from imgcls_desktop.core.dataset.scan import ScanReport, scan_dataset
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import SplitAssignment, split_dataset
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, no_progress
from imgcls_desktop.core.training.data import DATA_FOLDER, TrainingData, data_facts

if TYPE_CHECKING:
    from imgcls_desktop.core.hyperparams import DataFacts, HyperParameters

VALIDATION_SHARE = 0.2
_EXPORT_NAME = "dataset"
_CROP_MARGIN = 8 / 7


@dataclass
class ScannedSource:
    """One data source, scanned: its data set, what the scan found and its usable images.

    ``relabelled``: the data set's class ids were changed to the training data's
    (:func:`_aligned`), so the labels stored in its records are not the ones to train with.
    """

    dataset: Dataset
    report: ScanReport
    relabelled: bool = False
    usable: list[int] = field(init=False)
    sizes: list[tuple[int, int]] = field(init=False)
    """(height, width) of every usable image."""

    def __post_init__(self) -> None:
        self.usable = self.report.usable_indices
        self.sizes = [(r.height, r.width) for r in self.report.files if r.ok]

    @property
    def usable_as_is(self) -> bool:
        """A ``.rec`` with its ``.idx``, no unreadable record and the training data's class
        ids in its headers can be read where it is."""
        record = self.dataset.record_file
        return (
            not self.relabelled
            and self.dataset.kind is SourceKind.RECORDIO
            and record is not None
            and record.with_suffix(".idx").is_file()
            and not self.dataset.record_offsets
            and not self.report.bad_files
        )

    def skipped(self) -> list[SkippedImage]:
        return [SkippedImage(r.path, r.reason) for r in self.report.bad_files]


@dataclass
class DataPlan:
    """What :func:`plan_data` found and decided; nothing written yet. :meth:`pack` writes."""

    train: ScannedSource
    validation: ScannedSource | None
    split: SplitAssignment | None
    shorter_side: int
    warnings: list[str]

    @property
    def train_as_is(self) -> bool:
        """The training ``.rec`` is read where it is (no validation split needed)."""
        return self.split is None and self.train.usable_as_is

    @property
    def val_as_is(self) -> bool:
        """The validation ``.rec`` is read where it is."""
        return self.validation is not None and self.validation.usable_as_is

    @property
    def num_train(self) -> int:
        """Training images (before packing, which may still skip an image)."""
        return len(self.split.train) if self.split else len(self.train.usable)

    def facts(self) -> DataFacts:
        """What hyperparameter validation needs to know about the data as it will be read."""
        dataset = self.train.dataset
        return data_facts(
            dataset.num_classes, self.num_train, self._min_image_size(), dataset.multi_label
        )

    def _min_image_size(self) -> tuple[int, int]:
        sources = [self.train] + ([self.validation] if self.validation else [])
        sizes = [
            shorter_side_size(width, height, self.shorter_side)
            for source in sources
            for height, width in source.sizes
        ]
        return min(h for _w, h in sizes), min(w for w, _h in sizes)

    def pack_total(self) -> int:
        """Images :meth:`pack` writes (its progress total)."""
        total = 0 if self.train_as_is else len(self.train.usable)
        if self.validation is not None and not self.val_as_is:
            total += len(self.validation.usable)
        return total

    def pack(
        self,
        out_dir: Path,
        *,
        warnings: Sequence[str] = (),
        progress: ProgressFn = no_progress,
        cancel: CancelFlag | None = None,
    ) -> TrainingData:
        """Write the records that cannot be read as they are into ``out_dir`` (``<run>/data``).

        ``warnings`` (e.g. about the hyperparameters) are added to the result's.
        """
        out_dir = Path(out_dir)
        bar = _StagedProgress(progress, self.pack_total())
        skipped = self.train.skipped()
        train = self.train.dataset
        options = packing_options(self.shorter_side)
        if self.train_as_is:
            train_rec = _record_file(train)
            train_resize = self._iterator_resize(self.train)
            val_rec = None
        else:
            assignment = self.split or single_split(self.train.usable, "train")
            result = export_recordio(
                train,
                out_dir / "train",
                name=_EXPORT_NAME,
                assignment=assignment,
                options=options,
                progress=bar.reporter(),
                cancel=cancel,
                overwrite=True,  # the run's own data folder: an interrupted start's is redone
            )
            bar.advance(len(self.train.usable))
            skipped += result.skipped
            train_rec = out_dir / "train" / f"{_EXPORT_NAME}-train.rec"
            val_rec = out_dir / "train" / f"{_EXPORT_NAME}-val.rec" if self.split else None
            train_resize = None
        val_resize = None
        if self.validation is not None:
            skipped += self.validation.skipped()
            if self.val_as_is:
                val_rec = _record_file(self.validation.dataset)
                val_resize = self._iterator_resize(self.validation)
            else:
                result = export_recordio(
                    self.validation.dataset,
                    out_dir / "validation",
                    name=_EXPORT_NAME,
                    assignment=single_split(self.validation.usable, "val"),
                    options=options,
                    progress=bar.reporter(),
                    cancel=cancel,
                    overwrite=True,
                )
                skipped += result.skipped
                val_rec = out_dir / "validation" / f"{_EXPORT_NAME}-val.rec"
        assert val_rec is not None
        counts = _class_counts(train, self.split.train if self.split else self.train.usable)
        all_warnings = [*self.warnings, *warnings]
        if skipped:
            all_warnings.append(
                f"{len(skipped)} image(s) could not be read and were left out, e.g. "
                f"{skipped[0].path}: {skipped[0].reason}"
            )
        return TrainingData(
            train_rec=train_rec,
            train_idx=train_rec.with_suffix(".idx"),
            val_rec=val_rec,
            val_idx=val_rec.with_suffix(".idx"),
            class_names=tuple(train.class_names),
            num_train=_count_records(train_rec.with_suffix(".idx")),
            num_val=_count_records(val_rec.with_suffix(".idx")),
            multi_label=train.multi_label,
            shorter_side=self.shorter_side,
            min_image_size=self._min_image_size(),
            train_class_counts=tuple(counts),
            train_resize=train_resize,
            val_resize=val_resize,
            validation_share=VALIDATION_SHARE if self.split else None,
            split_seed=self.split.seed if self.split else None,
            skipped=tuple(skipped),
            warnings=tuple(all_warnings),
        )

    def _iterator_resize(self, source: ScannedSource) -> int | None:
        """``resize`` for the iterator of a ``.rec`` read as it is (None: already at ``S``)."""
        sides = {min(size) for size in source.sizes}
        return None if sides == {self.shorter_side} else self.shorter_side


def prepare_data(
    train: Path,
    validation: Path | None,
    run_dir: Path,
    hp: HyperParameters,
    *,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> TrainingData:
    """Scan the sources, validate ``hp`` against them, then pack what must be packed.

    Nothing is written before the hyperparameters pass validation
    (:class:`~imgcls_desktop.core.hyperparams.HyperparameterError` lists every problem).
    Their warnings are in the result's ``warnings``. ``progress`` covers scanning and
    packing; :class:`~imgcls_desktop.core.jobs.Cancelled` is raised when ``cancel`` is set.
    """
    scanned = 0

    def scanning(done: int, total: int) -> None:
        nonlocal scanned
        scanned = total
        progress(done, 2 * total)  # until the scan tells, assume every image is packed

    plan = plan_data(train, validation, hp, seed=seed, progress=scanning, cancel=cancel)
    hp_warnings = hp.validate(plan.facts())
    return plan.pack(
        Path(run_dir) / DATA_FOLDER,
        warnings=hp_warnings,
        progress=lambda done, total: progress(scanned + done, scanned + total),
        cancel=cancel,
    )


def plan_data(
    train: Path,
    validation: Path | None,
    hp: HyperParameters,
    *,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> DataPlan:
    """Load and health-scan the sources and decide how they are read; writes nothing.

    Raises :class:`DatasetError` when the data cannot be used (no usable image, classes of
    the validation data unknown to the training data, nothing left for validation).
    """
    train_set = load_dataset(Path(train))
    val_set = None if validation is None else load_dataset(Path(validation))
    bar = _StagedProgress(
        progress, len(train_set.samples) + len(val_set.samples if val_set else [])
    )
    train_source = _scanned(train_set, bar, cancel)
    val_source = None
    if val_set is not None:
        aligned, relabelled = _aligned(val_set, train_set)
        val_source = _scanned(aligned, bar, cancel, relabelled=relabelled)
    split = None
    if val_source is None:
        split = split_dataset(
            train_set, val_ratio=VALIDATION_SHARE, seed=seed, indices=train_source.usable
        )
        if not split.val:
            raise DatasetError(
                f"{train} has too few images to set 20% aside for validation (a class needs "
                "at least 2 usable images); add images or give a validation data set"
            )
    sources = [train_source] + ([val_source] if val_source else [])
    side = shorter_side(hp, [size for source in sources for size in source.sizes])
    return DataPlan(
        train=train_source,
        validation=val_source,
        split=split,
        shorter_side=side,
        warnings=_size_warnings(sources, hp.shape, side),
    )


def scan_source(
    path: Path, *, progress: ProgressFn = no_progress, cancel: CancelFlag | None = None
) -> ScannedSource:
    """Load and health-scan one data source as training does (DatasetError if none is usable)."""
    dataset = load_dataset(Path(path))
    return _scanned(dataset, _StagedProgress(progress, len(dataset.samples)), cancel)


def packing_options(side: int) -> ExportOptions:
    """How training packs images into records: shorter side ``S``, original bytes when fit."""
    return ExportOptions(resize=side, pass_through=True)


def _scanned(
    dataset: Dataset, bar: _StagedProgress, cancel: CancelFlag | None, *, relabelled: bool = False
) -> ScannedSource:
    report = scan_dataset(dataset, progress=bar.reporter(), cancel=cancel)
    bar.advance(len(dataset.samples))
    source = ScannedSource(dataset, report, relabelled)
    if not source.usable:
        example = report.bad_files[0] if report.bad_files else None
        detail = f" (e.g. {example.path}: {example.reason})" if example else ""
        raise DatasetError(f"{dataset.source} has no usable image{detail}")
    return source


def _aligned(validation: Dataset, train: Dataset) -> tuple[Dataset, bool]:
    """The validation data with the training data's class names and ids (matched by name),
    and whether any stored label changes: its records' headers then hold other ids (or, for
    multi-label data, narrower label vectors) than training reads, so it must be packed."""
    if validation.multi_label != train.multi_label:
        kinds = ("multi-label" if d.multi_label else "single-label" for d in (train, validation))
        raise DatasetError("the training data is {} but the validation data is {}".format(*kinds))
    if validation.class_names == train.class_names:
        return validation, False
    unknown = [name for name in validation.class_names if name not in train.class_names]
    if unknown:
        raise DatasetError(
            f"the validation data's classes ({', '.join(validation.class_names)}) are not the "
            f"training data's ({', '.join(train.class_names)}); both need the same class names"
        )
    new_id = [train.class_names.index(name) for name in validation.class_names]
    relabelled = validation.multi_label or new_id != list(range(len(new_id)))
    samples = [
        Sample(s.path, tuple(sorted(new_id[label] for label in s.labels)), s.record)
        for s in validation.samples
    ]
    return replace(validation, class_names=list(train.class_names), samples=samples), relabelled


def shorter_side(hp: HyperParameters, sizes: Sequence[tuple[int, int]]) -> int:
    """``S``, the shorter side every image is brought to (see the module docstring)."""
    if hp.resize:
        return int(hp.resize)
    _channels, height, width = hp.shape
    need = max(height, width)
    cap = need if hp.augmentation_type == "none" else math.ceil(need * _CROP_MARGIN)
    sides = {min(size) for size in sizes}
    if len(sides) == 1 and need <= min(sides) <= cap:
        return min(sides)
    return cap


def _size_warnings(
    sources: list[ScannedSource], shape: tuple[int, int, int], side: int
) -> list[str]:
    _channels, height, width = shape
    small = [(h, w) for source in sources for h, w in source.sizes if h < height or w < width]
    if not small:
        return []
    h, w = min(small, key=lambda size: size[0] * size[1])
    return [
        f"{len(small)} image(s) are smaller than image_shape {height}x{width} (the smallest "
        f"is {h}x{w}); they are enlarged to a shorter side of {side} pixels"
    ]


def single_split(indices: Sequence[int], split: str) -> SplitAssignment:
    """An assignment putting every given sample in one split, in the given order."""
    parts = {"train": (), "val": (), "test": ()}
    parts[split] = tuple(indices)
    return SplitAssignment(**parts, val_ratio=0.0, test_ratio=0.0, seed=0)


def _class_counts(dataset: Dataset, indices: Sequence[int]) -> list[int]:
    counts = [0] * dataset.num_classes
    for index in indices:
        for label in dataset.samples[index].labels:
            counts[label] += 1
    return counts


def _record_file(dataset: Dataset) -> Path:
    assert dataset.record_file is not None
    return dataset.record_file


def _count_records(idx_path: Path) -> int:
    with idx_path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


class _StagedProgress:
    """One ``progress(done, total)`` over consecutive steps that each count from zero."""

    def __init__(self, progress: ProgressFn, total: int) -> None:
        self._progress = progress
        self.total = total
        self._base = 0

    def reporter(self) -> ProgressFn:
        """The progress callable for the next step."""
        return lambda done, _total: self._progress(self._base + done, max(self.total, 1))

    def advance(self, size: int) -> None:
        """The step just finished covered ``size`` units."""
        self._base += size
