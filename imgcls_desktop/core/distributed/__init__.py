"""Distributed training on MXNet's parameter server (ps-lite's ``dist_sync``/``dist_async``).

- :mod:`.plan`: what the user asked for (``local:N[,servers=M]``, ``ssh:HOSTS_FILE``,
  ``print``), parsed into a :class:`~.plan.LaunchPlan`;
- :mod:`.commands`: the processes of a plan (role, rank, command line, ``DMLC_*``
  environment), for this machine, for ssh, or printed for the user's own cluster;
- :mod:`.supervisor`: starts those processes, forwards their output, stops them all;
- :mod:`.remote`: the check that every ssh host has the app and the data;
- :mod:`.server`: the scheduler and server process (``python -m ...distributed.server``);
- :mod:`.worker`: what a training worker asks (rank, shard, global metric sums).

No Qt here; nothing is pickled between processes (settings travel as env vars and JSON).
"""

from __future__ import annotations
