"""*Training > Export as SageMaker Job…*: the run in focus as a SageMaker training job file."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.sagemaker_job import (
    BUCKET_PLACEHOLDER,
    DEFAULT_PREFIX,
    INSTANCE_TYPE_PLACEHOLDER,
    REGION_PLACEHOLDER,
    ROLE_PLACEHOLDER,
    JobExportError,
    JobTarget,
    filled,
    sagemaker_job,
    write_job,
)
from imgcls_desktop.core.training.run import RunError

_INSTANCE_TYPES = ("ml.p3.2xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.m5.xlarge")
_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")


class SageMakerJobDialog(QDialog):
    """Fields for the AWS values (empty ones stay placeholders), where to save, and what to
    do next once saved. Writing is quick: no job runs in the background."""

    def __init__(self, run_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sageMakerJobDialog")
        self.setWindowTitle("Export as SageMaker Job")
        self.run_dir = run_dir
        self.job_name = QLineEdit(_job_name(run_dir.name))
        self.role = _line(ROLE_PLACEHOLDER, "arn:aws:iam::ACCOUNT:role/NAME")
        self.bucket = _line(BUCKET_PLACEHOLDER, "the S3 bucket for the data and the model")
        self.prefix = _line(DEFAULT_PREFIX, "the folder inside the bucket")
        self.region = _editable_combo(REGION_PLACEHOLDER, _REGIONS)
        self.instance_type = _editable_combo(INSTANCE_TYPE_PLACEHOLDER, _INSTANCE_TYPES)
        self.instance_count = QSpinBox()
        self.instance_count.setRange(1, 100)
        self.output = QLineEdit(str(run_dir.parent / f"{run_dir.name}-sagemaker-job.json"))
        self.output.setObjectName("jobFile")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.message = QLabel()
        self.message.setObjectName("jobMessage")
        self.message.setWordWrap(True)
        self.instructions = QPlainTextEdit()
        self.instructions.setObjectName("jobInstructions")
        self.instructions.setReadOnly(True)
        self.instructions.setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save_button = buttons.addButton("Save Job", QDialogButtonBox.ButtonRole.ActionRole)
        self.save_button.setObjectName("saveJob")
        self.save_button.clicked.connect(self.save)
        buttons.rejected.connect(self.reject)

        intro = QLabel(
            f"The run <b>{run_dir.name}</b> as a training job of SageMaker's built-in image "
            "classification algorithm, on the run's own records. Empty fields stay "
            "&lt;PLACEHOLDERS&gt; to replace before submitting. Nothing is sent anywhere."
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Job name", self.job_name)
        form.addRow("Role ARN", self.role)
        form.addRow("S3 bucket", self.bucket)
        form.addRow("S3 prefix", self.prefix)
        form.addRow("Region", self.region)
        form.addRow("Instance type", self.instance_type)
        form.addRow("Instances", self.instance_count)
        output_row = QHBoxLayout()
        output_row.addWidget(self.output, 1)
        output_row.addWidget(browse)
        form.addRow("Save as", output_row)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.instructions, 1)
        layout.addWidget(buttons)
        self.resize(700, 620)

    def target(self) -> JobTarget:
        """The AWS values typed so far."""
        return filled(
            JobTarget(),
            {
                "job_name": self.job_name.text().strip(),
                "role_arn": self.role.text().strip(),
                "bucket": self.bucket.text().strip(),
                "prefix": self.prefix.text().strip(),
                "region": self.region.currentText().strip(),
                "instance_type": self.instance_type.currentText().strip(),
                "instance_count": self.instance_count.value(),
            },
        )

    def save(self) -> bool:
        """Write the job file; show what to do next, or why it could not be written."""
        path = Path(self.output.text().strip()).expanduser()
        try:
            job = sagemaker_job(self.run_dir, self.target())
            write_job(job, path)
        except (JobExportError, RunError, OSError, ValueError) as error:
            self.message.setText(f"<span style='color:#b00020'>{error}</span>")
            return False
        self.message.setText(f"Saved {path}.")
        self.instructions.setPlainText(job.instructions(path))
        self.instructions.setVisible(True)
        return True

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the SageMaker job", self.output.text(), "JSON (*.json)"
        )
        if path:
            self.output.setText(path)


def _line(placeholder: str, tooltip: str) -> QLineEdit:
    line = QLineEdit()
    line.setPlaceholderText(placeholder)
    line.setToolTip(tooltip)
    return line


def _editable_combo(placeholder: str, items: tuple[str, ...]) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(True)
    combo.addItems(items)
    combo.setCurrentIndex(-1)
    combo.lineEdit().setPlaceholderText(placeholder)
    return combo


def _job_name(run_name: str) -> str:
    """A valid SageMaker job name from a run folder's name."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", run_name).strip("-")
    return f"imgcls-{name}"[:63].rstrip("-")
