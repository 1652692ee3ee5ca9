"""The training loop end to end on tiny colour images (ResNet-20, 32 x 32, a few epochs)."""

from __future__ import annotations

import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from training_fixtures import (
    CLASS_NAMES,
    as_earlier_versions_trained,
    quick_hp,
    shared_colour_folder,
    shared_colour_records,
    write_colour_set,
    write_multi_label_set,
)

from imgcls_desktop.core.artifacts import ModelError, list_checkpoints
from imgcls_desktop.core.devices import DeviceError
from imgcls_desktop.core.hyperparams import HyperparameterError
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import Callback
from imgcls_desktop.core.training.iterators import val_iter
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult, train
from imgcls_desktop.core.training.pretrained import PretrainedWeightsMissing
from imgcls_desktop.core.training.run import RunError, RunStatus, read_metrics, read_run

EPOCH_KEYS = {
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_precision_per_class",
    "val_recall_per_class",
    "learning_rate",
    "images_per_sec",
    "epoch_time",
    "eta_seconds",
}


class Recorder(Callback):
    """Every event, in order, with its argument."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_train_begin(self, state):
        self.events.append(("train_begin", state))

    def on_batch_end(self, step, logs):
        self.events.append(("batch_end", (step, logs)))

    def on_epoch_end(self, epoch, logs):
        self.events.append(("epoch_end", (epoch, logs)))

    def on_checkpoint(self, path):
        self.events.append(("checkpoint", path))

    def on_train_end(self, state):
        self.events.append(("train_end", state))

    def of(self, kind: str) -> list[Any]:
        return [argument for event, argument in self.events if event == kind]


@pytest.fixture
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainingResult, Recorder]:
    """One 3-epoch run on the colour set, shared by the tests that only look at it."""
    recorder = Recorder()
    job = TrainingJob(
        quick_hp(epochs=3, top_k=2),
        shared_colour_folder(tmp_path_factory),
        tmp_path_factory.mktemp("trained") / "run",
    )
    return train(job, callbacks=[recorder]), recorder


def test_loss_falls_and_accuracy_rises(trained) -> None:
    result, recorder = trained
    epochs = [logs for _epoch, logs in recorder.of("epoch_end")]
    assert result.status is RunStatus.FINISHED and result.epochs_run == result.last_epoch == 3
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["train_accuracy"] > 0.9
    assert result.best_val_accuracy > 0.8  # chance is 1/3
    assert result.best_val_accuracy == max(logs["val_accuracy"] for logs in epochs)


def test_logs_have_every_key(trained) -> None:
    _result, recorder = trained
    for epoch, logs in recorder.of("epoch_end"):
        assert set(logs) == EPOCH_KEYS | {"val_top_k_accuracy"} and logs["epoch"] == epoch
        assert len(logs["val_precision_per_class"]) == len(logs["val_recall_per_class"]) == 3
        assert logs["val_top_k_accuracy"] >= logs["val_accuracy"]
    batches = recorder.of("batch_end")
    logged = [logs for _step, logs in batches if "loss" in logs]
    assert logged and all(
        set(logs) == {"epoch", "batch", "loss", "accuracy", "images_per_sec", "learning_rate"}
        for logs in logged
    )
    assert sum("loss" in logs for _step, logs in batches if logs["batch"] == 5) == 3  # epoch end


def test_callback_order_and_counts(trained) -> None:
    result, recorder = trained
    kinds = [event for event, _argument in recorder.events]
    assert kinds[0] == "train_begin" and kinds[-1] == "train_end"
    assert kinds.count("train_begin") == kinds.count("train_end") == 1
    assert kinds.count("batch_end") == 3 * 5  # 72 images in batches of 16
    assert [step for step, _logs in recorder.of("batch_end")] == list(range(1, 16))
    assert [epoch for epoch, _logs in recorder.of("epoch_end")] == [1, 2, 3]
    # Each epoch: its batches, then its checkpoint (when one is saved), then its end.
    epoch_ends = [i for i, kind in enumerate(kinds) if kind == "epoch_end"]
    assert all(kinds[i - 1] in ("batch_end", "checkpoint") for i in epoch_ends)
    checkpoints = recorder.of("checkpoint")
    assert 1 <= len(checkpoints) <= 3
    assert checkpoints[-1].name == f"image-classification-{result.best_epoch:04d}.params"


def test_the_run_folder(trained) -> None:
    result, recorder = trained
    run_dir = result.run_dir
    assert list_checkpoints(run_dir) == [result.best_epoch]  # only the best is kept
    for name in ("image-classification-symbol.json", "model-shapes.json", "preprocessing.json"):
        assert (run_dir / name).is_file()
    assert json.loads((run_dir / "classes.json").read_text()) == CLASS_NAMES
    hyperparameters = json.loads((run_dir / "hyperparameters.json").read_text())
    assert hyperparameters["num_classes"] == "3" and hyperparameters["epochs"] == "3"
    assert hyperparameters["num_training_samples"] == "72"
    info = read_run(run_dir)
    assert (info.status, info.last_completed_epoch, info.num_updates) == ("finished", 3, 15)
    assert (info.best_epoch, info.best_val_accuracy) == (
        result.best_epoch,
        result.best_val_accuracy,
    )
    assert sorted(p.name for p in (run_dir / "resume").iterdir()) == [
        "epoch-0003.optimizer.json",
        "epoch-0003.optimizer.params",
        "epoch-0003.params",
    ]
    logged = [logs for _epoch, logs in recorder.of("epoch_end")]
    assert read_metrics(run_dir) == json.loads(json.dumps(logged))


def test_the_saved_model_gives_probabilities_with_plain_mxnet(trained) -> None:
    result, _recorder = trained
    mx = mxnet()
    prefix = str(result.run_dir / "image-classification")
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, result.best_epoch)
    module = mx.mod.Module(symbol, data_names=["data"], label_names=["softmax_label"])
    module.bind(
        for_training=False,
        data_shapes=[("data", (16, 3, 32, 32))],
        label_shapes=[("softmax_label", (16,))],
    )
    module.set_params(arg_params, aux_params)
    data = read_run(result.run_dir).data
    right, remaining = 0, data.num_val
    for batch in val_iter(data, quick_hp(), 16):
        module.forward(mx.io.DataBatch([batch.data[0]]), is_train=False)
        probabilities = module.get_outputs()[0].asnumpy()[:remaining]
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        labels = batch.label[0].asnumpy()[:remaining]
        right += int(np.sum(probabilities.argmax(axis=1) == labels))
        remaining -= 16
    assert right / data.num_val == pytest.approx(result.best_val_accuracy)


def test_early_stopping_stops(colour_folder: Path, tmp_path: Path) -> None:
    hp = quick_hp(
        epochs=8,
        early_stopping=True,
        early_stopping_min_epochs=1,
        early_stopping_patience=1,
        early_stopping_tolerance=1.0,  # an improvement must double the accuracy
    )
    result = train(TrainingJob(hp, colour_folder, tmp_path / "run"))
    assert result.status is RunStatus.EARLY_STOPPED
    assert result.last_epoch < 8 and "early stopping" in (result.stop_reason or "")
    assert result.summary().startswith(f"Stopped early after epoch {result.last_epoch} of 8")
    assert read_run(tmp_path / "run").status == "early_stopped"


def test_two_cpu_contexts_records_and_a_checkpoint_every_epoch(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    records = shared_colour_records(tmp_path_factory)
    train_rec, val_rec = records / "dataset-train.rec", records / "dataset-val.rec"
    hp = quick_hp(epochs=2, checkpoint_frequency=1, kv_store="local")
    job = TrainingJob(hp, train_rec, tmp_path / "run", validation=val_rec, devices="cpu:0,cpu:1")
    result = train(job)
    assert result.status is RunStatus.FINISHED
    assert not (tmp_path / "run" / "data").exists()  # the records are read where they are
    assert list_checkpoints(tmp_path / "run") == [1, 2]
    assert read_run(tmp_path / "run").devices == "cpu:0,cpu:1"
    assert result.best_val_accuracy > 0.5


def test_a_stop_request_is_honoured_within_one_batch(colour_folder: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    class CancelInEpochTwo(Recorder):
        def on_batch_end(self, step, logs):
            super().on_batch_end(step, logs)
            if step == 7:  # epoch 2, batch 2
                cancel.set()

    recorder = CancelInEpochTwo()
    result = train(
        TrainingJob(quick_hp(epochs=3), colour_folder, tmp_path / "run"),
        callbacks=[recorder],
        cancel=cancel,
    )
    assert [step for step, _logs in recorder.of("batch_end")] == list(range(1, 8))
    assert result.status is RunStatus.STOPPED and result.stop_reason == "stopped by the user"
    assert (result.epochs_run, result.last_epoch) == (1, 1)
    assert not result.completed
    assert result.summary().startswith(
        "Stopped after epoch 1 of 3 (stopped by the user); best validation accuracy"
    )
    assert recorder.events[-1][0] == "train_end"
    info = read_run(tmp_path / "run")
    assert (info.status, info.last_completed_epoch) == ("stopped", 1)
    assert len(read_metrics(tmp_path / "run")) == 1


def test_a_callback_can_stop_the_run(colour_folder: Path, tmp_path: Path) -> None:
    class StopAfterOneEpoch(Callback):
        def on_epoch_end(self, epoch, logs):
            self.state.request_stop("enough")

    result = train(
        TrainingJob(quick_hp(epochs=3), colour_folder, tmp_path / "run"),
        callbacks=[StopAfterOneEpoch()],
    )
    assert (result.status, result.stop_reason, result.last_epoch) == (
        RunStatus.STOPPED,
        "enough",
        1,
    )


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"mini_batch_size": 500, "top_k": 4}, HyperparameterError, "mini_batch_size.*\n.*top_k"),
        ({"precision_dtype": "float16"}, DeviceError, "float16 needs a GPU"),
        (
            {"use_pretrained_model": 1, "num_layers": 18, "image_shape": "3,224,224"},
            PretrainedWeightsMissing,
            r"imgcls weights download resnet18_v1",
        ),
    ],
)
def test_invalid_jobs_are_refused_before_any_work(
    colour_folder: Path, tmp_path: Path, changes: dict, error: type, message: str
) -> None:
    job = TrainingJob(quick_hp(**changes), colour_folder, tmp_path / "run")
    with pytest.raises(error, match=message):
        train(job)
    assert not (tmp_path / "run").exists()


def test_a_new_run_needs_a_new_or_empty_folder(
    trained, colour_folder: Path, tmp_path: Path
) -> None:
    result, _recorder = trained
    with pytest.raises(RunError, match="already holds a training run"):
        train(TrainingJob(quick_hp(), colour_folder, result.run_dir))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty"):
        train(TrainingJob(quick_hp(), colour_folder, tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_multi_label(tmp_path: Path) -> None:
    lst = write_multi_label_set(tmp_path / "data", per_combination=10)
    recorder = Recorder()
    hp = quick_hp(epochs=3, multi_label=1, use_weighted_loss=1, mini_batch_size=8)
    result = train(TrainingJob(hp, lst, tmp_path / "run"), callbacks=[recorder])
    last = recorder.of("epoch_end")[-1][1]
    assert set(last) == EPOCH_KEYS | {"train_exact_match", "val_exact_match"}
    assert last["val_accuracy"] >= last["val_exact_match"]
    assert result.best_val_accuracy > 0.75  # mean over the classes; all-ones scores 0.57
    prefix = str(tmp_path / "run" / "image-classification")
    symbol, *_ = mxnet().model.load_checkpoint(prefix, result.best_epoch)
    assert "LogisticRegressionOutput" in symbol.tojson()  # per-class probabilities


def test_transfer_learning_swaps_the_head(tmp_path: Path) -> None:
    mx = mxnet()
    zoo = mx.gluon.model_zoo.vision.resnet18_v1()
    zoo.initialize(mx.init.Xavier())
    zoo(mx.nd.zeros((1, 3, 224, 224)))
    weights = tmp_path / "resnet18_v1.params"
    zoo.save_parameters(str(weights))
    root = write_colour_set(tmp_path / "images", per_class=4, size=(224, 224))
    hp = quick_hp(
        num_layers=18,
        image_shape="3,224,224",
        use_pretrained_model=1,
        epochs=1,
        mini_batch_size=3,
        learning_rate=1e-6,
        momentum=0,
        weight_decay=0,
    )
    recorder = Recorder()
    result = train(
        TrainingJob(hp, root, tmp_path / "run", pretrained=weights), callbacks=[recorder]
    )
    assert result.status is RunStatus.FINISHED
    [state] = recorder.of("train_begin")
    assert state.notes == [
        f"Started from {weights.name}: 40 layers loaded, new head output for 3 classes"
    ]
    trained = mx.nd.load(str(tmp_path / "run" / "resume" / "epoch-0001.params"))
    original = mx.nd.load(str(weights))
    assert trained["output.weight"].shape == (3, 512)  # the new head: 3 classes
    assert original["output.weight"].shape == (1000, 512)
    for key in ("features.0.weight", "features.7.1.body.3.weight"):
        assert np.allclose(trained[key].asnumpy(), original[key].asnumpy(), atol=1e-4)


def test_incremental_training_starts_from_a_base_model(
    trained, colour_folder: Path, tmp_path: Path
) -> None:
    base, _recorder = trained
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("image-classification-symbol.json", "model-shapes.json"):
            tar.add(base.run_dir / name, arcname=name)
        best = f"image-classification-{base.best_epoch:04d}.params"
        tar.add(base.run_dir / best, arcname=best)
    hp = quick_hp(epochs=1, learning_rate=1e-6, weight_decay=0)
    result = train(TrainingJob(hp, colour_folder, tmp_path / "run", base_model=archive))
    mx = mxnet()
    before = mx.nd.load(str(base.run_dir / best))
    after = mx.nd.load(str(tmp_path / "run" / "image-classification-0001.params"))
    key = next(k for k in before if k.endswith("conv0_weight"))
    assert np.allclose(before[key].asnumpy(), after[key].asnumpy(), atol=1e-4)
    assert result.best_val_accuracy > 0.8  # it starts where the base model ended


def test_a_base_model_of_another_depth_is_refused_or_its_depth_kept(
    trained, tmp_path: Path
) -> None:
    root = write_colour_set(tmp_path / "images", per_class=4, size=(24, 24))
    hp = quick_hp(num_layers=32, image_shape="3,24,24", mini_batch_size=4, epochs=1)
    with as_earlier_versions_trained():  # our Gluon ResNet: rebuilt from num_layers
        earlier = train(
            TrainingJob(quick_hp(epochs=1, mini_batch_size=4), root, tmp_path / "earlier")
        )
    with pytest.raises(
        ModelError, match="a ResNet-20 of this app, not a ResNet-32: set num_layers=20"
    ):
        train(TrainingJob(hp, root, tmp_path / "run", base_model=earlier.run_dir))
    assert not (tmp_path / "run").exists()

    base, _recorder = trained  # SageMaker's network: the network is the model's own
    recorder = Recorder()
    result = train(
        TrainingJob(hp, root, tmp_path / "run", base_model=base.run_dir), callbacks=[recorder]
    )
    assert result.status is RunStatus.FINISHED
    [began] = recorder.of("train_begin")
    assert any("ResNet-20" in line and "num_layers=32" in line for line in began.warnings)


@pytest.mark.parametrize(
    ("status", "last", "reason", "summary"),
    [
        (RunStatus.FINISHED, 60, None, "Finished all 60 epochs; best validation accuracy 0.900"),
        (
            RunStatus.STOPPED,
            9,
            "stopped by the user",
            "Stopped after epoch 9 of 60 (stopped by the user); best validation accuracy 0.900",
        ),
        (RunStatus.EARLY_STOPPED, 20, "early stopping", "Stopped early after epoch 20 of 60"),
        (RunStatus.STOPPED, 0, "stopped by the user", "Stopped before the first epoch ended"),
    ],
)
def test_the_summary_says_how_the_run_ended(status, last, reason, summary) -> None:
    """Issue 11: a run stopped at epoch 9 of 60 was announced as "Model trained"."""
    result = TrainingResult(
        status=status,
        run_dir=Path("run"),
        epochs_run=last,
        last_epoch=last,
        best_epoch=None if last == 0 else last,
        best_val_accuracy=None if last == 0 else 0.9,
        stop_reason=reason,
        warnings=(),
        epochs=60,
    )
    assert result.summary().startswith(summary)
    assert result.completed is (status is RunStatus.FINISHED)
    assert (last == 0) is result.summary().endswith("ended (stopped by the user).")
