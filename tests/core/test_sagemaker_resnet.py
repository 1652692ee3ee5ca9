"""The network runs train from scratch is the ResNet of SageMaker's algorithm, layer for layer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import quick_hp, shared_colour_folder, shared_colour_records

from imgcls_desktop.core.dataset.sources import load_dataset
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.iterators import train_iter_arguments
from imgcls_desktop.core.training.loop import TrainingJob, train
from imgcls_desktop.core.training.network import fresh_initializer
from imgcls_desktop.core.training.run import read_run
from imgcls_desktop.core.training.sagemaker_resnet import resnet_symbol
from imgcls_desktop.core.training.starting_point import NETWORK_FILE

# The digests of what MXNet 1.9.1's example/image-classification/symbols/resnet.py builds,
# ``get_symbol(7, depth, "3,28,28" or "3,224,224")``: every parameter's name and shape and
# the order of the operators (identity and copies left out), and how many parameters.
REFERENCE = {
    (20, 28): ("5b1aec9b0ed5bbd9", 106),
    (56, 28): ("9dead896378cff84", 286),
    (110, 28): ("9c4e442660f05ae5", 556),
    (18, 224): ("766cb1f954a8c985", 101),
    (34, 224): ("1f8b2bb0c5993649", 181),
    (50, 224): ("89a7171e4511206a", 261),
    (101, 224): ("34e968a708ba48a0", 516),
    (152, 224): ("c85e2535cd3a8ce5", 771),
    (200, 224): ("2c146842b42e866b", 1011),
}


def _digest(symbol, side: int) -> tuple[str, int]:
    arguments, _outputs, auxiliary = symbol.infer_shape(data=(2, 3, side, side))
    items = sorted(
        [
            *zip(symbol.list_arguments(), map(tuple, arguments)),
            *zip(symbol.list_auxiliary_states(), map(tuple, auxiliary)),
        ]
    )
    nodes = json.loads(symbol.tojson())["nodes"]
    operators = [node["op"] for node in nodes if node["op"] not in ("null", "identity", "_copy")]
    text = json.dumps([items, operators])
    return hashlib.sha1(text.encode()).hexdigest()[:16], len(items)


@pytest.mark.parametrize(("depth", "side"), sorted(REFERENCE))
def test_each_depth_is_the_symbol_mxnets_resnet_py_builds(depth: int, side: int) -> None:
    assert _digest(resnet_symbol(depth, 7), side) == REFERENCE[depth, side]


def test_an_unknown_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="no ResNet of 19 layers"):
        resnet_symbol(19, 2)


def test_a_run_from_scratch_saves_sagemakers_network_which_mxnet_loads_as_it_is(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    mx = mxnet()
    run = tmp_path / "run"
    result = train(TrainingJob(quick_hp(epochs=2), shared_colour_folder(tmp_path_factory), run))
    assert read_run(run).network == NETWORK_FILE  # a resume rebuilds it from the run folder
    symbol, arg_params, aux_params = mx.model.load_checkpoint(
        str(run / "image-classification"), result.best_epoch
    )
    reference = resnet_symbol(20, 3)
    assert symbol.list_arguments() == reference.list_arguments()
    assert symbol.list_auxiliary_states() == reference.list_auxiliary_states()

    # As SageMaker's serving code would: the Module API, its label input, raw pixels in.
    module = mx.mod.Module(symbol, label_names=["softmax_label"], context=mx.cpu())
    module.bind(
        data_shapes=[("data", (2, 3, 32, 32))],
        label_shapes=[("softmax_label", (2,))],
        for_training=False,
    )
    module.set_params(arg_params, aux_params)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    module.forward(mx.io.DataBatch([mx.nd.array(pixels)]), is_train=False)
    probabilities = module.get_outputs()[0].asnumpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_a_training_step_is_the_step_of_mxnets_module_trainer(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """From the same weights, one SGD step with momentum and weight decay on the same batch
    (every training image, so the order a shuffle gives does not matter) leaves the same
    weights and batch-norm statistics in our run as in ``mx.mod.Module``."""
    mx = mxnet()
    records = shared_colour_records(tmp_path_factory)
    train_rec, val_rec = records / "dataset-train.rec", records / "dataset-val.rec"
    images = len(load_dataset(train_rec).samples)
    hp = HyperParameters.from_mapping(
        {
            "num_layers": 20,
            "image_shape": "3,32,32",
            "mini_batch_size": images,
            "epochs": 1,
            "optimizer": "sgd",
            "learning_rate": 0.1,
            "momentum": 0.9,
            "weight_decay": 0.001,
            "augmentation_type": "none",
        }
    )
    reader = mx.io.ImageRecordIter(
        **train_iter_arguments(
            train_rec, train_rec.with_suffix(".idx"), hp, images, label_width=1, resize=None
        )
    )
    module = mx.mod.Module(resnet_symbol(20, 3), context=mx.cpu())
    module.bind(data_shapes=reader.provide_data, label_shapes=reader.provide_label)
    mx.random.seed(3)
    module.init_params(fresh_initializer())
    start = tmp_path / "start" / "image-classification"
    start.parent.mkdir()
    module.save_checkpoint(str(start), 1)
    module.init_optimizer(
        kvstore="local",
        optimizer="sgd",
        optimizer_params={"learning_rate": 0.1, "momentum": 0.9, "wd": 0.001},
    )
    module.forward_backward(next(iter(reader)))
    module.update()
    executor = module._exec_group.execs[0]
    stepped = {name: value.asnumpy() for name, value in executor.arg_dict.items()}
    stepped.update((name, value.asnumpy()) for name, value in executor.aux_dict.items())
    _symbol, arguments, auxiliary = mx.model.load_checkpoint(str(start), 1)
    initial = {name: value.asnumpy() for name, value in {**arguments, **auxiliary}.items()}

    run = tmp_path / "run"
    train(TrainingJob(hp, train_rec, run, validation=val_rec, base_model=start.parent))
    saved = mx.nd.load(str(run / "image-classification-0001.params"))
    ours = {key.split(":", 1)[1]: value.asnumpy() for key, value in saved.items()}
    assert set(ours) == set(initial)
    for name, value in ours.items():
        moved = np.abs(stepped[name] - initial[name]).max()
        assert moved > 0, name
        assert np.abs(value - stepped[name]).max() <= 1e-3 * moved + 1e-6, name
