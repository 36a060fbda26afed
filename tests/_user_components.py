"""A surrogate and a backbone defined outside spikegrad, as a user's own module: ``spikegrad fit`` takes them by
``class_path: _user_components.<Class>`` (tests/test_cli.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from spikegrad.models import Backbone, NeuronFactory, TimeDistributed
from spikegrad.surrogates import Surrogate


class Gaussian(Surrogate):
    """``g(x) = exp(-x²/(2σ²)) / (σ·√(2π))``, ``σ = 1/alpha``; primitive ``(1 + erf(x/(σ√2)))/2``.

    Args:
        alpha: the inverse width ``1/σ``.
    """

    def __init__(self, alpha: float = 2.0, **masking) -> None:
        super().__init__(alpha, **masking)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        return x.square_().mul_(-0.5 * a * a).exp_().mul_(scale * a / math.sqrt(2 * math.pi))

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1 + torch.erf(x * self.alpha / math.sqrt(2)))


class TwoLayerNet(nn.Sequential, Backbone):
    """``Flatten -> Linear -> spiking layer -> Linear``, counting its own calls.

    Args:
        input_shape: shape of one step.
        num_classes: K.
        neuron: factory of the spiking layer.
        width: hidden width.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, width: int = 32) -> None:
        super().__init__(
            TimeDistributed(nn.Flatten(), nn.Linear(math.prod(input_shape), width)),
            neuron(),
            TimeDistributed(nn.Linear(width, num_classes)),
        )
        self.width = width
