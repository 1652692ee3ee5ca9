"""``imgcls about`` and ``imgcls --version``."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from imgcls_desktop import __version__
from imgcls_desktop.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith(f"imgcls {__version__} (mxnet {version('mxnet')}, ")


def test_about_names_versions_folders_and_devices(
    isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["about"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"imgcls-desktop: {__version__}", f"MXNet: {version('mxnet')} (mxnet)"]
    assert f"Data folder: {isolated_home / 'data'}" in lines
    assert any(line.startswith("Devices: CPU (") for line in lines)
