"""The Dataset tab's background work: open and scan, split and export, make the sample.

Each function is a task run in a worker thread (:class:`~imgcls_desktop.gui.workers.JobRunner`)
with its :class:`~imgcls_desktop.core.jobs.JobContext` last, and touches no widget.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.scan import (
    ScanReport,
    scan_dataset,
)
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split_export import Packed, SplitShares, pack
from imgcls_desktop.core.jobs import JobContext
from imgcls_desktop.gui.dataset.export_panel import ExportSettings


@dataclass(frozen=True)
class Scanned:
    """A data set and its health scan, as the open job hands them to the tab."""

    path: Path
    dataset: Dataset
    report: ScanReport


def open_and_scan(path: Path, job: JobContext) -> Scanned:
    """Import the data set at ``path`` and scan it."""
    dataset = load_dataset(path)
    report = scan_dataset(dataset, progress=job.progress, cancel=job.cancel)
    return Scanned(path, dataset, report)


def split_and_export(
    dataset: Dataset,
    report: ScanReport,
    settings: ExportSettings,
    overwrite: bool,
    job: JobContext,
) -> Packed:
    """Split the usable images and export them to RecordIO as ``settings`` say;
    ``overwrite`` allows replacing an earlier export."""
    return pack(
        dataset,
        report,
        settings.out_dir,
        name=settings.name,
        shares=SplitShares(settings.val_ratio, settings.test_ratio, settings.seed),
        options=settings.options,
        overwrite=overwrite,
        progress=job.progress,
        cancel=job.cancel,
    )


def generate_sample(target: Path, job: JobContext) -> Path:
    """Generate the sample data set into ``target`` unless it is there.

    It is generated beside the target and renamed at the end, so a cancelled generation
    never leaves a half-made sample set to be opened later.
    """
    if target.is_dir() and any(target.iterdir()):
        return target
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        generate_sample_dataset(staging, progress=job.progress, cancel=job.cancel)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
