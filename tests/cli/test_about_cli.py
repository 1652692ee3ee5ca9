"""``imgcls about`` and ``imgcls --version``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from imgcls_desktop import __version__
from imgcls_desktop.cli import main

ROOT = Path(__file__).resolve().parents[2]


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


def test_about_reports_an_mxnet_that_cannot_load(tmp_path: Path) -> None:
    """An install whose MXNet library is missing: the report still comes, and says so."""
    broken = tmp_path / "site" / "mxnet"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(
        "raise OSError('libmxnet.so: cannot open shared object file')\n", encoding="utf-8"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken.parent), str(ROOT)])}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from imgcls_desktop.cli import main; sys.exit(main())",
            "about",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert result.returncode == 1 and not result.stderr
    assert result.stdout.splitlines()[-1] == (
        "Devices: unknown: MXNet could not be loaded "
        "(OSError: libmxnet.so: cannot open shared object file)"
    )


def _without_mxnet(*args: str) -> subprocess.CompletedProcess[str]:
    """``imgcls ARGS`` where Python finds no module ``mxnet`` (``ModuleNotFoundError``)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['mxnet'] = None; "
            "from imgcls_desktop.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def test_a_command_without_mxnet_installed_says_how_to_install_it(
    class_folder: Path, tmp_path: Path
) -> None:
    """``pip install .`` brings no MXNet (see pyproject.toml): one line says what to do."""
    settings = ("num_layers=20", "image_shape=3,32,32", "mini_batch_size=4", "epochs=1")
    sets = [arg for setting in settings for arg in ("--set", setting)]
    result = _without_mxnet(
        "train", "--train", str(class_folder), "--output", str(tmp_path / "out"), *sets
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "MXNet is not installed" in result.stderr
    assert "pip install --no-deps mxnet==1.9.1" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_packing_needs_no_mxnet(class_folder: Path, tmp_path: Path) -> None:
    """RecordIO is written without MXNet, so a data set packs before MXNet is installed."""
    result = _without_mxnet("dataset", "pack", str(class_folder), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "dataset-train.rec").stat().st_size > 0
