"""The project file: recent data sets, training data, runs and models."""

from __future__ import annotations

from pathlib import Path

from imgcls_desktop.core.project import (
    MAX_ITEMS,
    ItemKind,
    Project,
    load_project,
    project_file,
    save_project,
    split_training_pair,
    training_pair,
)


def test_remembered_paths_come_back_newest_first_without_repeats(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    project = Project()
    for path in (first, second, first):
        project.remember(ItemKind.DATASET, path)
    save_project(project)
    assert project_file().parent.name == "data"
    reopened = load_project()
    assert reopened.recent(ItemKind.DATASET) == [str(first), str(second)]
    assert reopened.last(ItemKind.DATASET) == str(first)
    assert reopened.last(ItemKind.MODEL) is None


def test_paths_that_no_longer_exist_are_not_offered(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    project = Project()
    project.remember(ItemKind.RUN, kept)
    project.remember(ItemKind.RUN, tmp_path / "deleted")
    assert project.recent(ItemKind.RUN) == [str(kept)]


def test_the_lists_are_bounded(tmp_path: Path) -> None:
    project = Project()
    for index in range(MAX_ITEMS + 5):
        project.remember(ItemKind.MODEL, tmp_path / f"model-{index}")
    assert len(project.models) == MAX_ITEMS
    assert project.models[0].endswith(f"model-{MAX_ITEMS + 4}")


def test_training_data_keeps_both_channels_together(tmp_path: Path) -> None:
    train, validation = tmp_path / "t.rec", tmp_path / "v.rec"
    train.touch()
    project = Project()
    project.remember(ItemKind.TRAINING_DATA, training_pair(str(train), str(validation)))
    assert project.recent(ItemKind.TRAINING_DATA) == []  # the validation file is missing
    validation.touch()
    entry = project.last(ItemKind.TRAINING_DATA)
    assert entry is not None and split_training_pair(entry) == (str(train), str(validation))
    assert split_training_pair(training_pair(str(train), None)) == (str(train), None)


def test_a_damaged_file_is_an_empty_project_and_is_kept_aside() -> None:
    path = project_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert load_project() == Project()
    assert path.with_name("project.json.damaged").read_text() == "{not json"
    path.write_text('{"datasets": "not a list", "unknown": [1], "models": ["/m"]}')
    assert load_project() == Project(models=["/m"])
