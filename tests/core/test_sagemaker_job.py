"""The SageMaker job file: a CreateTrainingJob request for the same training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_fixtures import quick_hp, shared_colour_folder, shared_colour_records

from imgcls_desktop.core.hyperparams import save_hyperparameters
from imgcls_desktop.core.sagemaker_job import (
    JobExportError,
    JobTarget,
    sagemaker_job,
    write_job,
)
from imgcls_desktop.core.training.loop import TrainingJob, train

# CreateTrainingJob's request fields as the SageMaker API reference names them.
DOCUMENTED_FIELDS = {
    "TrainingJobName", "HyperParameters", "AlgorithmSpecification", "RoleArn",
    "InputDataConfig", "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition",
    "Tags", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
    "TensorBoardOutputConfig", "ExperimentConfig", "ProfilerConfig", "ProfilerRuleConfigurations",
    "Environment", "RetryStrategy", "RemoteDebugConfig", "InfraCheckConfig",
    "SessionChainingConfig",
}  # fmt: skip
CHANNEL_FIELDS = {
    "ChannelName", "DataSource", "ContentType", "CompressionType", "RecordWrapperType",
    "InputMode", "ShuffleConfig",
}  # fmt: skip
S3_SOURCE_FIELDS = {
    "S3DataType", "S3Uri", "S3DataDistributionType", "AttributeNames", "InstanceGroupNames",
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch run with one of our own hyperparameters set."""
    hp = quick_hp(epochs=1, allow_large_images=1)
    folder = shared_colour_folder(tmp_path_factory)
    return train(TrainingJob(hp, folder, tmp_path_factory.mktemp("job") / "run")).run_dir


def _check_documented(request: dict) -> None:
    assert set(request) <= DOCUMENTED_FIELDS
    for channel in request["InputDataConfig"]:
        assert set(channel) <= CHANNEL_FIELDS
        assert set(channel["DataSource"]["S3DataSource"]) <= S3_SOURCE_FIELDS
    assert all(isinstance(value, str) for value in request["HyperParameters"].values())


def test_a_run_becomes_a_job_on_its_own_records_with_ours_left_out(run_dir: Path) -> None:
    target = JobTarget(bucket="my-bucket", region="eu-west-1", job_name="colours-1")
    job = sagemaker_job(run_dir, target)

    request = job.request
    _check_documented(request)
    assert request["HyperParameters"]["num_classes"] == "3"
    assert request["HyperParameters"]["num_training_samples"] == "72"  # 90 less 20% held out
    assert request["HyperParameters"]["num_layers"] == "20"
    assert "allow_large_images" not in request["HyperParameters"]
    assert job.left_out == ("allow_large_images",)
    assert any("allow_large_images" in note for note in job.notes)
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    assert channels["train"]["ContentType"] == "application/x-recordio"
    assert (
        channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://my-bucket/imgcls/train/"
    )
    assert {upload.local.suffix for upload in job.uploads} == {".rec"}
    assert all(upload.local.is_file() and run_dir in upload.local.parents for upload in job.uploads)
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1"
    )
    assert job.placeholders() == ["<INSTANCE_TYPE>", "<ROLE_ARN>"]


def test_the_written_file_is_the_request_and_is_not_overwritten(
    run_dir: Path, tmp_path: Path
) -> None:
    job = sagemaker_job(run_dir)
    path = tmp_path / "job.json"
    write_job(job, path)

    assert json.loads(path.read_text()) == job.request
    with pytest.raises(JobExportError, match="already exists"):
        write_job(job, path)
    text = job.instructions(path)
    assert "<BUCKET>" in text and "create-training-job --cli-input-json" in text
    assert f"imgcls predict model.tar.gz FOLDER --labels {run_dir / 'classes.json'}" in text


def test_a_settings_file_with_lst_data_gets_image_and_list_channels(tmp_path: Path) -> None:
    settings = tmp_path / "hp.json"
    save_hyperparameters(settings, quick_hp(num_classes=3, num_training_samples=72))
    for name in ("train", "val"):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / f"{name}.lst").write_text("0\t1\ta.jpg\n")

    job = sagemaker_job(
        settings, train=tmp_path / "images/train.lst", validation=tmp_path / "images/val.lst"
    )

    _check_documented(job.request)
    channels = {c["ChannelName"]: c["ContentType"] for c in job.request["InputDataConfig"]}
    assert channels == dict.fromkeys(
        ("train", "train_lst", "validation", "validation_lst"), "application/x-image"
    )


def test_a_settings_file_with_records(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    records = shared_colour_records(tmp_path_factory)
    settings = tmp_path / "hp.json"
    save_hyperparameters(settings, quick_hp(num_classes=3, num_training_samples=72))
    job = sagemaker_job(
        settings, train=records / "dataset-train.rec", validation=records / "dataset-val.rec"
    )
    assert [c["ContentType"] for c in job.request["InputDataConfig"]] == [
        "application/x-recordio"
    ] * 2


@pytest.mark.parametrize(
    ("changes", "data", "message"),
    [
        ({}, ("train.rec", "val.rec"), "needs num_classes"),
        ({"num_classes": 3, "num_training_samples": 9}, None, "give both data files"),
        ({"num_classes": 3, "num_training_samples": 9}, ("train.rec", "val.lst"), "both be .rec"),
        ({"num_classes": 3, "num_training_samples": 9}, ("gone.rec", "val.rec"), "does not exist"),
    ],
)
def test_what_cannot_become_a_job_is_refused_with_the_reason(
    tmp_path: Path, changes: dict, data: tuple[str, str] | None, message: str
) -> None:
    settings = tmp_path / "hp.json"
    save_hyperparameters(settings, quick_hp(**changes))
    for name in ("train.rec", "val.rec", "val.lst"):
        (tmp_path / name).write_bytes(b"")
    train_path, val_path = (None, None) if data is None else (tmp_path / p for p in data)
    with pytest.raises(JobExportError, match=message):
        sagemaker_job(settings, train=train_path, validation=val_path)


def test_bad_names_and_sources_are_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JobExportError, match="not a SageMaker job name"):
        sagemaker_job(run_dir, JobTarget(job_name="my job!"))
    with pytest.raises(JobExportError, match="neither a training run"):
        sagemaker_job(tmp_path)
    with pytest.raises(JobExportError, match="trains on its own data"):
        sagemaker_job(run_dir, train=tmp_path / "x.rec")
