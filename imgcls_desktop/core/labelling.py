"""Batch labelling: a folder (or a list of files) -> predictions, CSV / JSON Lines, sorting.

Images are read, decoded and prepared in a thread pool while the network works on the
previous batch (OpenCV and MXNet both release the GIL); a bounded number of images is in
flight, and results keep the input order. An image that cannot be read, decoded or prepared
(over the pixel budget, damaged, out of memory) is listed with the reason and labelling goes
on.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgcls_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from imgcls_desktop.core.dataset.images import (
    IMAGE_ERRORS,
    IMAGE_EXTENSIONS,
    image_error_reason,
)
from imgcls_desktop.core.file_names import PATH_TEXT_ERRORS, display_path, json_text
from imgcls_desktop.core.inference import DEFAULT_THRESHOLD, Predictor, labels_above, top_k
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.placing import (
    CsvRecord,
    RecordedFile,
    by_source,
    copy_file,
    link_or_copy_file,
    place_new_file,
    placement_key,
    read_record,
    recover_placements,
    same_content,
)

UNCERTAIN_FOLDER = "_uncertain"
SORTED_CSV = "sorted.csv"
SORTED_CSV_HEADER = ("source", "destination", "label", "confidence", "folder")
_UNSAFE_CHARACTERS = set('/\\:*?"<>|')


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image.

    ``label``/``confidence``: the most probable class; ``top_k``: (label, probability)
    pairs, surest first; ``labels``: multi-label, every class at or above the threshold
    (single-label: just ``label``).
    """

    path: Path
    label: str
    confidence: float
    probabilities: np.ndarray
    top_k: list[tuple[str, float]]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be used, and why."""

    path: Path
    reason: str


@dataclass
class LabellingResult:
    """Predictions in input order, the unreadable files, and what produced them
    (``numeric_precision``: the network's arithmetic, ``fp32``, ``int8`` or ``bf16``)."""

    predictions: list[Prediction]
    unreadable: list[Unreadable]
    class_names: list[str]
    multi_label: bool
    top_k: int
    threshold: float
    numeric_precision: str = "fp32"


@dataclass(frozen=True)
class SortedImage:
    """Where :func:`sort_into_folders` put one image."""

    source: Path
    destination: Path
    label: str
    confidence: float


@dataclass
class SortResult:
    """What :func:`sort_into_folders` did: images sorted, images it failed on, its CSV."""

    sorted: list[SortedImage] = field(default_factory=list)
    failed: list[Unreadable] = field(default_factory=list)
    csv_path: Path | None = None


def find_images(inputs: Sequence[Path]) -> tuple[list[Path], list[Unreadable]]:
    """The image files named by ``inputs``: folders walked recursively (sorted, hidden files
    and folders left out, image extensions only), files as given; missing paths listed."""
    files: list[Path] = []
    missing: list[Unreadable] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(_walk(item))
        elif item.is_file():
            files.append(item)
        else:
            missing.append(Unreadable(item, "no such file or folder"))
    return files, missing


def _walk(folder: Path) -> Iterator[Path]:
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(root, name)


def label_images(
    predictor: Predictor,
    inputs: Sequence[Path],
    *,
    top_k: int = 5,
    threshold: float = DEFAULT_THRESHOLD,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> LabellingResult:
    """Label every image of ``inputs`` (folders and files, see :func:`find_images`).

    ``progress(done, total)`` after every batch; :class:`~imgcls_desktop.core.jobs.Cancelled`
    when ``cancel`` is set. ``threshold`` makes the label sets of a multi-label model.
    ``top_k`` is at most the number of classes.
    """
    top_k = min(top_k, len(predictor.class_names))
    paths, unreadable = find_images(inputs)
    result = LabellingResult(
        [],
        unreadable,
        predictor.class_names,
        predictor.model.multi_label,
        top_k,
        threshold,
        predictor.precision,
    )
    batch_paths: list[Path] = []
    batch: list[np.ndarray] = []
    for processed, (path, prepared) in enumerate(
        _prepared_in_order(predictor, paths, cancel), start=1
    ):
        if isinstance(prepared, Unreadable):
            result.unreadable.append(prepared)
        else:
            batch_paths.append(path)
            batch.append(prepared)
        if batch and (len(batch) == predictor.batch_size or processed == len(paths)):
            probabilities = predictor.forward(np.stack(batch))
            result.predictions.extend(_predictions(result, batch_paths, probabilities))
            batch_paths, batch = [], []
            progress(processed, len(paths))
    progress(len(paths), len(paths))
    return result


def _prepared_in_order(
    predictor: Predictor, paths: list[Path], cancel: CancelFlag | None
) -> Iterator[tuple[Path, np.ndarray | Unreadable]]:
    """Each path with its prepared image (or why it is unreadable), in order, prepared by a
    pool that keeps at most two batches (and one image per worker) ahead."""
    workers = os.cpu_count() or 1
    limit = 2 * predictor.batch_size + workers
    remaining = iter(paths)
    pending: deque[tuple[Path, Future[np.ndarray]]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="labelling") as pool:
        try:
            while True:
                for path in itertools.islice(remaining, limit - len(pending)):
                    pending.append((path, pool.submit(_prepare, predictor, path)))
                if not pending:
                    return
                check_cancel(cancel)
                path, future = pending.popleft()
                try:
                    prepared = future.result()
                except IMAGE_ERRORS as error:
                    yield path, Unreadable(path, image_error_reason(error))
                else:
                    yield path, prepared
        finally:
            for _path, future in pending:
                future.cancel()


def _prepare(predictor: Predictor, path: Path) -> np.ndarray:
    return predictor.preprocess(path.read_bytes())


def _predictions(
    result: LabellingResult, paths: list[Path], probabilities: np.ndarray
) -> Iterator[Prediction]:
    names = result.class_names
    indices, values = top_k(probabilities, result.top_k)
    label_sets = labels_above(probabilities, result.threshold) if result.multi_label else None
    for row, path in enumerate(paths):
        ranked = [(names[i], float(p)) for i, p in zip(indices[row], values[row])]
        label, confidence = ranked[0]
        labels = tuple(names[i] for i in label_sets[row]) if label_sets else (label,)
        yield Prediction(path, label, confidence, probabilities[row], ranked, labels)


def write_csv(result: LabellingResult, path: Path) -> None:
    """``path,label,confidence`` (``labels`` for a multi-label model), then
    ``top1_label,top1_probability,...`` columns, then ``numeric_precision``; written
    atomically, paths as the file system has them (see :mod:`imgcls_desktop.core.file_names`)."""
    ranks = min(result.top_k, len(result.class_names))
    header = ["path", "label", "confidence"] + (["labels"] if result.multi_label else [])
    for rank in range(1, ranks + 1):
        header += [f"top{rank}_label", f"top{rank}_probability"]
    header.append("numeric_precision")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for p in result.predictions:
        row = [str(p.path), p.label, f"{p.confidence:.6f}"]
        row += [";".join(p.labels)] if result.multi_label else []
        for label, probability in p.top_k:
            row += [label, f"{probability:.6f}"]
        writer.writerow([*row, result.numeric_precision])
    atomic_write_bytes(path, text.getvalue().encode("utf-8", PATH_TEXT_ERRORS))


def write_jsonl(result: LabellingResult, path: Path) -> None:
    """SageMaker batch-transform JSON Lines, one object per image: ``{"source": PATH,
    "prediction": [p0, p1, ...], "label": NAME, "confidence": P, "numeric_precision":
    "fp32"}`` (and ``labels`` for a multi-label model); written atomically, a file name
    that is not UTF-8 as its escaped code points (see :mod:`imgcls_desktop.core.file_names`)."""
    lines = []
    for p in result.predictions:
        item = {
            "source": str(p.path),
            "prediction": [float(value) for value in p.probabilities],
            "label": p.label,
            "confidence": p.confidence,
            "numeric_precision": result.numeric_precision,
        }
        if result.multi_label:
            item["labels"] = list(p.labels)
        lines.append(json_text(item) + "\n")
    atomic_write_text(path, "".join(lines))


def sort_into_folders(
    result: LabellingResult,
    out_dir: Path,
    *,
    move: bool = False,
    min_confidence: float | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> SortResult:
    """Copy (or move) each image into ``out_dir/<class folder>/``, or ``out_dir/_uncertain/``
    when its confidence is below ``min_confidence``; :func:`sort_folders` names the class
    folders, one per class, none of them ``_uncertain``.

    A name already taken is never overwritten: ``name (1).jpg``, ``name (2).jpg``... are
    used instead. ``out_dir/sorted.csv`` (source, destination, label, confidence, folder)
    gets a line per image as it is sorted (a re-run appends to it). Each image is copied
    under a temporary name, recorded, then given its final name, and a move deletes the
    source last (see :mod:`imgcls_desktop.core.placing`): when the job is killed, every
    file under a final name is whole and recorded, and every image is in its source folder
    or recorded and in its destination.

    Sorting again into ``out_dir`` first finishes what a killed sort left there
    (:func:`~imgcls_desktop.core.placing.recover_placements`). An image that killed sort
    had recorded into the same folder is not placed again: its copy, placed now, or (a
    move) the identical file already there is its destination, and a move removes the
    original. So a sort killed and run again on what is left equals one sort.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = sort_folders(result.class_names)
    recorded = [
        RecordedFile(row["source"], out_dir / row["folder"] / Path(row["destination"]).name)
        for row in read_record(out_dir / SORTED_CSV, SORTED_CSV_HEADER)
    ]
    targets = [out_dir / name for name in {*folders.values(), UNCERTAIN_FOLDER}]
    earlier = by_source(recover_placements(recorded, targets))
    if move:  # an original still there beside its recorded, identical copy: a killed move
        earlier = by_source(recorded) | earlier
    outcome = SortResult()
    total = len(result.predictions)
    with CsvRecord(out_dir / SORTED_CSV, SORTED_CSV_HEADER) as record:
        outcome.csv_path = record.path
        for done, p in enumerate(result.predictions, start=1):
            check_cancel(cancel)
            uncertain = min_confidence is not None and p.confidence < min_confidence
            folder = UNCERTAIN_FOLDER if uncertain else folders[p.label]
            destination = earlier.get(placement_key(p.path, folder))
            try:
                if destination is None or not same_content(p.path, destination):
                    (out_dir / folder).mkdir(exist_ok=True)
                    destination = place_new_file(
                        out_dir / folder / p.path.name,
                        (link_or_copy_file if move else copy_file)(p.path),
                        lambda final, p=p, folder=folder: record.write(
                            [p.path, final, p.label, f"{p.confidence:.6f}", folder]
                        ),
                    )
            except OSError as error:
                outcome.failed.append(Unreadable(p.path, error.strerror or str(error)))
            else:
                outcome.sorted.append(SortedImage(p.path, destination, p.label, p.confidence))
                if move:
                    _remove_original(p.path, destination, outcome)
            progress(done, total)
    return outcome


def _remove_original(path: Path, copy: Path, outcome: SortResult) -> None:
    try:
        os.unlink(path)
    except OSError as error:
        reason = f"copied to {display_path(copy)}, but the original could not be removed"
        outcome.failed.append(Unreadable(path, f"{reason}: {error.strerror or error}"))


def sort_folders(class_names: Sequence[str]) -> dict[str, str]:
    """Class name -> the name of its folder when sorting: distinct for every class, also
    on a file system that ignores case, and never ``_uncertain``.

    A class keeps its own name when it is a usable folder name (``a_b``); otherwise (``a/b``,
    or a name that differs from an earlier one only in case) it gets the safe form of its
    name, with `` (1)``, `` (2)``... added when that is taken.
    """
    taken = {UNCERTAIN_FOLDER.casefold()}
    folders: dict[str, str] = {}
    as_is = [name for name in class_names if class_folder_name(name) == name]
    for name in as_is + [name for name in class_names if name not in as_is]:
        base = class_folder_name(name)
        folder, number = base, 0
        while folder.casefold() in taken:
            number += 1
            folder = f"{base} ({number})"
        taken.add(folder.casefold())
        folders[name] = folder
    return folders


def class_folder_name(label: str) -> str:
    """A class name as a folder name: path separators and reserved characters replaced."""
    name = "".join("_" if c in _UNSAFE_CHARACTERS or ord(c) < 32 else c for c in label)
    name = name.strip().rstrip(".")
    return name if name and name not in (".", "..") else f"_{label.strip() or 'unnamed'}"
