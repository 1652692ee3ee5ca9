"""The processes of a launch plan: role, rank, command line and ``DMLC_*`` environment.

ps-lite (inside ``libmxnet``) reads its whole configuration from the environment:
``DMLC_ROLE`` (scheduler, server or worker), ``DMLC_PS_ROOT_URI`` and ``DMLC_PS_ROOT_PORT``
(where the scheduler listens), ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER`` and
``DMLC_NODE_HOST`` (the address this node tells the others). Workers run the user's
command; the scheduler and servers run :mod:`.server`.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .lifeline import LIFELINE_VARIABLE
from .plan import LaunchPlan, LaunchSpecError

LOOPBACK = "127.0.0.1"
SERVER_MODULE = "imgcls_desktop.core.distributed.server"
PASSED_ON = ("PS_VERBOSE", "OMP_NUM_THREADS", "MXNET_KVSTORE_BIGARRAY_BOUND")
"""Variables of ours an ssh process gets too (a local process inherits everything)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start: its role and rank (the launcher's count), argv and extra env."""

    role: str
    rank: int
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``scheduler``, ``server 0``, ``worker 1``: how its output lines are labelled."""
        return self.role if self.role == "scheduler" else f"{self.role} {self.rank}"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def dmlc_env(plan: LaunchPlan, role: str, root: str, port: int, node_host: str) -> dict[str, str]:
    """The ``DMLC_*`` variables of one process of ``plan``."""
    return {
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": root,
        "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NUM_SERVER": str(plan.servers),
        "DMLC_NUM_WORKER": str(plan.workers),
        "DMLC_NODE_HOST": node_host,
    }


def server_command(python: str = sys.executable) -> tuple[str, ...]:
    """The command line of a scheduler or server."""
    return (python, "-m", SERVER_MODULE)


def _roles(plan: LaunchPlan) -> list[tuple[str, int]]:
    return [
        ("scheduler", 0),
        *(("server", rank) for rank in range(plan.servers)),
        *(("worker", rank) for rank in range(plan.workers)),
    ]


def local_processes(
    plan: LaunchPlan,
    worker_command: Sequence[str],
    port: int | None = None,
) -> list[ProcessSpec]:
    """Every process of ``plan`` on this machine, talking over 127.0.0.1.

    Unless the user set ``OMP_NUM_THREADS``, each worker gets an equal share of the cores
    and each server and the scheduler one thread (they only add arrays). Each is told to
    end with the launcher (:mod:`.lifeline`).
    """
    port = free_port() if port is None else port
    share = str(max(1, (os.cpu_count() or 1) // plan.workers))
    threads = os.environ.get("OMP_NUM_THREADS")
    specs = []
    for role, rank in _roles(plan):
        env = dmlc_env(plan, role, LOOPBACK, port, LOOPBACK)
        env["OMP_NUM_THREADS"] = threads or (share if role == "worker" else "1")
        env[LIFELINE_VARIABLE] = "1"
        argv = tuple(worker_command) if role == "worker" else server_command()
        specs.append(ProcessSpec(role, rank, argv, env))
    return specs


def address_of(host: str) -> str:
    """The IPv4 address of a hosts-file entry (``user@`` dropped).

    ps-lite binds each node to its ``DMLC_NODE_HOST``, and ZeroMQ binds to addresses or
    interface names, not host names: a name there fails with "bind failed".
    """
    name = host.rpartition("@")[2]
    try:
        return socket.gethostbyname(name)
    except OSError as error:
        raise LaunchSpecError(f"cannot find the address of host {name}: {error}") from None


def remote_command(argv: Sequence[str], env: Mapping[str, str], workdir: str | None) -> str:
    """One shell line for a remote host: ``cd DIR && env K=V ... COMMAND``."""
    line = shlex.join(["env", *(f"{key}={value}" for key, value in env.items()), *argv])
    return f"cd {shlex.quote(workdir)} && {line}" if workdir else line


def ssh_argv(host: str, line: str) -> tuple[str, ...]:
    """``ssh`` running ``line`` on ``host`` in batch mode (it never prompts).

    No terminal (``-t``): the remote process's stdin is then a pipe from sshd that closes
    when this ssh client ends (stopped, or its launcher gone), which its lifeline notices.
    """
    return ("ssh", "-o", "BatchMode=yes", host, line)


def ssh_processes(
    plan: LaunchPlan,
    worker_command: Sequence[str],
    workdir: str | None = None,
    python: str = sys.executable,
) -> list[ProcessSpec]:
    """Every process of an ``ssh`` plan: the scheduler on the first host, servers and workers
    spread over the hosts in turn, each started by a local ``ssh`` client and told to end
    with it (:mod:`.lifeline`). Host names are resolved here: the hosts must reach each
    other at the addresses this machine sees."""
    addresses = {host: address_of(host) for host in plan.hosts}
    root = addresses[plan.hosts[0]]
    passed = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    specs = []
    for role, rank in _roles(plan):
        host = plan.hosts[rank % len(plan.hosts)]
        env = {**passed, **dmlc_env(plan, role, root, plan.port, addresses[host])}
        env[LIFELINE_VARIABLE] = "1"
        argv = tuple(worker_command) if role == "worker" else server_command(python)
        line = remote_command(argv, env, workdir)
        specs.append(ProcessSpec(role, rank, ssh_argv(host, line), env))
    return specs


def describe(plan: LaunchPlan, worker_command: Sequence[str], python: str = "python") -> str:
    """The environment and command of every process, for the user's own cluster scheduler.

    ``SCHEDULER_HOST`` and ``THIS_HOST`` are placeholders the user replaces.
    """
    lines = [
        f"# {plan.workers} worker(s), {plan.servers} server(s) and one scheduler.",
        "# Start each line on its machine; SCHEDULER_HOST is the scheduler machine's IP address,",
        "# THIS_HOST the IP address of the machine the line runs on (ps-lite binds to it).",
    ]
    for role, rank in _roles(plan):
        env = dmlc_env(plan, role, "SCHEDULER_HOST", plan.port, "THIS_HOST")
        argv = tuple(worker_command) if role == "worker" else server_command(python)
        name = ProcessSpec(role, rank, argv).name
        lines.append(f"# {name}\n{remote_command(argv, env, None)}")
    return "\n".join(lines)
