"""Spiking backbones (:class:`Backbone`): ``(input_shape, num_classes, neuron, **options)``, time-first input
``[T, B, *input_shape]`` -> per-step logits ``[T, B, num_classes]``.

Configs name one by class in ``model.backbone`` (short names work for the classes below). Small nets:
``SpikingMLP``, ``SpikingConvNet``; the papers' backbones (docs/reproduction.md lists sources and parameter
counts), each a class with its paper's defaults, like torchvision's ``resnet18()``: ``CIFARConvNet``,
``VGGSNN``, ``VGG11``, ``VGG16``, ``ResNet18``, ``ResNet19``, ``ResNet20``, ``ResNet34``, ``SEWResNet34``, and the
general ``SpikingVGG``, ``SpikingResNet``, ``SEWResNet`` they are built from; and ``NIRBackbone``, a NIR file
(exported by ``spikegrad export`` or another tool) run on our layers (:mod:`spikegrad.models.nir_graph`).
"""

from spikegrad.models.base import Backbone, BackboneFactory, NeuronFactory
from spikegrad.models.convnet import SpikingConvNet
from spikegrad.models.layers import TimeDistributed
from spikegrad.models.mlp import SpikingMLP
from spikegrad.models.nir_graph import NIRBackbone
from spikegrad.models.norm import NORMS
from spikegrad.models.resnet import ResNet18, ResNet19, ResNet20, ResNet34, SpikingResNet
from spikegrad.models.sew_resnet import SEWResNet, SEWResNet34
from spikegrad.models.vgg import VGG11, VGG16, VGGSNN, CIFARConvNet, SpikingVGG

__all__ = [
    "NORMS",
    "Backbone",
    "BackboneFactory",
    "NeuronFactory",
    "TimeDistributed",
    "SpikingMLP",
    "SpikingConvNet",
    "CIFARConvNet",
    "SpikingVGG",
    "VGGSNN",
    "VGG11",
    "VGG16",
    "SpikingResNet",
    "ResNet18",
    "ResNet19",
    "ResNet20",
    "ResNet34",
    "SEWResNet",
    "SEWResNet34",
    "NIRBackbone",
]
