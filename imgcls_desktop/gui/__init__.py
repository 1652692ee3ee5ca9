"""The desktop app: PySide6 windows, tabs, workers and widgets over the Qt-free core."""

from __future__ import annotations
