"""Opening every model kind; unsafe archives and unusable models refused with a reason."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from inference_fixtures import (
    PLAIN_CLASSES,
    PLAIN_SHAPE,
    shared_run,
    write_plain_checkpoint,
    write_sagemaker_archive,
)

from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.models import SourceKind, looks_like_model, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.run import read_run

mx = mxnet()


def test_run_folder_opens_at_its_best_epoch_with_names_and_preprocessing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_dir, _result = shared_run(tmp_path_factory)
    model = open_model(run_dir)
    assert model.source_kind == SourceKind.RUN
    assert model.epoch == read_run(run_dir).best_epoch
    assert model.class_names == json.loads((run_dir / "classes.json").read_text())
    assert model.input_shape == (3, 32, 32) and not model.multi_label
    assert model.preprocessing["crop"] == "center"
    assert model.preprocessing["resize_shorter_side"] == 32


def test_sagemaker_archive_from_a_plain_symbol(tmp_path: Path) -> None:
    archive = write_sagemaker_archive(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\ufeffant\nbee\n\ncow\n", encoding="utf-8")  # with a BOM
    model = open_model(archive, labels=labels)
    assert model.source_kind == SourceKind.SAGEMAKER_ARCHIVE and model.path == archive
    assert model.class_names == ["ant", "bee", "cow"]
    assert model.input_shape == PLAIN_SHAPE and model.epoch == 1
    assert model.preprocessing["resize"] == "whole image"
    assert open_model(archive).class_names == ["class_0", "class_1", "class_2"]


def test_probability_symbol_needs_no_label_and_gives_probabilities(tmp_path: Path) -> None:
    model = open_model(write_sagemaker_archive(tmp_path))
    symbol = model.probability_symbol()
    assert symbol.list_arguments().count("softmax_label") == 0
    executor = symbol.bind(
        mx.cpu(),
        {"data": mx.nd.random.uniform(0, 255, (2, *PLAIN_SHAPE)), **model.arg_params},
        aux_states=model.aux_params,
    )
    probabilities = executor.forward()[0].asnumpy()
    assert probabilities.shape == (2, PLAIN_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_multi_label_head_becomes_sigmoid(tmp_path: Path) -> None:
    model = open_model(write_plain_checkpoint(tmp_path, multi_label=True))
    assert model.multi_label
    assert model.preprocessing["output"] == "sigmoid per class"
    assert "sigmoid" in model.probability_symbol().tojson()


def test_plain_prefix_highest_epoch_or_named(tmp_path: Path) -> None:
    prefix = write_plain_checkpoint(tmp_path, epochs=(1, 3))
    assert open_model(prefix).epoch == 3
    assert open_model(prefix, epoch=1).epoch == 1
    assert open_model(Path(f"{prefix}-symbol.json")).epoch == 3
    assert open_model(Path(f"{prefix}-0001.params")).epoch == 1
    assert open_model(tmp_path).source_kind == SourceKind.CHECKPOINT


def test_plain_prefix_without_shapes_file_needs_the_input_shape(tmp_path: Path) -> None:
    prefix = write_plain_checkpoint(tmp_path, shapes=False)
    with pytest.raises(ModelError, match="give its input shape"):
        open_model(prefix)
    assert open_model(prefix, input_shape=(3, 24, 24)).input_shape == (3, 24, 24)


def test_class_count_mismatch(tmp_path: Path) -> None:
    labels = tmp_path / "classes.json"
    labels.write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(ModelError, match="3 outputs but 2 class names"):
        open_model(write_plain_checkpoint(tmp_path / "model"), labels=labels)


def test_missing_files_and_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        open_model(tmp_path / "nothing")
    prefix = write_plain_checkpoint(tmp_path)
    with pytest.raises(ModelError, match="C,H,W"):
        open_model(prefix, input_shape=(4, 16, 16))
    Path(f"{prefix}-0001.params").unlink()
    with pytest.raises(ModelError, match="params"):
        open_model(prefix)


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    prefix = write_plain_checkpoint(tmp_path)
    params = Path(f"{prefix}-0001.params")
    arrays = mx.nd.load(str(params))
    arrays["arg:fc1_weight"] = mx.nd.zeros((5, 4))
    mx.nd.save(str(params), arrays)
    with pytest.raises(ModelError, match="fc1_weight"):
        open_model(prefix)


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return archive


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("/etc/evil", tarfile.REGTYPE, "absolute path"),
        ("../evil", tarfile.REGTYPE, "outside"),
        ("model/../../evil", tarfile.REGTYPE, "outside"),
        ("link", tarfile.SYMTYPE, "a link"),
        ("hard", tarfile.LNKTYPE, "a link"),
        ("device", tarfile.CHRTYPE, "device"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, name: str, kind: bytes, reason: str) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    member.size = 4 if kind == tarfile.REGTYPE else 0
    archive = _archive_with(tmp_path, member, b"evil")
    with pytest.raises(ModelError, match=reason):
        open_model(archive)
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_oversized_members_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imgcls_desktop.core.models.MAX_ARCHIVE_BYTES", 3)
    member = tarfile.TarInfo("big.params")
    member.size = 4
    with pytest.raises(ModelError, match="more than a model file may"):
        open_model(_archive_with(tmp_path, member, b"1234"))


def test_model_paths_are_told_from_data_paths(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, class_folder: Path
) -> None:
    run_dir, _result = shared_run(tmp_path_factory)
    prefix = write_plain_checkpoint(tmp_path / "plain")
    for model in (
        run_dir,
        prefix.parent,
        prefix.with_name(f"{prefix.name}-symbol.json"),
        prefix.with_name(f"{prefix.name}-0001.params"),
        tmp_path / "model.tar.gz",
    ):
        assert looks_like_model(model), model
    for data in (class_folder, class_folder / "cat" / "cat_0.jpg", tmp_path / "x.rec"):
        assert not looks_like_model(data), data
