"""Export a split *data set* as RecordIO: ``NAME-<split>.lst/.rec/.idx`` that im2rec and
``mx.io.ImageRecordIter`` read, plus ``classes.json``, ``labels.txt`` and ``dataset.json``
(``imgcls dataset export``; the Data Set tab's Export; training's packer packs with it too).

Not to be confused with :mod:`imgcls_desktop.core.model_export`, which exports a trained *model*.

Records are what im2rec writes: an ``IRHeader`` (single-label: the class id as a float;
multi-label: the multi-hot vector, ``flag`` = number of classes, which
``ImageRecordIter(label_width=num_classes)`` reads) followed by the image, encoded with
the same OpenCV parameters as ``mx.recordio.pack_img``; from the same ``.lst`` im2rec writes
the same bytes. The files are written without importing MXNet
(:mod:`~imgcls_desktop.core.dataset.recordio_writer`), byte for byte as its writer does.
The ``.lst`` index is the record key, which is the sample's index in the data set, so keys
are unique across the splits of one export; its paths are the file system's bytes, also for
a name that is not UTF-8 (see ``lst``).

Images are read, decoded (at reduced scale for JPEGs that are shrunk), resized and encoded
on a pool of threads (OpenCV releases the GIL); records are written in order by the calling
thread, with a bounded number of images in flight so memory stays flat on large data sets.
An image that cannot be read or decoded, or is over the pixel budget (or would be once
resized), is skipped and listed with the reason.

Every file is written under a hidden temporary name in the output folder
(``.<file>.<token>.partial``) and fsynced; only when all of them are complete does the
commit replace the earlier files, in this order, so that a kill between two steps never
leaves a ``.rec`` beside an ``.idx`` or ``.lst`` of another export:

1. the ``.idx`` and ``.lst`` of every split being written, and ``dataset.json``, are removed
   (an old ``.rec`` alone is still read whole: its records are keyed by position);
2. each split's ``.rec``, then its ``.idx`` and ``.lst``, are renamed into place;
3. ``classes.json`` and ``labels.txt``, then ``dataset.json`` last: it is there only when
   every file it describes is;
4. an earlier export's split files of the same name that were not written again are removed,
   and the folder is fsynced.

A cancelled or failed export removes its temporary files and leaves files from an earlier
export untouched (a failure before step 1). After step 1 the export has happened: a failing
fsync of the folder does not make it a failure. Temporary files a killed export left in the
folder are removed by the next export into it.

Outputs never replace inputs: an export refuses to write a file the data set is read from
(its ``.rec``, ``.idx``, ``.lst``, manifest or images), and its clean-up never removes one.
Replacing an earlier export's files (:func:`existing_export_files`) needs ``overwrite=True``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from imgcls_desktop.core.atomic import files_among, sync_folder
from imgcls_desktop.core.dataset.images import (
    IMAGE_ERRORS,
    ImageError,
    ImageInfo,
    decode_bgr,
    image_error_reason,
    probe,
    resize_shorter_side,
)
from imgcls_desktop.core.dataset.lst import format_lst_line
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.recordio_writer import IndexedRecordWriter
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SkippedImage
from imgcls_desktop.core.dataset.split import SPLIT_NAMES, SplitAssignment
from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS, json_text
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress

ENCODINGS = (".jpg", ".png")
_ENCODED_FORMAT = {".jpg": "jpeg", ".png": "png"}
_DEFAULT_QUALITY = {".jpg": 95, ".png": 3}
_QUALITY_RANGE = {".jpg": (1, 100), ".png": (0, 9)}
_QUALITY_PARAMETER = {".jpg": cv2.IMWRITE_JPEG_QUALITY, ".png": cv2.IMWRITE_PNG_COMPRESSION}
_IN_FLIGHT_PER_WORKER = 4
_LST_SEPARATORS = frozenset("\t\n\r")
_IR_FORMAT = "IfQQ"  # mx.recordio.IRHeader: flag, label, id, id2
_SPLIT_SUFFIXES = (".lst", ".rec", ".idx")
_METADATA_FILES = ("classes.json", "labels.txt", "dataset.json")
_PARTIAL_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.partial")
_JPEG_MAX_SIDE = 65500  # what OpenCV's JPEG encoder takes


class ExportError(Exception):
    """The export could not be written; the message says why. Nothing was left behind.

    ``skipped`` lists the images that were skipped before the export stopped.
    """

    def __init__(self, message: str, skipped: tuple[SkippedImage, ...] = ()) -> None:
        super().__init__(message)
        self.skipped = skipped


def existing_export_files(out_dir: str | os.PathLike[str], name: str = "dataset") -> list[Path]:
    """The files in ``out_dir`` that an export named ``name`` would replace or remove.

    These are ``NAME-<split>.lst/.rec/.idx`` of every split and the folder's
    ``classes.json``, ``labels.txt`` and ``dataset.json``; writing over any of them needs
    ``export_recordio(..., overwrite=True)``.
    """
    return [path for path in _export_files(Path(out_dir), name, SPLIT_NAMES) if path.is_file()]


@dataclass(frozen=True)
class ExportOptions:
    """How images are stored in the records.

    ``resize``: shorter side in pixels (None keeps the size). ``quality``: JPEG quality 1-100
    or PNG compression 0-9 (None: 95 for JPEG, 3 for PNG). ``pass_through``: store an image's
    original bytes when no transform is needed (already in the target encoding, 8-bit
    3-channel, shorter side already ``resize``). ``workers``: threads (default: all cores).
    """

    resize: int | None = None
    quality: int | None = None
    encoding: str = ".jpg"
    pass_through: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(
                f"encoding must be one of {', '.join(ENCODINGS)} (got {self.encoding!r})"
            )
        if self.resize is not None and self.resize < 1:
            raise ValueError(f"resize must be a positive number of pixels (got {self.resize})")
        low, high = _QUALITY_RANGE[self.encoding]
        if self.quality is not None and not low <= self.quality <= high:
            what = "JPEG quality" if self.encoding == ".jpg" else "PNG compression"
            raise ValueError(f"{what} must be {low}-{high} (got {self.quality})")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1 (got {self.workers})")

    @property
    def effective_quality(self) -> int:
        """The quality (JPEG) or compression (PNG) actually used."""
        return _DEFAULT_QUALITY[self.encoding] if self.quality is None else self.quality


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: final file paths, records per written split, skipped images."""

    out_dir: Path
    name: str
    files: tuple[Path, ...]
    counts: dict[str, int]
    skipped: tuple[SkippedImage, ...]
    seconds: float

    @property
    def written(self) -> int:
        """Records written over all splits."""
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        """Images processed (written or skipped) per second."""
        return (self.written + len(self.skipped)) / self.seconds if self.seconds > 0 else 0.0


def export_recordio(
    dataset: Dataset,
    out_dir: str | os.PathLike[str],
    *,
    name: str = "dataset",
    assignment: SplitAssignment,
    options: ExportOptions | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write the splits of ``assignment`` as RecordIO files into ``out_dir``, atomically.

    Unreadable images are skipped and listed in the result. Raises :class:`Cancelled` when
    ``cancel`` is set and :class:`ExportError` when nothing could be written; either way no
    new file is left in ``out_dir``. Refuses (ExportError, before writing anything) to write
    a file ``dataset`` is read from, and, unless ``overwrite``, to replace any of
    :func:`existing_export_files`.
    """
    options = options or ExportOptions()
    _check_name(name)
    jobs = [(split, index) for split in SPLIT_NAMES for index in assignment.indices(split)]
    if not jobs:
        raise ExportError("nothing to export: no image is in any split")
    if max(index for _split, index in jobs) >= len(dataset.samples):
        raise ValueError("the split assignment does not belong to this data set")
    started = time.perf_counter()
    out = Path(out_dir)
    splits = [split for split in SPLIT_NAMES if assignment.indices(split)]
    _refuse_to_replace(dataset, out, name, splits, overwrite)
    created_out = not out.exists()
    staging = _Staging(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _remove_leftover_partials(out)
        writers, skipped = _write_records(dataset, jobs, name, staging, options, progress, cancel)
        if not writers:
            raise ExportError("no image could be exported: every image was skipped", tuple(skipped))
        counts = {split: writer.count for split, writer in writers.items()}
        _write_metadata(dataset, name, assignment, options, writers, skipped, staging)
        replaced = [
            out / f"{name}-{split}{suffix}" for split in counts for suffix in (".idx", ".lst")
        ]
        files = staging.commit(removed_first=[*replaced, out / "dataset.json"])
    except BaseException as error:
        staging.discard()
        if created_out:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if it is still empty
        if isinstance(error, OSError):
            raise ExportError(f"cannot write to {out}: {error.strerror or error}") from error
        raise
    unwritten = [split for split in SPLIT_NAMES if split not in counts]
    stale = _export_files(out, name, unwritten, metadata=False)
    for path in set(stale) - set(_inputs_among(dataset, stale)):
        path.unlink(missing_ok=True)
    # The files are in place and were fsynced: the export has happened, and saying it failed
    # would be wrong. A folder that cannot be fsynced (a full disk, a file system without
    # it) only leaves the renames' durability to the file system's own flushing.
    with contextlib.suppress(OSError):
        sync_folder(out)
        if created_out:
            sync_folder(out.parent)
    return ExportResult(
        out, name, files, counts, tuple(skipped), seconds=time.perf_counter() - started
    )


def _export_files(
    out: Path, name: str, splits: Sequence[str], *, metadata: bool = True
) -> list[Path]:
    """The paths of ``splits``' files (and of the folder's metadata files) of an export."""
    names = [f"{name}-{split}{suffix}" for split in splits for suffix in _SPLIT_SUFFIXES]
    return [out / file_name for file_name in names + list(_METADATA_FILES if metadata else ())]


def _refuse_to_replace(
    dataset: Dataset, out: Path, name: str, splits: Sequence[str], overwrite: bool
) -> None:
    """ExportError when the export would write over its own input, or over an earlier
    export without ``overwrite``."""
    inputs = _inputs_among(dataset, _export_files(out, name, splits))
    if inputs:
        raise ExportError(
            f"cannot write {', '.join(path.name for path in inputs)} in {out}: they are part of "
            "the data set being exported; export into another folder or under another name"
        )
    existing = [] if overwrite else existing_export_files(out, name)
    if existing:
        raise ExportError(
            f"{out} already holds {', '.join(path.name for path in existing)}; export into "
            "another folder or under another name, or allow overwriting them"
        )


def _inputs_among(dataset: Dataset, paths: Sequence[Path]) -> list[Path]:
    """The existing files among ``paths`` that ``dataset`` is read from (the same file,
    whatever the path says: links and case-insensitive names included)."""
    existing = [path for path in paths if path.is_file()]
    if not existing:
        return []
    names = {path.name.casefold() for path in existing}
    sources: list[str | Path] = [dataset.source]
    if dataset.record_file is not None:
        rec = dataset.record_file
        sources += [rec, rec.with_suffix(".idx"), rec.with_suffix(".lst")]
    sources += [
        sample.path
        for sample in dataset.samples
        if sample.record is None and os.path.basename(sample.path).casefold() in names
    ]
    return files_among(existing, sources)


def _remove_leftover_partials(out: Path) -> None:
    """Delete the temporary files an export that was killed left in ``out``."""
    for path in out.iterdir():
        if _PARTIAL_NAME.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or any(c in name for c in "/\\\t\n\0"):
        raise ValueError(
            f"the export name {name!r} must be a plain file name (no folders, not hidden)"
        )


def _write_records(
    dataset: Dataset,
    jobs: list[tuple[str, int]],
    name: str,
    staging: _Staging,
    options: ExportOptions,
    progress: ProgressFn,
    cancel: CancelFlag | None,
) -> tuple[dict[str, _SplitWriter], list[SkippedImage]]:
    """Encode images on a thread pool and write them in order; returns the writers used."""
    writers: dict[str, _SplitWriter] = {}
    skipped: list[SkippedImage] = []
    progress(0, len(jobs))
    with ImageReader(dataset) as reader:
        pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="export")
        try:
            futures = _ordered_submit(
                pool,
                lambda index: _encode_record(reader, dataset, index, options),
                [index for _split, index in jobs],
                limit=options.workers * _IN_FLIGHT_PER_WORKER,
            )
            for done, ((split, index), future) in enumerate(zip(jobs, futures), start=1):
                check_cancel(cancel)
                sample = dataset.samples[index]
                lst_path = dataset.relative_path(sample)
                try:
                    if _LST_SEPARATORS.intersection(lst_path):
                        raise ImageError("its name holds a tab or line break, which a .lst cannot")
                    record = future.result()
                except IMAGE_ERRORS as error:
                    skipped.append(SkippedImage(sample.path, image_error_reason(error)))
                else:
                    if split not in writers:
                        writers[split] = _SplitWriter(staging, f"{name}-{split}", dataset)
                    writers[split].write(index, sample, lst_path, record)
                progress(done, len(jobs))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for writer in writers.values():
                writer.close()
    return writers, skipped


def _ordered_submit(
    pool: ThreadPoolExecutor, function: Callable[[int], bytes], items: list[int], limit: int
) -> Iterator[Future[bytes]]:
    """Futures of ``function(item)`` in item order, with at most ``limit`` submitted ahead."""
    in_flight: collections.deque[Future[bytes]] = collections.deque()
    for item in items:
        in_flight.append(pool.submit(function, item))
        if len(in_flight) >= limit:
            yield in_flight.popleft()
    while in_flight:
        yield in_flight.popleft()


def _labels(dataset: Dataset, sample: Sample) -> list[float]:
    """The label columns of a sample: its class id, or its multi-hot vector."""
    return dataset.label_vector(sample) if dataset.multi_label else [float(sample.label)]


def _encode_record(
    reader: ImageReader, dataset: Dataset, index: int, options: ExportOptions
) -> bytes:
    """One packed record: header plus the image, transformed only when it has to be."""
    sample = dataset.samples[index]
    data = reader.read(sample)
    info = probe(data)
    if not (options.pass_through and _passes_through(info, options)):
        image = decode_bgr(data, info, options.resize)
        if options.resize:
            image = resize_shorter_side(image, options.resize)
        if options.encoding == ".jpg" and max(image.shape[:2]) > _JPEG_MAX_SIDE:
            raise ImageError(
                f"{image.shape[1]} x {image.shape[0]} is too long for a JPEG "
                f"(at most {_JPEG_MAX_SIDE:,} pixels a side): pack it as .png"
            )
        parameters = [_QUALITY_PARAMETER[options.encoding], options.effective_quality]
        ok, encoded = cv2.imencode(options.encoding, image, parameters)
        if not ok:
            raise ImageError(f"cannot be encoded as {options.encoding}")
        data = encoded.tobytes()
    return _pack(_labels(dataset, sample), dataset.multi_label, index, data)


def _pack(labels: list[float], multi_label: bool, key: int, payload: bytes) -> bytes:
    """The bytes ``mx.recordio.pack`` makes of ``IRHeader(0, label(s), key, 0)`` and a payload.

    Written out because ``pack`` converts a label vector with numpy's deprecated
    ``tostring()``, a warning for every multi-label image.
    """
    if not multi_label:
        return struct.pack(_IR_FORMAT, 0, labels[0], key, 0) + payload
    vector = np.asarray(labels, dtype=np.float32)
    return struct.pack(_IR_FORMAT, vector.size, 0.0, key, 0) + vector.tobytes() + payload


def _passes_through(info: ImageInfo, options: ExportOptions) -> bool:
    """True when the original bytes already are what the export would produce."""
    return (
        info.format == _ENCODED_FORMAT[options.encoding]
        and not info.needs_conversion
        and (options.resize is None or min(info.width, info.height) == options.resize)
    )


class _SplitWriter:
    """The ``.lst``, ``.rec`` and ``.idx`` files of one split, under temporary names (created
    ``.rec`` first: the commit renames them in that order)."""

    def __init__(self, staging: _Staging, stem: str, dataset: Dataset) -> None:
        self._dataset = dataset
        self.count = 0
        self.class_counts = [0] * dataset.num_classes
        rec_path = staging.new_file(f"{stem}.rec")
        idx_path = staging.new_file(f"{stem}.idx")
        self._lst: IO[str] = staging.new_file(f"{stem}.lst").open(
            "w", encoding="utf-8", errors=PATH_TEXT_ERRORS
        )
        self._record = IndexedRecordWriter(idx_path, rec_path)

    def write(self, key: int, sample: Sample, lst_path: str, record: bytes) -> None:
        self._record.write(key, record)
        self._lst.write(format_lst_line(key, _labels(self._dataset, sample), lst_path))
        self.count += 1
        for label in sample.labels:
            self.class_counts[label] += 1

    def close(self) -> None:
        self._record.close()
        self._lst.close()


class _Staging:
    """Files created under hidden temporary names in a folder and renamed into place together."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._token = secrets.token_hex(4)
        self._final_names: dict[Path, Path] = {}

    def new_file(self, name: str) -> Path:
        """Create (empty, exclusively) the temporary file that becomes ``name`` on commit."""
        temporary = self._folder / f".{name}.{self._token}.partial"
        self._final_names[temporary] = self._folder / name
        temporary.open("xb").close()
        return temporary

    def write_text(self, name: str, text: str) -> None:
        """Create a temporary text file that becomes ``name`` on commit."""
        self.new_file(name).write_text(text, encoding="utf-8", errors=PATH_TEXT_ERRORS)

    def commit(self, removed_first: Sequence[Path] = ()) -> tuple[Path, ...]:
        """Flush every temporary file to disk, delete ``removed_first``, then rename each
        temporary file to its final name in the order they were created; returns the final
        paths (the caller syncs the folder once its clean-up is done too)."""
        for temporary in self._final_names:
            with temporary.open("rb+") as file:
                os.fsync(file.fileno())
        for path in removed_first:
            path.unlink(missing_ok=True)
        for temporary, final in self._final_names.items():
            os.replace(temporary, final)
        finals = tuple(self._final_names.values())
        self._final_names.clear()
        return finals

    def discard(self) -> None:
        """Delete every temporary file not yet renamed."""
        for temporary in self._final_names:
            temporary.unlink(missing_ok=True)
        self._final_names.clear()


def _write_metadata(
    dataset: Dataset,
    name: str,
    assignment: SplitAssignment,
    options: ExportOptions,
    writers: dict[str, _SplitWriter],
    skipped: list[SkippedImage],
    staging: _Staging,
) -> None:
    """``classes.json``, ``labels.txt`` and our own ``dataset.json`` describing the export."""
    staging.write_text("classes.json", json_text(dataset.class_names) + "\n")
    staging.write_text(
        "labels.txt", "".join(f"{class_name}\n" for class_name in dataset.class_names)
    )
    description = {
        "name": name,
        "class_names": dataset.class_names,
        "num_classes": dataset.num_classes,
        "multi_label": dataset.multi_label,
        "counts": {split: writer.count for split, writer in writers.items()},
        "class_counts": {split: writer.class_counts for split, writer in writers.items()},
        "skipped": len(skipped),
        "split": {
            "val_ratio": assignment.val_ratio,
            "test_ratio": assignment.test_ratio,
            "seed": assignment.seed,
        },
        "options": {
            "resize": options.resize,
            "quality": options.effective_quality,
            "encoding": options.encoding,
            "pass_through": options.pass_through,
        },
        "source": {
            "kind": dataset.kind.value,
            "path": str(dataset.source),
            "root": None if dataset.root is None else str(dataset.root),
        },
    }
    staging.write_text("dataset.json", json_text(description, indent=2) + "\n")
