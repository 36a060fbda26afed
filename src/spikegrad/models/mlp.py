"""Spiking multilayer perceptron: ``[Linear -> LIF] × n -> Linear`` giving per-step logits ``[T, B, K]``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.layers import Flatten, TimeDistributed


class SpikingMLP(nn.Sequential, Backbone):
    """Fully connected SNN.

    Args:
        input_shape: shape of one time step of one sample, e.g. ``(1, 8, 8)``; it is flattened.
        num_classes: number of output logits K.
        neuron: factory for the spiking layers.
        hidden: widths of the hidden spiking layers.
        batch_norm: BatchNorm1d (over ``T×B``) after each hidden Linear.
        dropout: dropout probability before the head.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        hidden: Sequence[int] = (256, 256),
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = [Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            block = [nn.Linear(width, h, bias=not batch_norm)]
            if batch_norm:
                block.append(nn.BatchNorm1d(h))
            layers += [TimeDistributed(*block), neuron()]
            width = h
        head = [nn.Dropout(dropout)] if dropout > 0 else []
        layers.append(TimeDistributed(*head, nn.Linear(width, num_classes)))
        super().__init__(*layers)
