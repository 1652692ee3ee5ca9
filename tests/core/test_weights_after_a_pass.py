"""Stress: weights saved right after a pass are the weights, not a half-reordered copy.

MXNet 1.9.1's oneDNN convolution changes the memory layout of its weight array in place
once it has used it (to a blocked layout after an inference pass, back to the plain one
after a training pass), in an engine operation it queues only when it runs. ``asnumpy()``
and ``mx.nd.save`` wait for the writes queued so far and then read the array outside the
engine, so started while a pass is still running they can copy a weight half reordered:
``test_pretrained`` once read half of ``features.6.0.body.3.weight`` permuted that way.
Copies made by MXNet operations (``copy``, ``copyto``, ``astype``) are ordered before the
reordering; ``save_arrays`` (under every checkpoint) saves such copies.

Large weights and almost no pixels make the race likely: reordering the weights is then
most of a convolution's time. Measured here with ``mx.nd.save`` on the arrays themselves:
about 7% of the saves of the first test and 10% of ResNet-18 checkpoints came out wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgcls_desktop.core.artifacts import params_file, save_arrays, save_checkpoint
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import build_network
from imgcls_desktop.core.training.pretrained import load_pretrained
from imgcls_desktop.core.training.run import resume_files, save_resume_state

mx = mxnet()
SHAPE = (3, 32, 32)
ROUNDS = 2
CHAIN = 8  # convolutions in a row
CHANNELS = 256
SAVES = 25


def test_arrays_saved_while_a_pass_uses_them_are_saved_as_they_are(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((CHANNELS, CHANNELS, 3, 3), np.float32) for _ in range(CHAIN)]
    pixels = mx.nd.ones((1, CHANNELS, 2, 2))
    path = tmp_path / "weights.params"
    for _ in range(SAVES):
        weights = [mx.nd.array(value) for value in values]  # fresh: not yet reordered
        features = pixels
        for weight in weights:
            features = mx.nd.Convolution(
                features, weight, kernel=(3, 3), pad=(1, 1), num_filter=CHANNELS, no_bias=True
            )
        # Not waited for; saved last convolution first, so the save meets the pass midway.
        save_arrays(path, {f"w{i}": weights[i] for i in reversed(range(CHAIN))})
        saved = mx.nd.load(str(path))
        for i, value in enumerate(values):
            np.testing.assert_array_equal(saved[f"w{i}"].asnumpy(), value, err_msg=f"w{i}")


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two model-zoo ResNet-18 files of different random weights."""
    folder = tmp_path_factory.mktemp("zoo")
    files = []
    for seed in (1, 2):
        mx.random.seed(seed)
        zoo = mx.gluon.model_zoo.vision.get_model("resnet18_v1")
        zoo.initialize(mx.init.Xavier())
        zoo(mx.nd.zeros((1, *SHAPE)))
        files.append(folder / f"weights-{seed}.params")
        zoo.save_parameters(str(files[-1]))
    return files


def learned_features(path: Path) -> dict[str, np.ndarray]:
    """The ``features`` weights of a model-zoo file that a pass leaves as they are (not the
    batch-norm running statistics, which a training pass updates)."""
    return {
        key: value.asnumpy()
        for key, value in mx.nd.load(str(path)).items()
        if key.startswith("features.") and not key.endswith(("running_mean", "running_var"))
    }


def test_checkpoints_saved_right_after_a_pass_hold_the_loaded_weights(
    weight_files: list[Path], tmp_path: Path
) -> None:
    net = build_network(18, 3, SHAPE)
    net.initialize(mx.init.Xavier())
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    checkpoint_names = {
        key: param.name
        for key, param in net.features._collect_params_with_prefix("features").items()
    }
    pixels = mx.nd.random.uniform(0, 255, (1, *SHAPE))
    for round_number in range(ROUNDS):
        source = weight_files[round_number % 2]  # every round changes every weight
        expected = learned_features(source)
        load_pretrained(net, source)
        for training in (True, False):
            with mx.autograd.record(train_mode=training):
                net(pixels)  # not waited for: the saves below start while it runs
            epoch = round_number * 2 + training + 1
            save_checkpoint(tmp_path, net, epoch, batch_size=1)
            saved = mx.nd.load(str(tmp_path / params_file(epoch)))
            for key, value in expected.items():
                np.testing.assert_array_equal(
                    saved[f"arg:{checkpoint_names[key]}"].asnumpy(), value, err_msg=key
                )
        net(pixels)
        save_resume_state(tmp_path, net, trainer, round_number + 1)
        resumable = mx.nd.load(str(resume_files(tmp_path, round_number + 1).params))
        for key, value in expected.items():
            np.testing.assert_array_equal(resumable[key].asnumpy(), value, err_msg=key)
