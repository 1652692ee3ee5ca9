"""``imgcls export-job``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.hyperparams import HyperParameters, save_hyperparameters


def test_export_job_writes_the_request_and_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "hp.json"
    save_hyperparameters(
        settings, HyperParameters.from_mapping({"num_classes": 3, "num_training_samples": 72})
    )
    for name in ("train.rec", "val.rec"):
        (tmp_path / name).write_bytes(b"")
    output = tmp_path / "job.json"

    code = main(
        ["export-job", str(settings), "--output", str(output), "--train",
         str(tmp_path / "train.rec"), "--validation", str(tmp_path / "val.rec"),
         "--bucket", "b", "--role", "arn:aws:iam::1:role/r", "--region", "us-east-1",
         "--instance-type", "ml.m5.xlarge"]
    )  # fmt: skip

    assert code == 0
    request = json.loads(output.read_text())
    assert request["RoleArn"] == "arn:aws:iam::1:role/r"
    assert request["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    out = capsys.readouterr().out
    assert f'aws s3 cp "{tmp_path / "train.rec"}" s3://b/imgcls/train/' in out
    assert "Replace" not in out  # every placeholder was given


def test_export_job_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "hp.json"
    save_hyperparameters(settings, HyperParameters())
    code = main(["export-job", str(settings), "--output", str(tmp_path / "job.json")])
    assert code != 0
    err = capsys.readouterr().err
    assert err.startswith("imgcls: error:") and "give both data files" in err
    assert not (tmp_path / "job.json").exists()
