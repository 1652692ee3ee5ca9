"""The bridge from training callbacks to the GUI: plain dicts, throttled batches."""

from __future__ import annotations

from pathlib import Path

from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.training.callbacks import TrainingState
from imgcls_desktop.gui.training_bridge import MetricsBridge


def _state() -> TrainingState:
    return TrainingState(
        run_dir=Path("run"),
        epochs=2,
        batches_per_epoch=3,
        batch_size=4,
        class_names=("a", "b"),
        hyperparameters=HyperParameters(),
    )


def test_events_become_dicts_and_batches_are_throttled() -> None:
    events: list[dict] = []
    progress: list[tuple[int, int]] = []
    bridge = MetricsBridge(events.append, lambda done, total: progress.append((done, total)))
    bridge.state = _state()
    bridge.on_train_begin(bridge.state)
    for batch in (1, 2, 3):
        bridge.on_batch_end(batch, {"epoch": 1, "batch": batch, "loss": 1.0 / batch})
    bridge.on_batch_end(4, {"epoch": 2, "batch": 1})  # not a logging step: no loss read
    bridge.on_epoch_end(1, {"val_accuracy": 0.5})
    bridge.on_checkpoint(Path("run/image-classification-0001.params"))

    kinds = [event["event"] for event in events]
    assert kinds[0] == "begin" and kinds[-2:] == ["epoch", "checkpoint"]
    assert kinds.count("batch") == 1  # three logging steps within 0.1 s: one sent
    assert events[0]["class_names"] == ["a", "b"] and events[0]["epochs"] == 2
    assert events[-2] == {"event": "epoch", "val_accuracy": 0.5, "epoch": 1}
    assert progress == [(1, 6), (2, 6), (3, 6), (4, 6)]
