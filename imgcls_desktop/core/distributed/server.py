"""The scheduler and server process: ``python -m imgcls_desktop.core.distributed.server``.

With ``DMLC_ROLE`` set to ``server`` or ``scheduler``, MXNet 1.9.1 runs the server loop
inside ``import mxnet`` and exits; that loop takes its optimizer only as a pickle sent by a
worker (``kv.set_optimizer``), and a ``dist_async`` server without an optimizer aborts on the
first push. So this entry imports MXNet with the role hidden, then runs the loop itself with
its own controller, which takes JSON commands from the workers (:mod:`.worker` sends them;
ps-lite hands the controller only commands with head 0, so the JSON says which it is):

- ``{"command": "optimizer", "name": "sgd", "learning_rate": 0.1, ...}`` becomes the
  servers' optimizer (needed by ``dist_async``, and by ``dist_sync`` when the servers update);
- ``{"command": "learning_rate", "learning_rate": 0.01}`` changes it in place;
- anything else (MXNet's pickled optimizer among it) is refused: the server exits with a
  message saying so.

Keys from :data:`SUM_KEYS` on hold sums (the global metrics of :mod:`.worker`): the server
keeps what the workers pushed and never applies the optimizer to them.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any, Callable

from ..runtime import mxnet
from .lifeline import exit_with_launcher

CONTROLLER_HEAD = 0
"""ps-lite's ``CommandType::kController``: the only head that reaches the controller."""
SUM_KEYS = 1 << 30
"""Keys at or above this hold sums pushed by the workers, not parameters."""


class ServerSetupError(RuntimeError):
    """The server cannot run as asked; the message is one line."""


def optimizer_from_settings(settings: dict[str, Any]) -> Any:
    """An MXNet optimizer from ``{"name": ..., its keywords}``."""
    mx = mxnet()
    settings = dict(settings)
    try:
        return mx.optimizer.create(settings.pop("name"), **settings)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ServerSetupError(f"not a usable optimizer {settings}: {error}") from None


def updater_for(optimizer: Any) -> Callable[[int, Any, Any], None]:
    """The servers' update: sums are kept as pushed, parameters go through ``optimizer``."""
    update = mxnet().optimizer.get_updater(optimizer)

    def updater(key: int, received: Any, stored: Any) -> None:
        if key >= SUM_KEYS:
            stored[:] = received
        else:
            update(key, received, stored)

    return updater


class _Controller:
    """Runs the workers' commands on this server's kvstore."""

    def __init__(self, kvstore: Any) -> None:
        self.kvstore = kvstore
        self.optimizer: Any = None

    def __call__(self, _head: int, body: bytes, _handle: object) -> None:
        try:
            self.run(body)
        except (ValueError, KeyError, ServerSetupError) as error:
            print(f"error: a worker's command was refused: {error}", flush=True)
            os._exit(2)

    def run(self, body: bytes) -> None:
        try:
            settings = json.loads(body.decode("utf-8"))
        except ValueError:
            settings = None
        if not isinstance(settings, dict):
            raise ServerSetupError(
                "not JSON settings (kv.set_optimizer's pickle?): optimizers reach the servers "
                "as JSON, never a pickle"
            )
        command = settings.pop("command", None)
        if command == "optimizer":
            self.optimizer = optimizer_from_settings(settings)
            self.kvstore._set_updater(updater_for(self.optimizer))
        elif command == "learning_rate" and self.optimizer is not None:
            self.optimizer.set_learning_rate(float(settings["learning_rate"]))
        else:
            raise ServerSetupError(f"unknown command {command!r}")


def run() -> None:
    """Import MXNet with the role hidden, then run this node's scheduler or server loop."""
    role = os.environ.pop("DMLC_ROLE", "")
    if role not in ("server", "scheduler"):
        raise ServerSetupError(f"DMLC_ROLE must be server or scheduler, not {role!r}")
    exit_with_launcher()
    mx = mxnet()
    os.environ["DMLC_ROLE"] = role
    kvstore = mx.kv.create("dist")
    prototype = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
    controller = prototype(_Controller(kvstore))
    mx.base.check_call(mx.base._LIB.MXKVStoreRunServer(kvstore.handle, controller, None))


def main() -> int:
    """Run; a bad setting is one line on stderr and exit status 2."""
    try:
        run()
    except ServerSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
