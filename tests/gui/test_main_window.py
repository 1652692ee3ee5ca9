"""The whole window as a new user meets it: the first run, the hand-offs between the tabs,
the project that reopens at start, the menus' shortcuts, the warnings before a start, and
how fast the window comes up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl, qVersion
from PySide6.QtGui import QAction, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QMenu,
    QMenuBar,
    QMessageBox,
    QTabBar,
    QWidget,
)
from pytestqt.qtbot import QtBot

from imgcls_desktop import __version__
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.devices import cuda_build, gpu_count
from imgcls_desktop.core.paths import cache_dir, config_dir, data_dir
from imgcls_desktop.core.project import ItemKind, Project, load_project, save_project
from imgcls_desktop.core.training.run import RunError, RunStatus, read_run
from imgcls_desktop.gui.main_window import MainWindow
from imgcls_desktop.gui.training.augmentation_preview import AugmentationPreviewDialog
from imgcls_desktop.gui.workers import JobHandle
from tests.conftest import write_image
from tests.core.inference_fixtures import labelled_with_a_class_never_right, shared_run

TIMEOUT_MS = 300_000  # training at nice 10 on a loaded 2-core machine: minutes
pytestmark = pytest.mark.timeout(900)  # several such waits in one test


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=20, size=32
    )


def _wait(qtbot: QtBot, job: JobHandle | None) -> None:
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=TIMEOUT_MS).wait()


def _menu_action(window: MainWindow, text: str) -> QAction:
    """The menu action whose text (without its & mnemonic) is ``text``."""
    for menu in window.menuBar().findChildren(QMenu):
        for action in menu.actions():
            if action.text().replace("&", "") == text:
                return action
    raise KeyError(text)


def _offers(window: MainWindow, *labels: str) -> bool:
    return all(label in window.banner.offers() for label in labels)


def _click_banner(qtbot: QtBot, window: MainWindow, label: str) -> None:
    qtbot.mouseClick(window.banner.button(label), Qt.MouseButton.LeftButton)


def _short_settings(folder: Path, **values: object) -> Path:
    """A hyperparameters file for a quick run of ResNet-20 at 32 px."""
    path = folder / "quick.json"
    settings = {"num_layers": 20, "image_shape": "3,32,32", "mini_batch_size": 16}
    path.write_text(json.dumps({**settings, **values}), encoding="utf-8")
    return path


def test_first_run_from_nothing_to_a_labelled_folder(
    qtbot: QtBot, window: MainWindow, class_folder: Path, tmp_path: Path
) -> None:
    state, training = window.state, window.training_tab
    _menu_action(window, "Try the Sample Data Set").trigger()
    # One click: generated, scanned, exported, read for training and settings proposed.
    qtbot.waitUntil(lambda: _offers(window, "Start Training"), timeout=TIMEOUT_MS)
    assert window.tabs.currentWidget() is training
    sample_export = data_dir() / "sample-shapes-recordio"
    assert state.dataset.export_dir == sample_export
    assert state.training_data.train == sample_export / "dataset-train.rec"
    assert len(state.training_data.summary.class_names) == 4

    # The test's one shortcut: 2 epochs instead of 60.
    count = state.training_data.summary.num_samples
    quick = _short_settings(
        tmp_path, num_classes=4, num_training_samples=count, epochs=2, lr_scheduler_step=1
    )
    training.load_hyperparameters_from(quick)
    _click_banner(qtbot, window, "Start Training")
    assert state.is_training and window.banner.offers() == []
    assert window.statusBar().currentMessage() == ""  # no stale "Suggested for this data…"
    qtbot.waitUntil(lambda: _offers(window, "Label a Folder…", "Evaluate"), timeout=TIMEOUT_MS)
    run_dir = state.run.path
    assert state.run.result.status == RunStatus.FINISHED
    qtbot.waitUntil(lambda: state.model is not None, timeout=TIMEOUT_MS)
    assert state.model.path == run_dir and state.model.validation is not None
    assert load_project().recent(ItemKind.MODEL) == [str(run_dir)]

    circles = data_dir() / "sample-shapes" / "circle"
    with qtbot.waitSignal(window.inference_tab.folder_labelled, timeout=TIMEOUT_MS) as done:
        window.label_folder(str(circles))
    assert window.tabs.currentWidget() is window.inference_tab
    assert done.args == [str(circles), len(list(circles.iterdir()))]
    assert _offers(window, "Evaluate")  # labelling keeps the way to the evaluation
    _click_banner(qtbot, window, "Evaluate")
    qtbot.waitUntil(lambda: state.evaluation is not None, timeout=TIMEOUT_MS)
    assert state.evaluation.model == run_dir and state.evaluation.data == state.model.validation

    # A data set of the user's own after the sample: its own export folder, and the banner
    # about the evaluation goes once the data set is shown.
    window.open_dataset(str(class_folder))
    qtbot.waitUntil(lambda: _offers(window, "Export RecordIO"), timeout=TIMEOUT_MS)
    mine = class_folder.with_name(f"{class_folder.name}-recordio")
    assert state.dataset.path == class_folder and state.dataset.export_dir == mine
    sample_files = {path.name: path.stat().st_mtime_ns for path in sample_export.iterdir()}
    _click_banner(qtbot, window, "Export RecordIO")
    qtbot.waitUntil(lambda: _offers(window, "Go to Training"), timeout=TIMEOUT_MS)
    assert state.training_data.train == mine / "dataset-train.rec"
    assert {path.name: path.stat().st_mtime_ns for path in sample_export.iterdir()} == sample_files


def _epochs_done(run_dir: Path) -> int:
    try:
        return read_run(run_dir).last_completed_epoch
    except RunError:  # not written yet
        return 0


def test_a_run_stopped_by_closing_is_offered_again_and_resumes(
    qtbot: QtBot, shapes: Path, tmp_path: Path
) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.state.set_training_data(shapes)
    qtbot.waitUntil(lambda: _offers(window, "Start Training"), timeout=TIMEOUT_MS)
    window.training_tab.load_hyperparameters_from(
        _short_settings(tmp_path, num_classes=3, num_training_samples=60, epochs=200)
    )
    _click_banner(qtbot, window, "Start Training")
    run_dir = window.state.run.path
    qtbot.waitUntil(lambda: _epochs_done(run_dir) >= 1, timeout=TIMEOUT_MS)
    window.close()  # asks first: the run is being trained
    question = window.findChild(QMessageBox, "confirmCloseDialog")
    assert "can be resumed from the Training tab" in question.text()
    question.button(QMessageBox.StandardButton.Yes).click()  # Stop and Quit
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT_MS)
    stopped = read_run(run_dir)
    assert stopped.status == "stopped" and stopped.last_completed_epoch < 200

    again = MainWindow(reopen_last_session=True)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: _offers(again, "Resume Training"), timeout=TIMEOUT_MS)
    assert again.state.run.path == run_dir  # the Training tab shows it
    assert f"stopped at epoch {stopped.last_completed_epoch} of 200" in again.banner.message.text()
    with qtbot.waitSignal(again.training_tab.training_started, timeout=TIMEOUT_MS) as started:
        _click_banner(qtbot, again, "Resume Training")
    assert started.args == [run_dir] and again.state.is_training
    qtbot.waitUntil(
        lambda: _epochs_done(run_dir) > stopped.last_completed_epoch, timeout=TIMEOUT_MS
    )
    with qtbot.waitSignal(again.training_tab.run_finished, timeout=TIMEOUT_MS) as finished:
        again.training_tab.stop()
    # Stopped again: never announced as a trained model; Resume is offered instead.
    assert finished.args[0].status == RunStatus.STOPPED
    assert again.banner.offers() == ["Resume Training"]
    assert again.state.model is None
    again.close()


def test_evaluate_runs_the_open_model_on_its_runs_validation_images(
    qtbot: QtBot, window: MainWindow, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, result = shared_run(tmp_path_factory)
    window.open_model(str(run_dir))
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    _menu_action(window, "Evaluate on Its Validation Images").trigger()
    qtbot.waitUntil(lambda: window.state.evaluation is not None, timeout=TIMEOUT_MS)
    evaluation = window.state.evaluation
    assert evaluation.model == run_dir and evaluation.data.name.endswith("-val.rec")
    assert evaluation.report.accuracy == pytest.approx(result.best_val_accuracy, abs=1e-6)
    assert window.tabs.currentWidget() is window.inference_tab
    # The next step follows the report: more images for classes it mostly gets wrong.
    failing = evaluation.report.failing_classes
    assert _offers(window, "Go to Dataset" if failing else "Label a Folder…")


def test_a_class_the_model_never_recognises_is_not_announced_as_success(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, _ = shared_run(tmp_path_factory)
    images, _never_right = labelled_with_a_class_never_right(run_dir, tmp_path / "labelled")
    window.open_model(str(run_dir))
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.inference_tab.evaluated, timeout=TIMEOUT_MS) as evaluated:
        window.inference_tab.evaluate(str(images))
    report = evaluated.args[0]
    assert report.accuracy > 0 and [c.recall for c in report.per_class if c.recall == 0]
    assert window.banner.offers() == ["Go to Dataset"]  # add images of it, not "well done"
    _click_banner(qtbot, window, "Go to Dataset")
    assert window.tabs.currentWidget() is window.dataset_tab

    window.open_model(str(run_dir))  # another model (the same, opened again): the step goes
    qtbot.waitUntil(lambda: window.state.evaluation is None, timeout=TIMEOUT_MS)
    assert window.banner.offers() == []


def test_the_last_data_set_training_data_run_and_model_reopen_at_start(
    qtbot: QtBot, shapes: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, _ = shared_run(tmp_path_factory)
    project = Project()
    project.remember(ItemKind.DATASET, shapes)
    project.remember(ItemKind.TRAINING_DATA, str(shapes))
    project.remember(ItemKind.MODEL, run_dir)
    project.remember(ItemKind.RUN, run_dir)  # trained elsewhere, e.g. with imgcls train
    save_project(project)

    window = MainWindow(reopen_last_session=True)
    qtbot.addWidget(window)
    window.show()
    state = window.state
    qtbot.waitUntil(lambda: state.dataset is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: state.model is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: state.training_data.summary is not None, timeout=TIMEOUT_MS)
    assert state.dataset.path == shapes and state.training_data.train == shapes
    assert state.model.path == run_dir and state.run.path == run_dir
    assert "Welcome back" in window.banner.message.text()
    assert window.banner.offers() == ["Go to Training"]  # finished: nothing to resume
    window.close()


def test_after_a_restart_the_sample_is_exported_into_its_own_folder(
    qtbot: QtBot, class_folder: Path
) -> None:
    project = Project()
    project.remember(ItemKind.DATASET, class_folder)
    save_project(project)
    window = MainWindow(reopen_last_session=True)
    qtbot.addWidget(window)
    window.show()
    dataset, state = window.dataset_tab, window.state
    qtbot.waitUntil(lambda: state.dataset is not None, timeout=TIMEOUT_MS)
    _wait(qtbot, dataset.export())
    mine = class_folder.with_name(f"{class_folder.name}-recordio")
    exported = {path.name: path.read_bytes() for path in mine.iterdir()}
    assert "dataset-train.rec" in exported

    for _ in range(2):  # the second time, the sample's own export is used again
        with qtbot.waitSignal(dataset.sample_ready, timeout=TIMEOUT_MS):
            dataset.generate_sample()
        asked = dataset.findChildren(QMessageBox, "confirmReplaceExportDialog")
        assert not [box for box in asked if box.isVisible()]
    assert {path.name: path.read_bytes() for path in mine.iterdir()} == exported
    sample_export = data_dir() / "sample-shapes-recordio"
    assert state.dataset.path == data_dir() / "sample-shapes"
    assert state.training_data.train == sample_export / "dataset-train.rec"
    window.close()


def test_the_training_menu_previews_the_augmentation_of_the_training_data(
    qtbot: QtBot, window: MainWindow, shapes: Path
) -> None:
    window.state.set_training_data(shapes)
    _menu_action(window, "Preview Augmentation…").trigger()
    dialog = window.findChild(AugmentationPreviewDialog, "augmentationPreview")
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        pass
    assert dialog.isVisible() and shown.args[0].rows
    dialog.close()


def _drop(window: MainWindow, path: Path) -> None:
    mime = QMimeData()  # kept alive here: the event does not own it
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(
        QDropEvent(
            QPoint(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )


def test_a_dropped_model_opens_for_inference_and_a_dropped_folder_is_labelled(
    qtbot: QtBot, window: MainWindow, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, _ = shared_run(tmp_path_factory)
    _drop(window, run_dir)
    assert window.tabs.currentWidget() is window.inference_tab
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    assert load_project().last(ItemKind.MODEL) == str(run_dir)

    loose = tmp_path / "to label"
    for index in range(3):
        write_image(loose / f"photo {index}.jpg", (200, 40, 40), seed=index)
    with qtbot.waitSignal(window.inference_tab.folder_labelled, timeout=TIMEOUT_MS) as done:
        _drop(window, loose)
    assert done.args == [str(loose), 3]
    assert window.state.dataset is None  # none was taken for a data set


def test_help_explains_the_journey_and_lists_the_shortcuts_without_blocking(
    qtbot: QtBot, window: MainWindow
) -> None:
    _menu_action(window, "Getting Started").trigger()
    guide = window.findChild(QMessageBox, "gettingStarted")
    assert guide.isVisible() and not guide.isModal()
    assert guide.text().count("<li>") == 4
    _menu_action(window, "Keyboard Shortcuts").trigger()
    listed = window.findChild(QMessageBox, "keyboardShortcuts")
    assert listed.isVisible() and not listed.isModal()
    for keys in ("Ctrl+O", "Ctrl+T", "Ctrl+L"):
        assert QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText) in listed.text()
    assert _menu_action(window, "Open the Data Folder").isEnabled()
    assert _menu_action(window, "About imgcls-desktop").isEnabled()


def test_the_main_actions_have_shortcuts_listed_in_the_menus(
    qtbot: QtBot, window: MainWindow
) -> None:
    shortcuts = {
        action.text().replace("&", ""): action.shortcut().toString()
        for menu in window.menuBar().findChildren(type(window.recent_menu))
        for action in menu.actions()
        if not action.shortcut().isEmpty()
    }
    for name, keys in {
        "Open Data Set Folder…": "Ctrl+O",
        "Export RecordIO": "Ctrl+E",
        "Start Training": "Ctrl+T",
        "Stop Training": "Ctrl+.",
        "Open Model…": "Ctrl+M",
        "Label a Folder…": "Ctrl+L",
        "Training Tab": "Ctrl+2",
        "Preview Augmentation…": "Ctrl+Shift+A",
    }.items():
        assert shortcuts.get(name) == keys, name
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.inference_tab
    assert QKeySequence("Ctrl+3").toString() in window.tabs.tabToolTip(2)


def test_the_window_fits_a_screen_smaller_than_its_default_size(window: MainWindow) -> None:
    available = window.screen().availableGeometry()  # offscreen: 800 x 800, a small laptop
    assert available.width() < 1280
    assert window.width() <= available.width() and window.height() <= available.height()
    assert not window.windowIcon().pixmap(256).isNull()  # the scalable icon renders large


def test_every_control_explains_itself_in_a_tooltip(window: MainWindow) -> None:
    controls = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)
    qt_parts = (QAbstractItemView, QComboBox, QAbstractSpinBox, QTabBar, QMenuBar)

    def is_ours(widget: QWidget) -> bool:
        return not (
            isinstance(widget, QHeaderView)
            or isinstance(widget.parent(), qt_parts)
            or isinstance(widget.parent().parent(), QComboBox)  # a combo box's pop-up list
            or widget.objectName().startswith("qt_")
        )

    silent = [
        f"{type(widget).__name__} {getattr(widget, 'text', str)()!r} in "
        f"{type(widget.parent()).__name__}"
        for widget in window.findChildren(QWidget)
        if isinstance(widget, controls) and is_ours(widget) and not widget.toolTip()
    ]
    assert silent == []


def _focus_order(window: MainWindow) -> list[QWidget]:
    """The widgets Tab visits, in order, from the tab bar round to it again."""
    start = window.tabs.tabBar()
    order, widget = [], start.nextInFocusChain()
    while widget is not start:
        order.append(widget)
        widget = widget.nextInFocusChain()
    return order


def test_tab_moves_through_the_controls_in_reading_order(window: MainWindow) -> None:
    export = window.dataset_tab.export_panel
    order = _focus_order(window)
    controls = [
        export.val_percent,
        export.test_percent,
        export.seed,
        export.resize_enabled,
        export.encoding,
        export.out_dir.edit,
        export.name,
        export.export_button,
    ]
    positions = [order.index(control) for control in controls]
    assert positions == sorted(positions)


def test_the_window_is_up_before_mxnet_is_loaded() -> None:
    """The window shows without waiting for MXNet (loaded in the background afterwards), so
    start-up costs Qt and the app only; ``benchmarks/startup.py`` measures how long it takes.
    The About box does not wait for it either."""
    script = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(['imgcls-desktop'])\n"
        "from imgcls_desktop.gui.main_window import MainWindow\n"
        "window = MainWindow(); window.show(); window.show_about()\n"
        "print(window.about_box.isVisible(), 'while MXNet loads' in window.about_box.text())\n"
        "print(window.isVisible(), 'mxnet' in sys.modules)\n"
        "sys.stdout.flush()\n"
        # Closing would wait for MXNet's import, which cannot be interrupted (over a minute
        # on a loaded machine): what this test checks is already printed.
        "import os; os._exit(0)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600
    )
    assert output.stdout.split()[-4:] == ["True", "True", "True", "False"]


def test_about_shows_the_versions_folders_and_devices(window: MainWindow, qtbot: QtBot) -> None:
    window.show_about()
    box = window.about_box
    assert box is not None and box.isVisible()
    text = box.text()
    assert f"imgcls-desktop {__version__}" in text
    assert f"MXNet {version('mxnet')}" in text and f"numpy {np.__version__}" in text
    assert f"PySide6 {pyside_version} (Qt {qVersion()})" in text
    assert all(str(folder) in text for folder in (data_dir(), config_dir(), cache_dir()))
    assert not box.iconPixmap().isNull()
    # The devices come once MXNet is loaded in the background; an open box shows them then.
    qtbot.waitUntil(lambda: "CPU (" in box.text(), timeout=TIMEOUT_MS)
    assert "while MXNet loads" not in box.text()


def test_an_nvidia_gpu_left_unused_by_the_cpu_build_is_pointed_out(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine with NVIDIA's driver (its ``nvidia-smi``) but MXNet's CPU build (this one's)."""
    if gpu_count() or cuda_build():
        pytest.skip("this machine's MXNet uses a GPU")
    nvidia_smi = tmp_path / "bin" / "nvidia-smi"
    nvidia_smi.parent.mkdir()
    nvidia_smi.write_text("#!/bin/sh\n", encoding="utf-8")
    nvidia_smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{nvidia_smi.parent}{os.pathsep}{os.environ['PATH']}")
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.devices is not None, timeout=TIMEOUT_MS)
    assert "the CPU build of MXNet is installed" in window.statusBar().currentMessage()
    window.show_about()
    assert "the CPU build of MXNet is installed" in window.about_box.text()
    window.close()


def test_the_window_starts_with_damaged_runs_and_offers_none_to_resume(
    qtbot: QtBot, tmp_path: Path
) -> None:
    runs_folder = data_dir() / "runs"  # where the Training tab looks at start
    for name, text in {"list": "[]", "null": "null"}.items():
        (runs_folder / name).mkdir(parents=True)
        (runs_folder / name / "run.json").write_text(text, encoding="utf-8")
    elsewhere = tmp_path / "trained-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "run.json").write_text("[]", encoding="utf-8")
    project = Project()
    project.remember(ItemKind.RUN, elsewhere)
    project.remember(ItemKind.MODEL, elsewhere)
    save_project(project)

    window = MainWindow(reopen_last_session=True)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "Welcome back" in window.banner.message.text(), timeout=TIMEOUT_MS)
    assert window.state.run.path == elsewhere
    assert "Resume Training" not in window.banner.offers()
    qtbot.waitUntil(
        lambda: bool(window.inference_tab.findChildren(QMessageBox, "errorDialog")),
        timeout=TIMEOUT_MS,
    )  # not a model: said so, and the window goes on
    assert window.state.model is None
    window.close()


def test_a_tabs_menu_action_shows_its_tab(window: MainWindow) -> None:
    """Export RecordIO chosen while the Inference tab is shown acts in the Dataset tab, in
    view; Stop Training, likewise in the Training tab."""
    window.tabs.setCurrentWidget(window.inference_tab)
    _menu_action(window, "Export RecordIO").trigger()
    assert window.tabs.currentWidget() is window.dataset_tab
    _menu_action(window, "Stop Training").trigger()
    assert window.tabs.currentWidget() is window.training_tab
