"""The Training tab's left side: the data, where runs go, the device, the starting weights,
the hyperparameter form and the Start / Stop / Resume buttons.

The panel only shows and collects; the tab decides (it holds the app state).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.app_state import TrainingSources, default_runs_folder
from imgcls_desktop.core.hyperparams import (
    HyperparameterError,
    load_hyperparameters,
    save_hyperparameters,
)
from imgcls_desktop.core.training.preview import mirroring_note
from imgcls_desktop.gui.dialogs import show_error
from imgcls_desktop.gui.path_field import PathField, PathKind
from imgcls_desktop.gui.training.hyperparam_form import HyperparameterForm
from imgcls_desktop.gui.training.processes import ProcessesField

DATA_FILTER = "Data sets (*.rec *.lst *.jsonl *.manifest *.json);;All files (*)"
_JSON_FILTER = "Hyperparameters (*.json)"
_TYPING_DELAY_MS = 400  # the data is read once the user stops typing its path
_ERROR_STYLE = "<span style='color:#b00020'>{}</span>"


class SetupPanel(QWidget):
    """What the next run trains on and with; ``data_chosen(train, validation)`` when the
    user changes the data paths (validation "" for none)."""

    data_chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.train_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Training data",
            placeholder="A .rec, a .lst, a manifest or a class folder",
            file_filter=DATA_FILTER,
            tooltip="The training channel: a RecordIO .rec (as the "
            "Dataset tab exports), a .lst, a manifest or a folder",
        )
        self.val_path = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Validation data",
            placeholder="Optional: 20% of the training data otherwise",
            file_filter=DATA_FILTER,
            tooltip="The validation channel; left empty, 20% of the "
            "training data is held out (stratified)",
        )
        self.data_summary = QLabel("No training data chosen.")
        self.data_summary.setObjectName("dataSummary")
        self.data_summary.setWordWrap(True)
        self.suggest_button = _button(
            "Suggest Settings", "Fill the form with settings that suit this data and this computer"
        )
        self.suggest_button.setEnabled(False)
        self.runs_folder = PathField(
            PathKind.FOLDER,
            caption="Runs folder",
            placeholder=str(default_runs_folder()),
            tooltip="Every Start makes a new run folder in here (SageMaker's model layout); "
            "empty: the app's runs folder",
        )
        self.device = QComboBox()
        self.device.setToolTip("Where to train: the CPU, or a GPU MXNet can see")
        self.device.addItem("Automatic (a GPU if there is one)", None)
        self.processes = ProcessesField()
        self.pretrained = PathField(
            PathKind.OPEN_FILE,
            caption="Pretrained weights",
            placeholder="Empty: the weights store (Training > Pretrained Weights…)",
            file_filter="MXNet parameters (*.params)",
            tooltip="ImageNet weights (a Gluon model-zoo resnetNN_v1 .params) for "
            "use_pretrained_model=1. Empty: the app's weights store, then MXNet's cache; fill "
            "the store once with Training > Pretrained Weights… (download or import) or "
            "`imgcls weights download resnet18_v1`",
        )
        self.base_model = PathField(
            PathKind.FILE_OR_FOLDER,
            caption="Start from model",
            placeholder="Optional: a run, a SageMaker model.tar.gz or an MXNet checkpoint",
            file_filter="Models (*.tar.gz *-symbol.json *.params);;All files (*)",
            tooltip="Fine-tune an earlier model: one of your runs, a SageMaker model.tar.gz "
            "or an MXNet checkpoint. With the same classes every layer is loaded; with "
            "another number of classes a new last layer replaces its head. The log says "
            "which layers were loaded.",
        )
        self.form = HyperparameterForm()
        self.augmentation_note = QLabel()
        self.augmentation_note.setObjectName("augmentationNote")
        self.augmentation_note.setWordWrap(True)
        self.form.changed.connect(self._show_augmentation_note)
        self.load_button = _button(
            "Load…", "Load a hyperparameters JSON (SageMaker's string form works)"
        )
        self.save_button = _button("Save…", "Save the hyperparameters in SageMaker's string form")
        self.preview_button = _button(
            "Preview Augmentation…",
            "See what training's augmentation makes of a few training images (Ctrl+Shift+A)",
        )
        self.start_button = _button(
            "Start Training", "Prepare the data and train a new run in the runs folder (Ctrl+T)"
        )
        self.stop_button = _button(
            "Stop",
            "Stop after this batch; the last finished epoch is kept and the run can be resumed",
        )
        self.resume_button = _button("Resume", "")
        self.load_button.setObjectName("loadHyperparameters")
        self.load_button.clicked.connect(self._choose_hyperparameters_file)
        self.save_button.setObjectName("saveHyperparameters")
        self.save_button.clicked.connect(self._save_hyperparameters_file)
        self._layout()
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(_TYPING_DELAY_MS)
        self._typing.timeout.connect(self._emit_data_chosen)
        self.train_path.changed.connect(self._typing.start)
        self.val_path.changed.connect(self._typing.start)
        self._show_augmentation_note()

    def _layout(self) -> None:
        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        data_form.addRow("Training", self.train_path)
        data_form.addRow("Validation", self.val_path)
        summary_row = QHBoxLayout()
        summary_row.addWidget(self.data_summary, 1)
        summary_row.addWidget(self.suggest_button)
        data_form.addRow(summary_row)
        run_box = QGroupBox("Run")
        run_form = QFormLayout(run_box)
        run_form.addRow("Runs folder", self.runs_folder)
        run_form.addRow("Device", self.device)
        run_form.addRow("Processes", self.processes)
        run_form.addRow("Pretrained", self.pretrained)
        run_form.addRow("Start from", self.base_model)
        hp_box = QGroupBox("Hyperparameters (for the next Start)")
        hp_layout = QVBoxLayout(hp_box)
        hp_layout.addWidget(self.form, 1)
        hp_layout.addWidget(self.augmentation_note)
        file_row = QHBoxLayout()
        file_row.addWidget(self.preview_button)
        file_row.addStretch(1)
        file_row.addWidget(self.load_button)
        file_row.addWidget(self.save_button)
        hp_layout.addLayout(file_row)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            button.setMinimumHeight(32)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(data_box)
        layout.addWidget(run_box)
        layout.addWidget(hp_box, 1)
        layout.addLayout(buttons)

    def fill_devices(self, gpus: int) -> None:
        """Offer the CPU and each of ``gpus`` GPUs (and all of them together)."""
        self.device.addItem("CPU", "cpu")
        for index in range(gpus):
            self.device.addItem(f"GPU {index}", f"gpu:{index}")
        if gpus > 1:
            self.device.addItem(f"All {gpus} GPUs", "gpu")

    def devices(self) -> str | None:
        """The chosen devices, as :func:`~imgcls_desktop.core.devices.parse_devices` reads
        them (None: automatic)."""
        return self.device.currentData()

    def runs_folder_path(self) -> Path:
        """Where new runs go."""
        return Path(self.runs_folder.text()) if self.runs_folder.text() else default_runs_folder()

    def optional_path(self, field: PathField) -> Path | None:
        """The path in ``field``, or None when it is empty."""
        return Path(field.text()) if field.text() else None

    def show_data(self, sources: TrainingSources | None) -> None:
        """Show the training data the app state holds (and what reading it found)."""
        train = "" if sources is None else str(sources.train)
        validation = (
            "" if sources is None or sources.validation is None else str(sources.validation)
        )
        for field, text in ((self.train_path, train), (self.val_path, validation)):
            if field.text() != text:
                field.blockSignals(True)
                field.setText(text)
                field.blockSignals(False)
        self._typing.stop()
        if sources is None:
            self.data_summary.setText("No training data chosen.")
        elif sources.summary is None:
            self.data_summary.setText("Reading the data set…")
        else:
            self.data_summary.setText(sources.summary.describe())
        known = sources is not None and sources.summary is not None
        self.form.set_data_facts(sources.summary.facts() if known else None)  # type: ignore[union-attr]
        self.suggest_button.setEnabled(known)

    def show_data_error(self, message: str) -> None:
        """Reading the training data failed."""
        self.data_summary.setText(_ERROR_STYLE.format(message))
        self.form.set_data_facts(None)
        self.suggest_button.setEnabled(False)

    def show_buttons(self, *, training: bool, resume_blocker: str | None) -> None:
        """Start for a valid form when nothing trains, Stop while training, Resume when the
        run in focus can continue (its tooltip says why not otherwise)."""
        self.start_button.setEnabled(not training and self.form.is_valid())
        self.stop_button.setEnabled(training)
        self.resume_button.setEnabled(not training and resume_blocker is None)
        self.resume_button.setToolTip(
            "Continue the run in focus from its last finished epoch, with its own settings"
            if resume_blocker is None
            else resume_blocker
        )

    def _show_augmentation_note(self) -> None:
        try:
            hp = self.form.hyperparameters()
        except ValueError:
            self.augmentation_note.setText("")
            return
        note = mirroring_note(hp.augmentation_type)
        self.augmentation_note.setText(f"<small>Note: {note}.</small>" if note else "")

    def load_hyperparameters_from(self, path: Path) -> None:
        """Load ``path`` (SageMaker's string form or native JSON) into the form."""
        try:
            self.form.set_hyperparameters(load_hyperparameters(path))
        except HyperparameterError as error:
            show_error(self, "Cannot load the hyperparameters", str(error))

    def _choose_hyperparameters_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load hyperparameters", self._beside_data(), _JSON_FILTER
        )
        if path:
            self.load_hyperparameters_from(Path(path))

    def _save_hyperparameters_file(self) -> None:
        beside = Path(self._beside_data()) / "hyperparameters.json"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save hyperparameters", str(beside), _JSON_FILTER
        )
        if path:
            try:
                save_hyperparameters(Path(path), self.form.hyperparameters())
            except (HyperparameterError, OSError) as error:
                show_error(self, "Cannot save the hyperparameters", str(error))

    def _beside_data(self) -> str:
        """The training data's folder (where file dialogs open), or "" for none."""
        return str(Path(self.train_path.text()).parent) if self.train_path.text() else ""

    def _emit_data_chosen(self) -> None:
        self.data_chosen.emit(self.train_path.text(), self.val_path.text())


def _button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    return button
