"""``imgcls train``: SageMaker-style training from the command line.

Ctrl-C stops the run after the current batch (a second one aborts at once); a closed
standard output (``imgcls train ... | head``) stops it the same way, quietly. Either way the
run folder stays resumable, with its recorded best model.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from imgcls_desktop.cli.hyperparameter_options import (
    add_hyperparameter_options,
    hyperparameters_from_options,
)
from imgcls_desktop.cli.terminal import CommandError, ProgressBar, print_error
from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.distributed.events import ChiefEvents
from imgcls_desktop.core.distributed.lifeline import exit_with_launcher
from imgcls_desktop.core.distributed.plan import LaunchPlan, parse_launch
from imgcls_desktop.core.distributed.remote import HostsNotReady
from imgcls_desktop.core.distributed.supervisor import LaunchFailed, format_line
from imgcls_desktop.core.distributed.training import WorkerSpeed, describe_run, train_distributed
from imgcls_desktop.core.distributed.worker import is_distributed_worker
from imgcls_desktop.core.hyperparams import HyperParameters, apply_overrides
from imgcls_desktop.core.models import run_model_epoch
from imgcls_desktop.core.project import ItemKind, load_project, save_project
from imgcls_desktop.core.training.callbacks import Callback, Logs, TrainingState, format_epoch_line
from imgcls_desktop.core.training.loop import (
    TRAINING_ERRORS,
    TrainingJob,
    TrainingResult,
    train,
)
from imgcls_desktop.core.training.preview import mirroring_note
from imgcls_desktop.core.training.run import RunStatus
from imgcls_desktop.core.training.suggest import (
    describe_hyperparameters,
    suggested_settings,
    summarize_training_data,
    transfer_advice,
)
from imgcls_desktop.core.weights import installed_depths


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls train`` to the command line."""
    parser = groups.add_parser(
        "train",
        help="train a ResNet classifier (SageMaker's hyperparameters and model layout)",
        description="Train, or resume, a run. Hyperparameters come from SageMaker's defaults, "
        "then --suggest, then --hyperparameters FILE, then --set NAME=VALUE.",
    )
    parser.add_argument("--train", type=Path, help="training data: .rec, .lst, manifest or folder")
    parser.add_argument(
        "--validation", type=Path, help="validation data (default: 20%% of the training data)"
    )
    parser.add_argument("--output", type=Path, help="new run folder for the model and metrics")
    add_hyperparameter_options(parser, "epochs=10")
    parser.add_argument(
        "--suggest",
        action="store_true",
        help="start from settings suggested for the data and the device",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR from its last finished epoch",
    )
    parser.add_argument(
        "--base-model",
        type=Path,
        metavar="MODEL",
        help="start from an earlier model: a run folder, a SageMaker model.tar.gz or an MXNet "
        "checkpoint (PREFIX-symbol.json); with the same classes every layer is loaded, with "
        "another number of classes a new last layer replaces its head",
    )
    parser.add_argument(
        "--pretrained",
        type=Path,
        metavar="FILE",
        help="ImageNet weights for use_pretrained_model=1 (resnetNN_v1 .params)",
    )
    parser.add_argument(
        "--launch",
        metavar="SPEC",
        help="with kv_store=dist_sync or dist_async, train on worker processes: "
        "local:N[,servers=M] on this machine, ssh:HOSTS_FILE on the hosts listed, or print (the "
        "commands to start on your own cluster)",
    )
    parser.add_argument("--device", help="cpu, gpu, gpu:0,1 or cpu:0,cpu:1 (default: GPUs if any)")
    parser.add_argument(
        "--allow-large-images",
        action="store_true",
        help="allow image_shape and resize sides above 2048 px (sets our own "
        "allow_large_images=true, which is not a SageMaker hyperparameter)",
    )
    parser.set_defaults(handler=run_train)


def _say(line: str) -> bool:
    """Print ``line`` to standard output at once; False when the reader has gone (a closed
    pipe), after which standard output points at the null device, as Python's documentation
    advises, so that nothing fails on it again (at exit either)."""
    try:
        print(line, flush=True)
        return True
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False


class _TerminalReport(Callback):
    """Epoch lines in SageMaker's style, and a progress bar within the epoch on a terminal.

    When standard output is closed, the run is asked to stop (a clean, resumable stop).
    """

    def __init__(self) -> None:
        self._bar: ProgressBar | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        for warning in state.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for note in state.notes:
            self._say(f"note: {note}")
        self._say(
            f"Training {len(state.class_names)} classes from epoch {state.start_epoch} to "
            f"{state.epochs} ({state.batches_per_epoch} batches per epoch) in {state.run_dir}"
        )

    def on_batch_end(self, step: int, logs: Logs) -> None:
        if self._bar is None or logs.get("batch") == 1:
            self._bar = ProgressBar(f"Epoch {logs.get('epoch', '')}")
        self._bar(int(logs.get("batch", 0)), self.state.batches_per_epoch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._bar = None
        self._say(format_epoch_line(epoch, logs))

    def _say(self, line: str) -> None:
        if not _say(line):
            self.state.request_stop("the output was closed")


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the run to stop after this batch; a second one aborts."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nStopping after this batch (Ctrl-C again to abort)…", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _hyperparameters(args: argparse.Namespace, base: HyperParameters) -> HyperParameters:
    hp = base
    if args.suggest and args.train:
        from imgcls_desktop.core.devices import gpu_count

        summary = summarize_training_data(args.train)
        asked = apply_overrides(HyperParameters(), args.set)
        epochs = asked.epochs if any(s.startswith("epochs=") for s in args.set) else None
        backbones = installed_depths()
        hp = suggested_settings(
            hp.to_strings(),
            summary,
            gpu=gpu_count() > 0 and args.device != "cpu",
            epochs=epochs,
            all_for_training=args.validation is not None,
            backbone_depths=backbones,
        )
        print(f"suggested for {summary.describe()}: {describe_hyperparameters(hp)}")
        for note in (mirroring_note(hp.augmentation_type), transfer_advice(summary, backbones)):
            if note:
                print(f"note: {note}")
    return hyperparameters_from_options(args, hp, _insisted(args))


def _insisted(args: argparse.Namespace) -> list[str]:
    """The settings the ``--allow-...`` flags stand for."""
    return ["allow_large_images=true"] if args.allow_large_images else []


def _job(args: argparse.Namespace) -> TrainingJob:
    if args.resume:
        return TrainingJob.resume_of(
            args.resume, [*args.set, *_insisted(args)], devices=args.device
        )
    if not args.train or not args.output:
        raise CommandError("give --train and --output for a new run, or --resume DIR")
    return TrainingJob.new(
        _hyperparameters(args, HyperParameters()),
        args.train,
        args.output,
        validation=args.validation,
        devices=args.device,
        base_model=args.base_model,
        pretrained=args.pretrained,
    )


def _remember_in_project(job: TrainingJob, run_dir: Path, *, has_model: bool) -> None:
    """List the run (and its model, once an epoch is saved) where the window reopens them."""
    project = load_project()
    validation = job.validation.resolve() if job.validation else None
    project.remember_run(run_dir.resolve(), job.train.resolve(), validation)
    if has_model:
        project.remember(ItemKind.MODEL, run_dir.resolve())
    try:
        save_project(project)
    except OSError as error:
        print(f"warning: could not update the project list: {error}", file=sys.stderr)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """A plain ``kill`` ends a worker as Ctrl-C ends a run: cleanly, its folder resumable."""
    raise SystemExit(128 + signum)


def _run_worker(args: argparse.Namespace) -> int:
    """One launched worker of a distributed run (``DMLC_ROLE=worker``): rank 0 prints the
    epochs and its training events (for the launcher's curves), every worker its speed;
    the launcher reports the end."""
    exit_with_launcher()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        train(_job(args), callbacks=[_TerminalReport(), WorkerSpeed(_say), ChiefEvents(_say)])
    except BaseException as error:  # every way out leaves at once
        _leave_at_once(error)
    return 0


def _leave_at_once(error: BaseException) -> NoReturn:
    """End a worker that failed or was stopped (its run folder already recorded) without
    Python's shutdown: there the kvstore's destructor (ps-lite's finalize) waits for every
    other node, which never comes, and the launcher's lifeline thread is frozen."""
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else 1
    elif isinstance(error, KeyboardInterrupt):
        code = 130
    elif isinstance(error, TRAINING_ERRORS):
        print_error(str(error))
        code = 1
    else:
        traceback.print_exception(error)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_launch(job: TrainingJob, plan: LaunchPlan) -> int:
    """``--launch print``: prepare the run here, print the commands that train it."""
    run_dir, commands = describe_run(job, plan, progress=ProgressBar("Preparing data"))
    print(commands)
    print(f"# The run folder {run_dir} is ready: start the lines above to train it.")
    return 0


def _forward_line(name: str, text: str) -> None:
    """A launched process's line, as ``[worker 1] text``."""
    _say(format_line(name, text))


def _train(
    job: TrainingJob, plan: LaunchPlan | None, stop: threading.Event, again: str
) -> TrainingResult:
    """Train here, or on the workers of ``plan`` (``again``: the command that resumes)."""
    progress = ProgressBar("Preparing data")
    if plan is None:
        return train(job, callbacks=[_TerminalReport()], cancel=stop, progress=progress)
    try:
        return train_distributed(
            job,
            plan,
            on_line=_forward_line,
            cancel=stop,
            progress=progress,
            training_progress=ProgressBar("Training"),
        )
    except (LaunchFailed, HostsNotReady) as error:
        raise CommandError(f"{error}. Resume with: {again}") from None


def run_train(args: argparse.Namespace) -> int:
    """Train or resume; 0 when the run finished or stopped cleanly."""
    if is_distributed_worker():
        return _run_worker(args)
    plan = parse_launch(args.launch) if args.launch else None
    again = f"imgcls train --resume {args.resume or args.output}"
    again += f" --launch {args.launch}" if plan else ""
    try:
        job = _job(args)
        if plan is not None and plan.kind == "print":
            return _print_launch(job, plan)
        stop = threading.Event()
        with _stop_on_interrupt(stop):
            result = _train(job, plan, stop, again)
    except TRAINING_ERRORS as error:
        raise CommandError(str(error)) from None
    try:
        run_model_epoch(result.run_dir)
        has_model, model = True, f"Model: {result.run_dir}"
    except ModelError as error:  # never "Model: ..." without a model file
        has_model, model = False, f"{error}."
    _say(f"{result.summary()} {model}")
    _remember_in_project(job, result.run_dir, has_model=has_model)
    if result.status is RunStatus.STOPPED:
        _say(f"Resume with: {again}")
    return 0
