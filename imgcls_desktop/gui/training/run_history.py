"""The Runs table: the runs in the runs folder and the runs the project remembers, newest
first, each with where it stands; choosing one brings it into focus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QTableWidgetItem, QVBoxLayout, QWidget

from imgcls_desktop.core.training.run import find_runs
from imgcls_desktop.core.training.standing import RunStanding, standing_of
from imgcls_desktop.gui.widgets import read_only_table


class RunHistory(QWidget):
    """A table of runs; ``run_chosen(Path)`` when the user selects one."""

    run_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = read_only_table(
            ["Run", "Status", "Best val. accuracy", "Epochs", "Started"],
            "Runs in the runs folder and runs trained before; select one to see its curves "
            "or resume it",
            selectable=True,
        )
        self.table.setObjectName("runHistory")
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        self._listing = False

    def refresh(self, folder: Path, known: Sequence[Path], focus: Path | None) -> None:
        """List the runs in ``folder`` and ``known``; ``focus`` (the run in focus) selected."""
        runs = [standing_of(run) for run in find_runs(folder, also=known)]
        self._listing = True
        try:
            self.table.clearSelection()
            self.table.setRowCount(len(runs))
            for row, run in enumerate(runs):
                tip = str(run.path) if run.info is not None else f"{run.path}\n{run.resume_blocker}"
                for column, text in enumerate(_cells(run)):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, str(run.path))
                    item.setToolTip(tip)
                    self.table.setItem(row, column, item)
                if focus is not None and _same(run.path, focus):
                    self.table.selectRow(row)
        finally:
            self._listing = False
        for column in range(1, self.table.columnCount()):  # a few rows: fit their values
            self.table.resizeColumnToContents(column)

    def _on_selection(self) -> None:
        items = self.table.selectedItems()
        if items and not self._listing:
            self.run_chosen.emit(Path(items[0].data(Qt.ItemDataRole.UserRole)))


def _same(one: Path, other: Path) -> bool:
    return one == other or one.resolve() == other.resolve()


def _cells(run: RunStanding) -> tuple[str, ...]:
    """A run's row: a damaged run shows only its name and state."""
    info = run.info
    if info is None:
        return (run.path.name, run.status, "", "", "")
    best = "" if info.best_val_accuracy is None else f"{info.best_val_accuracy:.3f}"
    return (
        run.path.name,
        run.status,
        best,
        f"{info.last_completed_epoch} of {info.epochs}",
        info.created[:16].replace("T", " "),
    )
