"""The health scan: what is wrong with a data set before it is packed.

Every image is read, hashed (SHA-256 of its bytes), probed and decoded, in parallel threads
(OpenCV, hashlib and file reads release the GIL); a caller that decodes every image right
after (packing) may leave the decoding to itself (``decode=False``). Unusable files are
reported with a reason and skipped (an image over the pixel budget among them, refused from
its header before it is decoded); nothing in the data raises. Only statistics are kept,
never decoded pixels.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import os
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

from imgcls_desktop.core.dataset.images import (
    IMAGE_ERRORS,
    decode_bgr,
    image_error_reason,
    probe,
)
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset, Sample
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, chunks, no_progress

_IN_FLIGHT_PER_WORKER = 4
# Images a worker checks per task: a task costs the pool about as much as checking a small
# image (4,000 images of 28 px: 0.25 s one by one in one thread, 0.6 s as one task each).
_IMAGES_PER_TASK = 16
_WAIT_SECONDS = 0.05  # how often the cancel flag is checked while every worker is busy


@dataclass(frozen=True)
class FileResult:
    """What the scan found for one sample.

    ``reason`` says why an unusable file is skipped (empty when ``ok``); ``conversion``
    lists what export changes to make it 8-bit colour (e.g. ``"grayscale, 16-bit"``).
    """

    index: int
    path: str
    ok: bool
    reason: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    conversion: str = ""


@dataclass(frozen=True)
class ClassCount:
    """A class and its number of usable images."""

    class_id: int
    name: str
    count: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Samples whose files have exactly the same bytes."""

    sha256: str
    indices: tuple[int, ...]
    paths: tuple[str, ...]
    labels: tuple[tuple[int, ...], ...]
    labels_differ: bool


@dataclass(frozen=True)
class Imbalance:
    """The largest and the smallest non-empty class, when their ratio is too high."""

    ratio: float
    largest: ClassCount
    smallest: ClassCount


@dataclass(frozen=True)
class CrossSplitDuplicate:
    """A duplicate group whose copies fall into different splits (``splits[i]`` of ``paths[i]``)."""

    indices: tuple[int, ...]
    paths: tuple[str, ...]
    splits: tuple[str, ...]


@dataclass
class ScanReport:
    """The scan's findings, plus the settings they were judged by.

    Small images and duplicates are reported but stay usable: what to do with them is the
    user's choice. Class counts are of usable images; a multi-label image counts once for
    each of its labels.
    """

    class_names: list[str]
    multi_label: bool
    files: list[FileResult]
    class_counts: list[int]
    duplicate_groups: list[DuplicateGroup]
    few_images_classes: list[ClassCount]
    imbalance: Imbalance | None
    min_size: tuple[int, int] | None
    min_per_class: int
    imbalance_ratio: float
    small_class_share: float = 0.25

    @property
    def usable_indices(self) -> list[int]:
        """Indices of the samples that can be exported."""
        return [result.index for result in self.files if result.ok]

    @property
    def bad_files(self) -> list[FileResult]:
        """Files that cannot be used, each with its reason."""
        return [result for result in self.files if not result.ok]

    @property
    def small_images(self) -> list[FileResult]:
        """Usable images smaller than :attr:`min_size` (height, width) in either side."""
        if self.min_size is None:
            return []
        min_height, min_width = self.min_size
        return [
            result
            for result in self.files
            if result.ok and (result.height < min_height or result.width < min_width)
        ]

    @property
    def converted(self) -> list[FileResult]:
        """Usable images that export converts to 8-bit, 3-channel colour."""
        return [result for result in self.files if result.ok and result.conversion]

    def classes(self) -> list[ClassCount]:
        """Every class with its number of usable images, in id order."""
        return _class_list(self.class_names, self.class_counts)

    def has_problems(self) -> bool:
        """True when any category of problem has an entry."""
        return bool(
            self.bad_files
            or self.small_images
            or self.converted
            or self.duplicate_groups
            or self.few_images_classes
            or self.imbalance
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable values, problem lists included."""
        data = asdict(self)
        data["usable_indices"] = self.usable_indices
        for name in ("bad_files", "small_images", "converted"):
            data[name] = [asdict(result) for result in getattr(self, name)]
        return data


def scan_dataset(
    dataset: Dataset,
    *,
    min_size: tuple[int, int] | None = None,
    min_per_class: int = 10,
    imbalance_ratio: float = 10.0,
    small_class_share: float = 0.25,
    workers: int | None = None,
    decode: bool = True,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> ScanReport:
    """Read, hash, probe and decode every image of ``dataset`` and report its problems.

    ``min_size`` is (height, width). A class has few images below ``min_per_class`` or
    below ``small_class_share`` of the median class (a class far below the others, which
    training all but ignores, even when it is not tiny). ``workers`` threads decode
    (default: one per core). ``decode=False`` checks headers only (probe and hash), for a
    caller that decodes every usable image itself and skips those that fail, as packing
    does: each image is then decoded once, not twice.
    ``progress(done, total)`` is called from the calling thread after every image;
    :class:`~imgcls_desktop.core.jobs.Cancelled` is raised soon after ``cancel`` is set,
    once the images being decoded at that moment are done.
    """
    if min_size is not None and (len(min_size) != 2 or min(min_size) < 1):
        raise ValueError(f"the minimum size is (height, width) in pixels, not {min_size}")
    if min_per_class < 0:
        raise ValueError(f"the minimum images per class cannot be negative ({min_per_class})")
    if imbalance_ratio < 1:
        raise ValueError(f"the imbalance ratio must be at least 1, not {imbalance_ratio}")
    if not 0 <= small_class_share <= 1:
        raise ValueError(f"the small-class share is between 0 and 1, not {small_class_share}")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")

    total = len(dataset.samples)
    results: list[FileResult | None] = [None] * total
    digests: dict[int, str] = {}
    progress(0, total)
    with (
        ImageReader(dataset) as reader,
        closing(_scan_files(reader, dataset, workers, decode, cancel)) as checked,
    ):
        for done, (result, digest) in enumerate(checked, 1):
            results[result.index] = result
            if digest is not None:
                digests[result.index] = digest
            progress(done, total)
    files = [result for result in results if result is not None]

    counts = [0] * dataset.num_classes
    for result in files:
        if result.ok:
            for label in dataset.samples[result.index].labels:
                counts[label] += 1
    report_classes = _class_list(dataset.class_names, counts)
    return ScanReport(
        class_names=list(dataset.class_names),
        multi_label=dataset.multi_label,
        files=files,
        class_counts=counts,
        duplicate_groups=_duplicate_groups(dataset, digests),
        few_images_classes=_few_images(report_classes, min_per_class, small_class_share),
        imbalance=_imbalance(report_classes, imbalance_ratio),
        min_size=tuple(min_size) if min_size is not None else None,
        min_per_class=min_per_class,
        imbalance_ratio=imbalance_ratio,
        small_class_share=small_class_share,
    )


def _scan_files(
    reader: ImageReader, dataset: Dataset, workers: int, decode: bool, cancel: CancelFlag | None
) -> Iterator[tuple[FileResult, str | None]]:
    """Check the samples in ``workers`` threads, yielding results as they complete.

    Only a few tasks of a few images per worker are queued at a time, and a task stops once
    ``cancel`` is set, so a cancel takes effect at once; memory holds only the bytes of the
    images being checked.
    """
    tasks = chunks(enumerate(dataset.samples), _IMAGES_PER_TASK)
    queue_size = workers * _IN_FLIGHT_PER_WORKER
    with cf.ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
        pending: set[cf.Future[list[tuple[FileResult, str | None]]]] = set()
        try:
            while True:
                check_cancel(cancel)
                for task in itertools.islice(tasks, queue_size - len(pending)):
                    pending.add(pool.submit(_check_files, reader, task, decode, cancel))
                if not pending:
                    return
                finished, pending = cf.wait(
                    pending, timeout=_WAIT_SECONDS, return_when=cf.FIRST_COMPLETED
                )
                for future in finished:
                    for result in future.result():
                        check_cancel(cancel)
                        yield result
        finally:
            for future in pending:
                future.cancel()


def _check_files(
    reader: ImageReader,
    task: list[tuple[int, Sample]],
    decode: bool,
    cancel: CancelFlag | None,
) -> list[tuple[FileResult, str | None]]:
    """:func:`_check_file` on each sample of ``task``, in turn, until ``cancel`` is set."""
    results = []
    for index, sample in task:
        if cancel is not None and cancel.is_set():
            break
        results.append(_check_file(reader, index, sample, decode))
    return results


def _check_file(
    reader: ImageReader, index: int, sample: Sample, decode: bool
) -> tuple[FileResult, str | None]:
    """The result for one sample and, when it is usable, the SHA-256 of its bytes (decoded
    only when ``decode``)."""
    try:
        data = reader.read(sample)
        info = probe(data)
    except IMAGE_ERRORS as exc:
        return FileResult(index, sample.path, ok=False, reason=image_error_reason(exc)), None
    found = FileResult(
        index,
        sample.path,
        ok=True,
        width=info.width,
        height=info.height,
        format=info.format,
        conversion=info.describe_conversion() if info.needs_conversion else "",
    )
    if not decode:
        return found, hashlib.sha256(data).hexdigest()
    try:
        # A JPEG is decoded at 1/8 scale: libjpeg still entropy-decodes every block, where
        # corruption shows (3,000 randomly damaged JPEGs failed or passed exactly as at full
        # scale), but skips most of the inverse DCT: 2.5x faster on 3-megapixel photos.
        decode_bgr(data, info, shorter_side=1)
    except IMAGE_ERRORS as exc:
        return _unusable(found, image_error_reason(exc)), None
    return found, hashlib.sha256(data).hexdigest()


def _class_list(names: Sequence[str], counts: Sequence[int]) -> list[ClassCount]:
    return [
        ClassCount(class_id, name, count)
        for class_id, (name, count) in enumerate(zip(names, counts))
    ]


def _unusable(result: FileResult, reason: str) -> FileResult:
    return FileResult(
        result.index, result.path, False, reason, result.width, result.height, result.format
    )


def _duplicate_groups(dataset: Dataset, digests: dict[int, str]) -> list[DuplicateGroup]:
    by_digest: dict[str, list[int]] = defaultdict(list)
    for index in sorted(digests):
        by_digest[digests[index]].append(index)
    groups = []
    for digest, indices in by_digest.items():
        if len(indices) > 1:
            members = [dataset.samples[index] for index in indices]
            labels = tuple(sample.labels for sample in members)
            paths = tuple(sample.path for sample in members)
            groups.append(
                DuplicateGroup(digest, tuple(indices), paths, labels, len(set(labels)) > 1)
            )
    return groups


def median_class_size(classes: Sequence[ClassCount]) -> float:
    """The median number of images of the non-empty classes (0 when all are empty)."""
    present = [c.count for c in classes if c.count > 0]
    return statistics.median(present) if present else 0.0


def _few_images(classes: list[ClassCount], minimum: int, share: float) -> list[ClassCount]:
    floor = max(minimum, share * median_class_size(classes))
    return [c for c in classes if c.count < floor]


def _imbalance(classes: list[ClassCount], ratio: float) -> Imbalance | None:
    """The largest/smallest pair of non-empty classes when their ratio exceeds ``ratio``.

    Empty classes are left out (they would make the ratio infinite); the few-images check
    reports them.
    """
    present = [c for c in classes if c.count > 0]
    if len(present) < 2:
        return None
    largest = max(present, key=lambda c: c.count)
    smallest = min(present, key=lambda c: c.count)
    found = largest.count / smallest.count
    return Imbalance(round(found, 2), largest, smallest) if found > ratio else None


def cross_split_duplicates(
    report: ScanReport, assignment: Sequence[str]
) -> list[CrossSplitDuplicate]:
    """Duplicate groups with copies in different splits (``assignment[i]``: sample i's split).

    Such copies leak training images into validation or test and inflate their scores. An
    empty split name means the sample is in no split; such copies are left out.
    """
    if len(assignment) != len(report.files):
        raise ValueError(
            f"the split assignment has {len(assignment)} entries for {len(report.files)} samples"
        )
    found = []
    for group in report.duplicate_groups:
        members = [(i, path) for i, path in zip(group.indices, group.paths) if assignment[i]]
        splits = tuple(assignment[index] for index, _path in members)
        if len(set(splits)) > 1:
            indices, paths = zip(*members)
            found.append(CrossSplitDuplicate(indices, paths, splits))
    return found
