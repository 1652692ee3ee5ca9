"""Stratified train/val/test split: shares per class and per label, determinism, validation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgcls_desktop.core.dataset.samples import Dataset, Sample, SourceKind
from imgcls_desktop.core.dataset.split import SPLIT_NAMES, split_dataset

ROOT = Path("/data")


def single_label(sizes: list[int]) -> Dataset:
    """A single-label data set with ``sizes[c]`` images of class c (no files needed)."""
    samples = [
        Sample(f"/data/c{c}/{i}.jpg", (c,)) for c, size in enumerate(sizes) for i in range(size)
    ]
    names = [f"c{c}" for c in range(len(sizes))]
    return Dataset(names, samples, SourceKind.FOLDER, ROOT, root=ROOT)


def multi_label(count: int, frequencies: list[float], seed: int = 1) -> Dataset:
    """A multi-label data set: label l on each image with probability ``frequencies[l]``."""
    rng = random.Random(seed)
    samples = [
        Sample(f"/data/{i}.jpg", tuple(k for k, p in enumerate(frequencies) if rng.random() < p))
        for i in range(count)
    ]
    names = [f"label{k}" for k in range(len(frequencies))]
    return Dataset(names, samples, SourceKind.MANIFEST, ROOT, multi_label=True, root=ROOT)


def per_class(dataset: Dataset, indices: tuple[int, ...]) -> list[int]:
    counts = [0] * dataset.num_classes
    for index in indices:
        for label in dataset.samples[index].labels:
            counts[label] += 1
    return counts


def assert_partition(assignment, expected: set[int]) -> None:
    everything = [i for split in SPLIT_NAMES for i in assignment.indices(split)]
    assert sorted(everything) == sorted(expected)


def test_single_label_cut_per_class():
    dataset = single_label([1, 2, 3, 10, 50])
    assignment = split_dataset(dataset, val_ratio=0.2, test_ratio=0.1, seed=0)

    assert per_class(dataset, assignment.train) == [1, 1, 1, 7, 35]
    assert per_class(dataset, assignment.val) == [0, 1, 1, 2, 10]
    assert per_class(dataset, assignment.test) == [0, 0, 1, 1, 5]
    assert assignment.counts() == {"train": 45, "val": 14, "test": 7}
    assert_partition(assignment, set(range(len(dataset.samples))))


def test_split_is_deterministic_for_a_seed_and_varies_with_it():
    dataset = single_label([40, 40, 40])
    first = split_dataset(dataset, val_ratio=0.25, seed=7)

    assert split_dataset(dataset, val_ratio=0.25, seed=7) == first
    assert set(split_dataset(dataset, val_ratio=0.25, seed=8).val) != set(first.val)


@pytest.mark.parametrize(
    "make", [lambda: single_label([5, 9, 30]), lambda: multi_label(300, [0.5, 0.1])]
)
def test_split_does_not_depend_on_the_order_of_the_samples(make):
    dataset = make()
    shuffled = Dataset(
        dataset.class_names,
        random.Random(3).sample(dataset.samples, len(dataset.samples)),
        dataset.kind,
        ROOT,
        multi_label=dataset.multi_label,
    )
    original = split_dataset(dataset, val_ratio=0.2, test_ratio=0.2, seed=1)
    reordered = split_dataset(shuffled, val_ratio=0.2, test_ratio=0.2, seed=1)

    for split in SPLIT_NAMES:
        paths = [dataset.samples[i].path for i in original.indices(split)]
        assert paths == [shuffled.samples[i].path for i in reordered.indices(split)]


def test_records_are_in_mixed_class_order():
    dataset = single_label([50, 50])
    train = split_dataset(dataset, val_ratio=0.2).train
    labels = [dataset.samples[i].label for i in train]

    assert labels != sorted(labels)


def test_only_the_given_indices_are_split():
    dataset = single_label([10, 10])
    usable = [i for i in range(20) if i % 4]
    assignment = split_dataset(dataset, val_ratio=0.2, indices=usable)

    assert_partition(assignment, set(usable))
    assert assignment.split_of(0) is None
    assert assignment.split_of(1) in SPLIT_NAMES
    assert {assignment.split_of(i) for i in assignment.val} == {"val"}


def test_no_validation_share_gives_an_empty_validation_split():
    assignment = split_dataset(single_label([3, 4]), val_ratio=0.0)

    assert assignment.val == assignment.test == ()
    assert len(assignment.train) == 7


def test_multi_label_keeps_every_label_share_close():
    frequencies = [0.6, 0.3, 0.1, 0.03, 0.01]
    dataset = multi_label(3000, frequencies)
    assignment = split_dataset(dataset, val_ratio=0.2, test_ratio=0.1, seed=0)

    assert_partition(assignment, set(range(3000)))
    totals = dataset.class_counts()
    for split, ratio in zip(SPLIT_NAMES, (0.7, 0.2, 0.1)):
        counts = per_class(dataset, assignment.indices(split))
        for label, (count, total) in enumerate(zip(counts, totals)):
            # within one image of the exact share, for common and rare labels alike
            assert abs(count - ratio * total) <= 1.0, (split, label, count, total)
        assert abs(len(assignment.indices(split)) - ratio * 3000) <= 3


def test_multi_label_places_images_without_labels():
    dataset = multi_label(200, [0.05])
    assert any(not sample.labels for sample in dataset.samples)
    assignment = split_dataset(dataset, val_ratio=0.5)

    assert_partition(assignment, set(range(200)))
    assert abs(len(assignment.val) - 100) <= 1


@pytest.mark.parametrize(
    ("val_ratio", "test_ratio", "message"),
    [
        (-0.1, 0.0, "validation share"),
        (1.0, 0.0, "validation share"),
        (0.2, float("nan"), "test share"),
        (0.6, 0.4, "together must stay below 1"),
    ],
)
def test_bad_ratios_are_refused_with_the_reason(val_ratio, test_ratio, message):
    with pytest.raises(ValueError, match=message):
        split_dataset(single_label([5]), val_ratio=val_ratio, test_ratio=test_ratio)


@pytest.mark.parametrize("indices", [[0, 5], [-1, 2]])
def test_an_index_out_of_range_is_refused(indices):
    with pytest.raises(ValueError, match="out of range"):
        split_dataset(single_label([5]), indices=indices)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    val_ratio=st.floats(0.0, 0.6),
    test_ratio=st.floats(0.0, 0.35),
    seed=st.integers(0, 2**32),
)
def test_every_class_keeps_train_and_validation_images(sizes, val_ratio, test_ratio, seed):
    dataset = single_label(sizes)
    assignment = split_dataset(dataset, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)

    assert_partition(assignment, set(range(sum(sizes))))
    train, val = per_class(dataset, assignment.train), per_class(dataset, assignment.val)
    for size, in_train, in_val in zip(sizes, train, val):
        assert in_train >= 1
        if size >= 2 and val_ratio > 0:
            assert in_val >= 1
