"""Stratified train / validation / test split of a data set.

Single-label data is split per class: each class is shuffled with the seed and cut by
rounding its size times each share. Every class with at least two images keeps at least one
training image and, when a validation share is asked for, at least one validation image (so
per-class validation accuracy always exists); a test image is guaranteed the same way when
the class has room for it after train and validation. A class with one image goes to train.

Multi-label data is split by iterative stratification (Sechidis, Tsoumakas and Vlahavas,
2011): the rarest label is placed first, each of its images going to the split that most
lacks that label, so every label's share in each split stays close to the asked ratio.

The split is a function of the seed and of the samples' paths and labels only: listing the
same samples in another order gives the same split. Within each split the images are in a
seeded random order, so a reader that goes through a record file front to back (as SageMaker
and ``ImageRecordIter`` without shuffling do) does not see one class after another.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imgcls_desktop.core.dataset.samples import Dataset

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitAssignment:
    """Which samples (by index into ``Dataset.samples``) go to which split, in record order.

    Samples that were not offered to the split (unusable after the scan) are in no split.
    """

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    val_ratio: float
    test_ratio: float
    seed: int

    def indices(self, split: str) -> tuple[int, ...]:
        """The sample indices of one split (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)

    def split_of(self, index: int) -> str | None:
        """The split a sample index belongs to, or None when it is in none."""
        return self._split_by_index.get(index)

    @functools.cached_property
    def _split_by_index(self) -> dict[int, str]:
        return {index: split for split in SPLIT_NAMES for index in self.indices(split)}

    def counts(self) -> dict[str, int]:
        """Number of samples per split."""
        return {split: len(self.indices(split)) for split in SPLIT_NAMES}


def validate_ratios(val_ratio: float, test_ratio: float) -> None:
    """Raise ValueError, naming the problem, unless both shares are valid together."""
    for what, ratio in (("validation", val_ratio), ("test", test_ratio)):
        if not math.isfinite(ratio) or not 0 <= ratio < 1:
            raise ValueError(f"the {what} share must be at least 0 and below 1 (got {ratio})")
    if val_ratio + test_ratio >= 1:
        raise ValueError(
            "the validation and test shares together must stay below 1 so that images are "
            f"left for training (got {val_ratio} + {test_ratio} = {val_ratio + test_ratio:g})"
        )


def split_dataset(
    dataset: Dataset,
    *,
    val_ratio: float = 0.2,
    test_ratio: float = 0.0,
    seed: int = 0,
    indices: Sequence[int] | None = None,
) -> SplitAssignment:
    """Split a data set into train / val / test, stratified by class, deterministic per seed.

    ``indices`` are the usable samples (default: all); any other sample is left out.
    """
    validate_ratios(val_ratio, test_ratio)
    size = len(dataset.samples)
    usable = range(size) if indices is None else sorted(set(indices))
    if usable and not 0 <= usable[0] <= usable[-1] < size:
        wrong = usable[0] if usable[0] < 0 else usable[-1]
        raise ValueError(f"sample index {wrong} is out of range (0-{size - 1})")
    # Sorting by path and labels makes the split independent of the order of the samples.
    ordered = sorted(usable, key=lambda i: (dataset.samples[i].path, dataset.samples[i].labels, i))
    ratios = (1.0 - val_ratio - test_ratio, val_ratio, test_ratio)
    if dataset.multi_label:
        parts = _iterative_stratification(dataset, ordered, ratios, seed)
    else:
        parts = _per_class_split(dataset, ordered, ratios, seed)
    rank = {index: position for position, index in enumerate(ordered)}
    order_rng = random.Random(f"{seed}:order")
    shuffled = []
    for part in parts:
        in_order = sorted(part, key=rank.__getitem__)
        order_rng.shuffle(in_order)
        shuffled.append(tuple(in_order))
    return SplitAssignment(*shuffled, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)


def _round(value: float) -> int:
    """Round half up (Python's ``round`` rounds half to even)."""
    return math.floor(value + 0.5)


def _class_cut(size: int, val_ratio: float, test_ratio: float) -> tuple[int, int]:
    """How many of one class's ``size`` images go to val and to test."""
    if size < 2:
        return 0, 0
    n_val = max(_round(size * val_ratio), 1 if val_ratio > 0 else 0)
    n_test = max(_round(size * test_ratio), 1 if test_ratio > 0 else 0)
    while n_val + n_test > size - 1:  # keep at least one training image
        if n_test and n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def _per_class_split(
    dataset: Dataset, ordered: Sequence[int], ratios: tuple[float, float, float], seed: int
) -> list[list[int]]:
    by_class: dict[int, list[int]] = {}
    for index in ordered:
        by_class.setdefault(dataset.samples[index].label, []).append(index)
    parts: list[list[int]] = [[], [], []]
    for class_id, members in sorted(by_class.items()):
        random.Random(f"{seed}:class:{class_id}").shuffle(members)
        n_val, n_test = _class_cut(len(members), ratios[1], ratios[2])
        parts[1].extend(members[:n_val])
        parts[2].extend(members[n_val : n_val + n_test])
        parts[0].extend(members[n_val + n_test :])
    return parts


def _iterative_stratification(
    dataset: Dataset, ordered: Sequence[int], ratios: tuple[float, float, float], seed: int
) -> list[list[int]]:
    """Sechidis et al.'s algorithm; ties go to the split wanting more images, then by seed."""
    rng = random.Random(f"{seed}:multi-label")
    members = list(ordered)
    rng.shuffle(members)
    wanted_total = [ratio * len(members) for ratio in ratios]
    label_counts = [0] * dataset.num_classes
    by_label: dict[int, list[int]] = {}
    for index in members:
        for label in dataset.samples[index].labels:
            label_counts[label] += 1
            by_label.setdefault(label, []).append(index)
    wanted = [[ratio * count for count in label_counts] for ratio in ratios]
    remaining = list(label_counts)
    placed: set[int] = set()
    parts: list[list[int]] = [[], [], []]

    def place(index: int, split: int) -> None:
        parts[split].append(index)
        placed.add(index)
        wanted_total[split] -= 1
        for label in dataset.samples[index].labels:
            wanted[split][label] -= 1
            remaining[label] -= 1

    def best(keys: Iterable[tuple[float, ...]]) -> int:
        scored = [(key, rng.random(), split) for split, key in enumerate(keys) if ratios[split]]
        return max(scored)[2]

    while any(remaining):
        # The rarest label still to place goes first: it is the hardest to keep balanced.
        label = min((count, label) for label, count in enumerate(remaining) if count)[1]
        for index in by_label[label]:
            if index not in placed:
                place(index, best((wanted[s][label], wanted_total[s]) for s in range(3)))
    for index in members:  # images without any label
        if index not in placed:
            place(index, best((wanted_total[s],) for s in range(3)))
    return parts
