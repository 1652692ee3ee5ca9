"""The optimizer state saved as arrays and JSON: a resume continues exactly, bad files refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.optimizer_state import (
    OptimizerStateError,
    load_optimizer_state,
    save_optimizer_state,
)
from imgcls_desktop.core.training.optimizers import create_optimizer
from imgcls_desktop.core.training.run import (
    RunError,
    load_resume_state,
    resume_files,
    save_resume_state,
)

SHAPE = (3, 16, 16)
OPTIMIZERS = {
    "sgd": {"momentum": 0.9},
    "nag": {"momentum": 0.9},
    "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "rmsprop": {"gamma1": 0.9, "epsilon": 1e-8},
}
# (devices, update_on_kvstore): one updater; the key-value store's; one updater per device.
SETUPS = {
    "one device": (["cpu:0"], None),
    "two devices, store updates": (["cpu:0", "cpu:1"], None),
    "two devices, own updaters": (["cpu:0", "cpu:1"], False),
}


def _contexts(devices: list[str]) -> list:
    mx = mxnet()
    return [mx.cpu(int(device.split(":")[1])) for device in devices]


def _network_and_trainer(optimizer: str, devices: list[str], update_on_kvstore, seed: int):
    mx = mxnet()
    contexts = _contexts(devices)
    mx.random.seed(seed)
    net = build_network(20, 3, SHAPE)
    net.initialize(mx.init.Xavier(), ctx=contexts)
    for context in contexts:
        net(mx.nd.zeros((1, *SHAPE), ctx=context))
    params = {"learning_rate": 0.05, "wd": 1e-4, **OPTIMIZERS[optimizer]}
    # The rate halves after update 2, between the save (after 2) and the end (after 4).
    params["lr_scheduler"] = mx.lr_scheduler.MultiFactorScheduler(
        step=[2], factor=0.5, base_lr=0.05
    )
    trainer = mx.gluon.Trainer(
        net.collect_params(),
        create_optimizer(optimizer, params),  # as training runs do
        kvstore="device",
        update_on_kvstore=update_on_kvstore,
    )
    return net, trainer, contexts


def _batches(count: int) -> list:
    mx = mxnet()
    rng = np.random.default_rng(1)
    return [
        (
            mx.nd.array(rng.uniform(0, 255, (4, *SHAPE))),
            mx.nd.array(rng.integers(0, 3, 4)),
        )
        for _ in range(count)
    ]


def _train(net, trainer, contexts, batches) -> None:
    mx = mxnet()
    loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    split = mx.gluon.utils.split_and_load
    for data, label in batches:
        inputs, labels = split(data, contexts), split(label, contexts)
        with mx.autograd.record():
            losses = [loss(net(x), y) for x, y in zip(inputs, labels)]
        mx.autograd.backward(losses)
        trainer.step(data.shape[0])


def _weights(net, devices: int = 1) -> dict[str, np.ndarray]:
    """The parameters; with several devices the trained ones only (batch-norm statistics
    are averaged over the devices when saved, so they do not continue exactly)."""
    params = net.collect_params().items()
    return {n: p.data().asnumpy() for n, p in params if devices == 1 or p.grad_req != "null"}


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_resume_continues_exactly_as_training_straight_on(
    optimizer: str, setup: str, tmp_path: Path
) -> None:
    devices, update_on_kvstore = SETUPS[setup]
    batches = _batches(4)
    straight = _network_and_trainer(optimizer, devices, update_on_kvstore, seed=0)
    _train(*straight, batches)

    first = _network_and_trainer(optimizer, devices, update_on_kvstore, seed=0)
    _train(*first, batches[:2])
    save_resume_state(tmp_path, first[0], first[1], epoch=1)
    resumed = _network_and_trainer(optimizer, devices, update_on_kvstore, seed=7)
    assert load_resume_state(tmp_path, resumed[0], resumed[1], 1, resumed[2]) == []
    _train(*resumed, batches[2:])

    expected = _weights(straight[0], len(devices))
    found = _weights(resumed[0], len(devices))
    # Several devices sum their gradients in no fixed order: training straight on twice
    # differs by up to ~1e-6 there.
    close = {"rtol": 1e-6, "atol": 1e-7} if len(devices) == 1 else {"rtol": 1e-4, "atol": 1e-5}
    for name in expected:
        np.testing.assert_allclose(found[name], expected[name], **close, err_msg=name)
    assert resumed[1].learning_rate == straight[1].learning_rate == 0.025
    assert resumed[1]._optimizer.num_update == straight[1]._optimizer.num_update == 4

    # Without the optimizer state the same weights go elsewhere: the check above can fail.
    weights_only = _network_and_trainer(optimizer, devices, update_on_kvstore, seed=7)
    weights_only[0].load_parameters(str(resume_files(tmp_path, 1).params), ctx=weights_only[2])
    _train(*weights_only, batches[2:])
    differs = _weights(weights_only[0], len(devices))
    assert any(not np.allclose(differs[name], expected[name], **close) for name in expected)


def test_the_files_are_named_arrays_and_json(tmp_path: Path) -> None:
    net, trainer, contexts = _network_and_trainer("adam", ["cpu:0"], None, seed=0)
    _train(net, trainer, contexts, _batches(1))
    save_resume_state(tmp_path, net, trainer, epoch=3)
    files = resume_files(tmp_path, 3)
    record = json.loads(files.optimizer_record.read_text())
    assert record["optimizer"] == "adam" and record["num_update"] == 1
    assert record["lr_schedule"]["step"] == [2]
    layout = record["updaters"][0]["classifier_conv0_weight"]
    assert layout == ["0:classifier_conv0_weight:0", "0:classifier_conv0_weight:1"]
    arrays = mxnet().nd.load(str(files.optimizer_arrays))
    assert arrays[layout[0]].shape == net.collect_params()["classifier_conv0_weight"].shape
    assert not list(tmp_path.rglob("*.states"))


class _Scale(mxnet().gluon.HybridBlock):
    """``x * w``, summed: float16 on the CPU (MXNet's CPU convolutions are float32 only)."""

    def __init__(self) -> None:
        super().__init__(prefix="scale_")  # the same parameter names in every instance
        self.w = self.params.get("w", shape=(5,))

    def hybrid_forward(self, F, x, w):
        return F.broadcast_mul(x, w).sum()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_multi_precision_keeps_the_float32_master_weights(optimizer: str, tmp_path: Path) -> None:
    mx = mxnet()

    def make():
        block = _Scale()
        block.initialize(mx.init.Constant(0.3))
        block.cast("float16")
        params = {"learning_rate": 0.01, "multi_precision": True, **OPTIMIZERS[optimizer]}
        return block, mx.gluon.Trainer(block.collect_params(), create_optimizer(optimizer, params))

    def steps(block, trainer, numbers):
        for number in numbers:
            x = mx.nd.array(np.linspace(-1, 1, 5) * (number + 1), dtype="float16")
            with mx.autograd.record():
                out = block(x)
            out.backward()
            trainer.step(1)

    straight, resumed = make(), make()
    steps(*straight, range(2))
    steps(*resumed, range(1))
    arrays, record = tmp_path / "state.params", tmp_path / "state.json"
    save_optimizer_state(resumed[1], arrays, record)
    master = mx.nd.load(str(arrays))
    assert {value.dtype for value in master.values()} == {np.float32}
    again = make()
    again[0].w.set_data(resumed[0].w.data())
    load_optimizer_state(again[1], arrays, record)
    steps(*again, range(1, 2))
    np.testing.assert_array_equal(again[0].w.data().asnumpy(), straight[0].w.data().asnumpy())
    # From the float16 weights alone (no master copy, no momentum) the step lands elsewhere.
    without = make()
    without[0].w.set_data(resumed[0].w.data())
    steps(*without, range(1, 2))
    assert not np.array_equal(without[0].w.data().asnumpy(), straight[0].w.data().asnumpy())


def test_state_that_does_not_fit_is_refused_with_the_reason(tmp_path: Path) -> None:
    net, trainer, contexts = _network_and_trainer("adam", ["cpu:0"], None, seed=0)
    _train(net, trainer, contexts, _batches(1))
    save_resume_state(tmp_path, net, trainer, epoch=1)
    files = resume_files(tmp_path, 1)

    other, other_trainer, other_contexts = _network_and_trainer("sgd", ["cpu:0"], None, seed=0)
    with pytest.raises(RunError, match="it is the state of 'adam', not of 'sgd'"):
        load_resume_state(tmp_path, other, other_trainer, 1, other_contexts)

    record = json.loads(files.optimizer_record.read_text())
    arrays = mxnet().nd.load(str(files.optimizer_arrays))
    key = "0:classifier_conv0_weight:0"
    arrays[key] = arrays[key][:1]
    mxnet().nd.save(str(files.optimizer_arrays), arrays)
    fresh, fresh_trainer, fresh_contexts = _network_and_trainer("adam", ["cpu:0"], None, seed=0)
    with pytest.raises(OptimizerStateError, match=r"classifier_conv0_weight.*needs"):
        load_optimizer_state(fresh_trainer, files.optimizer_arrays, files.optimizer_record)

    del record["updaters"][0]["classifier_conv0_weight"]
    files.optimizer_record.write_text(json.dumps(record))
    with pytest.raises(RunError, match="lacks the state of 'classifier_conv0_weight'"):
        load_resume_state(tmp_path, fresh, fresh_trainer, 1, fresh_contexts)

    record["update_counts"] = {"gpu": {}}
    files.optimizer_record.write_text(json.dumps(record))
    with pytest.raises(RunError, match=r"optimizer\.json is malformed"):
        load_resume_state(tmp_path, fresh, fresh_trainer, 1, fresh_contexts)

    files.optimizer_record.write_text("[]")
    with pytest.raises(RunError, match="not a format-1 record"):
        load_resume_state(tmp_path, fresh, fresh_trainer, 1, fresh_contexts)


def test_network_weights_that_do_not_fit_are_refused_with_the_reason(tmp_path: Path) -> None:
    net, trainer, contexts = _network_and_trainer("sgd", ["cpu:0"], None, seed=0)
    save_resume_state(tmp_path, net, trainer, epoch=2)
    resume_files(tmp_path, 2).params.write_bytes(b"not MXNet's format")
    with pytest.raises(RunError, match=r"epoch-0002\.params does not fit this run"):
        load_resume_state(tmp_path, net, trainer, 2, contexts)


def _nag_by_hand(weight: np.ndarray, grad: np.ndarray, mom: np.ndarray, lr: float, wd: float):
    """NAG's documented step (momentum 0.9), in float64: the new momentum and weight."""
    step = grad.astype(np.float64) + wd * weight
    mom = 0.9 * mom - lr * step
    return mom, weight + 0.9 * mom - lr * step


@pytest.mark.parametrize("layout", ["plain", "oneDNN"])
def test_nag_decays_the_weight_before_the_step_whatever_its_layout(layout: str) -> None:
    # MXNet 1.9.1's fused update, given the weight in place, decays the new weight instead:
    # only a weight in a oneDNN layout (after a convolution) was updated as documented.
    mx = mxnet()
    rng = np.random.default_rng(3)
    weight, grad, mom = (rng.standard_normal((16, 16, 3, 3), np.float32) for _ in range(3))
    lr, wd = 0.05, 0.01
    optimizer = create_optimizer("nag", {"learning_rate": lr, "momentum": 0.9, "wd": wd})
    w, m = mx.nd.array(weight), mx.nd.array(mom)
    if layout == "oneDNN":
        mx.nd.Convolution(mx.nd.ones((1, 16, 4, 4)), w, kernel=(3, 3), num_filter=16, no_bias=True)
        mx.nd.waitall()
    optimizer.update(0, w, mx.nd.array(grad), m)
    expected_mom, expected_weight = _nag_by_hand(weight, grad, mom, lr, wd)
    np.testing.assert_allclose(m.asnumpy(), expected_mom, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w.asnumpy(), expected_weight, rtol=1e-6, atol=1e-6)
