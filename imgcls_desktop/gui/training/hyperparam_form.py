"""The hyperparameter form, generated from ``core.hyperparams.FIELDS``.

One page per group; each field shows SageMaker's meaning as its tooltip, and an invalid
value (one above its bound too) is marked in place with the reason. Our own fields, which
are not SageMaker's (``allow_large_images``), are labelled "(ours)". Rules between fields
(and against the data) are listed under the form. ``validity_changed(bool)`` lets the tab
enable Start only when all is well.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgcls_desktop.core.hyperparams import (
    FIELDS,
    GROUPS,
    DataFacts,
    FieldSpec,
    HyperparameterError,
    HyperParameters,
    validate_field,
)

_INVALID_STYLE = "border: 1px solid #d62728; background: #fff0f0;"
_ERROR_STYLE = "color: #b00020;"


class _Field:
    """One editor and its inline error label."""

    def __init__(self, spec: FieldSpec, on_change: object) -> None:
        self.spec = spec
        self.error = QLabel()
        self.error.setObjectName(f"{spec.name}Error")
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        tip = f"<b>{self.label}</b><br>{spec.help}<br><i>Allowed: {spec.allowed}</i>"
        if spec.kind == "bool":
            self.editor: QWidget = QCheckBox()
            self.editor.toggled.connect(on_change)
        elif spec.kind == "choice":
            self.editor = QComboBox()
            choices = [str(choice) for choice in spec.choices or ()]
            self.editor.addItems(([""] if spec.optional else []) + choices)
            self.editor.currentTextChanged.connect(on_change)
        else:
            self.editor = QLineEdit()
            self.editor.setPlaceholderText(self._placeholder())
            self.editor.textChanged.connect(on_change)
        self.editor.setObjectName(spec.name)
        self.editor.setToolTip(tip)

    @property
    def label(self) -> str:
        """The field's name, marked when it is ours rather than SageMaker's."""
        return f"{self.spec.name} (ours)" if self.spec.ours else self.spec.name

    def _placeholder(self) -> str:
        if self.spec.name in ("num_classes", "num_training_samples"):
            return "from the data"
        default = self.spec.format(self.spec.default)
        return f"default: {default}" if default is not None else "not set"

    def text(self) -> str:
        """The raw value as text ("" means the default)."""
        if isinstance(self.editor, QCheckBox):
            checked = self.editor.isChecked()
            if isinstance(self.spec.default, bool):
                return "true" if checked else "false"
            return "1" if checked else "0"
        if isinstance(self.editor, QComboBox):
            return self.editor.currentText()
        return self.editor.text().strip()

    def set_value(self, value: object) -> None:
        """Show ``value`` (a typed value of the field)."""
        text = self.spec.format(value) or ""
        if isinstance(self.editor, QCheckBox):
            self.editor.setChecked(bool(value))
        elif isinstance(self.editor, QComboBox):
            self.editor.setCurrentText(text or str(self.spec.default or ""))
        elif value == self.spec.default and self.spec.name not in ("num_classes",):
            self.editor.setText("")
        else:
            self.editor.setText(text)

    def show_error(self, reason: str | None) -> None:
        """Mark the field invalid with ``reason``, or clear the mark."""
        self.error.setText(reason or "")
        self.error.setVisible(bool(reason))
        self.editor.setStyleSheet(_INVALID_STYLE if reason else "")


class HyperparameterForm(QWidget):
    """Every SageMaker hyperparameter, grouped, validated as the user types."""

    validity_changed = Signal(bool)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fields: dict[str, _Field] = {}
        self._data: DataFacts | None = None
        self._valid = True
        self._filling = False
        self.groups = QTabWidget()
        for group in GROUPS:
            page = QWidget()
            form = QFormLayout(page)
            for spec in (spec for spec in FIELDS if spec.group == group):
                field = _Field(spec, self._on_change)
                self._fields[spec.name] = field
                label = QLabel(field.label)
                label.setToolTip(field.editor.toolTip())
                form.addRow(label, field.editor)
                form.addRow("", field.error)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            self.groups.addTab(scroll, group)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setObjectName("hyperparameterProblems")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.groups, 1)
        layout.addWidget(self.problems)
        self.set_hyperparameters(HyperParameters())

    def editor(self, name: str) -> QWidget:
        """The editor widget of one hyperparameter (its object name is the parameter name)."""
        return self._fields[name].editor

    def set_data_facts(self, data: DataFacts | None) -> None:
        """Check the values against this data set from now on."""
        self._data = data
        self._on_change()

    def set_hyperparameters(self, hp: HyperParameters) -> None:
        """Show ``hp`` in the form."""
        self._filling = True
        try:
            for name, field in self._fields.items():
                field.set_value(getattr(hp, name))
        finally:
            self._filling = False
        self._on_change()

    def raw_values(self) -> dict[str, str]:
        """The form's values as SageMaker-style text (empty fields left out)."""
        return {name: text for name, field in self._fields.items() if (text := field.text())}

    def hyperparameters(self) -> HyperParameters:
        """The form's values; HyperparameterError with every reason when invalid."""
        return HyperParameters.from_mapping(self.raw_values())

    def is_valid(self) -> bool:
        """True when no field and no rule between fields is violated."""
        return self._valid

    def _on_change(self, *_args: object) -> None:
        if self._filling:
            return
        field_errors = {
            name: validate_field(name, field.text()) for name, field in self._fields.items()
        }
        for name, field in self._fields.items():
            field.show_error(field_errors[name])
        messages: list[str] = []
        warnings: list[str] = []
        if not any(field_errors.values()):
            try:
                warnings = self.hyperparameters().validate(self._data)
            except HyperparameterError as error:
                self._mark_rule_problems(error, field_errors)
                messages = [f"{p.name}: {p.message}" for p in error.problems]
        valid = not any(field_errors.values()) and not messages
        self._show_problems(messages, warnings)
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
        self.changed.emit()

    def _mark_rule_problems(
        self, error: HyperparameterError, field_errors: Mapping[str, str | None]
    ) -> None:
        for problem in error.problems:
            field = self._fields.get(problem.name)
            if field is not None and not field_errors.get(problem.name):
                field.show_error(problem.message)

    def _show_problems(self, errors: list[str], warnings: list[str]) -> None:
        lines = [f"<span style='{_ERROR_STYLE}'>✗ {text}</span>" for text in errors]
        lines += [f"<span style='color:#8a6d00'>⚠ {text}</span>" for text in warnings]
        self.problems.setText("<br>".join(lines))
        self.problems.setVisible(bool(lines))
