"""The launcher with real MXNet processes on 127.0.0.1: a scheduler, one server, two workers.

Each test waits on the processes (their exit, their output lines), never on time, and
checks by PID that nothing it started is left running.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading

import pytest
from distributed_fixtures import WORKER, Watch, package_importable

from imgcls_desktop.core.distributed.launcher import launch
from imgcls_desktop.core.distributed.plan import parse_launch
from imgcls_desktop.core.distributed.supervisor import LaunchFailed
from imgcls_desktop.core.jobs import Cancelled

pytestmark = pytest.mark.usefixtures(package_importable.__name__)


def run(mode: str, *args: str, watch: Watch, cancel: threading.Event | None = None) -> list:
    command = [sys.executable, str(WORKER), mode, *args]
    return launch(
        parse_launch("local:2"),
        command,
        on_line=watch.on_line,
        on_state=watch.on_state,
        cancel=cancel,
    )


def test_dist_sync_sums_what_the_workers_push() -> None:
    watch = Watch()
    final = run("sum", "dist_sync", watch=watch)

    assert sorted((state.name, state.state, state.returncode) for state in final) == [
        ("scheduler", "exited", 0),
        ("server 0", "exited", 0),
        ("worker 0", "exited", 0),
        ("worker 1", "exited", 0),
    ]
    joined = [said for said in watch.said if "workers" in said]
    assert sorted(said["rank"] for said in joined) == [0, 1]
    assert {said["workers"] for said in joined} == {2}
    assert sorted(said["shard"]["part_index"] for said in joined) == [0, 1]
    pulled = [said["pulled"] for said in watch.said if "pulled" in said]
    assert pulled == [[[3.0, 3.0]] * 3] * 2  # ranks 0 and 1 pushed 1 and 2
    sums = [said["sums"] for said in watch.said if "sums" in said]
    assert sums == [[[2.0, 21.0], [5.0, 0.0]]] * 2
    assert {name for name, _ in watch.lines} >= {"worker 0", "worker 1"}
    started = [(s.name, s.state) for s in watch.states if s.state in ("starting", "running")]
    assert len(started) == 8
    watch.assert_nothing_left()


def test_dist_async_runs_with_the_optimizer_on_the_servers() -> None:
    watch = Watch()
    run("sum", "dist_async", watch=watch)

    # sgd at learning rate 1 from 0: each push of g subtracts g; a worker sees its own push.
    pulled = {said["rank"]: said["pulled"][0][0] for said in watch.said if "pulled" in said}
    assert pulled[0] in (-1.0, -3.0)
    assert pulled[1] in (-2.0, -3.0)
    # Sums over workers, though the servers keep only the last push of a key.
    sums = [said["sums"] for said in watch.said if "sums" in said]
    assert sums == [[[2.0, 21.0], [5.0, 0.0]]] * 2
    watch.assert_nothing_left()


@pytest.mark.parametrize("kv_store", ["dist_sync", "dist_async"])
def test_the_servers_update_the_weights_from_json_settings(kv_store: str) -> None:
    watch = Watch()
    run("updates", kv_store, watch=watch)

    # 1 - learning rate 1 x (gradient 1 from rank 0 + gradient 2 from rank 1)
    weights = [said["weight"] for said in watch.said if "weight" in said]
    assert weights == [[[-2.0, -2.0]] * 3] * 2
    assert {said["keys"] for said in watch.said if "keys" in said} == {1}
    watch.assert_nothing_left()


def test_a_failing_worker_stops_everything_with_a_clear_error() -> None:
    watch = Watch()
    with pytest.raises(LaunchFailed) as raised:
        run("fail", watch=watch)

    message = str(raised.value)
    assert message.startswith("worker ")
    assert "exited with code 3" in message
    assert "RuntimeError: this worker fails on purpose" in message
    assert "every other process was stopped" in message
    assert "RuntimeError: this worker fails on purpose" in raised.value.last_lines
    watch.assert_nothing_left()


def test_a_worker_killed_mid_run_stops_everything() -> None:
    watch = Watch()
    with pytest.raises(LaunchFailed, match=r"^worker \d was killed by SIGKILL"):
        run("kill", watch=watch)
    watch.assert_nothing_left()


def test_the_servers_refuse_a_pickled_optimizer() -> None:
    watch = Watch()
    with pytest.raises(LaunchFailed) as raised:
        run("pickle", watch=watch)
    assert str(raised.value).startswith("server 0 exited with code 2")
    assert "never a pickle" in str(raised.value)
    watch.assert_nothing_left()


def test_stop_stops_every_process_and_what_they_started() -> None:
    watch = Watch()
    cancel = threading.Event()
    on_line = watch.on_line

    def stop_once_both_waiting(name: str, text: str) -> None:
        on_line(name, text)
        if sum("child" in said for said in watch.said) == 2:
            cancel.set()

    watch.on_line = stop_once_both_waiting  # type: ignore[method-assign]
    with pytest.raises(Cancelled):
        run("wait", watch=watch, cancel=cancel)

    assert len(watch.pids) == 6  # four processes, and a child of each worker
    assert {s.name for s in watch.states if s.state == "stopped"} == {
        "scheduler",
        "server 0",
        "worker 0",
        "worker 1",
    }
    watch.assert_nothing_left()


def test_ctrl_c_stops_every_process() -> None:
    watch = Watch()
    on_line = watch.on_line

    def interrupt_once_joined(name: str, text: str) -> None:
        on_line(name, text)
        if any("child" in said for said in watch.said):
            raise KeyboardInterrupt

    watch.on_line = interrupt_once_joined  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run("wait", watch=watch)
    watch.assert_nothing_left()


def test_a_command_that_cannot_start_stops_the_others() -> None:
    watch = Watch()
    with pytest.raises(LaunchFailed, match=r"^cannot start worker 0 \(/no/such/python\): "):
        launch(
            parse_launch("local:1"),
            ["/no/such/python"],
            on_line=watch.on_line,
            on_state=watch.on_state,
        )
    assert len(watch.pids) == 2  # the scheduler and the server, stopped
    watch.assert_nothing_left()


LAUNCHER = """
import json, sys
from imgcls_desktop.core.distributed.launcher import launch
from imgcls_desktop.core.distributed.plan import parse_launch

def on_line(name, text):
    print(text, flush=True)

def on_state(state):
    print(json.dumps({"pid": state.pid}), flush=True)

launch(parse_launch("local:2"), [sys.executable, sys.argv[1], "wait"], on_line=on_line,
       on_state=on_state)
"""


def wait_for_exit(pid: int, timeout: float = 60) -> bool:
    """Wait (on a pidfd, not by polling) until ``pid`` has exited; False on timeout."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], timeout)[0])
    finally:
        os.close(handle)


def test_processes_end_with_a_killed_launcher() -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(WORKER)], stdout=subprocess.PIPE, text=True
    )
    assert launcher.stdout is not None
    pids, children = set(), 0
    for line in launcher.stdout:
        said = json.loads(line) if line.startswith("{") else {}
        pids.update(said[key] for key in ("pid", "child") if said.get(key))
        children += "child" in said
        if children == 2:
            break
    launcher.kill()
    launcher.wait()
    launcher.stdout.close()

    assert len(pids) == 6  # scheduler, server, two workers and a child of each
    left = [pid for pid in pids if not wait_for_exit(pid)]
    for pid in left:  # so that a failure leaves nothing behind either
        os.kill(pid, signal.SIGKILL)
    assert left == []
