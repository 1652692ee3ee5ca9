"""Corrected labels back into a data set: images copied into ``DIR/<class name>/``.

A user who finds a wrong label (in a labelled folder or an evaluation) names the right
class; :func:`add_to_dataset` copies each such image into the class folder of a
folder-per-class data set, ready for the next training run. Originals are never moved or
changed and nothing is overwritten (a taken name becomes ``name (1).jpg``); what went where
is appended to ``DIR/corrections.csv``.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgcls_desktop.core.atomic import atomic_write_text
from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS, ImageError, probe
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.labelling import Unreadable, class_folder_name, reserve_name

CORRECTIONS_CSV = "corrections.csv"
CSV_HEADER = ("source", "class", "copied_to")


class CorrectionError(ValueError):
    """A correction cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class AddedImage:
    """One image copied into the data set: from where, under which class, to where."""

    source: Path
    class_name: str
    destination: Path


@dataclass
class CorrectionResult:
    """What :func:`add_to_dataset` did: images added, images it could not add, its CSV."""

    added: list[AddedImage] = field(default_factory=list)
    failed: list[Unreadable] = field(default_factory=list)
    csv_path: Path | None = None


def check_class_name(name: str) -> str:
    """``name`` without surrounding spaces when it can name a class folder as it is, else
    :class:`CorrectionError` saying why."""
    stripped = name.strip()
    if not stripped:
        raise CorrectionError("a class name cannot be empty")
    if stripped in (".", ".."):
        raise CorrectionError(f"{stripped!r} cannot be a class name")
    if "/" in stripped or "\\" in stripped:
        raise CorrectionError(f"a class name cannot contain / or \\: {stripped!r}")
    if stripped.startswith("."):
        raise CorrectionError(
            f"a class name cannot start with a dot (its folder would be hidden): {stripped!r}"
        )
    if class_folder_name(stripped) != stripped:
        raise CorrectionError(
            f'a class name cannot contain : * ? " < > |, control characters or end with a '
            f"dot (not every system allows them in folder names): {stripped!r}"
        )
    return stripped


def add_to_dataset(
    items: Sequence[tuple[Path, str]],
    dataset_dir: Path,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> CorrectionResult:
    """Copy each (image, class name) of ``items`` into ``dataset_dir/<class name>/``.

    Every class name is checked first (:class:`CorrectionError`, nothing copied). An image
    that is missing or not a usable image is listed in ``failed`` and the others go on.
    ``corrections.csv`` (source, class, copied_to) in ``dataset_dir`` gets one row per
    image added, also when the job is cancelled (a set ``cancel`` raises
    :class:`~imgcls_desktop.core.jobs.Cancelled` between images).
    """
    checked = [(Path(source), check_class_name(name)) for source, name in items]
    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    result = CorrectionResult()
    try:
        for done, (source, class_name) in enumerate(checked, start=1):
            check_cancel(cancel)
            try:
                result.added.append(_copy_image(source, class_name, dataset_dir))
            except (OSError, ImageError) as error:
                result.failed.append(Unreadable(source, _reason(error)))
            progress(done, len(checked))
    finally:
        if result.added:
            result.csv_path = _append_csv(dataset_dir / CORRECTIONS_CSV, result.added)
    return result


def _copy_image(source: Path, class_name: str, dataset_dir: Path) -> AddedImage:
    """Check that ``source`` is a usable image, then copy it under a name not yet taken."""
    if source.suffix.lower() not in IMAGE_EXTENSIONS:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise ImageError(f"not an image file name (expected one of {extensions})")
    probe(source.read_bytes())
    folder = dataset_dir / class_name
    folder.mkdir(exist_ok=True)
    destination = reserve_name(folder / source.name)
    try:
        shutil.copy2(source, destination)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return AddedImage(source, class_name, destination)


def _append_csv(path: Path, added: list[AddedImage]) -> Path:
    """Add rows to the CSV (made with its header when new), rewriting it atomically."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    if not text:
        writer.writerow(CSV_HEADER)
    for image in added:
        writer.writerow([image.source, image.class_name, image.destination])
    atomic_write_text(path, text + rows.getvalue())
    return path


def _reason(error: OSError | ImageError) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
