"""Spiking backbones. Each takes ``(input_shape, num_classes, neuron, **backbone_args)`` and maps time-first
input ``[T, B, *input_shape]`` to per-step logits ``[T, B, num_classes]``."""

from __future__ import annotations

from torch import nn

from spikegrad.models.cifarnet import CIFARNet
from spikegrad.models.convnet import SpikingConvNet
from spikegrad.models.layers import NeuronFactory, TimeDistributed
from spikegrad.models.mlp import SpikingMLP
from spikegrad.models.norm import NORMS
from spikegrad.models.resnet import ResNet18, ResNet19, ResNet20, ResNet34
from spikegrad.models.sew_resnet import SEWResNet34
from spikegrad.models.vgg import VGG11, VGG16, VGGSNN

BACKBONES: dict[str, type[nn.Module]] = {
    "mlp": SpikingMLP,
    "convnet": SpikingConvNet,
    # paper backbones (docs/reproduction.md lists sources and parameter counts)
    "cifarnet": CIFARNet,
    "vggsnn": VGGSNN,
    "resnet18": ResNet18,
    "resnet19": ResNet19,
    "resnet20": ResNet20,
    "resnet34": ResNet34,
    "vgg11": VGG11,
    "vgg16": VGG16,
    "sew_resnet34": SEWResNet34,
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


__all__ = [
    "BACKBONES",
    "NORMS",
    "build_backbone",
    "NeuronFactory",
    "TimeDistributed",
    "SpikingMLP",
    "SpikingConvNet",
    "CIFARNet",
    "VGGSNN",
    "VGG11",
    "VGG16",
    "ResNet18",
    "ResNet19",
    "ResNet20",
    "ResNet34",
    "SEWResNet34",
]
