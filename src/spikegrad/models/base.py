"""The contract of a spiking backbone, the part of the network between the encoder and the decoder.

A backbone class takes ``(input_shape, num_classes, neuron, **options)``: the shape of one time step of one
sample (e.g. ``(C, H, W)``, from the DataModule), the number of classes, and ``neuron``, a zero-argument
callable that returns a fresh spiking layer with the run's neuron and surrogate settings (call it once per
spiking layer). It maps time-first input ``[T, B, *input_shape]`` to per-step logits ``[T, B, num_classes]``.

Configs name a backbone by class and set only its options; the classifier supplies the first three::

    model:
      backbone:
        class_path: ResNet19        # or spikegrad.models.ResNet19, or a Backbone subclass of your own module
        init_args: {norm: tdbn}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import nn

from spikegrad.neurons import SpikingNeuron

__all__ = ["Backbone", "BackboneFactory", "NeuronFactory"]

NeuronFactory = Callable[[], SpikingNeuron]
"""A zero-argument callable returning a fresh spiking layer with the run's neuron and surrogate settings."""


class Backbone(nn.Module, ABC):
    """Base class of the spiking backbones (see the module docstring): ``[T, B, *input_shape]`` -> ``[T, B, K]``.

    Subclasses take ``(input_shape, num_classes, neuron, **options)``; those built from ``nn.Sequential`` list
    it first (``class MyNet(nn.Sequential, Backbone)``) so that its ``forward`` is used.
    """

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step logits ``[T, B, num_classes]`` of time-first input ``[T, B, *input_shape]``."""


BackboneFactory = Callable[[Sequence[int], int, NeuronFactory], Backbone]
"""A :class:`Backbone` subclass (or a callable with its signature) before ``input_shape``, ``num_classes`` and
``neuron`` are given: what ``model.backbone`` holds."""
