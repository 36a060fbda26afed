"""Surrogate gradients of the spike and the masks of masked surrogate gradients (MSG).

* :mod:`spikegrad.surrogates.base`: :class:`Surrogate`, the contract (``g``, its primitive, the masked
  derivative ``g̃`` the neurons' kernels ask for, the checkpoint state);
* :mod:`spikegrad.surrogates.shapes`: the shapes (``Rectangle``, ``Triangle``, ``Sigmoid``, ``ATan``, ``DSpike``);
* :mod:`spikegrad.surrogates.masks`: the Bernoulli masks of MSG (a C extension when it was built, else torch).

Configs name a shape by class: ``model.surrogate: {class_path: ATan, init_args: {alpha: 2.0}}``.
"""

from spikegrad.surrogates.base import Surrogate, surrogate_from_state
from spikegrad.surrogates.shapes import ATan, DSpike, Rectangle, Sigmoid, Triangle

__all__ = ["ATan", "DSpike", "Rectangle", "Sigmoid", "Surrogate", "Triangle", "surrogate_from_state"]
