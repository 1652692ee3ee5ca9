"""What the window remembers between runs: its geometry (recent items are in the project,
:mod:`imgcls_desktop.core.project`)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from imgcls_desktop.core.paths import config_dir


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

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._settings.sync()
