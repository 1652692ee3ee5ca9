"""Folder-per-class import: class ids as im2rec assigns them, what counts as an image."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from conftest import write_image

from imgcls_desktop.core.dataset.folder import holds_only_loose_images, import_folder
from imgcls_desktop.core.dataset.images import IMAGE_EXTENSIONS
from imgcls_desktop.core.dataset.samples import DatasetError, SourceKind
from imgcls_desktop.core.runtime import mxnet

GREY = (128, 128, 128)


def _relative(dataset) -> list[tuple[str, int]]:
    return [(dataset.relative_path(sample), sample.label) for sample in dataset.samples]


def test_class_folder(class_folder: Path) -> None:
    dataset = import_folder(class_folder)

    assert dataset.kind is SourceKind.FOLDER
    assert dataset.class_names == ["cat", "dog", "owl"]
    assert dataset.class_counts() == [6, 6, 6]
    assert not dataset.multi_label
    assert dataset.root == class_folder
    assert _relative(dataset)[:2] == [("cat/cat_0.jpg", 0), ("cat/cat_1.jpg", 0)]
    assert all(Path(sample.path).is_absolute() for sample in dataset.samples)
    assert all(Path(sample.path).is_file() for sample in dataset.samples)


def test_nested_hidden_case_and_loose_files(tmp_path: Path) -> None:
    images = ["b/one.JPG", "b/deep/er/two.Png", "b/three.webp", "a/x.tiff"]
    hidden = ["a/.hidden.jpg", ".secret/s.jpg", "a/.cache/c.jpg"]
    for relative in [*images, *hidden, "loose.jpg"]:
        write_image(tmp_path / relative, GREY)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("not an image")
    (tmp_path / "c" / "photo.jpg.bak").write_text("not an image either")
    (tmp_path / "empty").mkdir()

    dataset = import_folder(tmp_path)

    # "c" and "empty" hold no image: like im2rec, they get no class.
    assert dataset.class_names == ["a", "b"]
    assert _relative(dataset) == [
        ("a/x.tiff", 0),
        ("b/one.JPG", 1),
        ("b/three.webp", 1),
        ("b/deep/er/two.Png", 1),
    ]


def test_every_accepted_extension(tmp_path: Path) -> None:
    for extension in sorted(IMAGE_EXTENSIONS):
        write_image(tmp_path / "k" / f"img{extension.upper()}", GREY)
    assert len(import_folder(tmp_path).samples) == len(IMAGE_EXTENSIONS)


def test_ids_follow_sorted_names_case_sensitively(tmp_path: Path) -> None:
    for name in ["dog", "Zebra", "cat", "10", "9"]:
        write_image(tmp_path / name / "i.png", GREY)
    assert import_folder(tmp_path).class_names == ["10", "9", "Zebra", "cat", "dog"]


def _im2rec_list_image():
    script = Path(mxnet().__file__).parent / "tools" / "im2rec.py"
    if not script.is_file():
        pytest.skip("im2rec.py is not shipped with this MXNet")
    spec = importlib.util.spec_from_file_location("im2rec", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.list_image


def test_same_ids_and_order_as_im2rec(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for index, relative in enumerate(
        ["owl/b.jpg", "owl/a.JPEG", "Cat/z.png", "cat/1.jpg", "dog-2/q.bmp", "dog/q.jpg"]
    ):
        write_image(root / relative, GREY, seed=index)
    (root / "owl" / "readme.txt").write_text("ignored by both")
    (root / "empty").mkdir()

    list_image = _im2rec_list_image()
    expected = [
        (path, label) for _index, path, label in list_image(str(root), True, IMAGE_EXTENSIONS)
    ]

    assert _relative(import_folder(root)) == expected


def test_symlink_loop_ends(tmp_path: Path) -> None:
    write_image(tmp_path / "cat" / "a.jpg", GREY)
    os.symlink(tmp_path / "cat", tmp_path / "cat" / "again")
    assert _relative(import_folder(tmp_path)) == [("cat/a.jpg", 0)]


def test_no_class_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no images .* sub-folders"):
        import_folder(tmp_path)


def test_only_loose_images(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", GREY)
    write_image(tmp_path / "b.jpg", GREY)
    with pytest.raises(DatasetError, match=r"2 image.* directly in .*sub-folder named after it"):
        import_folder(tmp_path)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not a folder"):
        import_folder(tmp_path / "missing")


def test_a_folder_of_loose_images_is_told_from_a_data_set(
    class_folder: Path, tmp_path: Path
) -> None:
    loose = tmp_path / "loose"
    write_image(loose / "a.jpg", (10, 20, 30))
    (loose / ".thumbnails").mkdir()  # hidden folders do not count
    assert holds_only_loose_images(loose)
    assert not holds_only_loose_images(class_folder)  # class sub-folders: a data set
    assert not holds_only_loose_images(tmp_path / "missing")
    (loose / "a.jpg").rename(loose / "notes.txt")
    assert not holds_only_loose_images(loose)
