"""The whole window as a new user meets it: the first run, the hand-offs between the tabs,
the project that reopens at start, the menus' shortcuts, the warnings before a start, and
how fast the window comes up."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl, qVersion
from PySide6.QtGui import QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
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
from imgcls_desktop.gui.main_window import MainWindow
from imgcls_desktop.gui.training.augmentation_preview import AugmentationPreviewDialog
from imgcls_desktop.gui.workers import JobHandle
from tests.conftest import write_image
from tests.core.inference_fixtures import shared_run

TIMEOUT_MS = 300_000  # training at nice 10 on a loaded 2-core machine: minutes
pytestmark = pytest.mark.timeout(900)  # several such waits in one test


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=20, size=32
    )


def _wait(qtbot: QtBot, job: JobHandle | None) -> None:
    assert job is not None
    qtbot.waitSignal(job.done, timeout=TIMEOUT_MS).wait()


def _click_banner(qtbot: QtBot, window: MainWindow, label: str) -> None:
    qtbot.mouseClick(window.banner.button(label), Qt.MouseButton.LeftButton)


def test_first_run_from_nothing_to_a_labelled_folder_with_the_mouse(
    qtbot: QtBot, window: MainWindow
) -> None:
    dataset, training, inference = window.dataset_tab, window.training_tab, window.inference_tab
    qtbot.mouseClick(dataset.empty_state.sample_button, Qt.MouseButton.LeftButton)
    # One click: generated, scanned, exported, read by the Training tab and settings proposed.
    qtbot.waitUntil(lambda: "Suggested" in window.banner.message.text(), timeout=TIMEOUT_MS)
    assert window.tabs.currentWidget() is training
    assert training.train_path.text().endswith("-train.rec")
    assert training.val_path.text().endswith("-val.rec")
    hp = training.form.hyperparameters()
    assert (hp.num_layers, hp.image_shape, hp.num_classes) == (20, "3,32,32", 4)
    assert hp.num_training_samples == training.summary.num_samples
    assert "ResNet-20 at 32 x 32 px" in window.banner.message.text()

    # The test's one shortcut: 2 epochs instead of 60 (so the rate steps down after 1).
    training.form.editor("epochs").setText("2")
    training.form.editor("lr_scheduler_step").setText("1")
    _click_banner(qtbot, window, "Start Training")
    assert training.is_training()
    assert "Training run-" in window.banner.message.text()
    qtbot.waitUntil(lambda: "Model trained" in window.banner.message.text(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    run_dir = str(training.last_result.run_dir)
    assert training.speed.text().startswith("Finished in ")
    assert inference.model_box.model_path.text() == run_dir
    assert load_project().recent(ItemKind.MODEL) == [run_dir]

    circles = Path(dataset.opened.path) / "circle"
    window.label_folder(str(circles))
    qtbot.waitUntil(lambda: inference.label_page.labelling is not None, timeout=TIMEOUT_MS)
    assert window.tabs.currentWidget() is inference
    assert len(inference.label_page.labelling.predictions) == len(list(circles.iterdir()))
    assert "Labelled 100 images" in window.banner.message.text()

    window.tabs.setCurrentWidget(dataset)  # once more: the sample is made afresh, read again
    with qtbot.waitSignal(training.data_read, timeout=TIMEOUT_MS):
        dataset.generate_sample()
    assert window.tabs.currentWidget() is training
    assert "your settings there are kept" in window.banner.message.text()
    assert training.form.hyperparameters().epochs == 2  # edited by the user: not replaced


def test_evaluate_runs_the_model_on_its_runs_validation_images(
    qtbot: QtBot, window: MainWindow, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, result = shared_run(tmp_path_factory)
    window.project.remember(ItemKind.RUN, run_dir)
    window.evaluate_last_run()
    inference = window.inference_tab
    qtbot.waitUntil(lambda: window.state.evaluation is not None, timeout=TIMEOUT_MS)
    assert inference.evaluate_page.eval_path.text().endswith("-val.rec")
    assert window.state.evaluation.report.accuracy == pytest.approx(
        result.best_val_accuracy, abs=1e-6
    )
    assert f"Accuracy {result.best_val_accuracy:.1%}" in window.banner.message.text()


def test_the_last_data_set_training_data_and_model_reopen_at_start(
    qtbot: QtBot, shapes: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_dir, _ = shared_run(tmp_path_factory)
    project = Project()
    project.remember(ItemKind.DATASET, shapes)
    project.remember(ItemKind.TRAINING_DATA, str(shapes))
    project.remember(ItemKind.MODEL, run_dir)
    save_project(project)

    project.remember(ItemKind.RUN, run_dir)  # trained elsewhere, e.g. with imgcls train
    save_project(project)

    window = MainWindow(reopen_last_session=True)
    qtbot.addWidget(window)
    window.show()
    runs = window.training_tab.runs
    assert [runs.item(row, 0).text() for row in range(runs.rowCount())] == [run_dir.name]
    qtbot.waitUntil(lambda: window.dataset_tab.opened is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.training_tab.summary is not None, timeout=TIMEOUT_MS)
    assert window.dataset_tab.opened.path == str(shapes)
    assert window.training_tab.train_path.text() == str(shapes)
    hp = window.training_tab.form.hyperparameters()  # the settings of the last run, again
    assert (hp.num_layers, hp.image_shape, hp.epochs) == (20, "3,32,32", 6)
    assert window.inference_tab.model_box.model_path.text() == str(run_dir)
    assert "Welcome back" in window.banner.message.text()
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
    dataset = window.dataset_tab
    qtbot.waitUntil(lambda: dataset.opened is not None, timeout=TIMEOUT_MS)
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
    assert Path(dataset.opened.path) == data_dir() / "sample-shapes"
    assert window.training_tab.train_path.text() == str(sample_export / "dataset-train.rec")
    window.close()


def test_exported_data_gets_suggested_settings_unless_the_user_edited_them(
    qtbot: QtBot, window: MainWindow, shapes: Path
) -> None:
    training = window.training_tab
    training.set_data(str(shapes), suggest=True)
    qtbot.waitUntil(lambda: training.form.hyperparameters().num_layers == 20, timeout=TIMEOUT_MS)
    assert not training.form_edited()

    training.form.editor("epochs").setText("7")
    assert training.form_edited()
    with qtbot.waitSignal(training.data_read, timeout=TIMEOUT_MS):
        training.set_data(str(shapes), suggest=True)  # the same data, read again
    assert training.form.hyperparameters().epochs == 7  # the user's value stays


def test_settings_that_may_train_badly_are_questioned_before_a_start(
    qtbot: QtBot, window: MainWindow, shapes: Path, tmp_path: Path
) -> None:
    training = window.training_tab
    training.train_path.setText(str(shapes))
    qtbot.waitUntil(lambda: training.summary is not None, timeout=TIMEOUT_MS)
    training.form.editor("num_layers").setCurrentText("18")
    training.form.editor("image_shape").setText("3,64,64")
    training.form.editor("epochs").setText("1")
    training.run_folder.setText(str(tmp_path / "run"))
    assert training.start() is None
    question = training.findChild(QMessageBox, "confirmStartDialog")
    assert question is not None and question.isVisible()
    assert "typically 32 x 32" in question.text()
    question.button(QMessageBox.StandardButton.No).click()
    assert not training.is_training()

    training.start()
    question = training.findChild(QMessageBox, "confirmStartDialog")
    with qtbot.waitSignal(training.training_started, timeout=TIMEOUT_MS):
        question.button(QMessageBox.StandardButton.Yes).click()
    assert training.is_training()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=TIMEOUT_MS)


def test_the_training_tab_previews_its_augmentation_on_its_data(
    qtbot: QtBot, window: MainWindow, shapes: Path
) -> None:
    training = window.training_tab
    training.train_path.setText(str(shapes))
    training.form.editor("augmentation_type").setCurrentText("crop_color")
    training.form.editor("image_shape").setText("3,28,28")
    job = training.preview_augmentation()
    assert job is not None
    dialog = window.findChild(AugmentationPreviewDialog, "augmentationPreview")
    with qtbot.waitSignal(dialog.preview_shown, timeout=TIMEOUT_MS) as shown:
        pass
    preview = shown.args[0]
    assert dialog.isVisible() and dialog.augmentation.currentText() == "crop_color"
    assert preview.augmentation_type == "crop_color"
    assert preview.rows[0].versions[0].shape == (28, 28, 3)
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


def test_a_dropped_model_opens_for_inference_and_dropped_images_are_classified(
    qtbot: QtBot,
    window: MainWindow,
    shapes: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_dir, _ = shared_run(tmp_path_factory)
    inference = window.inference_tab
    _drop(window, run_dir)
    assert window.tabs.currentWidget() is inference
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=TIMEOUT_MS)
    assert load_project().last(ItemKind.MODEL) == str(run_dir)

    image = next((shapes / "circle").iterdir())
    _drop(window, image)
    qtbot.waitUntil(lambda: inference.image_page.answer is not None, timeout=TIMEOUT_MS)
    assert inference.pages.currentIndex() == 1 and inference.image_page.image_path.text() == str(
        image
    )

    loose = tmp_path / "to label"
    for index in range(3):
        write_image(loose / f"photo {index}.jpg", (200, 40, 40), seed=index)
    _drop(window, loose)
    qtbot.waitUntil(lambda: inference.label_page.labelling is not None, timeout=TIMEOUT_MS)
    assert (
        inference.pages.currentIndex() == 0 and len(inference.label_page.labelling.predictions) == 3
    )
    assert window.dataset_tab.opened is None  # none was taken for a data set


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
    training, inference = window.training_tab, window.inference_tab
    order = _focus_order(window)
    for controls in (
        [
            training.train_path.edit,
            training.val_path.edit,
            training.suggest_button,
            training.run_folder.edit,
            training.device,
            training.form.editor("num_classes"),
            training.form.editor("epochs"),
            training.start_button,
            training.stop_button,
            training.resume_button,
        ],
        [
            inference.model_box.model_path.edit,
            inference.model_box.open_button,
            inference.model_box.labels_path.edit,
            inference.label_page.folder_path.edit,
            inference.label_page.label_button,
            inference.label_page.label_filter,
            inference.label_page.min_confidence,
        ],
    ):
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


def test_the_window_starts_with_damaged_runs_and_lists_them_as_damaged(
    qtbot: QtBot, tmp_path: Path
) -> None:
    contents = {
        "list": "[]",
        "null": "null",
        "numeric-created": '{"status": "stopped", "epochs": 3, "train": "x", "created": 17}',
        "text-accuracy": '{"status": "stopped", "epochs": 3, "train": "x", '
        '"best_val_accuracy": "0.9"}',
    }
    runs_folder = data_dir() / "runs"  # where the Training tab looks at start
    for name, text in contents.items():
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
    tab = window.training_tab
    rows = {
        tab.runs.item(row, 0).text(): tab.runs.item(row, 1).text()
        for row in range(tab.runs.rowCount())
    }
    assert rows == dict.fromkeys([*contents, elsewhere.name], "damaged")
    assert "is damaged" in tab.runs.item(0, 0).toolTip()
    assert tab.resume_button.isEnabled()
    tab.runs.selectRow(0)
    assert not tab.resume_button.isEnabled()  # nothing to resume from a damaged record
    window.close()
