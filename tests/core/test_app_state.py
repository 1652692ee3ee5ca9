"""The one app state: each part changes through its methods and tells its subscribers."""

from __future__ import annotations

from pathlib import Path

from imgcls_desktop.core.app_state import AppState, Part, default_export_dir
from imgcls_desktop.core.dataset.scan import scan_dataset
from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.project import ItemKind, Project, load_project, save_project
from imgcls_desktop.core.training.suggest import summarize_training_data


def _follow(state: AppState, part: Part) -> list[str]:
    """A list that grows by one entry per change of ``part``."""
    changes: list[str] = []
    state.subscribe(part, lambda: changes.append(part.value))
    return changes


def _open(state: AppState, folder: Path) -> None:
    dataset = load_dataset(folder)
    state.open_dataset(folder, dataset, scan_dataset(dataset))


def test_each_data_set_keeps_its_own_export_folder(class_folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    for name in ("a", "b"):
        (other / name).mkdir(parents=True)
        for image in sorted((class_folder / "cat").iterdir())[:3]:
            (other / name / image.name).write_bytes(image.read_bytes())
    state = AppState(save=None)
    changes = _follow(state, Part.DATASET)

    _open(state, class_folder)
    assert state.dataset is not None
    assert state.dataset.export_dir == tmp_path / "images-recordio"
    state.set_export_dir(tmp_path / "chosen")
    _open(state, other)
    assert state.dataset.export_dir == default_export_dir(other) == tmp_path / "other-recordio"
    _open(state, class_folder)
    assert state.dataset.export_dir == tmp_path / "chosen"
    assert changes == ["data set"] * 4


def test_a_summary_of_older_training_data_is_ignored(class_folder: Path, tmp_path: Path) -> None:
    state = AppState(save=None)
    changes = _follow(state, Part.TRAINING_DATA)
    state.set_training_data(class_folder)
    old_summary = summarize_training_data(class_folder)
    state.set_training_data(tmp_path / "newer.rec")
    state.set_training_summary(old_summary)
    assert state.training_data is not None and state.training_data.summary is None
    state.set_training_data(class_folder)
    state.set_training_summary(old_summary)
    assert state.training_data.summary == old_summary
    assert len(changes) == 4


def test_a_run_in_training_stays_in_focus_until_it_ends(tmp_path: Path) -> None:
    state = AppState(save=None)
    changes = _follow(state, Part.RUN)
    state.run_started(tmp_path / "run-1", tmp_path / "train.rec", tmp_path / "val.rec")
    state.select_run(tmp_path / "run-0")
    assert state.run is not None and state.run.path == tmp_path / "run-1"
    assert state.is_training
    state.run_ended(None)
    assert not state.is_training
    state.select_run(tmp_path / "run-0")
    assert state.run.path == tmp_path / "run-0"
    assert changes == ["run"] * 3


def test_new_run_folders_never_reuse_an_existing_one(tmp_path: Path) -> None:
    state = AppState(save=None)
    first = state.new_run_folder(tmp_path)
    first.mkdir()
    second = state.new_run_folder(tmp_path)
    assert second != first and not second.exists() and second.parent == tmp_path


def test_opening_another_model_drops_the_evaluation_of_the_previous_one(tmp_path: Path) -> None:
    state = AppState(save=None)
    evaluations = _follow(state, Part.EVALUATION)
    report = object()  # the state keeps the report as it is; it never looks inside
    state.open_model(tmp_path / "model-a", predictor=object())  # type: ignore[arg-type]
    state.set_evaluation(tmp_path / "model-a", tmp_path / "val.rec", report)  # type: ignore[arg-type]
    assert state.evaluation is not None and state.evaluation.report is report
    state.open_model(tmp_path / "model-b", predictor=object())  # type: ignore[arg-type]
    assert state.evaluation is None
    state.set_evaluation(tmp_path / "model-a", tmp_path / "val.rec", report)  # type: ignore[arg-type]
    assert state.evaluation is None  # a late result for the model no longer open
    assert len(evaluations) == 3


def test_what_is_opened_is_remembered_in_the_project(class_folder: Path, tmp_path: Path) -> None:
    project_file = tmp_path / "project.json"
    state = AppState(Project(), save=lambda project: save_project(project, project_file))
    _open(state, class_folder)
    state.set_training_data(tmp_path / "other.rec")  # a resumed run trains on its own data
    (tmp_path / "run-1").mkdir()
    state.run_started(tmp_path / "run-1", class_folder)
    saved = load_project(project_file)
    assert saved.last(ItemKind.DATASET) == str(class_folder)
    assert saved.last(ItemKind.TRAINING_DATA) == str(class_folder)
    assert saved.last(ItemKind.RUN) == str(tmp_path / "run-1")


def test_a_project_that_cannot_be_saved_is_reported(class_folder: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = AppState(
        save=lambda project: save_project(project, blocker / "project.json"),
        on_save_error=messages.append,
    )
    _open(state, class_folder)
    assert state.dataset is not None
    assert len(messages) == 1 and "Could not save" in messages[0]
