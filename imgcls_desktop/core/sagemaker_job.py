"""The same training as a SageMaker job: a ``CreateTrainingJob`` request for the built-in
image-classification algorithm, written to a file; nothing here touches the network.

:func:`sagemaker_job` turns one of our run folders, or a hyperparameters file with the
training data it is for, into a :class:`SageMakerJob`: the request body (``aws sagemaker
create-training-job --cli-input-json file://job.json`` takes it as it is, once the
placeholders are filled), the local files to upload and where, and notes for the user. The
hyperparameters are SageMaker's string form; ours (``allow_large_images``, ...) are left out
and named, since SageMaker rejects hyperparameters it does not know.

Channels: a run trains from its own record files (``train`` / ``validation``, RecordIO);
a hyperparameters file is paired with a ``.rec`` (RecordIO channels) or a ``.lst`` whose
images are uploaded with it (``train`` / ``validation`` images, ``train_lst`` /
``validation_lst`` lists).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgcls_desktop.core.atomic import atomic_write_json
from imgcls_desktop.core.hyperparams import HyperParameters, load_hyperparameters
from imgcls_desktop.core.training.run import (
    CLASSES_FILE,
    HYPERPARAMETERS_FILE,
    is_run_folder,
    read_run,
)

#: What a placeholder looks like; every one must be replaced before the job is submitted.
ROLE_PLACEHOLDER = "<ROLE_ARN>"
BUCKET_PLACEHOLDER = "<BUCKET>"
REGION_PLACEHOLDER = "<REGION>"
INSTANCE_TYPE_PLACEHOLDER = "<INSTANCE_TYPE>"
DEFAULT_PREFIX = "imgcls"

RECORDIO_CONTENT_TYPE = "application/x-recordio"
IMAGE_CONTENT_TYPE = "application/x-image"

# SageMaker's documented limits on HyperParameters: 100 entries, 256 characters each.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_TEXT = 256
# Training job names: 1-63 characters, letters, digits and hyphens, starting alphanumeric.
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")

# The image-classification algorithm's registry accounts (image ``image-classification:1``),
# as the SageMaker Python SDK lists them; other regions keep the placeholder.
_REGISTRY_ACCOUNTS = {
    "ap-east-1": "286214385809",
    "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934",
    "ap-south-1": "991648021394",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "544295431143",
    "ca-central-1": "469771592824",
    "eu-central-1": "813361260812",
    "eu-north-1": "669576153137",
    "eu-west-1": "685385470294",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "811284229777",
    "us-east-2": "825641698319",
    "us-west-1": "632365934929",
    "us-west-2": "433757028032",
}


class JobExportError(ValueError):
    """The job cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class JobTarget:
    """Where the job runs: the user's AWS values, placeholders where they gave none."""

    role_arn: str = ROLE_PLACEHOLDER
    bucket: str = BUCKET_PLACEHOLDER
    prefix: str = DEFAULT_PREFIX
    region: str = REGION_PLACEHOLDER
    instance_type: str = INSTANCE_TYPE_PLACEHOLDER
    instance_count: int = 1
    job_name: str = "imgcls-training"

    def s3(self, *parts: str) -> str:
        """``s3://BUCKET/PREFIX/parts.../`` (a folder URI)."""
        path = "/".join(part.strip("/") for part in (self.prefix, *parts) if part.strip("/"))
        return f"s3://{self.bucket}/{path}/"

    def training_image(self) -> str:
        """The algorithm's container image in this region, or a placeholder naming it."""
        account = _REGISTRY_ACCOUNTS.get(self.region)
        if account is None:
            return f"<image-classification:1 image URI for {self.region}>"
        return f"{account}.dkr.ecr.{self.region}.amazonaws.com/image-classification:1"


@dataclass(frozen=True)
class Upload:
    """A local file or folder and the S3 folder the job reads it from."""

    local: Path
    s3_uri: str

    def command(self) -> str:
        """The AWS command line that uploads it."""
        if self.local.is_dir():
            return f'aws s3 cp --recursive "{self.local}" {self.s3_uri}'
        return f'aws s3 cp "{self.local}" {self.s3_uri}'


@dataclass(frozen=True)
class SageMakerJob:
    """A ready ``CreateTrainingJob`` request, what to upload first, and notes."""

    request: dict[str, Any]
    uploads: tuple[Upload, ...]
    left_out: tuple[str, ...]
    notes: tuple[str, ...]
    class_names_file: Path | None = None

    def placeholders(self) -> list[str]:
        """The ``<...>`` values still to replace in the request, in order of appearance."""
        return sorted(set(re.findall(r"<[^<>]+>", str(self.request))))

    def instructions(self, job_file: Path) -> str:
        """What to do with the written file, as text for the terminal and the window."""
        labels = self.class_names_file or "classes.json"
        lines = [*self.notes, "", "Upload the data:"]
        lines += [f"  {upload.command()}" for upload in self.uploads]
        lines += [
            "Submit the job:",
            f"  aws sagemaker create-training-job --cli-input-json file://{job_file}",
            "Bring the model back once the job has completed:",
            f"  aws s3 cp {self.request['OutputDataConfig']['S3OutputPath']}"
            f"{self.request['TrainingJobName']}/output/model.tar.gz .",
            "Label with it (SageMaker keeps no class names; give them):",
            f"  imgcls predict model.tar.gz FOLDER --labels {labels}",
        ]
        placeholders = self.placeholders()
        if placeholders:
            lines.insert(0, f"Replace {', '.join(placeholders)} in {job_file.name} first.")
        return "\n".join(lines)


def sagemaker_job(
    source: Path,
    target: JobTarget | None = None,
    *,
    train: Path | None = None,
    validation: Path | None = None,
) -> SageMakerJob:
    """The SageMaker job for ``source``: a run folder (its own data and settings), or a
    hyperparameters JSON file with ``train`` (a ``.rec`` or a ``.lst``) and optionally
    ``validation`` of the same kind."""
    target = target or JobTarget()
    _check_target(target)
    source = Path(source)
    if is_run_folder(source):
        if train is not None or validation is not None:
            raise JobExportError(
                f"{source} is a training run: it trains on its own data, so give no data files"
            )
        hp = load_hyperparameters(source / HYPERPARAMETERS_FILE)
        data = read_run(source).data
        if data is None:
            raise JobExportError(f"{source} records no training data: choose another run")
        channels, uploads = _recordio_channels(target, data.train_rec, data.val_rec)
        notes = [f"The run's own record files: {data.num_train} training images."]
        class_names_file: Path | None = source / CLASSES_FILE
    elif source.is_file():
        hp = load_hyperparameters(source)
        channels, uploads, notes = _file_channels(target, train, validation)
        class_names_file = None
    else:
        raise JobExportError(
            f"{source} is neither a training run folder nor a hyperparameters file"
        )
    texts, left_out = _sagemaker_hyperparameters(hp)
    if left_out:
        notes.append(f"Left out, since SageMaker does not know them (ours): {', '.join(left_out)}.")
    if hp.kv_store in ("dist_sync", "dist_async") and target.instance_count == 1:
        notes.append(f"kv_store={hp.kv_store} needs more than one instance: set InstanceCount.")
    request = {
        "TrainingJobName": target.job_name,
        "AlgorithmSpecification": {
            "TrainingImage": target.training_image(),
            "TrainingInputMode": "File",
        },
        "RoleArn": target.role_arn,
        "HyperParameters": texts,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": target.s3("output")},
        "ResourceConfig": {
            "InstanceType": target.instance_type,
            "InstanceCount": target.instance_count,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 360000},
    }
    return SageMakerJob(request, tuple(uploads), tuple(left_out), tuple(notes), class_names_file)


def write_job(job: SageMakerJob, path: Path, *, overwrite: bool = False) -> None:
    """Write the request body as JSON (atomically); an existing file only with ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise JobExportError(f"{path} already exists: choose another file, or replace it")
    if path.suffix.lower() != ".json":
        raise JobExportError(f"{path} should be a .json file (the AWS command line reads JSON)")
    atomic_write_json(path, job.request)


def _check_target(target: JobTarget) -> None:
    if not _JOB_NAME.match(target.job_name):
        raise JobExportError(
            f"{target.job_name!r} is not a SageMaker job name: 1 to 63 letters, digits and "
            "hyphens, starting with a letter or digit"
        )
    if target.instance_count < 1:
        raise JobExportError(f"the instance count must be at least 1, not {target.instance_count}")


def _sagemaker_hyperparameters(hp: HyperParameters) -> tuple[dict[str, str], list[str]]:
    """SageMaker's string form, checked against its documented limits, and ours left out."""
    texts = hp.to_sagemaker()
    left_out = sorted(set(hp.to_strings()) - set(texts))
    for required in ("num_classes", "num_training_samples"):
        if required not in texts:
            raise JobExportError(
                f"SageMaker needs {required}: set it in the hyperparameters, or export a run "
                "(which knows its data)"
            )
    too_long = [name for name, text in texts.items() if len(text) > MAX_HYPERPARAMETER_TEXT]
    if too_long or len(texts) > MAX_HYPERPARAMETERS:
        raise JobExportError(
            f"SageMaker takes at most {MAX_HYPERPARAMETERS} hyperparameters of at most "
            f"{MAX_HYPERPARAMETER_TEXT} characters; too long: {', '.join(too_long)}"
        )
    return texts, left_out


def _channel(name: str, s3_uri: str, content_type: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": s3_uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ContentType": content_type,
        "CompressionType": "None",
    }


def _recordio_channels(
    target: JobTarget, train: Path, validation: Path
) -> tuple[list[dict[str, Any]], list[Upload]]:
    uploads = [Upload(train, target.s3("train")), Upload(validation, target.s3("validation"))]
    channels = [
        _channel(name, upload.s3_uri, RECORDIO_CONTENT_TYPE)
        for name, upload in zip(("train", "validation"), uploads)
    ]
    return channels, uploads


def _file_channels(
    target: JobTarget, train: Path | None, validation: Path | None
) -> tuple[list[dict[str, Any]], list[Upload], list[str]]:
    """Channels for a hyperparameters file's data: both ``.rec`` or both ``.lst``."""
    if train is None or validation is None:
        raise JobExportError(
            "SageMaker needs a training and a validation channel: give both data files "
            "(.rec, or .lst with their images), or export a run"
        )
    kinds = {Path(train).suffix.lower(), Path(validation).suffix.lower()}
    missing = [path for path in (train, validation) if not Path(path).is_file()]
    if missing:
        raise JobExportError(f"{missing[0]} does not exist")
    if kinds == {".rec"}:
        channels, uploads = _recordio_channels(target, Path(train), Path(validation))
        return channels, uploads, ["RecordIO channels: train and validation."]
    if kinds == {".lst"}:
        channels, uploads = [], []
        for name, lst in (("train", Path(train)), ("validation", Path(validation))):
            images = Upload(lst.parent, target.s3(name))
            listing = Upload(lst, target.s3(f"{name}_lst"))
            channels += [
                _channel(name, images.s3_uri, IMAGE_CONTENT_TYPE),
                _channel(f"{name}_lst", listing.s3_uri, IMAGE_CONTENT_TYPE),
            ]
            uploads += [images, listing]
        return (
            channels,
            uploads,
            [
                "Image channels: the images of each .lst (paths relative to its folder) and the "
                ".lst itself."
            ],
        )
    raise JobExportError(
        "the training and validation data must both be .rec files or both .lst files; pack a "
        "folder first (imgcls dataset pack), or export a run"
    )


def filled(target: JobTarget, values: Mapping[str, str | int | None]) -> JobTarget:
    """``target`` with the given, non-empty values replacing its placeholders."""
    given = {name: value for name, value in values.items() if value not in (None, "")}
    return dataclasses.replace(target, **given)
