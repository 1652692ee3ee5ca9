"""``imgcls train --base-model``: fine-tuning a SageMaker model.tar.gz from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgcls_desktop.cli import main
from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.models import open_model
from tests.core.sagemaker_fixtures import train_sagemaker_model

TINY = ["--set", "image_shape=3,32,32", "--set", "mini_batch_size=16", "--device", "cpu"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_sample_dataset(
        tmp_path_factory.mktemp("data") / "shapes", classes=3, per_class=24, size=32
    )


@pytest.fixture(scope="module")
def five_classes(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive, _accuracy = train_sagemaker_model(
        shapes, 5, tmp_path_factory.mktemp("model") / "model.tar.gz", epochs=2
    )
    return archive


def test_a_sagemaker_model_with_another_class_count_says_what_was_loaded(
    shapes: Path, five_classes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "--train", str(shapes), "--output", str(run), "--base-model"]
    assert main([*args, str(five_classes), "--set", "epochs=1", *TINY]) == 0
    out = capsys.readouterr().out
    line = (
        "note: Started from model.tar.gz: 18 layers loaded, new head fc1 for 3 classes "
        "(the model had 5)"
    )
    assert line in out.splitlines()
    assert open_model(run).class_names == ["circle", "square", "triangle"]


def test_a_model_that_cannot_take_the_images_is_refused_in_one_line(
    shapes: Path, five_classes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "--train", str(shapes), "--output", str(run), "--base-model"]
    code = main([*args, str(five_classes), *TINY, "--set", "image_shape=1,32,32"])
    err = capsys.readouterr().err
    assert code == 1
    assert "does not fit 1,32,32 images" in err and "Traceback" not in err
    assert not run.exists()


def test_the_help_names_every_kind_of_base_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a SageMaker model.tar.gz or an MXNet checkpoint" in help_text
    assert "another number of classes a new last layer replaces its head" in help_text
