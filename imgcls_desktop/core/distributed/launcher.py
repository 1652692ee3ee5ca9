"""Run a launch plan: the one call the CLI and the window make.

``local`` and ``ssh`` plans start and watch their processes (:func:`launch`); a ``print``
plan is only described (:func:`~.commands.describe`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..jobs import CancelFlag
from .commands import local_processes, ssh_processes
from .plan import LaunchPlan
from .remote import ensure_hosts_ready
from .supervisor import LineFn, ProcessState, StateFn, run_processes


def launch(
    plan: LaunchPlan,
    worker_command: Sequence[str],
    *,
    on_line: LineFn | None = None,
    on_state: StateFn | None = None,
    cancel: CancelFlag | None = None,
    required_paths: Sequence[str] = (),
    workdir: str | None = None,
) -> list[ProcessState]:
    """Start the scheduler, servers and workers of ``plan`` and watch them to the end.

    Workers run ``worker_command``. For ``ssh``, every host is first checked for this
    Python, ``workdir`` and ``required_paths`` (the data); the commands run in ``workdir``. Returns
    the processes' final states; raises as :func:`~.supervisor.run_processes` does, and
    :class:`~.remote.HostsNotReady` before starting anything when a host is not ready.
    """
    if plan.kind == "local":
        specs = local_processes(plan, worker_command)
    elif plan.kind == "ssh":
        folders = [workdir] if workdir else []
        ensure_hosts_ready(plan.hosts, [sys.executable, *folders, *required_paths])
        specs = ssh_processes(plan, worker_command, workdir)
    else:
        raise ValueError(f"a {plan.kind!r} plan starts nothing: print commands.describe(...)")
    return run_processes(specs, on_line=on_line, on_state=on_state, cancel=cancel)
