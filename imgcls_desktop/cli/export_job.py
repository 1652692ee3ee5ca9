"""``imgcls export-job``: the same training as a SageMaker training job (a request file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from imgcls_desktop.cli.terminal import CommandError
from imgcls_desktop.core.sagemaker_job import (
    JobExportError,
    JobTarget,
    filled,
    sagemaker_job,
    write_job,
)


def register(groups: argparse._SubParsersAction) -> None:
    """Add ``imgcls export-job`` to the command line."""
    parser = groups.add_parser(
        "export-job",
        help="write a SageMaker CreateTrainingJob request for a run or a settings file",
        description="SOURCE: one of our run folders (its own data and settings), or a "
        "hyperparameters JSON file with --train and --validation (.rec, or .lst with their "
        "images). Values not given stay <PLACEHOLDERS> to replace before submitting with "
        "`aws sagemaker create-training-job --cli-input-json file://JOB.json`. Nothing is sent.",
    )
    parser.add_argument("source", type=Path, help="a run folder or a hyperparameters file")
    parser.add_argument("--output", required=True, type=Path, help="the job file (.json)")
    parser.add_argument("--train", type=Path, help="training data for a hyperparameters file")
    parser.add_argument("--validation", type=Path, help="its validation data")
    parser.add_argument("--role", dest="role_arn", help="the IAM role ARN SageMaker assumes")
    parser.add_argument("--bucket", help="the S3 bucket for the data and the model")
    parser.add_argument("--prefix", help="the folder inside the bucket (default: imgcls)")
    parser.add_argument("--region", help="the AWS region, e.g. eu-west-1")
    parser.add_argument("--instance-type", help="e.g. ml.p3.2xlarge")
    parser.add_argument("--instance-count", type=int, help="machines to train on (default 1)")
    parser.add_argument("--job-name", help="the training job's name (default imgcls-training)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing job file")
    parser.set_defaults(handler=run_export_job)


def run_export_job(args: argparse.Namespace) -> int:
    """Write the job file and print what to do with it."""
    names = (
        "role_arn",
        "bucket",
        "prefix",
        "region",
        "instance_type",
        "instance_count",
        "job_name",
    )
    target = filled(JobTarget(), {name: getattr(args, name) for name in names})
    try:
        job = sagemaker_job(args.source, target, train=args.train, validation=args.validation)
        write_job(job, args.output, overwrite=args.overwrite)
    except JobExportError as error:
        raise CommandError(str(error)) from None
    print(f"Wrote {args.output}")
    print(job.instructions(args.output))
    return 0
