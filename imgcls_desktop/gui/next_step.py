"""A banner above the tabs that says what just happened and what comes next."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

Action = tuple[str, str, Callable[[], object]]
"""A banner button: its label, its tooltip and what it does."""

_STYLE = """
#nextStepBanner { background: #e8f1fb; border: 1px solid #b6d0ee; border-radius: 4px; }
#nextStepBanner QLabel { color: #1b3a5c; }
"""


class NextStepBanner(QFrame):
    """One line of guidance with up to a few action buttons; hidden until there is a step."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("nextStepBanner")
        self.setStyleSheet(_STYLE)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setToolTip("What just happened, and what to do next")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self._layout.addWidget(self.message, 1)
        self.buttons: list[QPushButton] = []
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this hint")
        close.clicked.connect(self.hide)
        self._close = close
        self._layout.addWidget(close)
        self.hide()

    def show_step(self, text: str, actions: list[Action] = ()) -> None:
        """Show ``text`` (rich text) with one button per ``(label, tooltip, slot)``."""
        for button in self.buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        self.message.setText(text)
        for label, tooltip, slot in actions:
            button = QPushButton(label)
            button.setToolTip(tooltip)
            button.clicked.connect(lambda _checked=False, act=slot: act())
            self._layout.insertWidget(self._layout.count() - 1, button)
            self.buttons.append(button)
        self.show()

    def offers(self) -> list[str]:
        """The labels of the action buttons shown (none when the banner is hidden)."""
        return [button.text() for button in self.buttons] if not self.isHidden() else []

    def button(self, label: str) -> QPushButton:
        """The action button with this label (KeyError when there is none)."""
        for button in self.buttons:
            if button.text() == label:
                return button
        raise KeyError(label)
