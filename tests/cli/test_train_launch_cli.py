"""``imgcls train --launch``: two local workers on 127.0.0.1, the printed commands, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.training.run import RunStatus, read_run
from tests.core.training_fixtures import shared_colour_folder

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    "--set",
    "num_layers=20",
    "--set",
    "image_shape=3,32,32",
    "--set",
    "mini_batch_size=8",
    "--set",
    "optimizer=adam",
    "--set",
    "learning_rate=0.001",
    "--device",
    "cpu",
]


@pytest.fixture(autouse=True)
def workers_import_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_launch_local_trains_on_two_workers_and_prints_their_lines(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    run = tmp_path / "run"
    argv = ["train", "--train", str(folder), "--output", str(run), *TINY]

    code = main([*argv, "--set", "epochs=2", "--set", "kv_store=dist_sync", "--launch", "local:2"])

    out = capsys.readouterr().out
    assert code == 0
    assert "Effective batch: 16 images per step" in out
    assert "[worker 0] epoch 1:" in out and "[worker 1] epoch 2:" in out
    assert out.count("Epoch[") == 2  # rank 0's lines only
    assert "Finished all 2 epochs; best validation accuracy" in out
    assert read_run(run).status is RunStatus.FINISHED


def test_launch_print_prepares_the_run_and_prints_every_process(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    run = tmp_path / "run"
    argv = ["train", "--train", str(folder), "--output", str(run), *TINY]

    code = main([*argv, "--set", "kv_store=dist_async", "--launch", "print:3,servers=2"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.count("DMLC_ROLE=worker") == 3 and out.count("DMLC_ROLE=server") == 2
    assert f"-m imgcls_desktop.cli train --resume {run.resolve()}" in out
    info = read_run(run)  # prepared, packed, not trained
    assert info.status is RunStatus.STOPPED and info.last_completed_epoch == 0
    assert (run / "data").is_dir()


def test_launch_without_a_distributed_kv_store_is_refused_before_any_work(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_colour_folder(tmp_path_factory)
    run = tmp_path / "run"

    code = main(["train", "--train", str(folder), "--output", str(run), "--launch", "local:2"])

    assert code == 1
    assert "kv_store: launching workers needs dist_sync or dist_async" in capsys.readouterr().err
    assert not run.exists()


def test_a_bad_launch_spec_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--resume", str(tmp_path), "--launch", "local:none"])

    assert code == 1
    assert "the number of workers must be a whole number" in capsys.readouterr().err
