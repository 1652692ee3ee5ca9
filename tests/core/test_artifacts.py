"""Checkpoints in SageMaker's layout, loaded by plain MXNet; resume; atomic writes."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.artifacts import (
    SHAPES_FILE,
    SYMBOL_FILE,
    ModelError,
    list_checkpoints,
    load_into,
    load_symbol_model,
    params_file,
    remove_checkpoint,
    save_arrays,
    save_checkpoint,
    save_with_mxnet,
)
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network

# MXNet's own notes on a Module bound without labels and on SymbolBlock.imports' input types.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Data provided by label_shapes:UserWarning"),
    pytest.mark.filterwarnings("ignore:Cannot decide type:UserWarning"),
]

mx = mxnet()
CLASSES = 3
SHAPE = (3, 32, 32)
BATCH = 4


def trained(multi_label: bool = False, seed: int = 0):
    """A hybridized ResNet-20 after a training pass (batch-norm statistics moved) and an
    inference pass; returns it with a batch of raw pixels."""
    mx.random.seed(seed)
    net = build_network(20, CLASSES, SHAPE, multi_label=multi_label)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    pixels = mx.nd.random.uniform(0, 255, (BATCH, *SHAPE))
    with mx.autograd.record():
        loss = net(pixels).sum()
    loss.backward()  # MXNet moves the batch-norm statistics in the backward pass
    net(pixels)
    return net, pixels


def probabilities(net, pixels, multi_label: bool = False) -> np.ndarray:
    logits = net(pixels)
    return (mx.nd.sigmoid(logits) if multi_label else mx.nd.softmax(logits)).asnumpy()


def module_outputs(run_dir: Path, epoch: int, pixels) -> np.ndarray:
    """What plain MXNet gives: ``load_checkpoint`` + a ``Module`` bound for inference."""
    symbol, arg_params, aux_params = mx.model.load_checkpoint(
        str(run_dir / "image-classification"), epoch
    )
    module = mx.mod.Module(symbol, data_names=["data"], label_names=["softmax_label"])
    module.bind(for_training=False, data_shapes=[("data", pixels.shape)])
    module.set_params(arg_params, aux_params)
    module.forward(mx.io.DataBatch([pixels]), is_train=False)
    return module.get_outputs()[0].asnumpy()


def test_the_sagemaker_layout(tmp_path: Path) -> None:
    net, _ = trained()
    path = save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    assert path == tmp_path / "image-classification-0001.params"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "image-classification-0001.params",
        "image-classification-symbol.json",
        "model-shapes.json",
    ]
    assert SYMBOL_FILE == "image-classification-symbol.json"
    assert json.loads((tmp_path / SHAPES_FILE).read_text()) == [
        {"name": "data", "shape": [BATCH, *SHAPE]}
    ]
    saved = mx.nd.load(str(path))
    assert all(key.startswith(("arg:", "aux:")) for key in saved)
    assert saved["aux:classifier_batchnorm0_running_mean"].abs().sum() > 0
    assert saved["arg:classifier_mean"].shape == (1, 3, 1, 1)
    assert params_file(12) == "image-classification-0012.params"
    with pytest.raises(ValueError, match="from 1"):
        params_file(0)


def test_plain_mxnet_module_gives_the_networks_probabilities(tmp_path: Path) -> None:
    net, pixels = trained()
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    outputs = module_outputs(tmp_path, 1, pixels)
    assert outputs.shape == (BATCH, CLASSES)
    np.testing.assert_allclose(outputs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(outputs, probabilities(net, pixels), atol=1e-5)


def test_symbol_block_imports_it_too(tmp_path: Path) -> None:
    net, pixels = trained()
    save_checkpoint(tmp_path, net, 2, batch_size=BATCH)
    # Like SageMaker's, the symbol has a label input; inference ignores its value.
    block = mx.gluon.SymbolBlock.imports(
        str(tmp_path / SYMBOL_FILE),
        ["data", "softmax_label"],
        str(tmp_path / params_file(2)),
    )
    outputs = block(pixels, mx.nd.zeros(BATCH)).asnumpy()
    np.testing.assert_allclose(outputs, probabilities(net, pixels), atol=1e-5)


def test_multi_label_gives_per_class_sigmoid_probabilities(tmp_path: Path) -> None:
    net, pixels = trained(multi_label=True)
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    outputs = module_outputs(tmp_path, 1, pixels)
    assert outputs.shape == (BATCH, CLASSES)
    assert not np.allclose(outputs.sum(axis=1), 1)
    np.testing.assert_allclose(outputs, probabilities(net, pixels, multi_label=True), atol=1e-5)


def test_several_devices_save_one_copy_with_averaged_statistics(tmp_path: Path) -> None:
    devices = [mx.cpu(0), mx.cpu(1)]
    net = build_network(20, CLASSES, SHAPE)
    net.initialize(mx.init.Xavier(), ctx=devices)
    for device, seed in zip(devices, (0, 1)):
        mx.random.seed(seed)
        with mx.autograd.record():
            loss = net(mx.nd.random.uniform(0, 255, (2, *SHAPE), ctx=device)).sum()
        loss.backward()
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    saved = mx.nd.load(str(tmp_path / params_file(1)))
    statistics = net.features[1].running_mean
    copies = [data.asnumpy() for data in statistics.list_data()]
    assert not np.allclose(*copies)
    np.testing.assert_allclose(saved[f"aux:{statistics.name}"].asnumpy(), np.mean(copies, 0))
    weight = net.output.weight
    np.testing.assert_array_equal(saved[f"arg:{weight.name}"].asnumpy(), weight.data().asnumpy())


def test_load_into_resumes_the_same_network(tmp_path: Path) -> None:
    net, pixels = trained()
    save_checkpoint(tmp_path, net, 3, batch_size=BATCH)
    other, _ = trained(seed=1)
    assert not np.allclose(probabilities(other, pixels), probabilities(net, pixels))
    load_into(other, tmp_path, 3)
    np.testing.assert_allclose(probabilities(other, pixels), probabilities(net, pixels), atol=1e-6)
    fresh = build_network(20, CLASSES, SHAPE)
    fresh.initialize()  # never run: deferred shapes take the checkpoint's
    load_into(fresh, tmp_path, 3)
    np.testing.assert_allclose(probabilities(fresh, pixels), probabilities(net, pixels), atol=1e-6)


def test_load_into_refuses_another_class_count_or_depth(tmp_path: Path) -> None:
    net, _ = trained()
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    wider = build_network(20, 5, SHAPE)
    wider.initialize()
    with pytest.raises(ModelError, match=r"'classifier_dense0_weight' has shape \(3, 64\)"):
        load_into(wider, tmp_path, 1)
    deeper = build_network(32, CLASSES, SHAPE)
    deeper.initialize()
    with pytest.raises(ModelError, match="has no 'classifier_stage1_conv6_weight'"):
        load_into(deeper, tmp_path, 1)
    with pytest.raises(ModelError, match="no checkpoint for epoch 2"):
        load_into(net, tmp_path, 2)


def test_list_and_remove_checkpoints(tmp_path: Path) -> None:
    assert list_checkpoints(tmp_path / "missing") == []
    net, _ = trained()
    for epoch in (1, 2, 10):
        save_checkpoint(tmp_path, net, epoch, batch_size=BATCH)
    (tmp_path / "image-classification-best.params").write_bytes(b"")
    (tmp_path / "other-0004.params").write_bytes(b"")
    assert list_checkpoints(tmp_path) == [1, 2, 10]
    remove_checkpoint(tmp_path, 2)
    remove_checkpoint(tmp_path, 7)
    assert list_checkpoints(tmp_path) == [1, 10]


def test_load_symbol_model_from_a_folder_or_a_prefix(tmp_path: Path) -> None:
    net, _ = trained()
    for epoch in (1, 2):
        save_checkpoint(tmp_path, net, epoch, batch_size=BATCH)
    model = load_symbol_model(tmp_path)
    assert model.data_shape == (BATCH, *SHAPE)
    assert model.symbol.list_outputs() == ["softmax_output"]
    symbol, arg_params, aux_params, data_shape = load_symbol_model(tmp_path, epoch=1)
    assert data_shape == model.data_shape
    assert set(arg_params) | set(aux_params) == set(model.arg_params) | set(model.aux_params)
    # A plain checkpoint with another prefix and no shapes file.
    plain = tmp_path / "plain"
    plain.mkdir()
    mx.model.save_checkpoint(str(plain / "model"), 7, symbol, arg_params, aux_params)
    model = load_symbol_model(plain / "model")
    assert model.data_shape is None
    assert sorted(model.arg_params) == sorted(arg_params)


def test_load_symbol_model_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"image-classification-symbol\.json is missing"):
        load_symbol_model(tmp_path)
    net, _ = trained()
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    with pytest.raises(ModelError, match=r"no parameters for epoch 4 \(it has \[1\]\)"):
        load_symbol_model(tmp_path, epoch=4)
    remove_checkpoint(tmp_path, 1)
    with pytest.raises(ModelError, match=r"no image-classification-NNNN\.params"):
        load_symbol_model(tmp_path)
    (tmp_path / params_file(1)).write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read"):
        load_symbol_model(tmp_path)


@pytest.mark.parametrize("blocked", [params_file(2), SHAPES_FILE])
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path, blocked: str) -> None:
    net, pixels = trained()
    save_checkpoint(tmp_path, net, 1, batch_size=BATCH)
    expected = module_outputs(tmp_path, 1, pixels)
    # A folder where a file must go makes the final rename fail, even for root.
    (tmp_path / blocked).unlink(missing_ok=True)
    (tmp_path / blocked).mkdir()
    later, _ = trained(seed=1)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, later, 2, batch_size=BATCH)
    np.testing.assert_allclose(module_outputs(tmp_path, 1, pixels), expected, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_write_mxnet_cannot_finish_is_an_os_error(tmp_path: Path) -> None:
    """MXNet reports a short write only as "FileStream.Write incomplete": a full disk must
    reach the user as "No space left on device", any other failure as an OSError."""
    mx = mxnet()
    arrays = {"a": mx.nd.zeros((256, 256))}

    def write_to_a_full_device(_file_name: str) -> None:
        mx.nd.save("/dev/full", arrays)  # the real MXNet writer, meeting a full device

    # More than the whole disk: other processes may free space meanwhile, never that much.
    more_than_the_disk = shutil.disk_usage(tmp_path).total + 1
    with pytest.raises(OSError) as no_room:
        save_with_mxnet(tmp_path / "a.params", write_to_a_full_device, more_than_the_disk)
    assert no_room.value.errno == errno.ENOSPC and "No space left on device" in str(no_room.value)
    with pytest.raises(OSError, match="MXNet could not write it") as other:
        save_with_mxnet(tmp_path / "a.params", write_to_a_full_device, 1)
    assert other.value.errno == errno.EIO
    assert "FileStream.Write incomplete" in str(other.value), "MXNet's message, not its trace"
    assert list(tmp_path.iterdir()) == []  # no temporary file left
    save_arrays(tmp_path / "b.params", arrays)
    assert mx.nd.load(str(tmp_path / "b.params"))["a"].shape == (256, 256)
