"""Fine-tuning from any model: SageMaker's symbolic ResNet in a ``model.tar.gz``, a plain
MXNet checkpoint and our own runs, with the same or another number of classes."""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from sagemaker_fixtures import SAGEMAKER_PREFIX, folder_arrays, train_sagemaker_model
from training_fixtures import (
    CLASS_NAMES,
    as_earlier_versions_trained,
    quick_hp,
    shared_colour_folder,
    write_colour_set,
    write_multi_label_set,
)

from imgcls_desktop.core.artifacts import ModelError
from imgcls_desktop.core.models import extract_archive, open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.callbacks import Callback
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.network import logits_symbol
from imgcls_desktop.core.training.run import RunError, RunStatus, read_run
from imgcls_desktop.core.training.starting_point import NETWORK_FILE, SymbolicNetwork


class Began(Callback):
    """What the run said when it began, and its epochs' logs."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.epochs: list[dict] = []

    def on_train_begin(self, state):
        self.notes, self.warnings = list(state.notes), list(state.warnings)

    def on_epoch_end(self, epoch, logs):
        self.epochs.append(dict(logs))


class StopAfterOneEpoch(Callback):
    def on_epoch_end(self, epoch, logs):
        self.state.request_stop("stopped by the test")


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_colour_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def same_classes(colours: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A SageMaker model.tar.gz trained on the colour set's 3 classes, and its accuracy."""
    return train_sagemaker_model(colours, 3, tmp_path_factory.mktemp("sm3") / "model.tar.gz")


@pytest.fixture(scope="module")
def five_classes(colours: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A SageMaker model.tar.gz with 5 outputs (trained on the colours' first 3)."""
    return train_sagemaker_model(colours, 5, tmp_path_factory.mktemp("sm5") / "model.tar.gz")


def test_the_fixture_is_sagemakers_layout(same_classes) -> None:
    archive, accuracy = same_classes
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            f"{SAGEMAKER_PREFIX}-0001.params",
            f"{SAGEMAKER_PREFIX}-symbol.json",
            "model-shapes.json",
        ]
    nodes = json.loads(open_model(archive).symbol.tojson())["nodes"]
    names = {node["name"] for node in nodes}
    assert {"bn_data", "stage1_unit1_conv1", "stage2_unit1_sc", "fc1", "softmax"} <= names
    assert accuracy > 0.9


def test_same_classes_start_where_the_model_was(same_classes, colours, tmp_path) -> None:
    archive, accuracy = same_classes
    began = Began()
    hp = quick_hp(epochs=1, learning_rate=1e-7, weight_decay=0)
    result = train(
        TrainingJob(hp, colours, tmp_path / "run", base_model=archive), callbacks=[began]
    )
    assert result.status is RunStatus.FINISHED
    assert began.epochs[0]["val_accuracy"] >= accuracy - 0.1
    assert began.notes == [
        "Started from model.tar.gz: all 19 layers loaded, head fc1 included (3 classes)"
    ]
    # The saved model is SageMaker's network, with the base model's weights.
    mx = mxnet()
    before = mx.nd.load(str(_extracted(archive, tmp_path) / f"{SAGEMAKER_PREFIX}-0001.params"))
    after = mx.nd.load(str(tmp_path / "run" / f"{SAGEMAKER_PREFIX}-0001.params"))
    for key in ("arg:stage1_unit1_conv1_weight", "arg:fc1_weight", "arg:bn_data_beta"):
        assert np.allclose(before[key].asnumpy(), after[key].asnumpy(), atol=1e-4), key
    assert read_run(tmp_path / "run").network == NETWORK_FILE


def test_another_class_count_gets_a_new_head(five_classes, tmp_path) -> None:
    archive, _accuracy = five_classes
    data = write_colour_set(tmp_path / "images", per_class=20)
    began = Began()
    hp = quick_hp(epochs=5, learning_rate=0.01)
    run = tmp_path / "run"
    job = TrainingJob(hp, data, run, base_model=archive, devices="cpu:0,cpu:1")
    result = train(job, callbacks=[began])
    assert result.status is RunStatus.FINISHED
    assert began.notes == [
        "Started from model.tar.gz: 18 layers loaded, new head fc1 for 3 classes (the model had 5)"
    ]
    assert result.best_val_accuracy > 0.6  # chance is 1/3
    model = open_model(run)
    assert model.class_names == CLASS_NAMES
    images, labels = folder_arrays(data)
    probabilities = _predict(model, images)
    assert probabilities.shape == (len(images), 3)
    assert (probabilities.argmax(axis=1) == labels).mean() > 0.8


def test_a_run_from_a_model_resumes_after_the_model_is_deleted(five_classes, colours, tmp_path):
    archive = tmp_path / "model.tar.gz"
    shutil.copy(five_classes[0], archive)
    run = tmp_path / "run"
    hp = quick_hp(epochs=2, learning_rate=0.01)
    stopped = train(
        TrainingJob(hp, colours, run, base_model=archive), callbacks=[StopAfterOneEpoch()]
    )
    assert (stopped.status, stopped.last_epoch) == (RunStatus.STOPPED, 1)
    archive.unlink()
    began = Began()
    result = train(TrainingJob.resume_of(run), callbacks=[began])
    assert (result.status, result.last_epoch) == (RunStatus.FINISHED, 2)
    assert began.notes == []  # the weights came from the run's own epoch 1
    assert open_model(run).num_classes == 3


def test_an_earlier_versions_run_resumes_with_its_own_network(colours, tmp_path) -> None:
    run = tmp_path / "run"
    with as_earlier_versions_trained():
        stopped = train(
            TrainingJob(quick_hp(epochs=2), colours, run), callbacks=[StopAfterOneEpoch()]
        )
    assert (stopped.status, stopped.last_epoch) == (RunStatus.STOPPED, 1)
    result = train(TrainingJob.resume_of(run))
    assert (result.status, result.last_epoch) == (RunStatus.FINISHED, 2)
    assert read_run(run).network is None
    saved = mxnet().nd.load(str(run / f"{SAGEMAKER_PREFIX}-{result.best_epoch:04d}.params"))
    assert "arg:classifier_conv0_weight" in saved and "arg:bn_data_gamma" not in saved


def test_a_run_stopped_before_its_first_epoch_needs_its_base_model(
    same_classes, colours, tmp_path
) -> None:
    archive = tmp_path / "model.tar.gz"
    shutil.copy(same_classes[0], archive)
    run = tmp_path / "run"

    class StopAtOnce(Callback):
        def on_batch_end(self, step, logs):
            self.state.request_stop("stopped by the test")

    hp = quick_hp(epochs=1)
    train(TrainingJob(hp, colours, run, base_model=archive), callbacks=[StopAtOnce()])
    archive.unlink()
    with pytest.raises(RunError, match="stopped before its first epoch ended and its base model"):
        train(TrainingJob.resume_of(run))


@pytest.mark.parametrize(
    ("earlier", "head", "network", "kept"),
    [
        (False, "fc1", NETWORK_FILE, "stage3_unit3_conv2_weight"),  # SageMaker's network
        (True, "output", None, "classifier_conv0_weight"),  # ours, rebuilt from num_layers
    ],
    ids=["from scratch", "an earlier version's run"],
)
def test_a_run_of_this_app_with_another_class_count(
    earlier: bool, head: str, network: str | None, kept: str, colours, tmp_path
) -> None:
    with as_earlier_versions_trained() if earlier else contextlib.nullcontext():
        base = train(TrainingJob(quick_hp(epochs=1), colours, tmp_path / "base"))
    two = tmp_path / "two"
    for name in CLASS_NAMES[:2]:
        shutil.copytree(colours / name, two / name)
    began = Began()
    hp = quick_hp(epochs=1, learning_rate=1e-7, weight_decay=0)
    run = tmp_path / "run"
    result = train(TrainingJob(hp, two, run, base_model=base.run_dir), callbacks=[began])
    assert result.status is RunStatus.FINISHED
    assert len(began.notes) == 1
    assert began.notes[0].startswith("Started from base: ")
    assert began.notes[0].endswith(
        f"layers loaded, new head {head} for 2 classes (the model had 3)"
    )
    assert read_run(base.run_dir).network == read_run(run).network == network
    mx = mxnet()
    before = mx.nd.load(str(base.run_dir / f"{SAGEMAKER_PREFIX}-0001.params"))
    after = mx.nd.load(str(run / f"{SAGEMAKER_PREFIX}-0001.params"))
    assert np.allclose(before[f"arg:{kept}"].asnumpy(), after[f"arg:{kept}"].asnumpy(), atol=1e-4)
    head_weight = "fc1_weight" if head == "fc1" else "classifier_dense0_weight"
    assert after[f"arg:{head_weight}"].shape[0] == 2


def test_a_plain_mxnet_checkpoint(same_classes, colours, tmp_path) -> None:
    extracted = _extracted(same_classes[0], tmp_path)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    shutil.copy(extracted / f"{SAGEMAKER_PREFIX}-symbol.json", folder / "colours-symbol.json")
    shutil.copy(extracted / f"{SAGEMAKER_PREFIX}-0001.params", folder / "colours-0003.params")
    began = Began()
    hp = quick_hp(epochs=1, learning_rate=1e-7, weight_decay=0)
    job = TrainingJob(hp, colours, tmp_path / "run", base_model=folder / "colours-symbol.json")
    result = train(job, callbacks=[began])
    assert result.best_val_accuracy > 0.9
    assert began.notes == [
        "Started from colours-symbol.json: all 19 layers loaded, head fc1 included (3 classes)"
    ]


def test_the_network_from_a_symbol_keeps_the_contract(same_classes, colours, tmp_path) -> None:
    """What quick mode relies on: ``output`` a Dense, the features at the last
    FullyConnected's input, the recorded attributes."""
    hp = quick_hp(epochs=1, learning_rate=1e-7)
    run = tmp_path / "run"
    train(TrainingJob(hp, colours, run, base_model=same_classes[0]))
    record = SymbolicNetwork.read(run / NETWORK_FILE)
    net = record.build(3, (3, 32, 32), False)
    assert isinstance(net.output, mxnet().gluon.nn.Dense)
    assert (net.num_classes, net.image_shape, net.multi_label) == (3, (3, 32, 32), False)
    assert net.num_layers == 8  # conv0, three units of two, fc1
    nodes = json.loads(logits_symbol(net).tojson())["nodes"]
    assert [node["name"] for node in nodes if node["op"] == "FullyConnected"] == ["fc1_fwd"]


def test_a_model_without_fully_connected_layer_is_refused(colours, tmp_path) -> None:
    mx = mxnet()
    sym = mx.sym
    body = sym.Convolution(sym.var("data"), num_filter=3, kernel=(3, 3), name="conv0")
    pooled = sym.Flatten(sym.Pooling(body, global_pool=True, kernel=(1, 1), pool_type="avg"))
    model = mx.mod.Module(sym.SoftmaxOutput(pooled, name="softmax"), context=mx.cpu())
    model.bind(data_shapes=[("data", (1, 3, 32, 32))], label_shapes=[("softmax_label", (1,))])
    model.init_params()
    model.save_checkpoint(str(tmp_path / "nofc"), 1)
    job = TrainingJob(
        quick_hp(), colours, tmp_path / "run", base_model=tmp_path / "nofc-symbol.json"
    )
    with pytest.raises(ModelError, match="has no FullyConnected layer"):
        train(job)
    assert not (tmp_path / "run").exists()


def test_images_the_model_cannot_take_are_refused(same_classes, colours, tmp_path) -> None:
    job = TrainingJob(
        quick_hp(image_shape="1,32,32"), colours, tmp_path / "run", base_model=same_classes[0]
    )
    with pytest.raises(ModelError, match="does not fit 1,32,32 images"):
        train(job)
    assert not (tmp_path / "run").exists()


def test_a_single_label_model_for_multi_label_data_is_refused(same_classes, tmp_path) -> None:
    lst = write_multi_label_set(tmp_path / "data", per_combination=4)
    hp = quick_hp(multi_label=1)  # the data preparation refuses multi_label=0 for this data
    job = TrainingJob(hp, lst, tmp_path / "run", base_model=same_classes[0])
    with pytest.raises(ModelError, match="is single-label but the data is multi-label"):
        train(job)
    assert not (tmp_path / "run").exists()


def test_a_base_model_with_pretrained_weights_or_missing_is_refused(colours, tmp_path) -> None:
    hp = quick_hp(use_pretrained_model=1)
    with pytest.raises(RunError, match="either a base model or use_pretrained_model=1"):
        train(TrainingJob(hp, colours, tmp_path / "run", base_model=tmp_path))
    with pytest.raises(RunError, match="does not exist"):
        train(TrainingJob(quick_hp(), colours, tmp_path / "run", base_model=tmp_path / "gone"))
    assert not (tmp_path / "run").exists()


def _extracted(archive: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "extracted"
    if not folder.is_dir():
        folder.mkdir()
        extract_archive(archive, folder)
    return folder


def _predict(model, images: np.ndarray) -> np.ndarray:
    """Probabilities of ``model`` for raw NCHW images, with plain MXNet."""
    mx = mxnet()
    module = mx.mod.Module(model.probability_symbol(), label_names=None, context=mx.cpu())
    module.bind(data_shapes=[("data", images.shape)], for_training=False)
    module.set_params(model.arg_params, model.aux_params)
    module.forward(mx.io.DataBatch([mx.nd.array(images)]), is_train=False)
    return module.get_outputs()[0].asnumpy()
