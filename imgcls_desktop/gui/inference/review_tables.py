"""The two tables of images to review: a labelled folder's predictions, and the images of
one confusion-matrix cell (see :class:`~imgcls_desktop.gui.inference.review.ReviewTable`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidgetItem, QWidget

from imgcls_desktop.core.corrections import ImageRef
from imgcls_desktop.core.dataset.samples import Dataset
from imgcls_desktop.core.evaluation import ImageOutcome
from imgcls_desktop.core.labelling import Prediction
from imgcls_desktop.gui.inference.review import NumberItem, ReviewTable
from imgcls_desktop.gui.workers import JobSlot


class PredictionTable(ReviewTable):
    """The predictions of a labelled folder: thumbnail, file, label, confidence, top-k;
    sortable, filtered by label and minimum confidence, labels correctable."""

    CONFIDENCE, TOP_K = 3, 4

    def __init__(self, jobs: JobSlot, parent: QWidget | None = None) -> None:
        super().__init__(
            jobs,
            ["Label", "Confidence", "Top classes"],
            "The model's label for every image; click a header to sort, double-click a row "
            "to look at the image, right-click to correct the label",
            parent,
        )
        self.table.horizontalHeader().setSectionResizeMode(
            self.TOP_K, QHeaderView.ResizeMode.Stretch
        )
        self.table.sortByColumn(self.FILE, Qt.SortOrder.AscendingOrder)
        self._label_filter: str | None = None
        self._min_confidence = 0.0

    def show_predictions(
        self, predictions: list[Prediction], root: Path, class_names: list[str]
    ) -> None:
        """Fill the table, files named relative to ``root`` (the filters stay)."""
        rows = []
        for prediction in predictions:
            top = ", ".join(f"{label} {p:.1%}" for label, p in prediction.top_k)
            cells = [
                NumberItem(f"{prediction.confidence:.1%}", prediction.confidence),
                QTableWidgetItem(top),
            ]
            label = ", ".join(prediction.labels) or prediction.label
            rows.append((ImageRef(str(prediction.path)), label, cells))
        self._set_rows(rows, root, class_names)
        self._apply_filters()

    def set_filters(self, label: str | None, min_confidence: float) -> None:
        """Show only rows of ``label`` (None: every label) at or above ``min_confidence``;
        the model's labels count, not the corrections."""
        self._label_filter = label
        self._min_confidence = min_confidence
        self._apply_filters()

    def _apply_filters(self) -> None:
        for row in range(self.table.rowCount()):
            labels = self.original_label(row).split(", ")
            confidence = self.table.item(row, self.CONFIDENCE).value
            hidden = (
                self._label_filter is not None and self._label_filter not in labels
            ) or confidence < self._min_confidence
            self.table.setRowHidden(row, hidden)
        self._update_actions()

    def visible_rows(self) -> list[tuple[str, str, float]]:
        """(file, label, confidence) of the rows the filters let through, in table order."""
        return [
            (
                self.table.item(row, self.FILE).text(),
                self.table.item(row, self.LABEL).text(),
                self.table.item(row, self.CONFIDENCE).value,
            )
            for row in range(self.table.rowCount())
            if not self.table.isRowHidden(row)
        ]


class CellImagesTable(ReviewTable):
    """The images of one confusion-matrix cell: thumbnail, file, the class they are
    labelled with (correctable), the predicted class and its probability, surest first."""

    PREDICTED, CONFIDENCE = 3, 4

    def __init__(self, jobs: JobSlot, parent: QWidget | None = None) -> None:
        super().__init__(
            jobs,
            ["Labelled as", "Predicted", "Confidence"],
            "The images of the chosen cell, the model's surest first; a wrong label in the "
            "data can be corrected (right-click) and the image added to a data set",
            parent,
        )
        self.table.horizontalHeader().setSectionResizeMode(
            self.PREDICTED, QHeaderView.ResizeMode.Stretch
        )

    def show_images(
        self,
        images: list[ImageOutcome],
        root: Path,
        class_names: list[str],
        dataset: Dataset | None = None,
    ) -> None:
        """Show single-label ``images`` (files relative to ``root``), surest first; images
        with a record key are read from ``dataset`` (the evaluated ``.rec``)."""
        rows = [
            (
                ImageRef(image.path, image.record, dataset),
                image.true_labels[0],
                [
                    QTableWidgetItem(image.predicted_labels[0]),
                    NumberItem(f"{image.confidence:.1%}", image.confidence),
                ],
            )
            for image in images
            if image.path is not None
        ]
        self._set_rows(rows, root, class_names)
        self.table.sortByColumn(self.CONFIDENCE, Qt.SortOrder.DescendingOrder)

    def shown_images(self) -> list[tuple[str, float]]:
        """(full path, confidence) of every row, in table order."""
        return [
            (self.path_at(row), self.table.item(row, self.CONFIDENCE).value)
            for row in range(self.table.rowCount())
        ]
