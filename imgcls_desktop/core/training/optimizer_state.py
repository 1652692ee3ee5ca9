"""The optimizer's state saved as data: named arrays plus JSON, never pickle.

Gluon's ``Trainer.save_states`` pickles the optimizer object and its states, and loading
such a file runs whatever code it names: a run folder shared between people must not be
able to do that. What a resume needs (read from MXNet 1.9.1's ``Optimizer``, ``Updater``
and ``Trainer``) is saved instead as

- an MXNet ``.params`` file (``mx.nd.save``'s own binary format) of every state array, named
  ``"<updater>:<parameter name>:<j>"``. An updater is the key-value store's single one when
  several devices update on it, else one per device (``Trainer._updaters``). A parameter's
  state is what ``Optimizer.create_state_multi_precision`` builds: sgd/nag one momentum array
  or none (momentum 0), adam (mean, variance), rmsprop (n,) or (n, g, delta) when centred;
  with ``multi_precision`` and float16 weights also the float32 master copy of the weight
  (sgd/nag ``(state, master)``, adam/rmsprop ``(master, state)``);
- a JSON file with the optimizer's name, ``num_update``, the per-device update count of
  every parameter (adam's bias correction uses it), the learning-rate schedule's position,
  and the layout of every state: ``null``, an array name, or a list of layouts.

Loading builds each state as the optimizer would for the current network and refuses any
difference (optimizer, parameter names, structure, shapes, dtypes) with :class:`RunError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.artifacts import first_line, save_arrays
from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.runtime import mxnet

if TYPE_CHECKING:
    from mxnet.gluon import Trainer
    from mxnet.ndarray import NDArray

FORMAT_VERSION = 1
# The learning-rate scheduler's attributes that change as training goes (MultiFactorScheduler).
_SCHEDULE_POSITION = ("base_lr", "cur_step_ind", "count")


class OptimizerStateError(Exception):
    """Saved optimizer state that does not fit the trainer; the message says what differs."""


def save_optimizer_state(trainer: Trainer, arrays_path: Path, json_path: Path) -> None:
    """Write the trainer's optimizer state to ``arrays_path`` and ``json_path`` atomically."""
    mx = mxnet()
    optimizer = trainer._optimizer
    names = [param.name for param in trainer._params]
    arrays: dict[str, NDArray] = {}
    layouts = []
    for number, updater in enumerate(_updaters(trainer)):
        layout = {}
        for index, state in updater.states.items():
            layout[names[index]] = _flatten(state, f"{number}:{names[index]}", arrays)
        layouts.append(layout)
    description = {
        "format": FORMAT_VERSION,
        "optimizer": _optimizer_name(optimizer),
        "num_update": optimizer.num_update,
        "update_counts": {
            str(device): {names[index]: count for index, count in counts.items()}
            for device, counts in optimizer._all_index_update_counts.items()
        },
        "lr_schedule": _schedule_position(optimizer.lr_scheduler),
        "updaters": layouts,
    }
    on_cpu = {name: array.copyto(mx.cpu()) for name, array in arrays.items()}
    save_arrays(arrays_path, on_cpu)
    atomic_write_json(json_path, description)


def load_optimizer_state(trainer: Trainer, arrays_path: Path, json_path: Path) -> None:
    """Set the trainer's optimizer state from :func:`save_optimizer_state`'s files.

    Raises :class:`OptimizerStateError` (nothing changed) when the files are unreadable or
    do not fit the trainer's optimizer and parameters.
    """
    mx = mxnet()
    try:
        description = json.loads(Path(json_path).read_text(encoding="utf-8"))
        arrays = mx.nd.load(str(arrays_path))
    except (OSError, ValueError, mx.base.MXNetError) as error:
        raise OptimizerStateError(f"it cannot be read: {first_line(error)}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_VERSION:
        raise OptimizerStateError(f"{json_path.name} is not a format-{FORMAT_VERSION} record")
    if not isinstance(arrays, dict):
        raise OptimizerStateError(f"{arrays_path.name} holds unnamed arrays")
    optimizer = trainer._optimizer
    saved_name, name = description.get("optimizer"), _optimizer_name(optimizer)
    if saved_name != name:
        raise OptimizerStateError(f"it is the state of {saved_name!r}, not of {name!r}")
    try:
        scalars = _read_scalars(description, optimizer, trainer)
        layouts = description["updaters"]
        if not isinstance(layouts, list) or not layouts:
            raise OptimizerStateError("it names no updater")
        updaters = _updaters(trainer)
        states = [
            _read_states(trainer, layouts[min(number, len(layouts) - 1)], arrays)
            for number in range(len(updaters))
        ]
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise OptimizerStateError(f"{json_path.name} is malformed ({error!r})") from None
    for updater, updater_states in zip(updaters, states):
        updater.states = updater_states
        # Moved to each weight's device on the updater's next call.
        updater.states_synced = dict.fromkeys(updater_states, False)
    num_update, counts, schedule = scalars
    optimizer.num_update = num_update
    optimizer._all_index_update_counts = counts
    optimizer._index_update_count = counts[0]
    if schedule is not None:
        for key in _SCHEDULE_POSITION:
            setattr(optimizer.lr_scheduler, key, schedule[key])


def fresh_optimizer_state(trainer: Trainer, num_update: int) -> None:
    """Start the optimizer state afresh but at update ``num_update`` (the schedule goes on)."""
    optimizer = trainer._optimizer
    optimizer.begin_num_update = optimizer.num_update = num_update


def _updaters(trainer: Trainer) -> list[Any]:
    """The updaters holding the optimizer state: the key-value store's, else one per device."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._kvstore is not None and trainer._update_on_kvstore:
        return [trainer._kvstore._updater]
    return list(trainer._updaters)


def _optimizer_name(optimizer: Any) -> str:
    return type(optimizer).__name__.lower()


def _schedule_position(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    position = {key: getattr(scheduler, key) for key in _SCHEDULE_POSITION}
    return {"type": type(scheduler).__name__, "step": list(scheduler.step), **position}


def _flatten(state: Any, name: str, arrays: dict[str, NDArray]) -> Any:
    """The JSON layout of a state; its arrays are added to ``arrays`` as ``name:0``, ..."""
    keys: list[str] = []

    def layout(part: Any) -> Any:
        if part is None:
            return None
        if isinstance(part, (tuple, list)):
            return [layout(item) for item in part]
        keys.append(f"{name}:{len(keys)}")
        arrays[keys[-1]] = part
        return keys[-1]

    return layout(state)


def _read_scalars(
    description: dict[str, Any], optimizer: Any, trainer: Trainer
) -> tuple[int, dict[int, dict[int, int]], dict[str, Any] | None]:
    """``num_update``, the update counts by device and index, the schedule's position."""
    indices = {param.name: index for index, param in enumerate(trainer._params)}
    num_update = _integer(description["num_update"], "num_update")
    counts: dict[int, dict[int, int]] = {}
    for device, by_name in description["update_counts"].items():
        unknown = set(by_name) - set(indices)
        if unknown:
            raise OptimizerStateError(f"it counts updates of {min(unknown)!r}, not in the network")
        counts[int(device)] = {
            indices[name]: _integer(count, "an update count") for name, count in by_name.items()
        }
    if not counts:
        raise OptimizerStateError("it has no update counts")
    # Devices the state was not saved on count as the first one did.
    first = next(iter(counts.values()))
    for device in {0, *(context.device_id for context in trainer._contexts)}:
        counts.setdefault(device, dict(first))
    saved, current = description["lr_schedule"], _schedule_position(optimizer.lr_scheduler)
    if (saved is None) != (current is None) or (
        saved is not None and (saved["type"], saved["step"]) != (current["type"], current["step"])
    ):
        raise OptimizerStateError(f"its learning-rate schedule {saved} is not the run's {current}")
    if saved is not None:
        _integer(saved["cur_step_ind"], "the schedule's step")
        _integer(saved["count"], "the schedule's count")
        if not isinstance(saved["base_lr"], (int, float)) or isinstance(saved["base_lr"], bool):
            raise OptimizerStateError(f"the schedule's rate is {saved['base_lr']!r}")
    return num_update, counts, saved


def _read_states(
    trainer: Trainer, layout: dict[str, Any], arrays: dict[str, NDArray]
) -> dict[int, Any]:
    """Every parameter's state as the optimizer builds it, filled with the saved arrays."""
    optimizer = trainer._optimizer
    states = {}
    trained = [(i, p) for i, p in enumerate(trainer._params) if p.grad_req != "null"]
    missing = [param.name for _, param in trained if param.name not in layout]
    extra = set(layout) - {param.name for _, param in trained}
    if missing or extra:
        name = missing[0] if missing else min(extra)
        where = "lacks" if missing else "has"
        raise OptimizerStateError(f"it {where} the state of {name!r} (a different network?)")
    for index, param in trained:
        weight = param.list_data()[0]
        expected = optimizer.create_state_multi_precision(index, weight)
        states[index] = _filled(expected, layout[param.name], arrays, param.name)
    return states


def _filled(expected: Any, layout: Any, arrays: dict[str, NDArray], name: str) -> Any:
    """``expected`` with the saved arrays copied in, after checking they fit."""
    if expected is None or layout is None:
        if expected is not None or layout is not None:
            raise OptimizerStateError(f"the state of {name!r} has another structure")
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(layout, list) or len(layout) != len(expected):
            raise OptimizerStateError(f"the state of {name!r} has another structure")
        parts = [_filled(e, saved, arrays, name) for e, saved in zip(expected, layout)]
        return tuple(parts) if isinstance(expected, tuple) else parts
    if not isinstance(layout, str) or layout not in arrays:
        raise OptimizerStateError(f"the state of {name!r} lacks its array {layout!r}")
    saved = arrays[layout]
    if saved.shape != expected.shape or saved.dtype != expected.dtype:
        raise OptimizerStateError(
            f"the state of {name!r} is {saved.shape} {saved.dtype.__name__}, the network "
            f"needs {expected.shape} {expected.dtype.__name__}"
        )
    saved.copyto(expected)
    return expected


def _integer(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OptimizerStateError(f"{what} is {value!r}, not a count")
    return value
