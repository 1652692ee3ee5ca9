"""Launch specs, hosts files and the processes of a plan, as data."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from imgcls_desktop.core.distributed.commands import (
    describe,
    free_port,
    local_processes,
    ssh_processes,
)
from imgcls_desktop.core.distributed.plan import LaunchPlan, LaunchSpecError, parse_launch
from imgcls_desktop.core.distributed.worker import (
    WorkerPlace,
    effective_batch_message,
    is_distributed_worker,
    shard_arguments,
)


def hosts_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("spec", "plan"),
    [
        ("local:2", LaunchPlan("local", 2, 1)),
        ("local:4,servers=2", LaunchPlan("local", 4, 2)),
        (" local:1 ", LaunchPlan("local", 1, 1)),
        ("print", LaunchPlan("print", 2, 1)),
        ("print:8,servers=4,port=9000", LaunchPlan("print", 8, 4, (), 9000)),
    ],
)
def test_specs_parse(spec: str, plan: LaunchPlan) -> None:
    assert parse_launch(spec) == plan


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("local", "say how many workers"),
        ("local:0", "must be a whole number >= 1"),
        ("local:two", "must be a whole number >= 1, not 'two'"),
        ("local:2,servers=0", "servers must be a whole number"),
        ("local:2,workers=3", "unknown option"),
        ("local:2,servers=1,servers=2", "unknown option"),
        ("local:2,port=9000", "local picks a free port itself"),
        ("mpi:4", "expected local:N"),
        ("ssh", "ssh needs a hosts file"),
        ("ssh:/no/such/hosts.txt", "cannot read hosts file /no/such/hosts.txt"),
        ("print,port=70000", "port must be at most 65535"),
    ],
)
def test_bad_specs_say_what_is_wrong_on_one_line(spec: str, says: str) -> None:
    with pytest.raises(LaunchSpecError) as raised:
        parse_launch(spec)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_ssh_plan_has_a_worker_and_a_server_per_host(tmp_path: Path) -> None:
    path = hosts_file(tmp_path, "# our machines\nalpha\n\nme@beta.lan  # the big one\n")
    assert parse_launch(f"ssh:{path}") == LaunchPlan("ssh", 2, 2, ("alpha", "me@beta.lan"))
    assert parse_launch(f"ssh:{path},servers=1,port=9100").servers == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("# nobody\n", "names no host"),
        ("alpha\nalpha\n", "names a host twice"),
        ("alpha slots=4\n", "line 1: not a host name"),
        ("-oProxyCommand=x\n", "line 1: not a host name"),
    ],
)
def test_bad_hosts_files_are_refused(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(LaunchSpecError, match=says):
        parse_launch(f"ssh:{hosts_file(tmp_path, text)}")


def test_local_processes_talk_over_loopback_on_one_free_port() -> None:
    specs = local_processes(LaunchPlan("local", 2, 1), ["python", "train.py"], port=9555)

    assert [spec.name for spec in specs] == ["scheduler", "server 0", "worker 0", "worker 1"]
    for spec in specs:
        assert spec.env["DMLC_PS_ROOT_URI"] == spec.env["DMLC_NODE_HOST"] == "127.0.0.1"
        assert spec.env["DMLC_PS_ROOT_PORT"] == "9555"
        assert (spec.env["DMLC_NUM_WORKER"], spec.env["DMLC_NUM_SERVER"]) == ("2", "1")
        assert spec.env["DMLC_ROLE"] == spec.role
    assert specs[2].argv == ("python", "train.py")
    assert specs[1].argv == (sys.executable, "-m", "imgcls_desktop.core.distributed.server")


def test_workers_share_the_cores_unless_the_user_set_the_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    threads = {
        s.name: s.env["OMP_NUM_THREADS"] for s in local_processes(parse_launch("local:2"), ["w"])
    }
    assert threads == {"scheduler": "1", "server 0": "1", "worker 0": "4", "worker 1": "4"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert {s.env["OMP_NUM_THREADS"] for s in local_processes(parse_launch("local:2"), ["w"])} == {
        "3"
    }


def test_free_port_is_bindable() -> None:
    assert 0 < free_port() < 65536


def test_ssh_processes_are_ssh_command_lines(tmp_path: Path) -> None:
    path = hosts_file(tmp_path, "10.0.0.1\nme@10.0.0.2\n")
    plan = parse_launch(f"ssh:{path},port=9100")
    specs = ssh_processes(plan, ["imgcls", "train", "my data"], "/srv/run dir", python="/opt/py")

    assert [(s.name, s.argv[3]) for s in specs] == [
        ("scheduler", "10.0.0.1"),
        ("server 0", "10.0.0.1"),
        ("server 1", "me@10.0.0.2"),
        ("worker 0", "10.0.0.1"),
        ("worker 1", "me@10.0.0.2"),
    ]
    assert specs[0].argv[:3] == ("ssh", "-o", "BatchMode=yes")
    cd, _, line = specs[4].argv[4].partition(" && ")
    assert shlex.split(cd) == ["cd", "/srv/run dir"]
    words = shlex.split(line)
    assert words[-3:] == ["imgcls", "train", "my data"]
    env = dict(word.split("=", 1) for word in words[1:-3])
    assert env["DMLC_ROLE"] == "worker"
    assert env["DMLC_PS_ROOT_URI"] == "10.0.0.1"
    assert env["DMLC_PS_ROOT_PORT"] == "9100"
    assert env["DMLC_NODE_HOST"] == "10.0.0.2"
    assert env["IMGCLS_LAUNCHER_LIFELINE"] == "1"
    assert shlex.split(specs[2].argv[4].partition(" && ")[2])[-3:] == [
        "/opt/py",
        "-m",
        "imgcls_desktop.core.distributed.server",
    ]


def test_an_unknown_host_name_is_reported(tmp_path: Path) -> None:
    plan = parse_launch(f"ssh:{hosts_file(tmp_path, 'no-such-host.invalid')}")
    with pytest.raises(LaunchSpecError, match="cannot find the address of host no-such-host"):
        ssh_processes(plan, ["imgcls"])


def test_print_gives_every_process_its_environment_and_command() -> None:
    text = describe(parse_launch("print:2,servers=1,port=9200"), ["imgcls", "train", "data"])

    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(commands) == 4
    roles = [dict(w.split("=", 1) for w in shlex.split(c) if "=" in w) for c in commands]
    assert [role["DMLC_ROLE"] for role in roles] == ["scheduler", "server", "worker", "worker"]
    assert {role["DMLC_PS_ROOT_PORT"] for role in roles} == {"9200"}
    assert {role["DMLC_PS_ROOT_URI"] for role in roles} == {"SCHEDULER_HOST"}
    assert commands[-1].endswith("imgcls train data")


def test_worker_helpers() -> None:
    assert shard_arguments(WorkerPlace(1, 4)) == {"num_parts": 4, "part_index": 1}
    assert WorkerPlace(0, 2).writes and not WorkerPlace(1, 2).writes
    assert effective_batch_message(32, 4).startswith("Effective batch: 128 images per step")
    assert is_distributed_worker({"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "127.0.0.1"})
    assert not is_distributed_worker({"DMLC_ROLE": "server", "DMLC_PS_ROOT_URI": "127.0.0.1"})
    assert not is_distributed_worker({})
