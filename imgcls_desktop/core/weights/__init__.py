"""The ImageNet backbone weights the app keeps: which are on disk, where they came from,
and how they get there (a download the user asks for, or an import for offline machines).

Importing this package is cheap (no MXNet): :func:`installed_depths` looks at file names
only. :mod:`.checks` and the two ways in (:mod:`.download`, :mod:`.importing`) import MXNet
when they run.
"""

from __future__ import annotations

from imgcls_desktop.core.weights.catalog import BACKBONES, Backbone, WeightsError, backbone_named
from imgcls_desktop.core.weights.store import (
    BackboneState,
    backbone_states,
    installed_depths,
    mxnet_cache_folder,
    store_folder,
)

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneState",
    "WeightsError",
    "backbone_named",
    "backbone_states",
    "installed_depths",
    "mxnet_cache_folder",
    "store_folder",
]
