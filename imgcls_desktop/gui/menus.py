"""The window's menu bar: every action of the menus, with its shortcut and tooltip."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from imgcls_desktop.gui.help import open_data_folder, show_getting_started, show_shortcuts
from imgcls_desktop.gui.training.weights_dialog import show_weights_dialog

if TYPE_CHECKING:
    from imgcls_desktop.gui.main_window import MainWindow


def build_menus(window: MainWindow) -> None:
    """Fill ``window``'s menu bar; it sets ``window.recent_menu`` and
    ``window.recent_models_menu``, filled when they open."""
    dataset, training = window.dataset_tab, window.training_tab
    # A tab's actions show the tab they work in first.
    in_dataset = partial(_shown_first, window, dataset)
    in_training = partial(_shown_first, window, training)
    file_menu = window.menuBar().addMenu("&File")
    _action(
        file_menu,
        "Open Data Set &Folder…",
        in_dataset(dataset.choose_folder),
        "Ctrl+O",
        "A folder with one sub-folder of images per class",
    )
    _action(
        file_menu,
        "Open Data Set F&ile…",
        in_dataset(dataset.choose_file),
        "Ctrl+Shift+O",
        "An im2rec .lst, a SageMaker augmented manifest or a .rec file",
    )
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.recent_menu.aboutToShow.connect(window.fill_recent_datasets_menu)
    file_menu.addSeparator()
    _action(
        file_menu,
        "&Try the Sample Data Set",
        in_dataset(dataset.generate_sample),
        tooltip="Make a small data set of drawn shapes, ready to train on",
    )
    _action(
        file_menu,
        "&Export RecordIO",
        in_dataset(dataset.export),
        "Ctrl+E",
        "Split the open data set and write .lst, .rec and .idx files for training",
    )
    file_menu.addSeparator()
    _action(file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

    training_menu = window.menuBar().addMenu("&Training")
    _action(
        training_menu,
        "Su&ggest Settings",
        in_training(training.suggest_settings),
        "Ctrl+G",
        "Fill the hyperparameters with settings suited to the training data",
    )
    _action(
        training_menu, "&Start Training", in_training(training.start), "Ctrl+T", "Train a new run"
    )
    _action(
        training_menu,
        "S&top Training",
        in_training(training.stop),
        "Ctrl+.",
        "Stop after this batch; the run stays resumable",
    )
    _action(
        training_menu,
        "&Resume Training",
        in_training(training.resume),
        "Ctrl+R",
        "Continue the selected run from its last finished epoch",
    )
    training_menu.addSeparator()
    _action(
        training_menu,
        "&Preview Augmentation…",
        in_training(training.preview_augmentation),
        "Ctrl+Shift+A",
        "What training's augmentation makes of a few training images",
    )
    _action(
        training_menu,
        "Pretrained &Weights…",
        in_training(lambda: show_weights_dialog(window.jobs, training)),
        tooltip="The ImageNet backbones on this computer: download one once, or import one",
    )
    _action(
        training_menu,
        "Export as Sage&Maker Job…",
        window.export_sagemaker_job,
        None,
        "The run in focus as a training job of SageMaker's built-in algorithm (a file)",
    )

    inference_menu = window.menuBar().addMenu("&Inference")
    _action(
        inference_menu,
        "Open &Model…",
        window.choose_model,
        "Ctrl+M",
        "A run folder, a SageMaker model.tar.gz or an MXNet checkpoint",
    )
    window.recent_models_menu = inference_menu.addMenu("Open Recent Mo&del")
    window.recent_models_menu.aboutToShow.connect(window.fill_recent_models_menu)
    _action(
        inference_menu,
        "&Label a Folder…",
        window.choose_folder_to_label,
        "Ctrl+L",
        "Label every image of a folder with the open model",
    )
    _action(
        inference_menu,
        "&Evaluate on Its Validation Images",
        window.evaluate_model,
        "Ctrl+Shift+E",
        "Accuracy, confusion matrix and per-class metrics of the open model on the "
        "images its run held out",
    )

    view_menu = window.menuBar().addMenu("&View")
    for index, name in enumerate(("&Dataset", "&Training", "&Inference")):
        _action(
            view_menu,
            f"{name} Tab",
            lambda _checked=False, i=index: window.tabs.setCurrentIndex(i),
            f"Ctrl+{index + 1}",
        )
    help_menu = window.menuBar().addMenu("&Help")
    _action(
        help_menu,
        "&Getting Started",
        lambda: show_getting_started(window),
        QKeySequence.StandardKey.HelpContents,
        "The journey from a data set to a labelled folder, in four steps",
    )
    _action(
        help_menu,
        "&Keyboard Shortcuts",
        lambda: show_shortcuts(window, window.menuBar()),
        tooltip="Every shortcut of the menus",
    )
    _action(
        help_menu,
        "Open the &Data Folder",
        open_data_folder,
        tooltip="The app's folder: runs, the sample data set and the list of recent items",
    )
    help_menu.addSeparator()
    _action(help_menu, "&About imgcls-desktop", window.show_about, tooltip="Versions and devices")


def _shown_first(
    window: MainWindow, tab: QWidget, method: Callable[[], object]
) -> Callable[[], object]:
    """``method`` of ``tab``, called once ``window`` shows ``tab``."""

    def show_then_call() -> object:
        window.tabs.setCurrentWidget(tab)
        return method()

    return show_then_call


def _action(
    menu: QMenu,
    text: str,
    slot: Callable[..., object],
    shortcut: str | QKeySequence.StandardKey | None = None,
    tooltip: str = "",
) -> QAction:
    """Add an action (its shortcut shows in the menu) to ``menu``."""
    action = menu.addAction(text)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tooltip:
        action.setToolTip(tooltip)
        action.setStatusTip(tooltip)
    return action
