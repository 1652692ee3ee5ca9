"""Resuming runs: after a stop, after a kill -9, after a failed epoch end, after the last epoch;
what may not change."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from training_fixtures import CLASS_NAMES, quick_hp, shared_colour_folder

from imgcls_desktop.core.artifacts import ModelError, list_checkpoints
from imgcls_desktop.core.hyperparams import DataFacts, HyperparameterError
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import Callback, TrainingState
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.run import (
    RunError,
    RunInfo,
    RunStatus,
    read_run,
    write_run,
)
from imgcls_desktop.core.training.standing import run_standing

BATCHES = 5  # 72 training images in batches of 16


class Recorder(Callback):
    """The state at the start, the steps and the epoch logs."""

    def __init__(self, cancel_at_step: int | None = None, cancel=None) -> None:
        self.cancel_at_step, self.cancel = cancel_at_step, cancel
        self.begin: TrainingState | None = None
        self.start_epoch = 0
        self.history_epochs: list[int] = []
        self.steps: list[int] = []
        self.epochs: dict[int, dict] = {}

    def on_train_begin(self, state):
        self.begin, self.start_epoch = state, state.start_epoch
        self.history_epochs = [logs["epoch"] for logs in state.history]

    def on_batch_end(self, step, logs):
        self.steps.append(step)
        if step == self.cancel_at_step:
            self.cancel.set()

    def on_epoch_end(self, epoch, logs):
        self.epochs[epoch] = logs


@pytest.fixture
def colour_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_folder(tmp_path_factory)


def stopped_run(folder: Path, run_dir: Path, stop_at_step: int, **changes) -> Recorder:
    """A run stopped by its cancel flag after batch ``stop_at_step``."""
    cancel = threading.Event()
    recorder = Recorder(stop_at_step, cancel)
    hp = quick_hp(epochs=3, **changes)
    result = train(TrainingJob(hp, folder, run_dir), callbacks=[recorder], cancel=cancel)
    assert result.status is RunStatus.STOPPED
    return recorder


def resume(folder: Path, run_dir: Path, devices: str | None = None, **changes) -> Recorder:
    recorder = Recorder()
    job = TrainingJob(quick_hp(**changes), folder, run_dir, devices=devices, resume=True)
    result = train(job, callbacks=[recorder])
    assert result.status is RunStatus.FINISHED
    return recorder


def assert_contiguous_history(run_dir: Path, epochs: int) -> None:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, epochs + 1))
    info = read_run(run_dir)
    assert (info.status, info.last_completed_epoch) == ("finished", epochs)
    assert sorted(p.name for p in (run_dir / "resume").iterdir()) == [
        f"epoch-{epochs:04d}.optimizer.json",
        f"epoch-{epochs:04d}.optimizer.params",
        f"epoch-{epochs:04d}.params",
    ]
    assert list_checkpoints(run_dir) == [info.best_epoch]


def test_a_stopped_run_resumes_where_it_stopped(colour_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Stopped in epoch 2, batch 2, with the learning rate cut after epoch 1.
    first = stopped_run(colour_folder, run_dir, BATCHES + 2, lr_scheduler_step="1")
    assert first.epochs.keys() == {1} and first.epochs[1]["learning_rate"] == 0.001
    second = resume(colour_folder, run_dir, epochs=3, lr_scheduler_step="1")
    assert (second.start_epoch, second.history_epochs) == (2, [1])
    assert second.epochs.keys() == {2, 3}
    assert second.steps == list(range(BATCHES + 1, 3 * BATCHES + 1))  # the step count goes on
    # The schedule went on from where it was: the rate is cut after epoch 1, once.
    assert second.epochs[2]["learning_rate"] == pytest.approx(0.0001)
    assert second.epochs[3]["learning_rate"] == pytest.approx(0.0001)
    assert read_run(run_dir).num_updates == 3 * BATCHES
    assert_contiguous_history(run_dir, 3)


def test_a_run_stopped_in_its_first_epoch_starts_again(colour_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = stopped_run(colour_folder, run_dir, 2)
    assert not first.epochs and read_run(run_dir).last_completed_epoch == 0
    assert not (run_dir / "metrics.jsonl").read_text()
    second = resume(colour_folder, run_dir, epochs=2)
    assert second.start_epoch == 1 and second.steps[0] == 1
    assert_contiguous_history(run_dir, 2)


def test_a_finished_run_trains_on_to_more_epochs(colour_folder: Path, tmp_path: Path) -> None:
    first_place, run_dir = tmp_path / "run", tmp_path / "moved"
    train(TrainingJob(quick_hp(epochs=2), colour_folder, first_place))
    first_place.rename(run_dir)  # a run folder may be moved
    with pytest.raises(RunError, match="already trained 2 epochs; set epochs higher"):
        train(TrainingJob(quick_hp(epochs=2), colour_folder, run_dir, resume=True))
    with pytest.raises(RunError, match="learning_rate, mini_batch_size differ"):
        changed = quick_hp(epochs=3, learning_rate=0.01, mini_batch_size=8)
        train(TrainingJob(changed, colour_folder, run_dir, resume=True))
    # On two devices now: the optimizer state moves to the key-value store.
    later = resume(colour_folder, run_dir, devices="cpu:0,cpu:1", epochs=3)
    assert later.epochs.keys() == {3} and later.history_epochs == [1, 2]
    assert json.loads((run_dir / "hyperparameters.json").read_text())["epochs"] == "3"
    assert_contiguous_history(run_dir, 3)


def test_only_a_run_folder_resumes(colour_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="not a training run folder"):
        train(TrainingJob(quick_hp(), colour_folder, tmp_path, resume=True))


KILLED_RUN = """
import sys
from pathlib import Path
from training_fixtures import quick_hp
from imgcls_desktop.core.training.callbacks import Callback
from imgcls_desktop.core.hyperparams import DataFacts, HyperparameterError
from imgcls_desktop.core.training.loop import TrainingJob, train

class WaitsInEpochTwo(Callback):
    def on_batch_end(self, step, logs):
        if (logs["epoch"], logs["batch"]) == (2, 2):
            print("in epoch 2", flush=True)
            sys.stdin.read()  # until killed

job = TrainingJob(quick_hp(epochs=100), Path(sys.argv[1]), Path(sys.argv[2]))
train(job, callbacks=[WaitsInEpochTwo()])
"""


def test_a_run_killed_mid_epoch_resumes(colour_folder: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(colour_folder), str(run_dir)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout.readline() == "in epoch 2\n", "the training process ended"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdin.close()
        process.stdout.close()
    info = read_run(run_dir)
    assert info.status == "running"  # as the kill left it
    done = info.last_completed_epoch
    assert done == 1  # killed in epoch 2
    if info.best_epoch is not None:  # the best checkpoint is complete and loadable
        prefix = str(run_dir / "image-classification")
        mxnet().model.load_checkpoint(prefix, info.best_epoch)
    later = resume(colour_folder, run_dir, epochs=done + 1)
    assert later.start_epoch == done + 1 and later.epochs.keys() == {done + 1}
    assert_contiguous_history(run_dir, done + 1)


class FailsAtEpochEnd(Callback):
    """At the end of ``epoch``, a new best (its checkpoint saved by then), raises ``error``, as
    the command line's printer does on a closed pipe, or a second Ctrl-C; then ``on_train_end``
    raises ``end_error`` (a failing clean-up, or yet another Ctrl-C)."""

    def __init__(
        self, epoch: int, error: BaseException, end_error: BaseException | None = None
    ) -> None:
        self.epoch, self.error, self.end_error = epoch, error, end_error
        self.checkpoints_at_failure: list[int] = []

    def on_batch_end(self, step, logs):
        if logs["epoch"] == self.epoch:  # any accuracy beats this: the epoch becomes the best
            self.state.best_val_accuracy = -1.0

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            assert self.state.best_epoch == epoch
            self.checkpoints_at_failure = list_checkpoints(self.state.run_dir)
            raise self.error

    def on_train_end(self, state):
        if self.end_error is not None:
            raise self.end_error


class EndRecorder(Callback):
    def __init__(self) -> None:
        self.ended = False

    def on_train_end(self, state):
        self.ended = True


def assert_best_model_loads(run_dir: Path) -> None:
    info = read_run(run_dir)
    assert (run_dir / f"image-classification-{info.best_epoch:04d}.params").is_file()
    assert open_model(run_dir).epoch == info.best_epoch
    mxnet().model.load_checkpoint(str(run_dir / "image-classification"), info.best_epoch)


@pytest.mark.parametrize(
    ("error", "end_error", "raised", "status"),
    [
        (BrokenPipeError(32, "Broken pipe"), None, BrokenPipeError, "failed"),
        (KeyboardInterrupt(), None, KeyboardInterrupt, "stopped"),
        (BrokenPipeError(32, "Broken pipe"), RuntimeError("clean-up"), BrokenPipeError, "failed"),
        (KeyboardInterrupt(), KeyboardInterrupt(), KeyboardInterrupt, "stopped"),
    ],
    ids=["broken-pipe", "ctrl-c", "broken-pipe-then-failed-clean-up", "ctrl-c-twice"],
)
def test_a_failed_epoch_end_keeps_the_recorded_best_model(
    colour_folder: Path, tmp_path: Path, error, end_error, raised, status
) -> None:
    run_dir = tmp_path / "run"
    failing, recorder = FailsAtEpochEnd(2, error, end_error), EndRecorder()
    with pytest.raises(raised) as caught:
        train(
            TrainingJob(quick_hp(epochs=3), colour_folder, run_dir), callbacks=[failing, recorder]
        )
    # A failing clean-up hides nothing; a Ctrl-C during it is what the user asked for.
    interrupted_again = isinstance(end_error, KeyboardInterrupt)
    assert caught.value is (end_error if interrupted_again else error)
    assert recorder.ended is not interrupted_again  # the other callbacks' clean-up runs
    assert failing.checkpoints_at_failure == [1, 2]  # epoch 2 was saved as the new best
    info = read_run(run_dir)
    assert (info.status, info.last_completed_epoch, info.best_epoch) == (status, 1, 1)
    assert_best_model_loads(run_dir)  # epoch 1, not the unrecorded epoch 2
    assert not (run_dir / "run.lock").exists()
    # Resuming drops the unrecorded epoch and trains on; the best model is there throughout.
    later = resume(colour_folder, run_dir, epochs=3)
    assert later.start_epoch == 2 and later.history_epochs == [1]
    assert_contiguous_history(run_dir, 3)
    assert_best_model_loads(run_dir)


def test_a_run_folder_never_opens_an_unrecorded_epoch_as_its_model(
    colour_folder: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(BrokenPipeError):
        failing = FailsAtEpochEnd(2, BrokenPipeError(32, "Broken pipe"))
        train(TrainingJob(quick_hp(epochs=3), colour_folder, run_dir), callbacks=[failing])
    (run_dir / "image-classification-0001.params").unlink()  # damaged by hand, or by an old bug
    with pytest.raises(ModelError, match=r"names epoch 1 as the best model, but .*0001\.params is"):
        open_model(run_dir)
    assert open_model(run_dir / "image-classification-0002.params").epoch == 2  # if asked for


class _CreatesAFile:
    """Unpickling this creates ``path``: what a crafted ``.states`` file can do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickled_state_from_an_earlier_version_is_never_run(
    colour_folder: Path, tmp_path: Path
) -> None:
    run_dir, planted = tmp_path / "shared-run", tmp_path / "planted-by-the-states-file"
    train(TrainingJob(quick_hp(epochs=1), colour_folder, run_dir))
    # The folder as an earlier version left it, with a hostile optimizer state.
    for path in (run_dir / "resume").glob("epoch-0001.optimizer.*"):
        path.unlink()
    (run_dir / "resume" / "epoch-0001.states").write_bytes(pickle.dumps(_CreatesAFile(planted)))

    recorder = Recorder()
    job = TrainingJob(quick_hp(epochs=2), colour_folder, run_dir, resume=True)
    result = train(job, callbacks=[recorder])

    assert not planted.exists()
    assert result.status is RunStatus.FINISHED and recorder.epochs.keys() == {2}
    (warning,) = [w for w in result.warnings if "epoch-0001.states" in w]
    assert "not read" in warning and "fresh optimizer state" in warning
    assert recorder.begin is not None and "epoch-0001.states" in " ".join(recorder.begin.warnings)
    # The optimizer's update count (the learning-rate schedule's clock) goes on.
    record = json.loads((run_dir / "resume" / "epoch-0002.optimizer.json").read_text())
    assert record["num_update"] == 2 * BATCHES
    assert_contiguous_history(run_dir, 2)


def test_resuming_keeps_each_optimizers_state(colour_folder: Path, tmp_path: Path) -> None:
    for optimizer in ("sgd", "nag", "adam", "rmsprop"):
        run_dir = tmp_path / optimizer
        changes = {"optimizer": optimizer, "lr_scheduler_step": "1"}
        train(TrainingJob(quick_hp(epochs=1, **changes), colour_folder, run_dir))
        later = resume(colour_folder, run_dir, epochs=2, **changes)
        assert later.epochs[2]["learning_rate"] == pytest.approx(0.0001)
        record = json.loads((run_dir / "resume" / "epoch-0002.optimizer.json").read_text())
        assert (record["optimizer"], record["num_update"]) == (optimizer, 2 * BATCHES)
        assert_contiguous_history(run_dir, 2)


class StopsAtEpochEnd(Callback):
    """Asks to stop at the end of ``epoch``, as a closed output does."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            self.state.request_stop("the output was closed")


def test_a_stop_asked_at_the_last_epoch_end_finishes_the_run(
    colour_folder: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    job = TrainingJob(quick_hp(epochs=2), colour_folder, run_dir)
    result = train(job, callbacks=[StopsAtEpochEnd(2)])
    assert (result.status, result.stop_reason) == (RunStatus.FINISHED, None)
    assert read_run(run_dir).stop_reason is None
    assert_contiguous_history(run_dir, 2)


def test_a_run_killed_after_recording_its_last_epoch_resumes_to_finished(
    colour_folder: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    train(TrainingJob(quick_hp(epochs=2), colour_folder, run_dir))
    # What a kill between the last epoch's commit and the end leaves: run.json still says
    # running, and the previous epoch's resume files are not yet deleted.
    info = read_run(run_dir)
    info.status = RunStatus.RUNNING
    write_run(run_dir, info)
    for path in list((run_dir / "resume").iterdir()):
        shutil.copyfile(path, path.with_name(path.name.replace("0002", "0001")))
    recorder = resume(colour_folder, run_dir, epochs=2)
    assert recorder.start_epoch == 3 and recorder.epochs == {}  # nothing trained again
    assert_contiguous_history(run_dir, 2)


def test_a_start_killed_before_its_first_run_json_starts_again(
    colour_folder: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("classes.json", "hyperparameters.json", "preprocessing.json"):
        (run_dir / name).write_text("{}")  # written by the killed start before run.json
    (run_dir / ".run.json.0123abcd.tmp").write_text("{")
    train(TrainingJob(quick_hp(epochs=1), colour_folder, run_dir))
    assert read_run(run_dir).status == "finished"
    assert json.loads((run_dir / "classes.json").read_text()) == list(CLASS_NAMES)
    assert not list(run_dir.glob(".*"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "classes.json").write_text("{}")
    (mine / "notes.txt").write_text("not the app's")
    with pytest.raises(RunError, match="is not empty"):
        train(TrainingJob(quick_hp(epochs=1), colour_folder, mine))
    assert (mine / "classes.json").read_text() == "{}"


def test_a_stopped_run_says_where_it_stopped_and_resumes_to_its_own_end(
    colour_folder: Path, tmp_path: Path
) -> None:
    """Issue 11: a run stopped at epoch 1 of 3 was announced as "Model trained"; Resume must
    continue it with its own settings and refuse a finished run, saying why."""
    run = tmp_path / "run"
    stopped_run(colour_folder, run, stop_at_step=BATCHES + 2)  # during epoch 2
    standing = run_standing(run)
    assert standing.status == "stopped at epoch 1 of 3" and standing.can_resume
    job = TrainingJob.resume_of(run)
    assert (job.resume, job.output, job.train, job.hyperparameters.epochs) == (
        True,
        run,
        colour_folder,
        3,
    )
    result = train(job)
    assert result.completed and result.summary().startswith("Finished all 3 epochs; best")
    finished = run_standing(run)
    assert finished.status == "finished (3 epochs)" and not finished.can_resume
    assert "finished all its 3 epochs" in finished.resume_blocker
    raised = TrainingJob.resume_of(run, ["epochs=4"])  # the one rule: epochs may be raised
    assert raised.hyperparameters.epochs == 4
    with pytest.raises(RunError, match="num_layers differ from the run's"):
        TrainingJob.resume_of(run, ["num_layers=32"])


def test_an_interrupted_or_damaged_run_is_described_and_a_folder_without_a_run_refused(
    tmp_path: Path,
) -> None:
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    write_run(interrupted, RunInfo(status="running", epochs=60, train="x", last_completed_epoch=9))
    standing = run_standing(interrupted)
    assert standing.status == "interrupted at epoch 9 of 60" and standing.can_resume
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "run.json").write_text("{")
    assert run_standing(damaged).status == "damaged"
    assert "damaged" in run_standing(damaged).resume_blocker
    with pytest.raises(RunError, match="not a training run folder"):
        TrainingJob.resume_of(tmp_path / "empty")


def test_a_new_job_refuses_a_folder_holding_a_run_and_settings_unfit_for_the_data(
    colour_folder: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_run(run, RunInfo(status="finished", epochs=2, train=str(colour_folder)))
    with pytest.raises(RunError, match="already holds a training run"):
        TrainingJob.new(quick_hp(), colour_folder, run)
    facts = DataFacts(num_classes=3, num_training_samples=8)
    with pytest.raises(HyperparameterError, match="mini_batch_size"):
        TrainingJob.new(quick_hp(), colour_folder, tmp_path / "new", data_facts=facts)
    job = TrainingJob.new(quick_hp(), colour_folder, tmp_path / "new")
    assert (job.output, job.resume) == (tmp_path / "new", False)
