"""Tiny, trivially separable training data for the training tests (one colour per class).

The shared sets are written once per test session and must not be written into.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from imgcls_desktop.core.dataset.recordio_export import ExportOptions, export_recordio
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.dataset.split import split_dataset
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.training.starting_point import StartingPoint

CLASS_NAMES = sorted(CLASS_COLOURS)  # cat, dog, owl


def write_colour_set(
    root: Path, per_class: int = 30, size: tuple[int, int] = (32, 32), seed: int = 0
) -> Path:
    """``root/<class>/<n>.jpg``: noisy images of one dominant colour per class."""
    for class_index, name in enumerate(CLASS_NAMES):
        for number in range(per_class):
            image_seed = seed * 10_000 + class_index * 1000 + number
            write_image(root / name / f"{number:03d}.jpg", CLASS_COLOURS[name], size, image_seed)
    return root


def write_multi_label_set(root: Path, per_combination: int = 8) -> Path:
    """A multi-label ``.lst``: red, green and blue bands; an image has the classes whose band
    is bright (every non-empty combination). Returns the ``.lst`` path."""
    lines = []
    index = 0
    for combination in itertools.product((0, 1), repeat=3):
        if not any(combination):
            continue
        colour = tuple(220 if combination[2 - c] else 30 for c in range(3))  # BGR
        for _ in range(per_combination):
            relative = f"images/{index:04d}.png"
            write_image(root / relative, colour, (32, 32), seed=index)
            labels = "\t".join(f"{flag:.6f}" for flag in combination)
            lines.append(f"{index}\t{labels}\t{relative}\n")
            index += 1
    (root / "classes.json").write_text('["red", "green", "blue"]\n', encoding="utf-8")
    lst = root / "colours.lst"
    lst.write_text("".join(lines), encoding="utf-8")
    return lst


def quick_hp(**changes: object) -> HyperParameters:
    """Hyperparameters that train a ResNet-20 on the colour set in about a second an epoch.

    Adam at 0.001 reaches full validation accuracy in two or three epochs for every seed
    tried; SGD at 0.1 often leaves batch-norm statistics too far behind after so few
    batches, and validation (which uses them) at chance.
    """
    values: dict[str, object] = {
        "num_layers": 20,
        "image_shape": "3,32,32",
        "epochs": 2,
        "mini_batch_size": 16,
        "optimizer": "adam",
        "learning_rate": 0.001,
    }
    values.update(changes)
    return HyperParameters.from_mapping(values)


@contextmanager
def as_earlier_versions_trained() -> Iterator[None]:
    """Within it, runs from scratch build our Gluon ``ImageClassifier`` (ResNet v1), as the
    versions before SageMaker's network did: for the run folders and models they left."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StartingPoint, "from_scratch", classmethod(lambda cls, _hp: cls()))
        yield


def shared_colour_folder(factory: pytest.TempPathFactory) -> Path:
    """3 classes x 30 images of 32 x 32, written once per test session: never write into it."""
    if "folder" not in _SHARED:
        _SHARED["folder"] = write_colour_set(factory.mktemp("colours") / "images")
    return _SHARED["folder"]


def shared_colour_records(factory: pytest.TempPathFactory) -> Path:
    """The shared colour set exported as ``dataset-train.rec`` / ``dataset-val.rec``."""
    if "records" not in _SHARED:
        dataset = load_dataset(shared_colour_folder(factory))
        out = factory.mktemp("colour_records")
        export_recordio(
            dataset,
            out,
            assignment=split_dataset(dataset, val_ratio=0.2, seed=0),
            options=ExportOptions(workers=2),
        )
        _SHARED["records"] = out
    return _SHARED["records"]


_SHARED: dict[str, Path] = {}
