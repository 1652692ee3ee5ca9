"""Corrected images copied into a folder-per-class data set: originals kept, never overwritten."""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import pytest
from conftest import CLASS_COLOURS, write_image

from imgcls_desktop.core.corrections import (
    CORRECTIONS_CSV,
    CSV_HEADER,
    AddedImage,
    CorrectionError,
    CorrectionResult,
    CorrectionSet,
    ImageRef,
    add_to_dataset,
    check_class_name,
    proposed_dataset,
)
from imgcls_desktop.core.dataset.folder import import_folder
from imgcls_desktop.core.dataset.reader import ImageReader
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.jobs import Cancelled
from imgcls_desktop.core.placing import CsvRecord


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Three images from three different folders; two share a file name."""
    return [
        write_image(tmp_path / "new" / "x" / "img.jpg", CLASS_COLOURS["cat"], seed=1),
        write_image(tmp_path / "new" / "y" / "img.jpg", CLASS_COLOURS["dog"], seed=2),
        write_image(tmp_path / "new" / "z.png", CLASS_COLOURS["owl"], seed=3),
    ]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def test_images_are_copied_into_their_class_folders_and_recorded(
    class_folder: Path, images: list[Path]
) -> None:
    originals = {path: path.read_bytes() for path in images}
    items = [(images[0], "dog"), (images[1], "dog"), (images[2], "bird")]
    progress: list[tuple[int, int]] = []

    result = add_to_dataset(items, class_folder, lambda done, total: progress.append((done, total)))

    assert [(a.source, a.class_name, a.destination) for a in result.added] == [
        (str(images[0]), "dog", class_folder / "dog" / "img.jpg"),
        (str(images[1]), "dog", class_folder / "dog" / "img (1).jpg"),  # same name: a new one
        (str(images[2]), "bird", class_folder / "bird" / "z.png"),  # a new class folder
    ]
    assert not result.failed
    assert progress[-1] == (3, 3)
    for source, content in originals.items():  # copied, never moved or changed
        assert source.read_bytes() == content
    for added in result.added:
        assert added.destination.read_bytes() == originals[Path(added.source)]
    assert result.csv_path == class_folder / CORRECTIONS_CSV
    assert read_csv(result.csv_path) == [["source", "class", "copied_to"]] + [
        [str(a.source), a.class_name, str(a.destination)] for a in result.added
    ]
    dataset = import_folder(class_folder)  # ready for training: a new class, more dogs
    assert dataset.class_names == ["bird", "cat", "dog", "owl"]
    assert dataset.class_counts() == [1, 6, 8, 6]


def test_an_existing_image_is_never_overwritten_and_the_csv_grows(
    class_folder: Path, images: list[Path]
) -> None:
    taken = class_folder / "cat" / "img.jpg"
    write_image(taken, CLASS_COLOURS["owl"], seed=9)
    before = taken.read_bytes()

    first = add_to_dataset([(images[0], "cat")], class_folder)
    second = add_to_dataset([(images[0], "cat")], class_folder)

    assert taken.read_bytes() == before
    assert first.added[0].destination == class_folder / "cat" / "img (1).jpg"
    assert second.added[0].destination == class_folder / "cat" / "img (2).jpg"
    rows = read_csv(class_folder / CORRECTIONS_CSV)
    assert [row[2] for row in rows[1:]] == [
        str(class_folder / "cat" / "img (1).jpg"),
        str(class_folder / "cat" / "img (2).jpg"),
    ]


def test_missing_and_unusable_files_are_reported_and_the_others_added(
    tmp_path: Path, images: list[Path]
) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello", encoding="utf-8")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello", encoding="utf-8")
    missing = tmp_path / "gone.jpg"
    out = tmp_path / "data"
    items = [(missing, "cat"), (not_an_image, "cat"), (text_file, "cat"), (images[0], "cat")]

    result = add_to_dataset(items, out)

    assert [a.source for a in result.added] == [str(images[0])]
    reasons = {failure.path: failure.reason for failure in result.failed}
    assert reasons.keys() == {missing, not_an_image, text_file}
    assert "No such file" in reasons[missing]
    assert "not an image" in reasons[not_an_image]
    assert "not an image file name" in reasons[text_file]
    assert sorted(p.name for p in (out / "cat").iterdir()) == ["img.jpg"]  # nothing half-made


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (".", "cannot be a class name"),
        ("..", "cannot be a class name"),
        ("cats/dogs", "cannot contain /"),
        ("..\\up", "cannot contain /"),
        (".hidden", "start with a dot"),
        ("what?", "cannot contain :"),
        ("tab\there", "control characters"),
    ],
)
def test_unusable_class_names_are_refused_before_anything_is_copied(
    tmp_path: Path, images: list[Path], name: str, reason: str
) -> None:
    with pytest.raises(CorrectionError, match=reason.replace("?", r"\?")):
        add_to_dataset([(images[0], "cat"), (images[1], name)], tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_class_names_lose_surrounding_spaces() -> None:
    assert check_class_name("  sea lion ") == "sea lion"


def test_cancelling_keeps_the_record_of_what_was_added(tmp_path: Path, images: list[Path]) -> None:
    cancel = threading.Event()

    def cancel_after_first(done: int, total: int) -> None:
        cancel.set()

    with pytest.raises(Cancelled):
        add_to_dataset(
            [(path, "cat") for path in images], tmp_path / "data", cancel_after_first, cancel
        )
    rows = read_csv(tmp_path / "data" / CORRECTIONS_CSV)
    assert len(rows) == 2 and rows[1][0] == str(images[0])


def test_images_inside_a_record_file_are_written_out_under_their_names(
    class_folder: Path, records: Dataset, tmp_path: Path
) -> None:
    first, second = records.samples[0], records.samples[1]
    items = [
        (ImageRef(first.path, first.record, records), "owl"),
        (ImageRef(second.path, second.record, records), "owl"),
    ]
    out = tmp_path / "data"

    result = add_to_dataset(items, out)

    assert not result.failed
    for (image, _name), added in zip(items, result.added):
        original = class_folder / image.path
        assert added.destination == out / "owl" / original.name
        assert added.destination.read_bytes() == original.read_bytes()
        assert added.source == f"{records.record_file}#{image.record}"
    assert [row[0] for row in read_csv(out / CORRECTIONS_CSV)[1:]] == [
        f"{records.record_file}#{first.record}",
        f"{records.record_file}#{second.record}",
    ]
    again = add_to_dataset(items[:1], out)  # never overwritten
    assert again.added[0].destination.name == f"{Path(first.path).stem} (1).jpg"


def test_a_record_named_only_by_its_key_gets_a_name_from_the_file_and_key(
    class_folder: Path, records: Dataset, tmp_path: Path
) -> None:
    assert records.record_file is not None
    records.record_file.with_suffix(".lst").unlink()
    unnamed = load_dataset(records.record_file)
    sample = unnamed.samples[3]
    assert sample.path == f"dataset-train.rec#{sample.record}"

    result = add_to_dataset([(ImageRef(sample.path, sample.record, unnamed), "cat")], tmp_path)

    destination = result.added[0].destination
    assert destination == tmp_path / "cat" / f"dataset-train_{sample.record}.jpg"
    with ImageReader(unnamed) as reader:
        assert destination.read_bytes() == reader.read(sample)


def test_a_record_needs_its_data_set() -> None:
    with pytest.raises(ValueError, match="needs the data set"):
        ImageRef("x.jpg", 3)


def test_adding_again_after_a_kill_finishes_its_copies_and_equals_one_add(
    tmp_path: Path, images: list[Path]
) -> None:
    """What an add killed mid-way leaves (see placing's docstring): the first image recorded
    but killed before its final name, the second cut short while copying, not recorded.
    Adding again the images the record does not list as copied adds each once."""
    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    first, second = (data / "cat" / images[0].name, data / "cat" / images[2].name)
    with CsvRecord(data / CORRECTIONS_CSV, CSV_HEADER) as record:
        record.write([images[0], "cat", first])
    shutil.copyfile(images[0], first.with_name(f".{first.name}.partial"))
    second.with_name(f".{second.name}.partial").write_bytes(images[2].read_bytes()[:40])
    done = {row[0] for row in read_csv(data / CORRECTIONS_CSV)[1:] if Path(row[2]).is_file()}

    again = add_to_dataset([(path, "cat") for path in images if str(path) not in done], data)

    assert not again.failed
    assert sorted(path.name for path in (data / "cat").iterdir()) == [
        "img (1).jpg",
        "img.jpg",
        "z.png",
    ]
    assert [row[1:] for row in read_csv(data / CORRECTIONS_CSV)] == [
        ["class", "copied_to"],
        ["cat", str(first)],  # one line for the finished copy, none written again
        ["cat", str(data / "cat" / "img (1).jpg")],
        ["cat", str(second)],
    ]
    for row in read_csv(data / CORRECTIONS_CSV)[1:]:
        assert Path(row[2]).read_bytes() == Path(row[0]).read_bytes()
    assert [added.destination for added in again.added] == [
        first,
        data / "cat" / "img (1).jpg",
        second,
    ]


def test_a_correction_set_keeps_corrections_until_added_and_undoes_them(tmp_path: Path) -> None:
    corrections = CorrectionSet()
    cat, dog = ImageRef(str(tmp_path / "a.jpg")), ImageRef(str(tmp_path / "b.jpg"))
    corrections.correct(cat, "dog", "cat")
    corrections.correct(dog, "cat", "bird")
    assert len(corrections) == 2 and corrections.pending() == {
        cat.source: "cat",
        dog.source: "bird",
    }
    corrections.correct(dog, "cat", "cat")  # back to its label: undone
    assert corrections.items() == [(cat, "cat")]
    assert corrections.label_text(cat.source, "dog")[0] == "dog → cat"
    copy = tmp_path / "set" / "cat" / "a.jpg"
    corrections.record_added(CorrectionResult([AddedImage(cat.source, "cat", copy)]))
    assert len(corrections) == 0 and corrections.knows(cat.source)
    text, tooltip, pending = corrections.label_text(cat.source, "dog")
    assert text == "dog → cat" and str(copy) in tooltip and not pending
    corrections.correct(dog, "cat", "bird")
    corrections.discard()
    assert corrections.pending() == {} and corrections.label_text(dog.source, "cat")[0] == "cat"


def test_the_proposed_data_set_is_the_evaluated_folder_or_the_labelled_folders_parent(
    tmp_path: Path, class_folder: Path
) -> None:
    dataset_dir = class_folder
    assert proposed_dataset(None, import_folder(dataset_dir)) == dataset_dir
    unsorted = dataset_dir / "unsorted"
    write_image(unsorted / "new.jpg", (1, 2, 3))
    assert proposed_dataset(folder=unsorted) == dataset_dir
    lonely = tmp_path / "elsewhere" / "photos"
    write_image(lonely / "x.jpg", (1, 2, 3))
    assert proposed_dataset(None, folder=lonely) is None
    assert proposed_dataset() is None


def test_an_image_ref_reads_its_file_or_its_record(
    class_folder: Path, records: Dataset, tmp_path: Path
) -> None:
    sample = records.samples[3]
    original = (class_folder / sample.path).read_bytes()
    assert ImageRef(sample.path, sample.record, records).read_bytes() == original
    assert ImageRef(str(class_folder / sample.path)).read_bytes() == original
    with pytest.raises(OSError):
        ImageRef(str(tmp_path / "gone.jpg")).read_bytes()
