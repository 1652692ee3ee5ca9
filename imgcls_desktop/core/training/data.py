"""The training data a run reads: the record files and what is known about them.

:class:`TrainingData` is what :mod:`.packing` produces from the user's sources (and
``run.json`` keeps, see :mod:`.run`); :mod:`.iterators` reads its records.
:func:`inference_preprocessing` says how inference prepares an image exactly as validation
did with this data (see :mod:`.packing` for the shorter side ``S``).

This module imports neither the packer nor MXNet, so reading a run folder stays light.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.dataset.samples import DatasetError, SkippedImage
from imgcls_desktop.core.hyperparams import DataFacts
from imgcls_desktop.core.preprocessing import Interpolation, Preprocessing

if TYPE_CHECKING:
    from imgcls_desktop.core.hyperparams import HyperParameters

DATA_FOLDER = "data"
"""The run folder's sub-folder where packed training data goes."""


@dataclass(frozen=True)
class TrainingData:
    """The record files training reads, and what is known about them.

    ``shorter_side`` is ``S`` (see :mod:`.packing`); ``train_resize`` / ``val_resize``
    are the ``resize`` given to an iterator (a ``.rec`` used as it is), else None.
    ``min_image_size`` is the (height, width) of the smallest image as the iterators see it.
    ``validation_share`` is set when the validation images were split from the training
    source (with ``split_seed``). ``skipped`` lists the images left out, with the reason.
    """

    train_rec: Path
    train_idx: Path
    val_rec: Path
    val_idx: Path
    class_names: tuple[str, ...]
    num_train: int
    num_val: int
    multi_label: bool
    shorter_side: int
    min_image_size: tuple[int, int]
    train_class_counts: tuple[int, ...]
    train_resize: int | None = None
    val_resize: int | None = None
    validation_share: float | None = None
    split_seed: int | None = None
    skipped: tuple[SkippedImage, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """How many classes the data has."""
        return len(self.class_names)

    @property
    def label_width(self) -> int:
        """Label values per record: 1, or the number of classes for multi-label data."""
        return self.num_classes if self.multi_label else 1

    def facts(self) -> DataFacts:
        """What hyperparameter validation needs to know about this data."""
        return data_facts(self.num_classes, self.num_train, self.min_image_size, self.multi_label)

    def to_dict(self, folder: Path | None = None) -> dict[str, Any]:
        """Plain JSON values; record paths inside ``folder`` (the run folder) are stored
        relative to it, so the folder can be moved. :meth:`from_dict` reads them back."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in _PATH_FIELDS:
            path = values[name]
            inside = folder is not None and path.is_relative_to(folder)
            values[name] = (path.relative_to(folder) if inside else path).as_posix()
        values["skipped"] = [{"path": s.path, "reason": s.reason} for s in self.skipped]
        for name in _TUPLE_FIELDS:
            values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], folder: Path | None = None) -> TrainingData:
        """The inverse of :meth:`to_dict`; relative paths are taken from ``folder``.

        Lists an earlier version did not write are empty; unknown keys (a newer version's)
        are ignored. ValueError says what is wrong with a damaged record.
        """
        if not isinstance(values, dict):
            raise ValueError("it is not an object")
        known = {item.name: item for item in fields(cls)}
        missing = [
            name
            for name, item in known.items()
            if item.default is MISSING and name not in values and name not in _TUPLE_FIELDS
        ]
        if missing:
            raise ValueError(f"it lacks {', '.join(map(repr, missing))}")
        values = {name: value for name, value in values.items() if name in known}
        for name, value in values.items():
            allowed, wanted = _JSON_TYPES[known[name].type]
            if isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed):
                raise ValueError(f"its {name!r} is {value!r:.40}, not {wanted}")
        for name in _PATH_FIELDS:
            values[name] = Path(folder or "", values[name])
        try:
            values["skipped"] = tuple(SkippedImage(**item) for item in values.get("skipped", ()))
        except TypeError:
            raise ValueError("its 'skipped' is not a list of path and reason pairs") from None
        for name in _TUPLE_FIELDS:
            values[name] = tuple(values.get(name, ()))
        return cls(**values)

    def check_files(self) -> None:
        """Raise :class:`DatasetError` when a record file has gone missing."""
        for path in (self.train_rec, self.train_idx, self.val_rec, self.val_idx):
            if not path.is_file():
                raise DatasetError(
                    f"the training data file {path} is missing; put it back, or start a new "
                    "run from the original images"
                )


_PATH_FIELDS = ("train_rec", "train_idx", "val_rec", "val_idx")
_TUPLE_FIELDS = ("class_names", "min_image_size", "train_class_counts", "warnings")
# The JSON values each field's annotation accepts (a bool is never a number here).
_JSON_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "Path": ((str,), "a path"),
    "int": ((int,), "a whole number"),
    "bool": ((bool,), "true or false"),
    "int | None": ((int, type(None)), "a whole number or null"),
    "float | None": ((int, float, type(None)), "a number or null"),
    "tuple[str, ...]": ((list,), "a list"),
    "tuple[int, int]": ((list,), "a list"),
    "tuple[int, ...]": ((list,), "a list"),
    "tuple[SkippedImage, ...]": ((list,), "a list"),
}


def data_facts(
    num_classes: int, num_train: int, min_size: tuple[int, int], multi_label: bool
) -> DataFacts:
    """What hyperparameter validation needs to know about training data."""
    return DataFacts(
        num_classes=num_classes,
        num_training_samples=num_train,
        min_image_height=min_size[0],
        min_image_width=min_size[1],
        multi_label=multi_label,
    )


def inference_preprocessing(hp: HyperParameters, data: TrainingData) -> Preprocessing:
    """Exactly what validation does to an image, for inference to do the same.

    The shorter side resized to ``S`` with the interpolation validation used (the packer's,
    or ``ImageRecordIter``'s bilinear for a ``.rec`` read where it is), then the central
    ``height x width`` cropped (see :class:`~imgcls_desktop.core.preprocessing.Preprocessing`).
    """
    channels, height, width = hp.shape
    return Preprocessing(
        channels,
        height,
        width,
        multi_label=data.multi_label,
        shorter_side=data.shorter_side,
        interpolation=Interpolation.LINEAR if data.val_resize else Interpolation.PACKER,
    )
