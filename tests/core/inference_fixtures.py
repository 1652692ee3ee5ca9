"""Models for the inference tests: a tiny trained run, and SageMaker-layout files built from a
plain MXNet symbol (not through our training code).

The shared run is trained once per test session and must not be written into.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from imgcls_desktop.core.dataset.sample_data import generate_sample_dataset
from imgcls_desktop.core.hyperparams import HyperParameters
from imgcls_desktop.core.inference import Predictor
from imgcls_desktop.core.models import open_model
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.loop import TrainingJob, TrainingResult, train

PLAIN_PREFIX = "image-classification"
PLAIN_SHAPE = (3, 16, 16)
PLAIN_CLASSES = 3


def shared_run(factory: pytest.TempPathFactory) -> tuple[Path, TrainingResult]:
    """A ResNet-20 trained on 3 sample classes x 60 images of 32 px (once, about 7 s).

    Eight epochs at Adam's 0.003: its best epoch is well above chance (0.58 here). With
    fewer images or epochs, the best validation accuracy stayed at chance, every image
    predicted as one class, which would make a comparison of accuracies meaningless."""
    if "run" not in _SHARED:
        images = generate_sample_dataset(
            factory.mktemp("sample") / "images", classes=3, per_class=60, size=32
        )
        hp = HyperParameters.from_mapping(
            {
                "num_layers": 20,
                "image_shape": "3,32,32",
                "mini_batch_size": 16,
                "epochs": 8,
                "optimizer": "adam",
                "learning_rate": 0.003,
            }
        )
        run_dir = factory.mktemp("inference_run") / "run"
        _SHARED["run"] = (run_dir, train(TrainingJob(hp, images, run_dir)))
    return _SHARED["run"]


def labelled_with_a_class_never_right(run_dir: Path, folder: Path) -> tuple[Path, str]:
    """Sample images in ``folder/<class>/``, 6 per class, labelled so that the run's model
    gets the second class wrong every time and the first right every time: both folders
    hold images of the first class that the model calls the first class. The third holds
    images of its own class. Returns the folder and the second class's name."""
    model = open_model(run_dir)
    sample = generate_sample_dataset(
        folder.with_name(f"{folder.name}-sample"), classes=3, per_class=40, size=32
    )
    first, second, third = sorted(path.name for path in sample.iterdir())
    candidates = sorted((sample / first).iterdir())
    calls = Predictor(model).predict(candidates).argmax(axis=1)
    called_first = [
        image for image, call in zip(candidates, calls) if model.class_names[call] == first
    ]
    assert len(called_first) >= 12, f"the model calls only {len(called_first)} {first}s so"
    groups = (first, called_first[:6]), (second, called_first[6:12])
    for name, images in (*groups, (third, sorted((sample / third).iterdir())[:6])):
        (folder / name).mkdir(parents=True)
        for image in images:
            (folder / name / image.name).write_bytes(image.read_bytes())
    return folder, second


def plain_symbol(multi_label: bool = False):
    """data -> Convolution -> global Pooling -> FullyConnected(fc1) -> SoftmaxOutput."""
    sym = mxnet().sym
    net = sym.Convolution(sym.var("data"), num_filter=4, kernel=(3, 3), name="conv0")
    net = sym.BatchNorm(net, name="bn0")
    net = sym.Pooling(net, global_pool=True, pool_type="avg", kernel=(1, 1), name="pool0")
    net = sym.FullyConnected(net, num_hidden=PLAIN_CLASSES, name="fc1")
    head = sym.LogisticRegressionOutput if multi_label else sym.SoftmaxOutput
    return head(net, name="softmax")


def write_plain_checkpoint(
    folder: Path, *, shapes: bool = True, epochs: tuple[int, ...] = (1,), multi_label: bool = False
) -> Path:
    """``folder/image-classification-symbol.json`` + ``-NNNN.params`` (+ model-shapes.json);
    every epoch gets different random weights. Returns the prefix."""
    mx = mxnet()
    folder.mkdir(parents=True, exist_ok=True)
    symbol = plain_symbol(multi_label)
    label_shape = (1, PLAIN_CLASSES) if multi_label else (1,)
    arg_shapes, _out, aux_shapes = symbol.infer_shape(
        data=(1, *PLAIN_SHAPE), softmax_label=label_shape
    )
    prefix = folder / PLAIN_PREFIX
    for epoch in epochs:
        mx.random.seed(epoch)
        args = {
            name: mx.nd.random.normal(0, 0.02, shape)
            for name, shape in zip(symbol.list_arguments(), arg_shapes)
            if name not in ("data", "softmax_label")
        }
        auxs = {
            name: mx.nd.ones(shape) if name.endswith("var") else mx.nd.zeros(shape)
            for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes)
        }
        mx.model.save_checkpoint(str(prefix), epoch, symbol, args, auxs)
    if shapes:
        (folder / "model-shapes.json").write_text(
            json.dumps([{"name": "data", "shape": [8, *PLAIN_SHAPE]}]), encoding="utf-8"
        )
    return prefix


def write_sagemaker_archive(folder: Path, *, multi_label: bool = False) -> Path:
    """``folder/model.tar.gz`` as a SageMaker training job leaves it."""
    files = write_plain_checkpoint(folder / "files", multi_label=multi_label).parent
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(files.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


_SHARED: dict[str, tuple[Path, TrainingResult]] = {}
