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
    now = [100.0]  # the bridge's clock, in seconds, moved by the test
    bridge = MetricsBridge(
        events.append, lambda done, total: progress.append((done, total)), clock=lambda: now[0]
    )
    bridge.state = _state()
    bridge.on_train_begin(bridge.state)
    for batch, seconds in ((1, 100.0), (2, 100.05), (3, 100.09)):  # three logging steps in 0.1 s
        now[0] = seconds
        bridge.on_batch_end(batch, {"epoch": 1, "batch": batch, "loss": 1.0 / batch})
    now[0] = 100.3
    bridge.on_batch_end(4, {"epoch": 2, "batch": 1})  # not a logging step: no loss read
    bridge.on_epoch_end(1, {"val_accuracy": 0.5})
    bridge.on_checkpoint(Path("run/image-classification-0001.params"))
    bridge.on_batch_end(5, {"epoch": 2, "batch": 2, "loss": 0.1})  # 0.3 s after the first

    kinds = [event["event"] for event in events]
    assert kinds[0] == "begin" and kinds[-3:] == ["epoch", "checkpoint", "batch"]
    assert [event["step"] for event in events if event["event"] == "batch"] == [1, 5]
    assert events[0]["class_names"] == ["a", "b"] and events[0]["epochs"] == 2
    assert events[-3] == {"event": "epoch", "val_accuracy": 0.5, "epoch": 1}
    assert progress == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6)]
