"""The data set as one in-memory record: its images, their labels and the class names.

Every importer (folder, ``.lst``, manifest, ``.rec``; :mod:`.sources`) produces a
:class:`Dataset`, and every later step (scan, split, export, training's packer) consumes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class DatasetError(Exception):
    """A data set cannot be read; the message says why, in words a user understands."""


class SourceKind(str, enum.Enum):
    """What a data set was imported from."""

    FOLDER = "folder"
    LST = "lst"
    MANIFEST = "manifest"
    RECORDIO = "recordio"


@dataclass(frozen=True)
class SkippedImage:
    """An image left out of an export or of training data, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Sample:
    """One image and its label(s).

    ``path`` is an absolute file path; for an image stored inside a ``.rec`` file it is the
    name the record had (from a ``.lst`` beside it) or ``"<file>.rec#<key>"``, and ``record``
    holds the record's key. ``labels`` holds class ids: exactly one for single-label data, a
    sorted, possibly empty set for multi-label data.
    """

    path: str
    labels: tuple[int, ...]
    record: int | None = None

    @property
    def label(self) -> int:
        """The class id of a single-label sample."""
        return self.labels[0]


@dataclass
class Dataset:
    """Class names (id -> name), samples, and whether the data is multi-label."""

    class_names: list[str]
    samples: list[Sample]
    kind: SourceKind
    source: Path
    multi_label: bool = False
    root: Path | None = None
    record_file: Path | None = None
    record_offsets: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        """How many classes the data set has."""
        return len(self.class_names)

    def class_counts(self) -> list[int]:
        """Images per class id (a multi-label image counts once for each of its labels)."""
        counts = [0] * self.num_classes
        for sample in self.samples:
            for label in sample.labels:
                counts[label] += 1
        return counts

    def label_vector(self, sample: Sample) -> list[float]:
        """The multi-hot vector of a sample's labels, one 0/1 float per class."""
        vector = [0.0] * self.num_classes
        for label in sample.labels:
            vector[label] = 1.0
        return vector

    def relative_path(self, sample: Sample) -> str:
        """The sample's path relative to :attr:`root` when it lies below it, else as stored."""
        if self.root is None or sample.record is not None:
            return sample.path
        try:
            return Path(sample.path).relative_to(self.root).as_posix()
        except ValueError:
            return sample.path
