"""What the window remembers between runs: geometry and recent items (nothing else)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from imgcls_desktop.core.paths import config_dir

MAX_RECENT = 10


class AppSettings:
    """A thin typed layer over an INI-format QSettings in the app's config folder."""

    def __init__(self) -> None:
        folder = config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self._settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)

    def geometry(self) -> QByteArray | None:
        """The saved window geometry, if any."""
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, geometry: QByteArray) -> None:
        """Remember the window geometry."""
        self._settings.setValue("window/geometry", geometry)

    def recent_paths(self, kind: str = "datasets") -> list[str]:
        """Recently opened paths of one kind, newest first, that still exist."""
        value = self._settings.value(f"recent/{kind}", [])
        paths = [value] if isinstance(value, str) else list(value or [])
        return [path for path in paths if Path(path).exists()]

    def add_recent_path(self, path: str, kind: str = "datasets") -> None:
        """Put ``path`` first in the recent list of ``kind``."""
        paths = [p for p in self.recent_paths(kind) if p != path]
        self._settings.setValue(f"recent/{kind}", [path, *paths][:MAX_RECENT])

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._settings.sync()
