"""Transfer learning: ImageNet weights from a local Gluon model-zoo file.

Training never downloads. The weights of ``resnetNN_v1`` come from a file the user names, from
the app's weights store (:mod:`imgcls_desktop.core.weights`, filled once by ``imgcls weights
download`` or ``import``, or *Training > Pretrained Weights…*), or from MXNet's model cache
(``$MXNET_HOME/models``, default ``~/.mxnet/models``) under the model zoo's own file name
(``resnet18_v1-a0666292.params``) or without the hash (``resnet18_v1.params``). Such a file
holds ``features.*`` and ``output.*`` arrays (Gluon's ``save_parameters`` format); every
``features`` array is loaded into the network, while its ``output`` layer keeps its own
``num_classes`` outputs and fresh initialisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from imgcls_desktop.core.artifacts import ModelError, assign_arrays, read_arrays
from imgcls_desktop.core.runtime import mxnet
from imgcls_desktop.core.training.network import CIFAR_DEPTHS
from imgcls_desktop.core.weights.catalog import backbone_of_depth
from imgcls_desktop.core.weights.store import mxnet_cache_folder, store_folder

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock

_FEATURES = "features"


class PretrainedWeightsMissing(ModelError):
    """No local weights file for the chosen depth; the message says which and where."""


def model_zoo_file_names(num_layers: int) -> list[str]:
    """The file names the weights of a depth may have, the model zoo's own name first.

    CIFAR-style depths have no ImageNet weights; for them only GluonCV's model name
    without a hash is accepted (``cifar_resnet20_v1.params``).
    """
    if num_layers in CIFAR_DEPTHS:
        return [f"cifar_resnet{num_layers}_v1.params"]
    name = f"resnet{num_layers}_v1"
    try:
        hashed = [f"{name}-{mxnet().gluon.model_zoo.model_store.short_hash(name)}.params"]
    except ValueError:  # the model zoo has no such file (ResNet-200)
        hashed = []
    return [*hashed, f"{name}.params"]


def model_cache_folder() -> Path:
    """MXNet's model cache: ``$MXNET_HOME/models``, by default ``~/.mxnet/models``."""
    return mxnet_cache_folder()


def find_pretrained_weights(
    num_layers: int, explicit: str | os.PathLike[str] | None = None
) -> Path:
    """The weights file for ``num_layers``: ``explicit`` (a file, or a folder to look in),
    else the one in the weights store, else one in MXNet's model cache. Raises
    :class:`PretrainedWeightsMissing` (saying how to get them) otherwise."""
    explicit = None if explicit is None else Path(explicit)
    if explicit is not None and explicit.is_file():
        return explicit
    if explicit is not None and not explicit.is_dir():
        raise PretrainedWeightsMissing(f"the weights file {explicit} does not exist")
    names = model_zoo_file_names(num_layers)
    backbone = backbone_of_depth(num_layers)
    if explicit is not None:
        folders = [explicit]
    elif backbone is not None:
        folders = [store_folder(), model_cache_folder()]
    else:
        folders = [model_cache_folder()]
    for path in (folder / name for folder in folders for name in names):
        if path.is_file():
            return path
    if explicit is None and backbone is not None:
        raise PretrainedWeightsMissing(
            f"no ImageNet weights for ResNet-{num_layers} on this computer: fetch them once "
            f"with `imgcls weights download {backbone.name}` or Training > Pretrained "
            "Weights…, or import a file copied from another computer (`imgcls weights "
            "import PATH`)"
        )
    without_zoo = "" if backbone else " (the model zoo has ImageNet weights for ResNet 18-152)"
    raise PretrainedWeightsMissing(
        f"no pretrained weights for ResNet-{num_layers}: put {' or '.join(names)} in "
        f"{folders[0]}, or choose the file{without_zoo}"
    )


def load_pretrained(net: HybridBlock, path: Path) -> None:
    """Load every ``features`` layer of ``net`` (initialised first) from a model-zoo file.

    The ``output`` layer is left as it is, so it keeps ``num_classes`` outputs; a file whose
    feature layers differ (another depth, channel count or version) raises a
    :class:`ModelError` naming the first difference.
    """
    arrays = read_arrays(path)
    features = {key: value for key, value in arrays.items() if key.startswith(f"{_FEATURES}.")}
    if not features:
        raise ModelError(
            f"{path} is not a Gluon model-zoo ResNet file: it has no {_FEATURES}.* parameters"
        )
    # Gluon's structural names ("features.4.0.body.0.weight"), as save_parameters writes them.
    params = net.features._collect_params_with_prefix(_FEATURES)
    assign_arrays(params, features, f"weights file {path}")
