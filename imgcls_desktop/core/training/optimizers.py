"""The optimizer of a run by name, with MXNet 1.9.1's NAG update corrected.

MXNet 1.9.1's fused ``nag_mom_update`` and ``mp_nag_mom_update``, which ``mx.optimizer.NAG``
calls with the weight (or its float32 master copy) as both input and output, write the new
weight before they read it again for the momentum's weight-decay term, so the momentum gets
``wd * new weight``. Only when the weight is in a oneDNN layout at that moment does MXNet run
the operator on separate copies and give the documented ``wd * old weight``; oneDNN
convolutions change that layout in operations they queue only when they run, so which of
the two a step got depended on timing: NAG training with weight decay was not reproducible
and a resumed run did not continue as training straight on.

:class:`NAG` (the same name and state, so saved optimizer state keeps fitting) computes the
documented update with ordinary operators instead.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from imgcls_desktop.core.runtime import mxnet

if TYPE_CHECKING:
    from mxnet.ndarray import NDArray
    from mxnet.optimizer import Optimizer


def create_optimizer(name: str, params: dict[str, Any]) -> Optimizer:
    """The optimizer ``name`` (sgd, nag, adam, rmsprop) with Gluon's ``params``."""
    if name == "nag":
        return nag_class()(**params)
    return mxnet().optimizer.create(name, **params)


def __getattr__(name: str) -> Any:
    if name == "NAG":
        return nag_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def nag_class() -> type:
    """:class:`NAG`, built on first use (MXNet is imported lazily)."""
    mx = mxnet()

    class NAG(mx.optimizer.NAG):
        """Nesterov momentum, as documented: with ``g = rescale_grad * grad`` (clipped) plus
        ``wd * weight``, ``mom = momentum * mom - lr * g`` then
        ``weight += momentum * mom - lr * g``."""

        def _update_impl(
            self,
            index: int,
            weight: NDArray,
            grad: NDArray,
            state: Any,
            multi_precision: bool = False,
        ) -> None:
            momentum = state[0] if multi_precision else state
            if momentum is None:  # sgd_update and mp_sgd_update read each array once
                super()._update_impl(index, weight, grad, state, multi_precision)
                return
            self._update_count(index)
            lr, wd = self._get_lr(index), self._get_wd(index)
            master = state[1] if multi_precision else weight
            step = (grad.astype(master.dtype) if multi_precision else grad) * self.rescale_grad
            if self.clip_gradient:
                step = mx.nd.clip(step, -self.clip_gradient, self.clip_gradient)
            step = step + wd * master
            momentum[:] = self.momentum * momentum - lr * step
            master[:] = master + self.momentum * momentum - lr * step
            if multi_precision:
                weight[:] = master.astype(weight.dtype)

    return NAG
