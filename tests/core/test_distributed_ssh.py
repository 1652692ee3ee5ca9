"""ssh launches with a stand-in ``ssh`` first on PATH: a real program that runs the remote
line on this machine, in ``$FAKE_SSH_ROOT/HOST`` (a host without a folder is unreachable)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from distributed_fixtures import WORKER, Watch, package_importable

from imgcls_desktop.core.distributed.commands import free_port
from imgcls_desktop.core.distributed.launcher import launch
from imgcls_desktop.core.distributed.plan import parse_launch
from imgcls_desktop.core.distributed.remote import HostsNotReady, check_host, ensure_hosts_ready

FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in -t|-tt) shift ;; -o) shift 2 ;; *) break ;; esac
done
host=$1; shift
if [ ! -d "$FAKE_SSH_ROOT/$host" ]; then
  echo "ssh: Could not resolve hostname $host: Name or service not known" >&2
  exit 255
fi
cd "$FAKE_SSH_ROOT/$host" && exec sh -c "$*"
"""


@pytest.fixture
def hosts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Puts the stand-in ssh first on PATH; returns the folder holding one folder per host."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    ssh = bin_folder / "ssh"
    ssh.write_text(FAKE_SSH, encoding="utf-8")
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "hosts"
    monkeypatch.setenv("FAKE_SSH_ROOT", str(root))
    return root


def make_host(root: Path, host: str, *paths: str) -> None:
    for path in paths:
        (root / host / path).parent.mkdir(parents=True, exist_ok=True)
        (root / host / path).write_text("x", encoding="utf-8")
    (root / host).mkdir(parents=True, exist_ok=True)


def test_the_check_says_which_host_lacks_what(hosts_root: Path) -> None:
    wanted = ["venv/bin/python", "data/train.rec", "data/my val.rec"]
    make_host(hosts_root, "alpha", *wanted)
    make_host(hosts_root, "beta", "venv/bin/python", "data/train.rec")
    make_host(hosts_root, "gamma")

    assert check_host("alpha", wanted).ready
    assert check_host("beta", wanted).missing == ("data/my val.rec",)
    with pytest.raises(HostsNotReady) as raised:
        ensure_hosts_ready(["alpha", "beta", "gamma", "delta"], wanted)
    assert str(raised.value) == (
        "beta lacks data/my val.rec; "
        "gamma lacks venv/bin/python, data/train.rec, data/my val.rec; "
        "delta: ssh failed (exit 255): "
        "ssh: Could not resolve hostname delta: Name or service not known"
    )


def test_a_missing_ssh_program_is_reported(hosts_root: Path) -> None:
    check = check_host("alpha", ["x"], ssh=str(hosts_root / "no-ssh"))
    assert check.error is not None
    assert check.error.startswith("cannot run ")


@pytest.mark.usefixtures(package_importable.__name__)
def test_an_ssh_launch_runs_every_process_through_ssh(hosts_root: Path, tmp_path: Path) -> None:
    for host in ("localhost", "127.0.0.1"):
        (hosts_root / host).mkdir(parents=True)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("localhost\n127.0.0.1\n", encoding="utf-8")
    plan = parse_launch(f"ssh:{hosts},servers=1,port={free_port()}")
    watch = Watch()

    launch(
        plan,
        [sys.executable, str(WORKER), "sum", "dist_sync"],
        on_line=watch.on_line,
        on_state=watch.on_state,
        required_paths=[str(WORKER)],
        workdir=str(tmp_path),
    )

    pulled = [said["pulled"] for said in watch.said if "pulled" in said]
    assert pulled == [[[3.0, 3.0]] * 3] * 2
    watch.assert_nothing_left()


def test_an_ssh_launch_starts_nothing_when_a_host_lacks_the_data(
    hosts_root: Path, tmp_path: Path
) -> None:
    (hosts_root / "alpha").mkdir(parents=True)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("alpha\n", encoding="utf-8")
    watch = Watch()
    with pytest.raises(HostsNotReady, match=r"^alpha lacks /nowhere/train\.rec$"):
        launch(
            parse_launch(f"ssh:{hosts}"),
            ["true"],
            on_state=watch.on_state,
            required_paths=["/nowhere/train.rec"],
        )
    assert watch.states == []
