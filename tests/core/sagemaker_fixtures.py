"""A small model as SageMaker's image-classification algorithm leaves it: MXNet's symbolic
ResNet (pre-activation v2 units, as ``example/image-classification/symbols/resnet.py``
names them: ``bn_data``, ``conv0``, ``stageN_unitM_bn1/conv1/bn2/conv2/sc``, ``bn1``,
``pool1``, ``fc1``, ``softmax``), trained for a few passes with ``mx.mod.Module`` on images
of a folder, and packed as ``model.tar.gz`` (``image-classification-symbol.json``,
``image-classification-0001.params``, ``model-shapes.json``).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from imgcls_desktop.core.runtime import mxnet

SAGEMAKER_PREFIX = "image-classification"


def _unit(sym, data, channels: int, stride: int, project: bool, name: str):
    """A pre-activation basic unit; the shortcut is projected when the shape changes."""
    bn1 = sym.BatchNorm(data, fix_gamma=False, eps=2e-5, name=f"{name}_bn1")
    act1 = sym.Activation(bn1, act_type="relu", name=f"{name}_relu1")
    conv1 = sym.Convolution(
        act1, num_filter=channels, kernel=(3, 3), stride=(stride, stride), pad=(1, 1),
        no_bias=True, name=f"{name}_conv1",
    )  # fmt: skip
    bn2 = sym.BatchNorm(conv1, fix_gamma=False, eps=2e-5, name=f"{name}_bn2")
    act2 = sym.Activation(bn2, act_type="relu", name=f"{name}_relu2")
    conv2 = sym.Convolution(
        act2, num_filter=channels, kernel=(3, 3), pad=(1, 1), no_bias=True, name=f"{name}_conv2"
    )
    shortcut = data
    if project:
        shortcut = sym.Convolution(
            act1, num_filter=channels, kernel=(1, 1), stride=(stride, stride), no_bias=True,
            name=f"{name}_sc",
        )  # fmt: skip
    return conv2 + shortcut


def sagemaker_resnet_symbol(num_classes: int, widths: tuple[int, ...] = (8, 8, 16, 16)):
    """A small-image ResNet (3x3 stem, one unit per stage) with SageMaker's layer names."""
    sym = mxnet().sym
    data = sym.identity(sym.var("data"), name="id")
    body = sym.BatchNorm(data, fix_gamma=True, eps=2e-5, name="bn_data")
    body = sym.Convolution(
        body, num_filter=widths[0], kernel=(3, 3), pad=(1, 1), no_bias=True, name="conv0"
    )
    for stage, channels in enumerate(widths[1:], start=1):
        stride = 1 if stage == 1 else 2
        body = _unit(sym, body, channels, stride, True, f"stage{stage}_unit1")
    body = sym.BatchNorm(body, fix_gamma=False, eps=2e-5, name="bn1")
    body = sym.Activation(body, act_type="relu", name="relu1")
    body = sym.Pooling(body, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    fc1 = sym.FullyConnected(sym.Flatten(body), num_hidden=num_classes, name="fc1")
    return sym.SoftmaxOutput(fc1, name="softmax")


def folder_arrays(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images of ``root/<class>/*`` (classes in name order) as raw RGB NCHW, and labels."""
    mx = mxnet()
    images, labels = [], []
    for label, folder in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for path in sorted(folder.iterdir()):
            images.append(mx.image.imread(str(path)).asnumpy().transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images).astype("float32"), np.array(labels, dtype="float32")


def train_sagemaker_model(
    folder: Path, num_classes: int, out: Path, *, epochs: int = 6, seed: int = 0
) -> tuple[Path, float]:
    """Train the symbolic ResNet on ``folder``'s images and pack it as SageMaker does.

    Returns the ``model.tar.gz`` and the model's accuracy on those images."""
    mx = mxnet()
    mx.random.seed(seed)
    images, labels = folder_arrays(folder)
    shape = images.shape[1:]
    batches = mx.io.NDArrayIter(
        images, labels, batch_size=16, shuffle=True, label_name="softmax_label"
    )
    module = mx.mod.Module(sagemaker_resnet_symbol(num_classes), context=mx.cpu())
    module.fit(
        batches,
        num_epoch=epochs,
        optimizer="adam",
        optimizer_params={"learning_rate": 0.01},
        initializer=mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2),
    )
    batches = mx.io.NDArrayIter(images, labels, batch_size=16, label_name="softmax_label")
    accuracy = dict(module.score(batches, "acc"))["accuracy"]
    staging = out.parent / f"{out.name}.files"
    staging.mkdir(parents=True)
    module.save_checkpoint(str(staging / SAGEMAKER_PREFIX), 1)
    (staging / "model-shapes.json").write_text(
        json.dumps([{"name": "data", "shape": [16, *shape]}]), encoding="utf-8"
    )
    with tarfile.open(out, "w:gz") as tar:
        for name in (
            f"{SAGEMAKER_PREFIX}-symbol.json",
            f"{SAGEMAKER_PREFIX}-0001.params",
            "model-shapes.json",
        ):
            tar.add(staging / name, arcname=name)
    return out, accuracy
