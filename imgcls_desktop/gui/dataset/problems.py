"""The scan's findings, grouped under their headings; a click on a file shows it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from imgcls_desktop.core.dataset.findings import Finding

PATH_ROLE = Qt.ItemDataRole.UserRole
_EXPANDED_UP_TO = 20  # a heading with more lines starts collapsed


class ProblemsView(QGroupBox):
    """The scan's findings grouped by heading, each heading with its count."""

    file_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Problems", parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setToolTip("What the scan found; click a file to look at it")
        self.tree.setMinimumHeight(140)
        self.tree.itemClicked.connect(self._on_click)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)

    def show_findings(self, findings: list[Finding]) -> None:
        """List ``findings`` under their headings."""
        self.tree.clear()
        headings: dict[str, QTreeWidgetItem] = {}
        for finding in findings:
            heading = headings.get(finding.title)
            if heading is None:
                heading = QTreeWidgetItem(self.tree, [finding.title])
                headings[finding.title] = heading
            item = QTreeWidgetItem(heading, [finding.detail])
            item.setToolTip(0, finding.path or finding.detail)
            item.setData(0, PATH_ROLE, finding.path)
        for title, heading in headings.items():
            heading.setText(0, f"{title} ({heading.childCount()})")
            heading.setExpanded(heading.childCount() <= _EXPANDED_UP_TO)
        if not findings:
            QTreeWidgetItem(self.tree, ["No problems found"])
        self.setTitle(f"Problems ({len(findings)})" if findings else "Problems")

    def _on_click(self, item: QTreeWidgetItem) -> None:
        path = item.data(0, PATH_ROLE)
        if path:
            self.file_clicked.emit(path, item.text(0))
