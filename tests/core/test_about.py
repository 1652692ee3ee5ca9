"""What the About box and ``imgcls about`` report, and how an unused NVIDIA GPU is found."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop import __version__
from imgcls_desktop.core.about import find_devices, folders, version_line, versions
from imgcls_desktop.core.devices import (
    cuda_build,
    gpu_count,
    nvidia_gpu_present,
    unused_gpu_note,
)


def test_the_versions_come_without_importing_mxnet() -> None:
    """``--version`` and the About box name MXNet's version from its installed files: importing
    MXNet takes seconds."""
    script = (
        "import sys\n"
        "from imgcls_desktop.core.about import version_line, versions\n"
        "print(versions()['MXNet']); print(version_line('imgcls')); print('mxnet' in sys.modules)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    python = ".".join(map(str, sys.version_info[:3]))
    assert output == [
        f"{version('mxnet')} (mxnet)",
        f"imgcls {__version__} (mxnet {version('mxnet')}, Python {python})",
        "False",
    ]


def test_versions_and_folders_name_what_the_app_runs_with(isolated_home: Path) -> None:
    found = versions()
    assert list(found)[:3] == ["imgcls-desktop", "MXNet", "numpy"]
    assert found["imgcls-desktop"] == __version__ and found["numpy"] == np.__version__
    assert found["PySide6"] == version("PySide6-Essentials")
    assert folders() == {
        "Data": isolated_home / "data",
        "Settings": isolated_home / "config",
        "Cache": isolated_home / "cache",
    }
    assert version_line("imgcls-desktop").startswith(f"imgcls-desktop {__version__} (mxnet ")


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_an_nvidia_gpu_is_found_by_its_driver_or_nvidia_smi(tmp_path: Path) -> None:
    proc, bin_folder = tmp_path / "proc", tmp_path / "bin"
    (proc / "self").mkdir(parents=True)
    bin_folder.mkdir()
    assert not nvidia_gpu_present(proc, str(bin_folder))
    (bin_folder / "nvidia-smi").write_text("not executable", encoding="utf-8")
    assert not nvidia_gpu_present(proc, str(bin_folder))
    _executable(bin_folder / "nvidia-smi")
    assert nvidia_gpu_present(proc, str(bin_folder))
    (bin_folder / "nvidia-smi").unlink()
    (proc / "driver" / "nvidia" / "gpus" / "0000:01:00.0").mkdir(parents=True)
    assert nvidia_gpu_present(proc, str(bin_folder))


@pytest.mark.parametrize(
    ("gpu_present", "gpus_seen", "cuda", "says"),
    [
        (False, 0, False, None),
        (True, 1, True, None),
        (True, 0, False, "the CPU build of MXNet is installed"),
        (True, 0, True, "MXNet's CUDA build sees none"),
    ],
)
def test_the_note_says_why_a_present_gpu_is_unused(
    gpu_present: bool, gpus_seen: int, cuda: bool, says: str | None
) -> None:
    note = unused_gpu_note(gpu_present=gpu_present, gpus_seen=gpus_seen, cuda_build=cuda)
    assert note is None if says is None else says in note


def test_this_machines_devices_and_a_gpu_its_mxnet_leaves_unused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With NVIDIA's ``nvidia-smi`` on the PATH and this machine's MXNet (the CPU build here)."""
    devices = find_devices()
    assert devices.names[0].startswith(f"CPU ({os.cpu_count()} cores")
    assert len(devices.names) == 1 + gpu_count()
    if gpu_count() or cuda_build():
        pytest.skip("this machine's MXNet uses a GPU")
    monkeypatch.setenv("PATH", str(_executable(tmp_path / "bin" / "nvidia-smi").parent))
    note = find_devices().unused_gpu_note
    assert note is not None and "mxnet-cu112==1.9.1" in note and "GPU=cu112" in note
