"""``imgcls train`` as a user runs it: a new run, a bad setting, resume, Ctrl-C, a closed
pipe, a run another process trains."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.project import ItemKind, load_project
from imgcls_desktop.core.training.lock import RunLock
from imgcls_desktop.core.training.run import read_run

TINY = [
    "--set",
    "num_layers=20",
    "--set",
    "image_shape=3,32,32",
    "--set",
    "mini_batch_size=16",
    "--set",
    "learning_rate=0.05",
    "--device",
    "cpu",
]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=24, size=32
    )


def test_train_prints_sagemaker_style_epochs_and_leaves_a_model(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", "--train", str(shapes), "--output", str(run), "--set", "epochs=2", *TINY])
        == 0
    )
    out = capsys.readouterr().out
    epoch_lines = [line for line in out.splitlines() if line.startswith("Epoch[")]
    assert [line.split("]")[0] for line in epoch_lines] == ["Epoch[1", "Epoch[2"]
    assert "Train-accuracy=" in epoch_lines[0] and "Validation-accuracy=" in epoch_lines[0]
    assert "Finished all 2 epochs; best validation accuracy" in out
    assert (run / "image-classification-symbol.json").is_file()
    shapes_file = json.loads((run / "model-shapes.json").read_text())
    assert shapes_file[0]["name"] == "data" and shapes_file[0]["shape"][1:] == [3, 32, 32]
    hyperparameters = json.loads((run / "hyperparameters.json").read_text())
    assert hyperparameters["epochs"] == "2" and hyperparameters["num_classes"] == "3"
    project = load_project()  # the window lists the run and opens its model at start
    assert project.last(ItemKind.RUN) == project.last(ItemKind.MODEL) == str(run)
    assert project.last(ItemKind.TRAINING_DATA) == str(shapes)


def test_resume_trains_on_to_more_epochs(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert (
        main(["train", "--train", str(shapes), "--output", str(run), "--set", "epochs=1", *TINY])
        == 0
    )
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "Epoch[2]" in out and "Epoch[1]" not in out
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_bad_hyperparameters_are_refused_before_any_work(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--train",
            str(shapes),
            "--output",
            str(run),
            "--set",
            "epochs=0",
            "--set",
            "optimizer=sgdd",
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "epochs" in err and "optimizer" in err and "Traceback" not in err
    assert not run.exists()


def test_unknown_hyperparameter_suggests_the_closest_name(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--train",
            str(shapes),
            "--output",
            str(tmp_path / "r"),
            "--set",
            "learning_rat=0.1",
        ]
    )
    assert code == 1
    assert "learning_rate" in capsys.readouterr().err


def test_resume_needs_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "not a training run folder" in capsys.readouterr().err


def imgcls(*args: str, **popen: object) -> subprocess.Popen:
    """``imgcls ARGS...`` in its own process, as a user starts it."""
    command = shutil.which("imgcls", path=str(Path(sys.executable).parent))
    return subprocess.Popen([command, *args], text=True, **popen)


def new_run(shapes: Path, run: Path, epochs: int) -> list[str]:
    return ["train", "--train", str(shapes), "--output", str(run), f"--set=epochs={epochs}", *TINY]


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(shapes: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = imgcls(*new_run(shapes, run, 50), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in process.stdout:
            if line.startswith("Epoch[1]"):
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Stopped after epoch 1 of 50 (stopped by the user)" in out
    assert f"imgcls train --resume {run}" in out
    assert "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        (
            "epochs=1e300",
            "epochs: 1e+300 is too large; allowed: a whole number >= 1 and <= 100,000",
        ),
        ("num_classes=100000000", "(819.2 GB as float32"),
        ("image_shape=3,40000,40000", 'image_shape: "3,40000,40000" has a height or width above'),
        ("image_shape=3,4000,4000", "set allow_large_images=true to insist"),
        ("mini_batch_size=100000", "for one training batch's input and activations"),
    ],
)
def test_unbounded_hyperparameters_are_refused_in_one_line(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, reason: str
) -> None:
    """Issue 9, bug 10: refused with the reason before a run folder or a record exists."""
    run = tmp_path / "run"
    code = main(["train", "--train", str(shapes), "--output", str(run), *TINY, "--set", setting])
    err = capsys.readouterr().err
    assert code == 1 and reason in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert not run.exists()


def test_large_images_are_allowed_when_the_user_insists(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    arguments = ["train", "--train", str(shapes), "--output", str(run), *TINY]
    large = ["--set", "image_shape=3,4000,4000"]
    assert main([*arguments, *large, "--allow-large-images"]) == 1
    err = capsys.readouterr().err
    assert "allow_large_images" not in err  # insisted: only the memory the batch needs stops it
    assert "16 images of 4000x4000 need about" in err and "use at most" in err
    assert not run.exists()


def test_the_insisting_flag_is_saved_as_ours_and_kept_on_resume(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    arguments = ["train", "--train", str(shapes), "--output", str(run), "--set", "epochs=1"]
    assert main([*arguments, *TINY, "--allow-large-images"]) == 0
    saved = json.loads((run / "hyperparameters.json").read_text())
    assert saved["allow_large_images"] == "true" and saved["epochs"] == "1"
    assert main(["train", "--resume", str(run), "--set", "epochs=2"]) == 0
    assert json.loads((run / "hyperparameters.json").read_text())["allow_large_images"] == "true"
    assert "Epoch[2]" in capsys.readouterr().out


def test_ctrl_c_before_the_first_epoch_ends_says_there_is_no_model(
    shapes: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    process = imgcls(*new_run(shapes, run, 50), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in process.stdout:
            if line.startswith("Training 3 classes"):  # before the first batch
                process.send_signal(signal.SIGINT)
                break
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Stopped before the first epoch ended" in out and "no epoch has finished" in out
    assert "Model:" not in out and "Traceback" not in err
    assert read_run(run).best_epoch is None


def test_a_closed_output_stops_the_run_quietly_and_keeps_its_model(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``imgcls train ... | head -n 2``: the reader goes after the first epoch's line."""
    run, errors = tmp_path / "run", tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = imgcls(*new_run(shapes, run, 50), stdout=subprocess.PIPE, stderr=stderr)
        try:
            head = [process.stdout.readline(), process.stdout.readline()]
            process.stdout.close()
            process.wait(timeout=120)
        finally:
            process.kill()
    assert head[0].startswith("Training 3 classes") and head[1].startswith("Epoch[1]")
    err = errors.read_text()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err and "error:" not in err
    info = read_run(run)  # stopped at the next line, the end of epoch 2, which is committed
    assert (info.status, info.stop_reason) == ("stopped", "the output was closed")
    assert info.last_completed_epoch == 2 and not (run / "run.lock").exists()
    assert open_model(run).epoch == info.best_epoch
    assert main(["train", "--resume", str(run), "--set", "epochs=3"]) == 0
    assert f"Model: {run}" in capsys.readouterr().out
    assert open_model(run).epoch == read_run(run).best_epoch


def test_a_run_another_process_trains_is_refused_with_its_owner(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(new_run(shapes, run, 1)) == 0
    before = (run / "run.json").read_bytes()
    lock = RunLock(run)  # this test process trains it, as far as anyone can tell
    lock.acquire()
    try:
        process = imgcls(
            "train",
            "--resume",
            str(run),
            "--set",
            "epochs=2",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = process.communicate(timeout=120)
    finally:
        lock.release()
    assert process.returncode == 1
    owner = f"is being trained by process {os.getpid()} on host {socket.gethostname()} since"
    assert owner in err and "Traceback" not in err and "Epoch[" not in out
    assert (run / "run.json").read_bytes() == before


def test_suggested_settings_say_that_their_augmentation_mirrors_images(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: suggestions kept crop's mirroring for text and digits without a word."""
    run = tmp_path / "run"
    arguments = ["train", "--train", str(shapes), "--output", str(run), "--suggest"]
    assert main([*arguments, "--set", "epochs=1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "suggested for 72 images, 3 classes" in out
    assert "note: augmentation_type crop_color_transform also mirrors images left-right" in out
    assert "set augmentation_type to none" in out
    assert "Finished; best validation accuracy" in out


def test_quick_transfer_by_command_says_so_and_reuses_the_features(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imgcls_desktop.core.runtime import mxnet

    mx = mxnet()
    zoo = mx.gluon.model_zoo.vision.resnet18_v1()
    zoo.initialize(mx.init.Xavier())
    zoo(mx.nd.zeros((1, 3, 32, 32)))
    weights = tmp_path / "resnet18_v1.params"
    zoo.save_parameters(str(weights))
    quick = [
        *("--set", "num_layers=18", "--set", "image_shape=3,32,32", "--set", "epochs=1"),
        *("--set", "use_pretrained_model=1", "--set", "freeze_backbone=1"),
        *("--set", "mini_batch_size=16", "--pretrained", str(weights), "--device", "cpu"),
    ]
    for run, how in (("first", "computed and cached"), ("second", "read from the cache")):
        assert main(["train", "--train", str(shapes), "--output", str(tmp_path / run), *quick]) == 0
        out = capsys.readouterr().out
        assert "note: quick transfer: frozen backbone, only the final layer trains" in out
        assert how in out and "Finished" in out
    saved = json.loads((tmp_path / "first" / "hyperparameters.json").read_text())
    assert saved["freeze_backbone"] == "1"
    assert open_model(tmp_path / "second").num_classes == 3
