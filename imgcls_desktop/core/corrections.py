"""Corrected labels back into a data set: images copied into ``DIR/<class name>/``.

A user who finds a wrong label (in a labelled folder or an evaluation) names the right
class; :func:`add_to_dataset` copies each such image into the class folder of a
folder-per-class data set, ready for the next training run. An image is a file, or an
:class:`ImageRef` to a record of a ``.rec`` whose bytes are written out. Originals are never
moved or changed and nothing is overwritten (a taken name becomes ``name (1).jpg``); what
went where is appended to ``DIR/corrections.csv``, a line per image as it is copied. Adding
again into ``DIR`` first finishes what a killed add left there (see
:mod:`imgcls_desktop.core.placing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePath

from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS, ImageError, probe, sniff_format
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, check_cancel, no_progress
from imgcls_desktop.core.labelling import Unreadable, class_folder_name
from imgcls_desktop.core.placing import (
    CsvRecord,
    RecordedFile,
    by_source,
    place_new_file,
    placement_key,
    read_record,
    recover_placements,
)

CORRECTIONS_CSV = "corrections.csv"
CSV_HEADER = ("source", "class", "copied_to")


class CorrectionError(ValueError):
    """A correction cannot be made as asked; the message says why."""


_EXTENSION_OF_FORMAT = {
    "jpeg": ".jpg",
    "png": ".png",
    "bmp": ".bmp",
    "tiff": ".tif",
    "webp": ".webp",
}


@dataclass(frozen=True)
class ImageRef:
    """Where to read one image again: a file, or a record of a data set's ``.rec``.

    ``path`` is the file's path, or the name the data set gives the record (its ``.lst``
    path, e.g. ``circle/circle_0023.jpg``, or ``<file>.rec#<key>``); ``record`` is the
    record's key and ``dataset`` the data set it is read from.
    """

    path: str
    record: int | None = None
    dataset: Dataset | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.record is not None and (self.dataset is None or self.dataset.record_file is None):
            raise ValueError(f"record {self.record} needs the data set of its .rec file")

    @property
    def source(self) -> str:
        """The image's address, unique across data sets: the file's path or
        ``<.rec path>#<key>``."""
        if self.record is None or self.dataset is None:
            return self.path
        return f"{self.dataset.record_file}#{self.record}"

    def sample(self) -> Sample:
        """The image as an (unlabelled) sample, for an :class:`ImageReader` of its data set."""
        return Sample(self.path, (), self.record)

    def read_bytes(self) -> bytes:
        """The image's bytes, from its file or its record (:class:`OSError` when gone)."""
        if self.record is None or self.dataset is None:
            return Path(self.path).read_bytes()
        with ImageReader(self.dataset) as reader:
            return reader.read(self.sample())

    def file_name(self, data: bytes) -> str:
        """The name of the image's copy: the file's or the record's name; a record named
        only by its key (``x.rec#23``) becomes ``x_23`` with the extension of its format.

        A file whose name is not an image's raises :class:`ImageError`."""
        name = PurePath(self.path).name
        if PurePath(name).suffix.lower() in IMAGE_EXTENSIONS:
            return name
        if self.record is None or self.dataset is None or self.dataset.record_file is None:
            extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise ImageError(f"not an image file name (expected one of {extensions})")
        image_format = sniff_format(data) or "jpeg"
        return f"{self.dataset.record_file.stem}_{self.record}{_EXTENSION_OF_FORMAT[image_format]}"


@dataclass(frozen=True)
class AddedImage:
    """One image copied into the data set: from where (:attr:`ImageRef.source`), under
    which class, to where."""

    source: str
    class_name: str
    destination: Path


@dataclass
class CorrectionResult:
    """What :func:`add_to_dataset` did: images added, images it could not add, its CSV."""

    added: list[AddedImage] = field(default_factory=list)
    failed: list[Unreadable] = field(default_factory=list)
    csv_path: Path | None = None


class CorrectionSet:
    """The labels a user corrected and has not yet added to a data set, and the ones added.

    Keyed by :attr:`ImageRef.source`. Correcting an image back to its original label undoes
    its correction; :meth:`record_added` moves what an add copied from pending to added.
    """

    def __init__(self) -> None:
        self._pending: dict[str, tuple[ImageRef, str]] = {}
        self._added: dict[str, tuple[str, Path]] = {}

    def __len__(self) -> int:
        """How many corrections are not yet added."""
        return len(self._pending)

    def correct(self, image: ImageRef, original: str, class_name: str) -> None:
        """``image`` (labelled ``original``) is of class ``class_name``: a correction, or
        the undoing of one when it is ``original``."""
        if class_name == original:
            self._pending.pop(image.source, None)
        else:
            self._pending[image.source] = (image, class_name)

    def pending(self) -> dict[str, str]:
        """Image source -> corrected class name, for the corrections not yet added."""
        return {source: name for source, (_image, name) in self._pending.items()}

    def items(self) -> list[tuple[ImageRef, str]]:
        """The (image, class name) pairs to add, for :func:`add_to_dataset`."""
        return list(self._pending.values())

    def discard(self) -> None:
        """Forget the corrections not yet added."""
        self._pending.clear()

    def record_added(self, result: CorrectionResult) -> None:
        """The images of ``result`` were added: no longer pending (unless corrected again
        to another class meanwhile), remembered as added."""
        for image in result.added:
            pending = self._pending.get(image.source)
            if pending is not None and pending[1] == image.class_name:
                del self._pending[image.source]
            self._added[image.source] = (image.class_name, image.destination)

    def label_text(self, source: str, original: str) -> tuple[str, str, bool]:
        """How to show an image's label: (text, tooltip, pending)."""
        pending = self._pending.get(source)
        if pending is not None:
            return (
                f"{original} → {pending[1]}",
                f"Corrected from {original} to {pending[1]}, not yet added to a data set "
                f"(choose {original} to undo)",
                True,
            )
        added = self._added.get(source)
        if added is not None:
            return f"{original} → {added[0]}", f"Added as {added[0]}: {added[1]}", False
        return original, "", False

    def knows(self, source: str) -> bool:
        """True when the image was corrected or added."""
        return source in self._pending or source in self._added


def proposed_dataset(*datasets: Dataset | None, folder: Path | None = None) -> Path | None:
    """Where corrected images most likely belong: the folder of the first of ``datasets``
    that is a folder-per-class data set (the evaluated one, the open one); else the data set
    ``folder`` (a labelled folder) sits in, when the folder above it holds class folders of
    images; else None."""
    for dataset in datasets:
        if dataset is not None and dataset.kind is SourceKind.FOLDER and dataset.source.is_dir():
            return dataset.source
    if folder is None:
        return None
    parent = Path(folder).parent
    try:
        class_folders = [
            path for path in parent.iterdir() if path != Path(folder) and _holds_images(path)
        ]
    except OSError:
        return None
    return parent if class_folders else None


def _holds_images(folder: Path) -> bool:
    if not folder.is_dir() or folder.name.startswith("."):
        return False
    return any(path.suffix.lower() in IMAGE_EXTENSIONS for path in folder.iterdir())


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
    items: Sequence[tuple[Path | ImageRef, str]],
    dataset_dir: Path,
    progress: ProgressFn = no_progress,
    cancel: CancelFlag | None = None,
) -> CorrectionResult:
    """Copy each (image, class name) of ``items`` into ``dataset_dir/<class name>/``.

    An image is a file's path or an :class:`ImageRef` (a record's bytes are written out
    under the record's name). Every class name is checked first (:class:`CorrectionError`,
    nothing copied). An image that is missing or not a usable image is listed in ``failed``
    and the others go on.
    ``corrections.csv`` (source, class, copied_to) in ``dataset_dir`` gets a line per image
    as it is added (appended to the record of earlier runs; a set ``cancel`` raises
    :class:`~imgcls_desktop.core.jobs.Cancelled` between images). Each image is written
    under a temporary name, recorded, then given its final name (see
    :mod:`imgcls_desktop.core.placing`): when the job is killed, every image under a final
    name is whole and recorded. Adding again first finishes the copies a killed add had
    recorded in the class folders of ``items`` (and removes its unrecorded ones); an image
    whose copy was finished so is not added a second time. So an add killed and run again on
    the images the record does not list equals one add.
    """
    checked = [
        (image if isinstance(image, ImageRef) else ImageRef(str(image)), check_class_name(name))
        for image, name in items
    ]
    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    recorded = [
        RecordedFile(row["source"], dataset_dir / row["class"] / Path(row["copied_to"]).name)
        for row in read_record(dataset_dir / CORRECTIONS_CSV, CSV_HEADER)
    ]
    classes = {class_name for _image, class_name in checked}
    finished = by_source(recover_placements(recorded, [dataset_dir / c for c in classes]))
    result = CorrectionResult()
    with ExitStack() as to_close:
        readers: dict[int, ImageReader] = {}

        def read(image: ImageRef) -> bytes:
            if image.dataset is None:
                return Path(image.path).read_bytes()
            reader = readers.get(id(image.dataset))
            if reader is None:
                reader = to_close.enter_context(ImageReader(image.dataset))
                readers[id(image.dataset)] = reader
            return reader.read(image.sample())

        record: CsvRecord | None = None

        def write_line(image: ImageRef, class_name: str, destination: Path) -> None:
            nonlocal record
            if record is None:  # made with the first image added
                record = to_close.enter_context(
                    CsvRecord(dataset_dir / CORRECTIONS_CSV, CSV_HEADER)
                )
                result.csv_path = record.path
            record.write([image.source, class_name, destination])

        for done, (image, class_name) in enumerate(checked, start=1):
            check_cancel(cancel)
            try:
                added = _copy_image(
                    image,
                    read,
                    class_name,
                    dataset_dir,
                    partial(write_line, image, class_name),
                    finished.get(placement_key(image.source, class_name)),
                )
            except (OSError, ImageError) as error:
                result.failed.append(Unreadable(Path(image.source), _reason(error)))
            else:
                result.added.append(added)
            progress(done, len(checked))
    return result


def _copy_image(
    image: ImageRef,
    read: Callable[[ImageRef], bytes],
    class_name: str,
    dataset_dir: Path,
    record: Callable[[Path], None],
    finished: Path | None,
) -> AddedImage:
    """Check that ``image`` is a usable image, then write it under a name not yet taken,
    ``record(destination)`` called before it gets that name; or, when ``finished`` (the
    copy a killed add recorded, placed now) holds its bytes, just that."""
    data = read(image)
    name = image.file_name(data)
    probe(data)
    if finished is not None and _holds(finished, data):
        return AddedImage(image.source, class_name, finished)
    folder = dataset_dir / class_name
    folder.mkdir(exist_ok=True)
    destination = place_new_file(
        folder / name, lambda temporary: temporary.write_bytes(data), record
    )
    return AddedImage(image.source, class_name, destination)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _reason(error: OSError | ImageError) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
