"""The training loop: SageMaker's image-classification training, on this machine.

:func:`train` runs a :class:`TrainingJob` and reports through callbacks
(:mod:`.callbacks`). It validates everything it can before any work, prepares the data
(:mod:`.packing`), trains a ResNet (:mod:`.network`) with a Gluon ``Trainer`` on one or more
devices (each batch split between them), validates after every epoch, and keeps the run
folder (:mod:`.run`) resumable after every epoch.

Logs. ``on_batch_end(step, logs)``: always ``epoch`` and ``batch`` (1-based, within the
epoch); on logging steps (every 20 batches, every 0.5 s and the epoch's last batch, since
reading a value from MXNet waits for the computation) also ``loss`` (mean over the batches
since the previous logging step), ``accuracy`` (running, over the epoch so far),
``images_per_sec`` and ``learning_rate``. ``on_epoch_end(epoch, logs)``: ``epoch``,
``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``,
``val_top_k_accuracy`` (with ``top_k``), ``train_exact_match`` / ``val_exact_match``
(multi-label), ``val_precision_per_class``, ``val_recall_per_class`` (lists in class
order), ``learning_rate``, ``images_per_sec``, ``epoch_time`` and ``eta_seconds`` (seconds).
Multi-label accuracy is SageMaker's: the mean over classes of each class's accuracy at a
probability threshold of 0.5.

A stop (the cancel flag, or ``state.request_stop``) is honoured after the current batch;
the unfinished epoch is dropped and the run resumes from the last completed one.

Distributed (``kv_store=dist_sync|dist_async`` in a process launched as a worker, see
:mod:`.cluster`): :func:`prepare_run` writes the run folder in the launching process, each
worker resumes it on its shard, rank 0 alone locks, validates and writes, and the workers
stop together after an epoch (rank 0's decision). Not launched, those stores train here as
``device`` (validation warns).

One process at a time trains a run folder: :func:`train` holds its lock (:mod:`.lock`) from
before anything in the folder changes until it returns; a resume first removes the temporary
files of atomic writes a killed run left there (a new run's folder holds none: it must be
empty). A failure (a callback raising, Ctrl-C) marks the
run failed or stopped in ``run.json`` as of the last committed epoch, whose best checkpoint
stays on disk; every callback's ``on_train_end`` still runs, and the original error is the
one raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgcls_desktop.core.artifacts import ModelError, save_checkpoint
from imgcls_desktop.core.atomic import (
    atomic_write_json,
    is_leftover_temporary,
    remove_leftover_temporaries,
)
from imgcls_desktop.core.dataset.recordio_export import ExportError
from imgcls_desktop.core.dataset.samples import DatasetError
from imgcls_desktop.core.devices import DeviceError, parse_devices
from imgcls_desktop.core.hyperparams import (
    DISTRIBUTED_KV_STORES,
    DataFacts,
    HyperparameterError,
    HyperParameters,
    apply_overrides,
    load_hyperparameters,
    save_hyperparameters,
)
from imgcls_desktop.core.jobs import CancelFlag, ProgressFn, no_progress
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import (
    Callback,
    CheckpointKeeper,
    EarlyStopping,
    Logs,
    MetricsLog,
    TrainingState,
)
from imgcls_desktop.core.training.cluster import Cluster, check_distributed
from imgcls_desktop.core.training.data import DATA_FOLDER, TrainingData, inference_preprocessing
from imgcls_desktop.core.training.head import HeadInputs, head_inputs, trained_parameters
from imgcls_desktop.core.training.iterators import train_iter, val_iter
from imgcls_desktop.core.training.lock import LOCK_FILE, RunLock
from imgcls_desktop.core.training.metrics import Metrics
from imgcls_desktop.core.training.network import fresh_initializer
from imgcls_desktop.core.training.optimizers import create_optimizer
from imgcls_desktop.core.training.packing import prepare_data
from imgcls_desktop.core.training.run import (
    CLASSES_FILE,
    HYPERPARAMETERS_FILE,
    PREPROCESSING_FILE,
    RESUME_FOLDER,
    RunError,
    RunInfo,
    RunStatus,
    is_run_folder,
    load_resume_state,
    prune_resume_state,
    read_metrics,
    read_run,
    save_resume_state,
    write_run,
)
from imgcls_desktop.core.training.starting_point import NETWORK_FILE, StartingPoint

TRAINING_ERRORS: tuple[type[Exception], ...] = (
    HyperparameterError,
    DatasetError,
    ExportError,
    DeviceError,
    RunError,
    ModelError,
)
"""Errors whose message is meant for the user as it is (no traceback needed)."""

LOG_EVERY_BATCHES = 20
LOG_EVERY_SECONDS = 0.5
# What may change when a run is resumed; everything else must stay as the run began.
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "early_stopping",
        "early_stopping_min_epochs",
        "early_stopping_patience",
        "early_stopping_tolerance",
        "checkpoint_frequency",
        "top_k",
    }
)
# What a start writes before its first run.json (the commit point of a new run).
_UNCOMMITTED_START = frozenset(
    {DATA_FOLDER, LOCK_FILE, CLASSES_FILE, HYPERPARAMETERS_FILE, PREPROCESSING_FILE, NETWORK_FILE}
)


@dataclass
class TrainingJob:
    """What to train: hyperparameters, data sources, the run folder and where to start.

    ``resume`` continues the run in ``output``; ``base_model`` (a run folder, a SageMaker
    ``model.tar.gz``, an MXNet checkpoint: see :mod:`.starting_point`) starts from an
    earlier model, with the same or another number of classes;
    ``pretrained`` names the ImageNet weights file for ``use_pretrained_model=1`` (default:
    MXNet's model cache). ``devices`` as :func:`~imgcls_desktop.core.devices.parse_devices`.
    """

    hyperparameters: HyperParameters
    train: Path
    output: Path
    validation: Path | None = None
    devices: str | None = None
    resume: bool = False
    base_model: Path | None = None
    pretrained: Path | None = None
    seed: int = 0

    @classmethod
    def new(
        cls,
        hyperparameters: HyperParameters,
        train: Path,
        output: Path,
        *,
        validation: Path | None = None,
        devices: str | None = None,
        base_model: Path | None = None,
        pretrained: Path | None = None,
        data_facts: DataFacts | None = None,
    ) -> TrainingJob:
        """A new run in ``output``, checked against what reading the data found.

        Raises :class:`HyperparameterError` for settings that cannot train this data, and
        :class:`RunError` when ``output`` already holds a run or other files.
        """
        hyperparameters.validate(data_facts)
        _check_new_run_folder(Path(output))
        return cls(
            hyperparameters=hyperparameters,
            train=Path(train),
            output=Path(output),
            validation=validation,
            devices=devices,
            base_model=base_model,
            pretrained=pretrained,
        )

    @classmethod
    def resume_of(
        cls, run_dir: Path, overrides: Sequence[str] = (), *, devices: str | None = None
    ) -> TrainingJob:
        """Continue the run in ``run_dir`` with its own data, seed and settings.

        ``overrides`` are ``NAME=VALUE`` assignments; only :data:`RESUMABLE_CHANGES` may
        differ from the run's (e.g. ``epochs`` raised to train on). ``devices`` default to
        the run's. Raises :class:`RunError` or :class:`HyperparameterError` saying why not.
        """
        run_dir = Path(run_dir)
        info = read_run(run_dir)
        saved = load_hyperparameters(run_dir / HYPERPARAMETERS_FILE)
        hp = apply_overrides(saved, overrides)
        _check_resumable_changes(saved, hp)
        return cls(
            hyperparameters=hp,
            train=Path(info.train),
            output=run_dir,
            validation=Path(info.validation) if info.validation else None,
            devices=devices or info.devices,
            resume=True,
            seed=info.seed,
        )


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended: ``status`` (finished, stopped or early_stopped), epochs completed in
    this call and overall (of ``epochs``), the best epoch and its validation accuracy."""

    status: RunStatus
    run_dir: Path
    epochs_run: int
    last_epoch: int
    best_epoch: int | None
    best_val_accuracy: float | None
    stop_reason: str | None
    warnings: tuple[str, ...]
    epochs: int

    @property
    def completed(self) -> bool:
        """True when the run trained all its epochs (not stopped, not stopped early)."""
        return self.status is RunStatus.FINISHED

    def summary(self) -> str:
        """How the run ended, in one line, e.g. "Stopped after epoch 9 of 60 (stopped by the
        user); best validation accuracy 0.812 at epoch 8."."""
        reason = f" ({self.stop_reason})" if self.stop_reason else ""
        if self.completed:
            ended = f"Finished all {self.epochs} epochs" if self.epochs > 1 else "Finished"
        elif self.last_epoch == 0:
            ended = f"Stopped before the first epoch ended{reason}"
        elif self.status is RunStatus.EARLY_STOPPED:
            ended = f"Stopped early after epoch {self.last_epoch} of {self.epochs}{reason}"
        else:
            ended = f"Stopped after epoch {self.last_epoch} of {self.epochs}{reason}"
        if self.best_val_accuracy is None:
            return f"{ended}."
        return (
            f"{ended}; best validation accuracy {self.best_val_accuracy:.3f} "
            f"at epoch {self.best_epoch}."
        )


def train(
    job: TrainingJob,
    *,
    callbacks: Sequence[Callback] = (),
    cancel: CancelFlag | None = None,
    progress: ProgressFn = no_progress,
) -> TrainingResult:
    """Run (or resume) a training job; ``progress`` reports the data preparation.

    Raises one of :data:`TRAINING_ERRORS` before any work when the job cannot run (every
    hyperparameter problem at once, or :class:`~.lock.RunLockedError` when another process
    trains the folder), or :class:`~imgcls_desktop.core.jobs.Cancelled` when cancelled while
    the data is prepared. Once training started, a cancel or a stop ends it with a resumable
    run folder and a result.
    """
    cluster = Cluster.join(job.hyperparameters)
    if cluster is not None and not job.resume:
        raise RunError("a distributed worker continues a prepared run: start it with --launch")
    lock = RunLock(Path(job.output))
    try:
        if job.resume:
            session = _Session.resume(job, lock, progress, cancel, cluster)
        else:
            session = _Session.create(job, lock, progress, cancel)
        return session.run(callbacks, cancel)
    finally:
        lock.release()


def prepare_run(
    job: TrainingJob, *, progress: ProgressFn = no_progress, cancel: CancelFlag | None = None
) -> Path:
    """Check ``job`` for distributed training and, for a new run, write its run folder and
    packed data without training (status stopped at epoch 0): what launched workers resume.

    Raises as :func:`train` does before any work.
    """
    hp = job.hyperparameters
    check_distributed(hp, parse_devices(job.devices))
    if job.resume:
        info = read_run(job.output)
        if not info.can_continue(hp.epochs):
            raise RunError(
                f"{job.output} has already trained {info.last_completed_epoch} epochs; set "
                "epochs higher to train on"
            )
        return Path(job.output)
    lock = RunLock(Path(job.output))
    try:
        session = _Session.create(job, lock, progress, cancel)
        session.info.status, session.info.stop_reason = RunStatus.STOPPED, "not started yet"
        write_run(session.run_dir, session.info)
    finally:
        lock.release()
    return session.run_dir


def result_of_run(run_dir: Path, start_epoch: int) -> TrainingResult:
    """How the run in ``run_dir`` ended, read from its ``run.json`` (a distributed run's)."""
    info = read_run(run_dir)
    return TrainingResult(
        status=info.status,
        run_dir=Path(run_dir),
        epochs_run=info.last_completed_epoch - start_epoch + 1,
        last_epoch=info.last_completed_epoch,
        best_epoch=info.best_epoch,
        best_val_accuracy=info.best_val_accuracy,
        stop_reason=info.stop_reason,
        warnings=(),
        epochs=info.epochs,
    )


class _Session:
    """One call of :func:`train`: the network, trainer and run folder being trained."""

    def __init__(
        self,
        job: TrainingJob,
        hp: HyperParameters,
        data: TrainingData,
        info: RunInfo,
        warnings: list[str],
        start: StartingPoint,
        cluster: Cluster | None = None,
    ) -> None:
        mx = mxnet()
        self.job = job
        self.cluster = cluster
        self.writes = cluster is None or cluster.writes
        self.hp = hp
        self.data = data
        self.info = info
        self.warnings = warnings
        self.notes: list[str] = []
        self.start = start
        self.run_dir = Path(job.output)
        self.contexts = parse_devices(job.devices)
        self.batch_size = hp.mini_batch_size
        self.batches_per_epoch = math.ceil(data.num_train / (self.batch_size * self._workers()))
        self.dtype = hp.precision_dtype
        mx.random.seed(job.seed)
        self.net = start.build_network(hp, data.multi_label)
        self.net.initialize(fresh_initializer(), ctx=self.contexts)
        if self.dtype != "float32":
            self.net.cast(self.dtype)
        for context in self.contexts:  # gives every parameter its shape
            self.net(mx.nd.zeros((1, *hp.shape), ctx=context, dtype=self.dtype))
        self.net.hybridize(static_alloc=True, static_shape=True)
        optimizer_params = _optimizer_params(hp, self.batches_per_epoch)
        if cluster is None:
            self.trainer = mx.gluon.Trainer(
                trained_parameters(self.net, hp),
                create_optimizer(hp.optimizer, optimizer_params),
                kvstore=_kv_store(hp),
            )
        else:
            self.trainer = cluster.trainer(
                trained_parameters(self.net, hp), hp, optimizer_params, self.batch_size
            )
            self.notes.append(cluster.note(self.batch_size))
        self.loss = _loss(hp, data, self.contexts)
        self.callbacks: list[Callback] = []
        self.head: HeadInputs | None = None  # quick transfer's cached features

    @classmethod
    def create(
        cls, job: TrainingJob, lock: RunLock, progress: ProgressFn, cancel: CancelFlag | None
    ) -> _Session:
        """A new run: check, lock the folder, prepare the data, set the network up, write the
        run folder."""
        output = Path(job.output)
        _check_new_run_folder(output)
        hp = job.hyperparameters
        _check_before_work(job, hp)
        start = StartingPoint.for_new_run(hp, job.base_model, job.pretrained)
        created = not output.exists()
        output.mkdir(parents=True, exist_ok=True)
        data_created = False
        try:
            lock_note = lock.acquire()
            _check_new_run_folder(output)  # again: another process may have used it meanwhile
            _remove_leftovers(output)
            data_created = not (output / DATA_FOLDER).exists()
            data = prepare_data(
                job.train,
                job.validation,
                output,
                hp,
                seed=job.seed,
                progress=progress,
                cancel=cancel,
            )
            hp = hp.resolved(data.facts())
            output.mkdir(parents=True, exist_ok=True)  # records used where they are: no data/
            info = RunInfo(
                status=RunStatus.RUNNING,
                epochs=hp.epochs,
                train=str(job.train),
                validation=None if job.validation is None else str(job.validation),
                devices=job.devices,
                seed=job.seed,
                base_model=None if job.base_model is None else str(job.base_model),
                pretrained=None if job.pretrained is None else str(job.pretrained),
                network=start.network_file,
                data=data,
            )
            warnings = [*_notes(lock_note), *data.warnings, *start.warnings(hp)]
            session = cls(job, hp, data, info, warnings, start)
            session.initial_weights()
            session.prepare_inputs(progress, cancel)
        except BaseException:  # leave nothing behind: the run never started
            if data_created:
                shutil.rmtree(output / DATA_FOLDER, ignore_errors=True)
            lock.release()
            if created:
                with contextlib.suppress(OSError):
                    output.rmdir()
            raise
        atomic_write_json(output / CLASSES_FILE, list(data.class_names))
        save_hyperparameters(output / HYPERPARAMETERS_FILE, hp)
        atomic_write_json(output / PREPROCESSING_FILE, inference_preprocessing(hp, data).to_json())
        start.save(output)
        write_run(output, info)
        return session

    @classmethod
    def resume(
        cls,
        job: TrainingJob,
        lock: RunLock,
        progress: ProgressFn,
        cancel: CancelFlag | None,
        cluster: Cluster | None = None,
    ) -> _Session:
        """An existing run, from its last completed epoch (the caller releases ``lock``).

        In a distributed run only rank 0 locks and writes the folder; every worker reads it.
        """
        output = Path(job.output)
        read_run(output)  # a run folder? (before the lock file is made in it)
        writes = cluster is None or cluster.writes
        lock_note = lock.acquire() if writes else None
        if writes:
            _remove_leftovers(output)
        info = read_run(output)  # as the previous trainer left it
        if writes:
            prune_resume_state(output, info.last_completed_epoch)  # a kill may have left others
        data = info.data
        if data is None:
            raise RunError(f"{output} cannot be resumed: its run.json records no training data")
        saved = load_hyperparameters(output / HYPERPARAMETERS_FILE)
        hp = job.hyperparameters.resolved(data.facts())
        _check_resumable_changes(saved, hp)
        _check_before_work(job, hp)
        if cluster is not None:
            check_distributed(hp, parse_devices(job.devices))
        start = StartingPoint.of_run(output, info, hp)
        warnings = [*_notes(lock_note), *hp.validate(data.facts())]
        if not info.can_continue(hp.epochs):
            raise RunError(
                f"{output} has already trained {info.last_completed_epoch} epochs; set epochs "
                "higher to train on"
            )
        data.check_files()
        session = cls(job, hp, data, info, warnings, start, cluster)
        if info.last_completed_epoch:
            session.warnings += load_resume_state(
                output, session.net, session.trainer, info.last_completed_epoch, session.contexts
            )
        else:
            session.initial_weights()
        session.prepare_inputs(progress, cancel)
        info.epochs = hp.epochs
        info.devices = job.devices
        info.status, info.stop_reason, info.error = RunStatus.RUNNING, None, None
        if writes:
            save_hyperparameters(output / HYPERPARAMETERS_FILE, hp)
            write_run(output, info)
        return session

    def initial_weights(self) -> None:
        """Load the base model or the pretrained weights the run starts from, if any."""
        self.notes += self.start.load_initial_weights(self.net)

    def prepare_inputs(self, progress: ProgressFn, cancel: CancelFlag | None) -> None:
        """With ``freeze_backbone=1``, the backbone's features the head trains on (cached)."""
        if self.hp.freeze_backbone:
            self.head = head_inputs(
                self.net,
                self.data,
                self.hp,
                context=self.contexts[0],
                progress=progress,
                cancel=cancel,
            )
            self.notes.append(self.head.note())

    # --- the run ----------------------------------------------------------------------

    def run(self, callbacks: Sequence[Callback], cancel: CancelFlag | None) -> TrainingResult:
        """Train to ``epochs`` or until stopped; the run folder says how it ended."""
        hp, info = self.hp, self.info
        state = TrainingState(
            run_dir=self.run_dir,
            epochs=hp.epochs,
            batches_per_epoch=self.batches_per_epoch,
            batch_size=self.batch_size,
            class_names=self.data.class_names,
            hyperparameters=hp,
            start_epoch=info.last_completed_epoch + 1,
            history=read_metrics(self.run_dir, info.last_completed_epoch),
            warnings=list(self.warnings),
            notes=list(self.notes),
            step=info.num_updates,
            best_epoch=info.best_epoch,
            best_val_accuracy=info.best_val_accuracy,
            recorded_best_epoch=info.best_epoch,
            writes=self.writes,
            checkpoint_saver=self._save_checkpoint,
        )
        builtins: list[Callback] = [MetricsLog(), CheckpointKeeper(hp.checkpoint_frequency)]
        if hp.early_stopping:
            builtins.append(EarlyStopping.from_hyperparameters(hp))
        self.callbacks = [*builtins, *callbacks] if self.writes else list(callbacks)
        for callback in self.callbacks:
            callback.state = state
        try:
            for callback in self.callbacks:
                callback.on_train_begin(state)
            status = self._train(state, cancel)
        except BaseException as error:
            # Whatever fails here (a full disk, another Ctrl-C) must not hide the cause.
            if self.writes:
                with contextlib.suppress(Exception):
                    self._record_failure(error)
            with contextlib.suppress(Exception):
                self._train_end(state)
            raise
        info = self.info
        stop_reason = None if status is RunStatus.FINISHED else state.stop_reason
        info.status, info.stop_reason = status, stop_reason
        if self.writes:
            write_run(self.run_dir, info)
        self._train_end(state)
        return TrainingResult(
            status=status,
            run_dir=self.run_dir,
            epochs_run=info.last_completed_epoch - state.start_epoch + 1,
            last_epoch=info.last_completed_epoch,
            best_epoch=info.best_epoch,
            best_val_accuracy=info.best_val_accuracy,
            stop_reason=stop_reason,
            warnings=tuple(self.warnings),
            epochs=hp.epochs,
        )

    def _record_failure(self, error: BaseException) -> None:
        """Mark the run stopped (Ctrl-C, or SIGTERM as ``SystemExit``) or failed in
        ``run.json``, as of the last commit."""
        info = self.info
        interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
        info.status = RunStatus.STOPPED if interrupted else RunStatus.FAILED
        info.stop_reason = "interrupted" if interrupted else None
        info.error = None if interrupted else f"{type(error).__name__}: {error}"
        write_run(self.run_dir, info)

    def _train_end(self, state: TrainingState) -> None:
        """Every callback's ``on_train_end``, even after one fails; then the first failure."""
        failure: Exception | None = None
        for callback in self.callbacks:
            try:
                callback.on_train_end(state)
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure

    def _train(self, state: TrainingState, cancel: CancelFlag | None) -> RunStatus:
        if self.head is None:
            shard = {} if self.cluster is None else self.cluster.shard()
            batches = _endless(
                train_iter(self.data, self.hp, self.batch_size, seed=self._seed(), **shard)
            )
            validation_batches = val_iter(self.data, self.hp, self.batch_size)
        else:
            batches = self.head.train_batches(self.batch_size, self._seed())
            validation_batches = self.head.val_batches(self.batch_size)
        train_metrics = Metrics(self.data.num_classes, multi_label=self.data.multi_label)
        epoch_times: list[float] = []
        if self.cluster is not None:
            self.cluster.begin(self.trainer)
        for epoch in range(state.start_epoch, self.hp.epochs + 1):
            state.epoch = epoch
            started = time.perf_counter()
            train_metrics.reset()
            clock = _LogClock(train_metrics)
            for batch_number in range(1, self.batches_per_epoch + 1):
                self._train_batch(next(batches), train_metrics)
                state.step += 1
                logs: Logs = {"epoch": epoch, "batch": batch_number}
                if clock.due(last=batch_number == self.batches_per_epoch):
                    logs.update(clock.read(), learning_rate=self.trainer.learning_rate)
                for callback in self.callbacks:
                    callback.on_batch_end(state.step, logs)
                # Workers stop together, after an epoch (rank 0 decides; Stop ends processes).
                if self.cluster is None and _stopping(state, cancel):
                    return RunStatus.STOPPED
            train_seconds = time.perf_counter() - started  # the last batch's log synchronised
            if self.cluster is None:
                train_values = train_metrics.read()
            else:
                train_values = self.cluster.global_metrics(train_metrics)
                if not self.writes:
                    stop, early = self.cluster.decide(False, False)
                    if stop and epoch < self.hp.epochs:
                        return RunStatus.EARLY_STOPPED if early else RunStatus.STOPPED
                    continue
            validation = self._validate(validation_batches, state, cancel)
            if validation is None:
                return RunStatus.STOPPED
            epoch_times.append(time.perf_counter() - started)
            logs = self._epoch_logs(epoch, train_values, validation, epoch_times)
            images = self.batches_per_epoch * self.batch_size * self._workers()
            logs["images_per_sec"] = images / train_seconds
            if state.best_val_accuracy is None or logs["val_accuracy"] > state.best_val_accuracy:
                state.best_epoch, state.best_val_accuracy = epoch, logs["val_accuracy"]
            for callback in self.callbacks:
                callback.on_epoch_end(epoch, logs)
            self._commit(state, epoch)
            if self.cluster is not None:
                self.cluster.decide(state.stop_requested, state.early_stopped)
            if state.stop_requested and epoch < self.hp.epochs:  # at the last epoch: finished
                return RunStatus.EARLY_STOPPED if state.early_stopped else RunStatus.STOPPED
        return RunStatus.FINISHED

    def _workers(self) -> int:
        return 1 if self.cluster is None else self.cluster.workers

    def _seed(self) -> int:
        """The iterator's seed: a resumed session does not replay the first epochs' order."""
        return self.job.seed + self.info.last_completed_epoch

    def _train_batch(self, batch: Any, metrics: Metrics) -> None:
        mx = mxnet()
        split = mx.gluon.utils.split_and_load
        inputs = split(batch.data[0], self.contexts, even_split=False)
        labels = split(batch.label[0], self.contexts, even_split=False)
        with mx.autograd.record():
            outputs = [self._forward(x) for x in inputs]
            losses = [self.loss(output, label) for output, label in zip(outputs, labels)]
        mx.autograd.backward(losses)
        if self.cluster is None:
            self.trainer.step(self.batch_size)
        else:
            self.cluster.step(self.trainer, self.batch_size)
        for output, label, loss in zip(outputs, labels, losses):
            metrics.update(output, label, loss)

    def _forward(self, x: Any) -> Any:
        model = self.net if self.head is None else self.head.model
        if self.dtype == "float32":
            return model(x)
        return model(x.astype(self.dtype)).astype("float32")

    def _validate(
        self, batches: Any, state: TrainingState, cancel: CancelFlag | None
    ) -> dict[str, Any] | None:
        """Validation metrics of the current network; None when stopped meanwhile."""
        split = mxnet().gluon.utils.split_and_load
        metrics = Metrics(
            self.data.num_classes,
            multi_label=self.data.multi_label,
            top_k=self.hp.top_k,
            per_class=True,
        )
        batches.reset()
        remaining = self.data.num_val
        for batch in batches:
            inputs = split(batch.data[0], self.contexts, even_split=False)
            labels = split(batch.label[0], self.contexts, even_split=False)
            for x, label in zip(inputs, labels):
                output = self._forward(x)
                metrics.update(output, label, self.loss(output, label), count=remaining)
                remaining -= x.shape[0]
            if _stopping(state, cancel):
                return None
        return metrics.read()

    def _epoch_logs(
        self,
        epoch: int,
        train: dict[str, Any],
        validation: dict[str, Any],
        epoch_times: list[float],
    ) -> Logs:
        logs: Logs = {"epoch": epoch}
        logs.update({f"train_{key}": value for key, value in train.items()})
        logs.update({f"val_{key}": value for key, value in validation.items()})
        remaining = self.hp.epochs - epoch
        logs.update(
            learning_rate=self.trainer.learning_rate,
            epoch_time=epoch_times[-1],
            eta_seconds=remaining * sum(epoch_times) / len(epoch_times),
        )
        return logs

    def _commit(self, state: TrainingState, epoch: int) -> None:
        """Make ``epoch`` the one a resume starts from (``run.json`` is the commit point)."""
        save_resume_state(self.run_dir, self.net, self.trainer, epoch)
        committed = dataclasses.replace(
            self.info,
            last_completed_epoch=epoch,
            num_updates=state.step,
            best_epoch=state.best_epoch,
            best_val_accuracy=state.best_val_accuracy,
        )
        write_run(self.run_dir, committed)
        self.info = committed  # only once on disk: a failure path records the last commit
        state.recorded_best_epoch = committed.best_epoch
        prune_resume_state(self.run_dir, epoch)

    def _save_checkpoint(self, epoch: int) -> Path:
        path = save_checkpoint(
            self.run_dir,
            self.net,
            epoch,
            batch_size=self.batch_size,
            image_shape=self.hp.shape,
            multi_label=self.data.multi_label,
        )
        for callback in self.callbacks:
            callback.on_checkpoint(path)
        return path


def _stopping(state: TrainingState, cancel: CancelFlag | None) -> bool:
    """Whether to stop now; a set cancel flag becomes a stop request."""
    if cancel is not None and cancel.is_set():
        state.request_stop("stopped by the user")
    return state.stop_requested


def _endless(iterator: Any) -> Iterator[Any]:
    """The batches of ``iterator``, pass after pass."""
    while True:
        yield from iterator
        iterator.reset()


class _LogClock:
    """Decides the logging steps and reads the running training metrics on them."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._batches = 0
        self._time = time.perf_counter()
        self._count = 0
        self._loss_sum = 0.0

    def due(self, *, last: bool) -> bool:
        """Count a batch; True when this one should be logged."""
        self._batches += 1
        waited = time.perf_counter() - self._time
        return last or self._batches >= LOG_EVERY_BATCHES or waited >= LOG_EVERY_SECONDS

    def read(self) -> Logs:
        """Loss since the previous logging step, running accuracy, images per second."""
        values = self._metrics.read()  # waits for the batches so far
        now = time.perf_counter()
        count, loss_sum = self._metrics.count, values["loss"] * self._metrics.count
        logs = {
            "loss": (loss_sum - self._loss_sum) / max(count - self._count, 1),
            "accuracy": values["accuracy"],
            "images_per_sec": (count - self._count) / max(now - self._time, 1e-9),
        }
        self._batches, self._time, self._count, self._loss_sum = 0, now, count, loss_sum
        return logs


def _check_new_run_folder(output: Path) -> None:
    """A new run needs a new or empty folder. What a start that was interrupted before its
    first ``run.json`` leaves (the packed ``data``, the files written just before
    ``run.json``, the lock, temporary files) is allowed: that start never happened, and
    starting again replaces it."""
    if is_run_folder(output):
        raise RunError(f"{output} already holds a training run: resume it, or choose a new folder")
    if output.exists() and not output.is_dir():
        raise RunError(f"{output} is a file; choose a folder for the run")
    if output.is_dir() and any(
        path.name not in _UNCOMMITTED_START and not is_leftover_temporary(path)
        for path in output.iterdir()
    ):
        raise RunError(f"{output} is not empty; choose a new or empty folder for the run")


def _remove_leftovers(run_dir: Path) -> None:
    """Remove the temporary files of atomic writes a killed run left (the folder is locked)."""
    remove_leftover_temporaries(run_dir)
    remove_leftover_temporaries(run_dir / RESUME_FOLDER)


def _check_resumable_changes(saved: HyperParameters, hp: HyperParameters) -> None:
    """A resumed run keeps its settings, but for :data:`RESUMABLE_CHANGES`."""
    changed = {
        name
        for name, _value in saved.to_strings().items() ^ hp.to_strings().items()
        if name not in RESUMABLE_CHANGES
    }
    if changed:
        raise RunError(
            f"a resumed run keeps its hyperparameters, but {', '.join(sorted(changed))} "
            f"differ from the run's; only {', '.join(sorted(RESUMABLE_CHANGES))} may change"
        )


def _notes(note: str | None) -> list[str]:
    return [] if note is None else [note]


def _check_before_work(job: TrainingJob, hp: HyperParameters) -> None:
    """What can be refused before the data is read: devices, precision (the model sources:
    :class:`StartingPoint`)."""
    contexts = parse_devices(job.devices)
    if hp.precision_dtype == "float16" and any(c.device_type != "gpu" for c in contexts):
        raise DeviceError(
            "precision_dtype=float16 needs a GPU: MXNet's CPU operators are float32-only "
            "and would be slower, not faster. Use precision_dtype=float32 on the CPU."
        )


def _optimizer_params(hp: HyperParameters, batches_per_epoch: int) -> dict[str, Any]:
    """The Gluon optimizer arguments of ``hp``, with an epoch-based step schedule."""
    mx = mxnet()
    params: dict[str, Any] = {"learning_rate": hp.learning_rate, "wd": hp.weight_decay}
    if hp.optimizer in ("sgd", "nag"):
        params["momentum"] = hp.momentum
    elif hp.optimizer == "adam":
        params.update(beta1=hp.beta_1, beta2=hp.beta_2, epsilon=hp.eps)
    else:  # rmsprop
        params.update(gamma1=hp.gamma, epsilon=hp.eps)
    if hp.lr_steps:
        params["lr_scheduler"] = mx.lr_scheduler.MultiFactorScheduler(
            step=[epoch * batches_per_epoch for epoch in hp.lr_steps],
            factor=hp.lr_scheduler_factor,
            base_lr=hp.learning_rate,
        )
    if hp.precision_dtype == "float16":
        params["multi_precision"] = True
    return params


def _kv_store(hp: HyperParameters) -> str:
    """``device`` unless ``local`` is asked; the distributed stores, in a process that was
    not launched as a worker, fall back to ``device`` (validation warns)."""
    if hp.kv_store in (None, *DISTRIBUTED_KV_STORES):
        return "device"
    return hp.kv_store


def _loss(hp: HyperParameters, data: TrainingData, contexts: list[Any]) -> Any:
    """Softmax cross-entropy, or sigmoid binary cross-entropy for multi-label data, with
    ``use_weighted_loss``: positives of class k weighted by negatives_k / positives_k."""
    mx = mxnet()
    gluon_loss = mx.gluon.loss
    if not data.multi_label:
        return gluon_loss.SoftmaxCrossEntropyLoss()
    binary = gluon_loss.SigmoidBinaryCrossEntropyLoss()
    if not hp.use_weighted_loss:
        return binary
    weights = [
        (data.num_train - positives) / positives if positives else 1.0
        for positives in data.train_class_counts
    ]
    by_context = {c: mx.nd.array([weights], ctx=c) for c in contexts}
    return lambda output, label: binary(output, label, None, by_context[output.context])
