"""Opening every model kind; unsafe archives and unusable models refused with a reason."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
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

from imgcls_desktop.core.artifacts import ModelError, params_file
from imgcls_desktop.core.models import (
    SourceKind,
    looks_like_model,
    open_model,
    run_validation_data,
)
from imgcls_desktop.core.paths import cache_dir
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
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
    assert model.preprocessing.center_crop and model.preprocessing.shorter_side == 32


def test_sagemaker_archive_from_a_plain_symbol(tmp_path: Path) -> None:
    archive = write_sagemaker_archive(tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\ufeffant\nbee\n\ncow\n", encoding="utf-8")  # with a BOM
    model = open_model(archive, labels=labels)
    assert model.source_kind == SourceKind.SAGEMAKER_ARCHIVE and model.path == archive
    assert model.class_names == ["ant", "bee", "cow"]
    assert model.input_shape == PLAIN_SHAPE and model.epoch == 1
    assert not model.preprocessing.center_crop
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
    assert model.preprocessing.multi_label
    assert "sigmoid" in model.probability_symbol().tojson()


def test_plain_prefix_highest_epoch_or_named(tmp_path: Path) -> None:
    prefix = write_plain_checkpoint(tmp_path, epochs=(1, 3))
    assert open_model(prefix).epoch == 3
    assert open_model(prefix, epoch=1).epoch == 1
    assert open_model(Path(f"{prefix}-symbol.json")).epoch == 3
    assert open_model(Path(f"{prefix}-0001.params")).epoch == 1
    assert open_model(tmp_path).source_kind == SourceKind.CHECKPOINT


def test_plain_prefix_without_shapes_file_assumes_an_input_shape_and_says_so(
    tmp_path: Path,
) -> None:
    prefix = write_plain_checkpoint(tmp_path, shapes=False)
    model = open_model(prefix)
    assert model.input_shape == (3, 224, 224)
    assert model.preprocessing.height == 224
    (note,) = model.notes
    assert "assumed input shape 3,224,224 (SageMaker's default)" in note
    assert "--image-shape C,H,W" in note
    given = open_model(prefix, input_shape=(3, 24, 24))
    assert given.input_shape == (3, 24, 24) and given.notes == ()
    # A SageMaker hyperparameters.json beside the files records the shape it trained with.
    (tmp_path / "hyperparameters.json").write_text('{"image_shape": "3,40,48"}')
    recorded = open_model(prefix)
    assert recorded.input_shape == (3, 40, 48)
    assert "3,40,48 (the image_shape of hyperparameters.json)" in recorded.notes[0]


def test_an_assumed_shape_that_does_not_fit_says_it_was_assumed(tmp_path: Path) -> None:
    sym = mx.sym
    flat = sym.FullyConnected(sym.flatten(sym.var("data")), num_hidden=2, name="fc")
    symbol = sym.SoftmaxOutput(flat, name="softmax")
    weights = {"fc_weight": mx.nd.zeros((2, 3 * 8 * 8)), "fc_bias": mx.nd.zeros(2)}
    mx.model.save_checkpoint(str(tmp_path / "small"), 1, symbol, weights, {})
    with pytest.raises(ModelError, match=r"needs \(2, 150528\).*assumed input shape 3,224,224"):
        open_model(tmp_path / "small")
    assert open_model(tmp_path / "small", input_shape=(3, 8, 8)).num_classes == 2


def test_a_gluon_export_opens_at_epoch_0_with_softmax_over_its_logits(tmp_path: Path) -> None:
    net = build_network(20, 3, (3, 32, 32))
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.export(str(tmp_path / "exported"))  # exported-symbol.json + exported-0000.params
    for named in (tmp_path / "exported", tmp_path / "exported-0000.params", tmp_path):
        model = open_model(named, input_shape=(3, 32, 32))
        assert (model.epoch, model.source_kind, model.num_classes) == (0, "checkpoint", 3)
    assert "read as logits" in model.notes[0]
    assert looks_like_model(tmp_path / "exported-0000.params")
    executor = model.probability_symbol().bind(
        mx.cpu(),
        {"data": mx.nd.random.uniform(0, 255, (2, 3, 32, 32)), **model.arg_params},
        aux_states=model.aux_params,
    )
    probabilities = executor.forward()[0].asnumpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


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


def test_a_text_file_is_not_a_model_and_a_corrupt_archive_not_a_valid_archive(
    tmp_path: Path,
) -> None:
    text = tmp_path / "labels.txt"
    text.write_text("cat\ndog\n")
    with pytest.raises(ModelError, match="is not a model: a model is a training run folder"):
        open_model(text)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"\x1f\x8b this is not gzip data")
    with pytest.raises(ModelError, match="is not a valid archive") as raised:
        open_model(archive)
    assert "symbol.json" not in str(raised.value)


def test_the_validation_data_of_a_run_and_of_its_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    run_dir, _result = shared_run(tmp_path_factory)
    validation = run_validation_data(run_dir)
    assert validation is not None and validation.suffix == ".rec" and validation.is_file()
    best = read_run(run_dir).best_epoch
    assert run_validation_data(run_dir / params_file(best)) == validation
    assert run_validation_data(write_plain_checkpoint(tmp_path)) is None
    assert run_validation_data(tmp_path / "nothing") is None


def test_a_checkpoint_inside_a_run_folder_has_the_runs_classes_and_preprocessing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Seen in the window: one of a run's checkpoints, opened as a model, was called
    class_0, class_1... and could not be evaluated on the run's validation images."""
    run_dir, _result = shared_run(tmp_path_factory)
    whole_run = open_model(run_dir)
    checkpoint = open_model(run_dir / params_file(read_run(run_dir).best_epoch))
    assert checkpoint.class_names == whole_run.class_names
    assert checkpoint.preprocessing == whole_run.preprocessing


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


def test_extraction_folders_left_by_killed_processes_are_removed(tmp_path: Path) -> None:
    extractions = cache_dir() / "models"
    stale, recent = extractions / "archive-killed", extractions / "archive-in-use"
    for folder in (stale, recent):
        (folder / "files").mkdir(parents=True)
        (folder / "files" / "image-classification-0001.params").write_bytes(b"0" * 100)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))
    (extractions / "archive-a-file").write_text("not a folder")

    open_model(write_sagemaker_archive(tmp_path))

    assert not stale.exists()  # older than any extraction takes
    assert recent.is_dir() and (extractions / "archive-a-file").is_file()
    assert sorted(p.name for p in extractions.iterdir()) == ["archive-a-file", "archive-in-use"]
