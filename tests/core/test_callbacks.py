"""Callbacks (early stopping, checkpoint keeping, metric log), metrics and the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.artifacts import list_checkpoints, save_checkpoint
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import (
    BatchDone,
    CheckpointKeeper,
    CheckpointSaved,
    EarlyStopping,
    EpochDone,
    EventForwarder,
    MetricsLog,
    TrainingBegan,
    TrainingState,
    format_epoch_line,
)
from imgcls_desktop.core.training.metrics import Metrics
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.run import METRICS_FILE, read_metrics


def make_state(run_dir: Path, **changes: object) -> TrainingState:
    values: dict[str, object] = {
        "run_dir": run_dir,
        "epochs": 20,
        "batches_per_epoch": 3,
        "batch_size": 4,
        "class_names": ("a", "b"),
        "hyperparameters": HyperParameters(),
    }
    values.update(changes)
    return TrainingState(**values)  # type: ignore[arg-type]


# --- early stopping ---------------------------------------------------------------------------


def stopping_epoch(
    accuracies: list[float], history: list[float] = (), **settings: float
) -> int | None:
    """The epoch at which EarlyStopping asks to stop (epochs continue after ``history``)."""
    state = make_state(Path("."), history=[{"val_accuracy": a} for a in history])
    callback = EarlyStopping(**{"min_epochs": 1, "patience": 2, "tolerance": 0.0, **settings})
    callback.state = state
    callback.on_train_begin(state)
    for epoch, accuracy in enumerate(accuracies, start=len(history) + 1):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
        if state.stop_requested:
            assert state.early_stopped and "early stopping" in (state.stop_reason or "")
            return epoch
    return None


def test_early_stopping_after_patience_epochs_without_improvement() -> None:
    assert stopping_epoch([0.5, 0.6, 0.6, 0.6, 0.6]) == 4
    assert stopping_epoch([0.5, 0.6, 0.6, 0.7, 0.7, 0.65]) == 6
    assert stopping_epoch([0.5, 0.6, 0.7, 0.8, 0.9]) is None


def test_early_stopping_waits_for_min_epochs() -> None:
    assert stopping_epoch([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], min_epochs=5) == 5


def test_early_stopping_tolerance_is_relative() -> None:
    # A gain must be at least 10% of the best so far: 0.52 and 0.54 are not (vs 0.5).
    assert stopping_epoch([0.5, 0.52, 0.54, 0.56], tolerance=0.1) == 3
    assert stopping_epoch([0.5, 0.56, 0.62, 0.7], tolerance=0.1) is None


def test_early_stopping_replays_a_resumed_run() -> None:
    assert stopping_epoch([0.6], history=[0.5, 0.6, 0.6]) == 4


# --- checkpoint keeping -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_net():
    mx = mxnet()
    net = build_network(20, 2, (3, 8, 8))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 8, 8)))
    return net


def keep(
    run_dir: Path,
    net,
    accuracies: list[float],
    frequency: int | None,
    *,
    last_committed: bool = True,
    **state,
) -> list:
    """Run a CheckpointKeeper over epochs with these validation accuracies, committing each
    epoch as the loop does (``run.json`` records its best), except the last one when
    ``last_committed`` is false (a later callback failed at its end)."""
    state = make_state(run_dir, **state)
    saved: list[Path] = []

    def saver(epoch: int) -> Path:
        saved.append(save_checkpoint(run_dir, net, epoch, batch_size=4))
        return saved[-1]

    state.checkpoint_saver = saver
    keeper = CheckpointKeeper(frequency)
    keeper.state = state
    keeper.on_train_begin(state)
    for epoch, accuracy in enumerate(accuracies, start=state.start_epoch):
        if state.best_val_accuracy is None or accuracy > state.best_val_accuracy:
            state.best_epoch, state.best_val_accuracy = epoch, accuracy
        keeper.on_epoch_end(epoch, {"val_accuracy": accuracy})
        if last_committed or epoch < state.start_epoch + len(accuracies) - 1:
            state.recorded_best_epoch = state.best_epoch
    keeper.on_train_end(state)
    return [path.name for path in saved]


def test_only_the_best_epoch_is_kept(tmp_path: Path, tiny_net) -> None:
    saved = keep(tmp_path, tiny_net, [0.5, 0.7, 0.6, 0.8, 0.8], None)
    assert saved == [f"image-classification-000{e}.params" for e in (1, 2, 4)]
    assert list_checkpoints(tmp_path) == [4]


def test_every_nth_epoch_is_kept_too(tmp_path: Path, tiny_net) -> None:
    keep(tmp_path, tiny_net, [0.5, 0.7, 0.6, 0.65, 0.9, 0.8], 2)
    assert list_checkpoints(tmp_path) == [2, 4, 5, 6]


def test_unrecorded_checkpoints_are_removed_on_resume(tmp_path: Path, tiny_net) -> None:
    keep(tmp_path, tiny_net, [0.5, 0.7, 0.9], None)  # a crash before epoch 3 was recorded
    assert list_checkpoints(tmp_path) == [3]
    save_checkpoint(tmp_path, tiny_net, 2, batch_size=4)
    keep(tmp_path, tiny_net, [], None, start_epoch=3, best_epoch=2, best_val_accuracy=0.7)
    assert list_checkpoints(tmp_path) == [2]


def test_the_recorded_best_survives_a_failure_before_its_successor_is_recorded(
    tmp_path: Path, tiny_net
) -> None:
    # Epoch 2 is a new best, saved; then a later callback fails before run.json records it.
    keep(tmp_path, tiny_net, [0.5, 0.7], None, last_committed=False)
    assert list_checkpoints(tmp_path) == [1, 2]  # run.json still names epoch 1: it stays
    # The resumed run drops the unrecorded epoch 2 and keeps the recorded best.
    keep(tmp_path, tiny_net, [], None, start_epoch=2, best_epoch=1, recorded_best_epoch=1)
    assert list_checkpoints(tmp_path) == [1]
    # Once a newer best is recorded, the former one goes.
    keep(tmp_path, tiny_net, [0.9], None, start_epoch=2, best_epoch=1, best_val_accuracy=0.5)
    assert list_checkpoints(tmp_path) == [2]


# --- the metric log ---------------------------------------------------------------------------


def test_metrics_log_writes_a_line_per_epoch_and_continues_a_resumed_run(tmp_path: Path) -> None:
    log = MetricsLog()
    state = make_state(tmp_path)
    log.state = state
    log.on_train_begin(state)
    for epoch in (1, 2, 3):
        log.on_epoch_end(epoch, {"epoch": epoch, "val_accuracy": epoch / 10})
        assert len(read_metrics(tmp_path)) == epoch  # on disk at once
    log.on_train_end(state)
    # The run resumes from epoch 2: epoch 3's line is dropped, then written again.
    state = make_state(tmp_path, start_epoch=3, history=read_metrics(tmp_path, 2))
    log.on_train_begin(state)
    log.on_epoch_end(3, {"epoch": 3, "val_accuracy": 0.33})
    log.on_epoch_end(4, {"epoch": 4, "val_accuracy": 0.4})
    log.on_train_end(state)
    lines = (tmp_path / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert json.loads(lines[2])["val_accuracy"] == 0.33


def test_read_metrics_skips_torn_and_repeated_lines(tmp_path: Path) -> None:
    lines = ['{"epoch": 1, "a": 1}', '{"epoch": 2, "a": 2}', '{"epoch": 2, "a": 3}', '{"epo']
    (tmp_path / METRICS_FILE).write_text("\n".join(lines))
    assert read_metrics(tmp_path) == [{"epoch": 1, "a": 1}, {"epoch": 2, "a": 3}]
    assert read_metrics(tmp_path, last_epoch=1) == [{"epoch": 1, "a": 1}]
    (tmp_path / METRICS_FILE).write_text('{"epoch": 1}\n{"epoch": 3}\n')
    assert read_metrics(tmp_path) == [{"epoch": 1}]  # nothing after a gap


def test_epoch_line_in_sagemaker_style() -> None:
    logs = {"train_accuracy": 0.98123, "val_accuracy": 0.9721, "epoch_time": 12.34}
    line = format_epoch_line(3, logs)
    assert line == "Epoch[3] Train-accuracy=0.981 Validation-accuracy=0.972 Time cost=12.3"


# --- metrics ----------------------------------------------------------------------------------


def test_single_label_metrics_match_numpy() -> None:
    nd = mxnet().nd
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 50).astype(np.float32)
    losses = rng.uniform(size=50).astype(np.float32)
    metrics = Metrics(4, multi_label=False, top_k=2, per_class=True)
    for part in (slice(0, 32), slice(32, 50)):
        metrics.update(nd.array(logits[part]), nd.array(labels[part]), nd.array(losses[part]))
    metrics.update(nd.array(logits), nd.array(labels), nd.array(losses), count=0)  # padding
    found = metrics.read()
    predicted = logits.argmax(axis=1)
    assert found["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert found["loss"] == pytest.approx(losses.mean())
    top2 = np.argsort(-logits, axis=1)[:, :2]
    assert found["top_k_accuracy"] == pytest.approx(np.mean((top2 == labels[:, None]).any(1)))
    for k in range(4):
        hits = np.sum((predicted == k) & (labels == k))
        assert found["precision_per_class"][k] == pytest.approx(hits / np.sum(predicted == k))
        assert found["recall_per_class"][k] == pytest.approx(hits / np.sum(labels == k))


def test_multi_label_accuracy_is_the_mean_over_classes() -> None:
    nd = mxnet().nd
    logits = nd.array([[2.0, -1.0, 0.5], [-3.0, 1.0, -0.5], [1.0, 1.0, 1.0], [9.0, 9.0, 9.0]])
    labels = nd.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]])
    metrics = Metrics(3, multi_label=True, per_class=True)
    metrics.update(logits, labels, nd.ones(4), count=3)  # the last row is padding
    found = metrics.read()
    # per class right: [3, 2, 2] of 3 -> mean 7/9; every class right: row 1 only
    assert found["accuracy"] == pytest.approx(7 / 9)
    assert found["exact_match"] == pytest.approx(1 / 3)
    assert found["precision_per_class"] == pytest.approx([1.0, 0.5, 0.5])
    assert found["recall_per_class"] == pytest.approx([1.0, 1.0, 1.0])


def test_metrics_before_any_image() -> None:
    found = Metrics(2, multi_label=False).read()
    assert np.isnan(found["loss"]) and np.isnan(found["accuracy"])


def test_events_are_forwarded_as_typed_objects_and_batches_are_throttled() -> None:
    events: list[object] = []
    progress: list[tuple[int, int]] = []
    now = [100.0]  # the forwarder's clock, in seconds, moved by the test
    forwarder = EventForwarder(
        events.append, lambda done, total: progress.append((done, total)), clock=lambda: now[0]
    )
    forwarder.state = TrainingState(
        run_dir=Path("run"),
        epochs=2,
        batches_per_epoch=3,
        batch_size=4,
        class_names=("a", "b"),
        hyperparameters=HyperParameters(),
    )
    forwarder.on_train_begin(forwarder.state)
    for batch, seconds in ((1, 100.0), (2, 100.05), (3, 100.09)):  # three logging steps in 0.1 s
        now[0] = seconds
        forwarder.on_batch_end(batch, {"epoch": 1, "batch": batch, "loss": 1.0 / batch})
    now[0] = 100.3
    forwarder.on_batch_end(4, {"epoch": 2, "batch": 1})  # not a logging step: no loss read
    forwarder.state.best_epoch = 1
    forwarder.on_epoch_end(1, {"val_accuracy": 0.5})
    forwarder.on_checkpoint(Path("run/image-classification-0001.params"))
    forwarder.on_batch_end(5, {"epoch": 2, "batch": 2, "loss": 0.1, "learning_rate": 0.01})

    assert [type(event) for event in events] == [
        TrainingBegan,
        BatchDone,
        EpochDone,
        CheckpointSaved,
        BatchDone,
    ]
    began = events[0]
    assert began.class_names == ("a", "b") and (began.epochs, began.start_epoch) == (2, 1)
    assert [event.step for event in events if isinstance(event, BatchDone)] == [1, 5]
    assert events[2] == EpochDone(1, {"val_accuracy": 0.5, "epoch": 1}, best_epoch=1)
    assert events[-1] == BatchDone(5, 2, 2, 0.1, learning_rate=0.01, images_per_sec=None)
    assert progress == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6)]
