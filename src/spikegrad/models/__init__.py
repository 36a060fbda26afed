"""Spiking backbones. Each takes ``(input_shape, num_classes, neuron, **backbone_args)`` and maps time-first
input ``[T, B, *input_shape]`` to per-step logits ``[T, B, num_classes]``."""

from __future__ import annotations

from torch import nn

from spikegrad.models.convnet import SpikingConvNet
from spikegrad.models.layers import NeuronFactory, TimeDistributed
from spikegrad.models.mlp import SpikingMLP

BACKBONES: dict[str, type[nn.Module]] = {
    "mlp": SpikingMLP,
    "convnet": SpikingConvNet,
}


def build_backbone(name: str, input_shape, num_classes: int, neuron: NeuronFactory, **kwargs) -> nn.Module:
    """Build a backbone by name; an unknown name is a one-line error listing the valid ones."""
    cls = BACKBONES.get(name)
    if cls is None:
        raise ValueError(f"unknown backbone {name!r}; valid choices: {', '.join(BACKBONES)}")
    try:
        return cls(tuple(input_shape), num_classes, neuron, **kwargs)
    except TypeError as err:
        raise ValueError(f"backbone {name!r}: {err}") from None


__all__ = ["BACKBONES", "build_backbone", "NeuronFactory", "TimeDistributed", "SpikingMLP", "SpikingConvNet"]
