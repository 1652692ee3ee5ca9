"""The Training tab: set-up, run monitor and run history over the app state."""

from __future__ import annotations

from imgcls_desktop.gui.training.tab import TrainingTab

__all__ = ["TrainingTab"]
