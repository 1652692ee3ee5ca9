"""The files the app ships with (icon, desktop entry): package data of ``imgcls_desktop``.

They live in ``imgcls_desktop/resources/`` and are read through :mod:`importlib.resources`,
so an editable install, a wheel and a PyInstaller bundle (which collects the package's data)
all find them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

APP_ID = "imgcls-desktop"
"""The icon's theme name and the desktop entry's file name, without suffix."""


def _resource(*parts: str) -> Path:
    # One part per joinpath: Python 3.9's Traversable takes a single name. Package data
    # installed as plain files (every way this app is installed) has a real path; a zip
    # import would need importlib.resources.as_file instead.
    resource = files("imgcls_desktop").joinpath("resources")
    for part in parts:
        resource = resource.joinpath(part)
    return Path(str(resource))


def icon_path() -> Path:
    """The application icon (SVG)."""
    return _resource("icons", f"{APP_ID}.svg")


def desktop_entry_path() -> Path:
    """The freedesktop ``.desktop`` file, with ``Exec=imgcls-desktop`` (found on PATH)."""
    return _resource(f"{APP_ID}.desktop")
