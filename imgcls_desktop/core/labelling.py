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
import json
import os
import shutil
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgcls_desktop.core.atomic import atomic_write_text
from imgcls_desktop.core.dataset.images import (
    IMAGE_ERRORS,
    IMAGE_EXTENSIONS,
    image_error_reason,
)
from imgcls_desktop.core.inference import DEFAULT_THRESHOLD, Predictor, labels_above, top_k
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress

UNCERTAIN_FOLDER = "_uncertain"
SORTED_CSV = "sorted.csv"
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
    """Predictions in input order, the unreadable files, and what produced them."""

    predictions: list[Prediction]
    unreadable: list[Unreadable]
    class_names: list[str]
    multi_label: bool
    top_k: int
    threshold: float


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
    """
    paths, unreadable = find_images(inputs)
    result = LabellingResult(
        [], unreadable, predictor.class_names, predictor.model.multi_label, top_k, threshold
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
    ``top1_label,top1_probability,...`` columns; written atomically."""
    ranks = min(result.top_k, len(result.class_names))
    header = ["path", "label", "confidence"] + (["labels"] if result.multi_label else [])
    for rank in range(1, ranks + 1):
        header += [f"top{rank}_label", f"top{rank}_probability"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for p in result.predictions:
        row = [str(p.path), p.label, f"{p.confidence:.6f}"]
        row += [";".join(p.labels)] if result.multi_label else []
        for label, probability in p.top_k:
            row += [label, f"{probability:.6f}"]
        writer.writerow(row)
    atomic_write_text(path, text.getvalue())


def write_jsonl(result: LabellingResult, path: Path) -> None:
    """SageMaker batch-transform JSON Lines, one object per image: ``{"source": PATH,
    "prediction": [p0, p1, ...], "label": NAME, "confidence": P}`` (and ``labels`` for a
    multi-label model); written atomically."""
    lines = []
    for p in result.predictions:
        item = {
            "source": str(p.path),
            "prediction": [float(value) for value in p.probabilities],
            "label": p.label,
            "confidence": p.confidence,
        }
        if result.multi_label:
            item["labels"] = list(p.labels)
        lines.append(json.dumps(item, ensure_ascii=False) + "\n")
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
    """Copy (or move) each image into ``out_dir/<label>/``, or ``out_dir/_uncertain/`` when
    its confidence is below ``min_confidence``.

    A name already taken is never overwritten: ``name (1).jpg``, ``name (2).jpg``... are
    used instead. ``sorted.csv`` (source, destination, label, confidence) is written in
    ``out_dir`` (under a new name when there is one already), also when cancelled.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = SortResult()
    total = len(result.predictions)
    try:
        for done, p in enumerate(result.predictions, start=1):
            check_cancel(cancel)
            uncertain = min_confidence is not None and p.confidence < min_confidence
            folder = out_dir / (UNCERTAIN_FOLDER if uncertain else class_folder_name(p.label))
            folder.mkdir(exist_ok=True)
            destination = reserve_name(folder / p.path.name)
            try:
                if move:
                    shutil.move(p.path, destination)
                else:
                    shutil.copy2(p.path, destination)
            except OSError as error:
                destination.unlink(missing_ok=True)
                outcome.failed.append(Unreadable(p.path, error.strerror or str(error)))
            else:
                outcome.sorted.append(SortedImage(p.path, destination, p.label, p.confidence))
            progress(done, total)
    finally:
        outcome.csv_path = _write_sorted_csv(outcome.sorted, out_dir)
    return outcome


def _write_sorted_csv(images: list[SortedImage], out_dir: Path) -> Path:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["source", "destination", "label", "confidence"])
    for image in images:
        row = [image.source, image.destination, image.label, f"{image.confidence:.6f}"]
        writer.writerow(row)
    path = reserve_name(out_dir / SORTED_CSV)
    atomic_write_text(path, text.getvalue())
    return path


def reserve_name(path: Path) -> Path:
    """Create an empty file at ``path``, or ``stem (n).suffix`` when taken; the name used.

    The file is created exclusively, so two writers never get the same name and nothing
    is ever overwritten."""
    candidate = path
    number = 0
    while True:
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return candidate
        except FileExistsError:
            number += 1
            candidate = path.with_name(f"{path.stem} ({number}){path.suffix}")


def class_folder_name(label: str) -> str:
    """A class name as a folder name: path separators and reserved characters replaced."""
    name = "".join("_" if c in _UNSAFE_CHARACTERS or ord(c) < 32 else c for c in label)
    name = name.strip().rstrip(".")
    return name if name and name not in (".", "..") else f"_{label.strip() or 'unnamed'}"
