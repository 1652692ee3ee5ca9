"""Pack a scanned data set for training: split its usable images and export RecordIO.

``imgcls dataset pack`` and the Dataset tab's Export both do this, here once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from imgcls_desktop.core.dataset.recordio_export import ExportOptions, ExportResult, export_recordio
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.scan import CrossSplitDuplicate, ScanReport, cross_split_duplicates
from imgcls_desktop.core.dataset.split import split_dataset
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, no_progress


@dataclass(frozen=True)
class SplitShares:
    """How the usable images are split: the validation and test shares, and the seed."""

    val_ratio: float = 0.2
    test_ratio: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Packed:
    """What was written, and the duplicates whose copies ended up in different splits."""

    result: ExportResult
    leaks: list[CrossSplitDuplicate]


def pack(
    dataset: Dataset,
    report: ScanReport,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "dataset",
    shares: SplitShares = SplitShares(),
    options: ExportOptions | None = None,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> Packed:
    """Split the usable images of ``dataset`` (``report``'s) by class and export them to
    RecordIO in ``out_dir``; ``overwrite`` allows replacing an earlier export.

    Raises what :func:`~imgcls_desktop.core.dataset.recordio_export.export_recordio` raises.
    """
    assignment = split_dataset(
        dataset,
        val_ratio=shares.val_ratio,
        test_ratio=shares.test_ratio,
        seed=shares.seed,
        indices=report.usable_indices,
    )
    result = export_recordio(
        dataset,
        out_dir,
        name=name,
        assignment=assignment,
        options=options,
        progress=progress,
        cancel=cancel,
        overwrite=overwrite,
    )
    splits = [assignment.split_of(index) or "" for index in range(len(dataset.samples))]
    return Packed(result, cross_split_duplicates(report, splits))
