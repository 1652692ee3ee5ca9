"""The Training tab over the app state, driven as a user and the window drive it (offscreen):
the form, a run, its curves, stop, resume, reopening, and the journeys of issue 11."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QElapsedTimer, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
)
from pytestqt.qtbot import QtBot

from imgcls_desktop.core.app_state import AppState, default_runs_folder
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.training.callbacks import EpochDone
from imgcls_desktop.core.training.run import RunInfo, read_metrics, read_run, write_run
from imgcls_desktop.gui.training import TrainingTab
from imgcls_desktop.gui.workers import JobRunner
from tests.core.lock_fixtures import lock_held_by_another_process

RUN_TIMEOUT_MS = 300_000  # training at nice 10 on a loaded 2-core machine: minutes
pytestmark = pytest.mark.timeout(900)  # several such waits in one test
TINY = {
    "num_layers": "20",
    "image_shape": "3,32,32",
    "mini_batch_size": "16",
    "learning_rate": "0.05",
    "augmentation_type": "none",
    "epochs": "2",
}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=24, size=32
    )


class Opened:
    """A Training tab on its own app state, as the window makes it."""

    def __init__(self, qtbot: QtBot) -> None:
        self.jobs = JobRunner()
        self.state = AppState(save=None)
        self.tab = TrainingTab(self.jobs, self.state)
        qtbot.addWidget(self.tab)
        self.tab.show()

    def close(self) -> None:
        self.tab.stop()
        assert self.jobs.shutdown(RUN_TIMEOUT_MS)


@pytest.fixture
def opened(qtbot: QtBot) -> Iterator[Opened]:
    app = Opened(qtbot)
    yield app
    app.close()


def button(tab: TrainingTab, name: str) -> QPushButton:
    found = tab.findChild(QPushButton, name)
    assert found is not None, name
    return found


def bar_text(tab: TrainingTab, name: str) -> str:
    return tab.findChild(QProgressBar, name).text()


def label(tab: TrainingTab, name: str) -> str:
    return tab.findChild(QLabel, name).text()


def per_class(tab: TrainingTab) -> list[list[str]]:
    table = tab.findChild(QTableWidget, "perClass")
    return [
        [table.item(row, column).text() for column in range(table.columnCount())]
        for row in range(table.rowCount())
    ]


def runs_listed(tab: TrainingTab) -> list[tuple[str, str]]:
    table = tab.findChild(QTableWidget, "runHistory")
    return [
        (table.item(row, 0).text(), table.item(row, 1).text()) for row in range(table.rowCount())
    ]


def curve(tab: TrainingTab, title: str, name: str) -> tuple[list[float], list[float]]:
    """The points of the curve called ``name`` in the plot whose title starts with ``title``."""
    for widget in tab.findChildren(pg.PlotWidget):
        plot = widget.getPlotItem()
        if plot.titleLabel.text.startswith(title):
            for item in plot.listDataItems():
                if item.name() == name:
                    x, y = item.getData()
                    return ([] if x is None else list(x)), ([] if y is None else list(y))
    raise AssertionError(f"no curve {name!r} in a plot {title!r}")


def use_settings(tab: TrainingTab, folder: Path, **values: str) -> None:
    """Load these settings into the form, as the user does with Load…."""
    path = folder / "hyperparameters.json"
    path.write_text(json.dumps({**TINY, **values}))
    tab.load_hyperparameters_from(path)


def set_up(qtbot: QtBot, app: Opened, data: Path, folder: Path, **values: str) -> None:
    app.state.set_training_data(data)
    qtbot.waitUntil(lambda: app.state.training_data.summary is not None, timeout=RUN_TIMEOUT_MS)
    use_settings(app.tab, folder, **values)


def train_to_the_end(qtbot: QtBot, app: Opened, *, resume: bool = False) -> None:
    job = app.tab.resume() if resume else app.tab.start()
    assert job is not None
    with qtbot.waitSignal(app.tab.run_finished, timeout=RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: not app.jobs.running(), timeout=RUN_TIMEOUT_MS)


def test_invalid_value_is_marked_and_start_disabled(qtbot: QtBot, opened: Opened) -> None:
    tab, start = opened.tab, button(opened.tab, "startTraining")
    assert start.isEnabled()
    editor = tab.findChild(QLabel, "learning_rateError")
    tab.findChild(QLineEdit, "learning_rate").setText("2")
    assert not start.isEnabled()
    assert not editor.isHidden() and "too large" in editor.text()
    tab.findChild(QLineEdit, "learning_rate").setText("0.01")
    assert start.isEnabled()


def test_values_beyond_their_bounds_are_marked_with_the_reason(
    qtbot: QtBot, opened: Opened, tmp_path: Path
) -> None:
    """Issue 9, bug 10: the form refuses what the command line refuses, with the reason."""
    tab, start = opened.tab, button(opened.tab, "startTraining")

    def edit(name: str, text: str) -> None:
        tab.findChild(QLineEdit, name).setText(text)

    def error(name: str) -> QLabel:
        return tab.findChild(QLabel, f"{name}Error")

    use_settings(tab, tmp_path)
    assert start.isEnabled()
    edit("epochs", "1e300")
    assert not start.isEnabled() and "1e+300 is too large" in error("epochs").text()
    edit("epochs", "2")
    edit("num_classes", "100000000")
    assert "819.2 GB as float32" in error("num_classes").text() and not start.isEnabled()
    edit("num_classes", "")
    edit("mini_batch_size", "1")
    edit("image_shape", "3,2100,2100")
    image_shape = error("image_shape")
    assert not image_shape.isHidden() and "allow_large_images=true" in image_shape.text()
    assert not start.isEnabled()
    tab.findChild(QCheckBox, "allow_large_images").setChecked(True)  # one such image fits
    assert image_shape.isHidden() and start.isEnabled()
    edit("mini_batch_size", "16")
    assert "use at most" in error("mini_batch_size").text() and not start.isEnabled()
    labels = [found.text() for found in tab.findChildren(QLabel)]
    assert "allow_large_images (ours)" in labels and "epochs" in labels
    assert "freeze_backbone (ours)" in labels
    use_settings(tab, tmp_path)
    assert start.isEnabled()


def test_photos_get_quick_transfer_once_a_backbone_is_on_disk_and_else_how_to_get_one(
    qtbot: QtBot, opened: Opened, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = generate_sample_dataset(tmp_path / "photos", classes=2, per_class=4, size=128)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet"))  # no weights there yet
    with qtbot.waitSignal(opened.tab.settings_suggested, timeout=RUN_TIMEOUT_MS) as suggested:
        opened.state.set_training_data(photos)
    assert "imgcls weights download resnet18_v1" in suggested.args[0]
    assert "Training > Pretrained Weights…" in suggested.args[0]
    assert opened.tab.findChild(QCheckBox, "freeze_backbone").isChecked() is False

    (tmp_path / "mxnet" / "models").mkdir(parents=True)
    (tmp_path / "mxnet" / "models" / "resnet18_v1.params").write_bytes(b"")  # only looked for
    with qtbot.waitSignal(opened.tab.settings_suggested, timeout=RUN_TIMEOUT_MS) as suggested:
        opened.tab.suggest_settings()
    assert suggested.args[0].startswith("quick transfer: frozen ImageNet ResNet-18, head only")
    assert opened.tab.findChild(QCheckBox, "freeze_backbone").isChecked()
    assert opened.tab.findChild(QCheckBox, "use_pretrained_model").isChecked()


def test_reading_the_data_suggests_settings_and_says_the_augmentation_mirrors(
    qtbot: QtBot, opened: Opened, shapes: Path
) -> None:
    """Issue 11: suggestions kept crop's mirroring for text and digits, without a word."""
    with qtbot.waitSignal(opened.tab.settings_suggested, timeout=RUN_TIMEOUT_MS) as suggested:
        opened.state.set_training_data(shapes)
    assert "ResNet-20 at 32 x 32 px" in suggested.args[0]
    assert "72 images" in label(opened.tab, "dataSummary")
    note = label(opened.tab, "augmentationNote")
    assert "mirrors images left-right" in note and "augmentation_type to none" in note
    assert not opened.tab.form_edited() and button(opened.tab, "startTraining").isEnabled()
    opened.tab.findChild(QComboBox, "augmentation_type").setCurrentText("none")
    assert label(opened.tab, "augmentationNote") == "" and opened.tab.form_edited()


def test_other_data_chosen_while_the_first_is_read_is_the_data_shown(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    """Reading the training data: the latest choice wins, the earlier reading is replaced."""
    other = generate_sample_dataset(tmp_path / "other", classes=2, per_class=10, size=32)
    opened.state.set_training_data(shapes)  # read in a worker
    opened.state.set_training_data(other)  # while that reading runs
    qtbot.waitUntil(lambda: "20 images" in label(opened.tab, "dataSummary"), timeout=RUN_TIMEOUT_MS)
    summary = opened.state.training_data.summary
    assert summary is not None and summary.path == other
    assert "72 images" not in label(opened.tab, "dataSummary")


def test_new_data_keeps_the_users_settings_with_its_own_counts(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    """Seen in the window: reopened with the last run's settings (4 classes, 320 images), a
    second data set of 3 classes kept num_classes 4 and could not train well. The user's
    choices stay; the counts follow the data."""
    set_up(qtbot, opened, shapes, tmp_path, num_classes="4", num_training_samples="320")
    assert opened.tab.form_edited()
    other = generate_sample_dataset(tmp_path / "other", classes=2, per_class=10, size=32)
    with qtbot.waitSignal(opened.tab.status_message, timeout=RUN_TIMEOUT_MS) as said:
        opened.state.set_training_data(other)
    assert "num_classes" in said.args[0]
    form = {
        name: opened.tab.findChild(QLineEdit, name).text() for name in ("learning_rate", "epochs")
    }
    assert opened.tab.findChild(QLineEdit, "num_classes").text() == "2"
    assert opened.tab.findChild(QLineEdit, "num_training_samples").text() == ""  # 20% held out
    assert form["learning_rate"] == TINY["learning_rate"] and form["epochs"] == TINY["epochs"]


def test_start_after_a_finished_run_makes_a_new_run_and_resume_says_why_not(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    """Issue 11: after a finished run, Start Training said the run folder "already holds a
    run"; Resume then took the old run's settings and failed; Per class kept its classes."""
    tab, state = opened.tab, opened.state
    set_up(qtbot, opened, shapes, tmp_path)
    train_to_the_end(qtbot, opened)
    first = state.run.path
    info = read_run(first)
    assert (info.status, info.last_completed_epoch) == ("finished", 2)
    assert bar_text(tab, "runProgress") == f"{first.name}: finished (2 epochs)"
    best = read_metrics(first)[info.best_epoch - 1]  # not the last epoch: the kept one
    assert per_class(tab) == [
        [name, f"{precision:.3f}", f"{recall:.3f}"]
        for name, precision, recall in zip(
            ("circle", "square", "triangle"),
            best["val_precision_per_class"],
            best["val_recall_per_class"],
        )
    ]
    assert label(tab, "perClassEpoch").startswith(f"Epoch {info.best_epoch}, the best")
    x, _y = curve(tab, "Accuracy per epoch", "validation")
    assert x == [1, 2]
    resume = button(tab, "resumeTraining")
    assert not resume.isEnabled() and "finished all its 2 epochs" in resume.toolTip()

    with qtbot.waitSignal(tab.training_started, timeout=RUN_TIMEOUT_MS) as started:
        assert tab.start() is not None
    second = started.args[0]
    assert second != first and second.parent == first.parent == default_runs_folder()
    assert state.is_training and state.run.path == second
    assert per_class(tab) == [] and "No finished epoch" in label(tab, "perClassEpoch")
    with qtbot.waitSignal(tab.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        pass
    assert finished.args[0].summary().startswith("Finished all 2 epochs")
    qtbot.waitUntil(lambda: not opened.jobs.running(), timeout=RUN_TIMEOUT_MS)
    assert not state.is_training and state.run.result is finished.args[0]
    assert {name for name, _status in runs_listed(tab)} == {first.name, second.name}
    assert not resume.isEnabled()
    assert tab.resume() is None
    dialog = tab.findChildren(QMessageBox, "errorDialog")[-1]
    assert "finished all its 2 epochs" in dialog.text()
    dialog.close()
    assert read_run(first).last_completed_epoch == 2 and not state.is_training


def test_a_run_that_cannot_start_ends_the_training_state(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    """Issue 11: after a failed start the banner still said training was under way."""
    gone = tmp_path / "gone"
    opened.state.set_training_data(gone)  # reading it fails: the form is not checked
    use_settings(opened.tab, tmp_path)
    qtbot.waitUntil(lambda: not opened.jobs.running(), timeout=RUN_TIMEOUT_MS)
    job = opened.tab.start()
    assert job is not None and opened.state.is_training
    with qtbot.waitSignal(job.finished, timeout=RUN_TIMEOUT_MS):
        pass
    assert not opened.state.is_training and opened.state.run.result is None
    assert opened.tab.findChildren(QMessageBox, "errorDialog")
    assert button(opened.tab, "startTraining").isEnabled()
    assert not button(opened.tab, "stopTraining").isEnabled()


def test_reopening_after_a_stop_shows_the_run_and_resumes_it_with_its_curves(
    qtbot: QtBot, shapes: Path, tmp_path: Path
) -> None:
    """Issue 11: after closing during a run, the reopened tab said "Run: not started",
    Resume said "Nothing to resume", and the resumed batch-loss and learning-rate curves
    started empty at the resumed epoch."""
    first = Opened(qtbot)
    set_up(qtbot, first, shapes, tmp_path, epochs="6")
    job = first.tab.start()
    run = first.state.run.path
    qtbot.waitUntil(
        lambda: len(curve(first.tab, "Accuracy per epoch", "validation")[0]) >= 1,
        timeout=RUN_TIMEOUT_MS,
    )
    first.tab.shutdown()  # the window closes
    with qtbot.waitSignal(job.finished, timeout=RUN_TIMEOUT_MS):
        pass
    first.close()
    stopped = read_run(run).last_completed_epoch
    assert read_run(run).status == "stopped" and 1 <= stopped < 6

    again = Opened(qtbot)  # the window again, with the last run selected
    again.state.select_run(run)
    tab = again.tab
    assert bar_text(tab, "runProgress") == f"{run.name}: stopped at epoch {stopped} of 6"
    assert curve(tab, "Accuracy per epoch", "validation")[0] == list(range(1, stopped + 1))
    assert len(per_class(tab)) == 3
    resume = button(tab, "resumeTraining")
    assert resume.isEnabled() and "its own settings" in resume.toolTip()
    form_before = tab.findChild(QLineEdit, "epochs").text()
    with qtbot.waitSignal(tab.training_started, timeout=RUN_TIMEOUT_MS) as started:
        assert tab.resume() is not None
    assert started.args[0] == run
    qtbot.waitUntil(
        lambda: len(curve(tab, "Batch loss", "smoothed")[0]) >= stopped, timeout=RUN_TIMEOUT_MS
    )
    smoothed_x, _ = curve(tab, "Batch loss", "smoothed")
    rate_x, _ = curve(tab, "Learning rate", "learning rate")
    assert min(smoothed_x) <= 1 and min(rate_x) <= 1  # the earlier epochs are drawn too
    with qtbot.waitSignal(tab.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        pass
    qtbot.waitUntil(lambda: not again.jobs.running(), timeout=RUN_TIMEOUT_MS)
    assert finished.args[0].completed and read_run(run).last_completed_epoch == 6
    assert curve(tab, "Accuracy per epoch", "validation")[0] == [1, 2, 3, 4, 5, 6]
    assert tab.findChild(QLineEdit, "epochs").text() == form_before  # the form is left alone
    again.close()


def test_an_interrupted_run_is_called_so_and_can_be_resumed(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    run = tmp_path / "runs" / "killed"
    run.mkdir(parents=True)
    write_run(run, RunInfo(status="running", epochs=60, train=str(shapes), last_completed_epoch=9))
    opened.state.select_run(run)
    assert bar_text(opened.tab, "runProgress") == "killed: interrupted at epoch 9 of 60"
    assert button(opened.tab, "resumeTraining").isEnabled()
    assert ("killed", "interrupted at epoch 9 of 60") in runs_listed(opened.tab)


def test_resume_is_not_offered_for_a_run_another_process_trains(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    tab, resume = opened.tab, button(opened.tab, "resumeTraining")
    run = tmp_path / "runs" / "busy"
    run.mkdir(parents=True)
    write_run(run, RunInfo(status="running", epochs=2, train=str(shapes)))
    with lock_held_by_another_process(run) as pid:
        opened.state.select_run(run)
        status = f"training: process {pid} on {socket.gethostname()}"
        assert ("busy", status) in runs_listed(tab)
        assert not resume.isEnabled() and f"being trained by process {pid}" in resume.toolTip()
        assert tab.resume() is None  # e.g. a shortcut, or a click before the list was refreshed
        dialog = tab.findChildren(QMessageBox, "errorDialog")[-1]
        assert f"being trained by process {pid}" in dialog.text()
        dialog.close()
    tab.hide()
    tab.show()  # showing the tab looks again: that process has ended, the run was killed
    assert ("busy", "interrupted before epoch 1 of 2 ended") in runs_listed(tab)
    assert resume.isEnabled() and "Continue the run" in resume.toolTip()


def test_training_yields_the_cpu_to_the_event_loop(
    qtbot: QtBot, opened: Opened, shapes: Path, tmp_path: Path
) -> None:
    """The event loop keeps running between training events, and the threads that train
    (the worker and MXNet's engine and OpenMP threads) run below the GUI thread's priority.
    How long the loop may stall on a loaded machine is measured, not asserted: the figure is
    printed (``pytest -s``)."""
    set_up(qtbot, opened, shapes, tmp_path, epochs="3")
    qtbot.waitUntil(lambda: not opened.jobs.running(), timeout=RUN_TIMEOUT_MS)  # MXNet loaded
    gui_priority = os.getpriority(os.PRIO_PROCESS, 0)  # 0, unless the tests run under nice
    clock = QElapsedTimer()
    ticks: list[int] = []
    epochs_seen: list[int] = []  # probe ticks counted when each epoch ended
    busiest: list[tuple[int, int]] = []  # (niceness, cpu ticks) of the busiest other thread
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks.append(clock.restart()))

    def on_event(event: object) -> None:
        if isinstance(event, EpochDone):
            epochs_seen.append(len(ticks))
            busiest.append(_busiest_other_thread())

    job = opened.tab.start()
    job.event.connect(on_event)
    clock.start()
    probe.start()
    with qtbot.waitSignal(job.finished, timeout=RUN_TIMEOUT_MS):
        pass
    probe.stop()
    print(f"longest event-loop gap during training: {max(ticks)} ms over {len(ticks)} ticks")
    assert len(epochs_seen) == 3
    assert all(later > earlier for earlier, later in zip([0, *epochs_seen], epochs_seen))
    assert os.getpriority(os.PRIO_PROCESS, 0) == gui_priority
    assert all(niceness >= 10 for niceness, _ in busiest), busiest
    assert np.isfinite(curve(opened.tab, "Batch loss", "batch")[1]).all()


def _busiest_other_thread() -> tuple[int, int]:
    """(niceness, user + system clock ticks) of the thread, other than this one, that has
    used the most CPU."""
    threads = []
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) == os.getpid():
            continue
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        # after the command: state, ppid, ... utime is field 14, stime 15, nice 19 (1-based)
        cpu = int(fields[11]) + int(fields[12])
        threads.append((os.getpriority(os.PRIO_PROCESS, int(task.name)), cpu))
    return max(threads, key=lambda thread: thread[1])


def test_per_class_shows_the_kept_best_epoch_not_the_last(
    qtbot: QtBot, opened: Opened, tmp_path: Path
) -> None:
    """Issue 11: Per class showed the last epoch, not the best one the run keeps."""
    run = tmp_path / "runs" / "three"
    run.mkdir(parents=True)
    write_run(
        run,
        RunInfo(
            status="stopped",
            epochs=5,
            train="data",
            last_completed_epoch=3,
            best_epoch=2,
            best_val_accuracy=0.75,
        ),
    )
    (run / "classes.json").write_text(json.dumps(["cat", "dog"]))
    epochs = [
        {"epoch": 1, "val_accuracy": 0.5, "val_precision_per_class": [0.5, 0.5]},
        {"epoch": 2, "val_accuracy": 0.75, "val_precision_per_class": [0.8, 0.7]},
        {"epoch": 3, "val_accuracy": 0.6, "val_precision_per_class": [0.1, 0.2]},
    ]
    for logs in epochs:
        logs["val_recall_per_class"] = logs["val_precision_per_class"][::-1]
    (run / "metrics.jsonl").write_text("".join(json.dumps(logs) + "\n" for logs in epochs))
    opened.state.select_run(run)
    assert per_class(opened.tab) == [["cat", "0.800", "0.700"], ["dog", "0.700", "0.800"]]
    title = label(opened.tab, "perClassEpoch")
    assert title.startswith("Epoch 2, the best") and "0.750" in title
    assert bar_text(opened.tab, "runProgress") == "three: stopped at epoch 3 of 5"
