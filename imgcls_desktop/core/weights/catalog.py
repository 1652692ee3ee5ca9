"""The backbones the app offers: the ImageNet ResNet v1 depths of SageMaker's
``use_pretrained_model`` and the Gluon model zoo's names and SHA-1 checksums for them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

ChecksumTable = Mapping[str, str]
"""Model-zoo name (``resnet18_v1``) -> SHA-1 of its ``.params`` file, in hex."""


class WeightsError(ValueError):
    """Weights cannot be found, fetched, imported or checked; the message says why and
    what to do."""


@dataclass(frozen=True)
class Backbone:
    """One ImageNet backbone: ``resnet18_v1`` has depth 18."""

    depth: int

    @property
    def name(self) -> str:
        """The model zoo's name, ``resnetNN_v1``."""
        return f"resnet{self.depth}_v1"

    @property
    def title(self) -> str:
        """For people: ``ResNet-18``."""
        return f"ResNet-{self.depth}"

    @property
    def approximate_megabytes(self) -> int:
        """The size of the model zoo's ``.params`` file, roughly (its parameter count x 4)."""
        return _MEGABYTES[self.depth]

    def zoo_file_name(self, table: ChecksumTable | None = None) -> str:
        """The model zoo's file name without extension: ``resnet18_v1-a0666292``."""
        return f"{self.name}-{self.sha1(table)[:8]}"

    def sha1(self, table: ChecksumTable | None = None) -> str:
        """The SHA-1 of the ``.params`` file, from ``table`` or MXNet's own table."""
        checksums = mxnet_checksums() if table is None else table
        try:
            return checksums[self.name].lower()
        except KeyError:
            raise WeightsError(f"the checksum table has no entry for {self.name}") from None


_MEGABYTES = {18: 47, 34: 87, 50: 103, 101: 179, 152: 242}
BACKBONES = tuple(Backbone(depth) for depth in (18, 34, 50, 101, 152))
"""The depths SageMaker offers with ``use_pretrained_model`` and the model zoo publishes."""


def backbone_named(name: str) -> Backbone:
    """The backbone called ``name`` (``resnet18_v1``; ``resnet18`` and ``18`` also do)."""
    wanted = name.strip().lower()
    for backbone in BACKBONES:
        if wanted in (backbone.name, f"resnet{backbone.depth}", str(backbone.depth)):
            return backbone
    names = ", ".join(backbone.name for backbone in BACKBONES)
    raise WeightsError(f"no backbone called {name!r}: choose one of {names}")


def backbone_of_depth(depth: int) -> Backbone | None:
    """The backbone of ``depth``, or None for a depth without ImageNet weights."""
    return next((backbone for backbone in BACKBONES if backbone.depth == depth), None)


def mxnet_checksums() -> ChecksumTable:
    """MXNet's own table (``gluon.model_zoo.model_store``), the one ``get_model_file`` checks."""
    return model_store()._model_sha1


def model_store() -> ModuleType:
    """MXNet's ``gluon.model_zoo.model_store`` module (imports MXNet)."""
    from imgcls_desktop.core.runtime import mxnet

    return mxnet().gluon.model_zoo.model_store
