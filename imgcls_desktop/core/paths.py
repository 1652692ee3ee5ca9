"""Where the app keeps its files: platformdirs folders, all under ``$IMGCLS_HOME`` when set."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "imgcls-desktop"
HOME_VARIABLE = "IMGCLS_HOME"


def _home_override() -> Path | None:
    home = os.environ.get(HOME_VARIABLE)
    return Path(home).expanduser() if home else None


def data_dir() -> Path:
    """Folder for user data: sample data sets, runs, the project list."""
    home = _home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Folder for settings (window geometry, recent items)."""
    home = _home_override()
    if home:
        return home / "config"
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Folder for disposable caches (thumbnails)."""
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
