"""Spiking VGG-style networks: VGGSNN (the DVS network of TET and MSG), CIFARConvNet (the CIFAR network of the MSG
code) and VGG-11 / VGG-16.

**VGGSNN** (Deng, Li, Zhang, Gu, "Temporal efficient training of spiking neural network via gradient
re-weighting", ICLR 2022; code brain-intelligence-lab/temporal_efficient_training, models/VGG_models.py:6-27;
the same list is the MSG code's ``VGGNet``, Brain-Cog-Lab/msg, model/convnet.py:124-165), for 2×48×48 event
frames::

    64C3 - 128C3 - AP2 - 256C3 - 256C3 - AP2 - 512C3 - 512C3 - AP2 - 512C3 - 512C3 - AP2 - FC(K)

Parameters at 2×48×48, 10 classes: 9,268,746 (the final 512×3×3 features feed the Linear head), as the MSG
code's VGGNet (convolutions without bias); TET's convolutions have a bias each (2,752 more parameters, which
the BN after every convolution cancels).

**VGG-11 / VGG-16** (Simonyan and Zisserman, ICLR 2015, Table 1, configurations A and D) in the CIFAR form
of the SNN literature: BN after every 3×3 convolution, 2×2 average pooling in place of max pooling (spike
rates pool linearly), and a Linear head on the flattened features (``hidden`` adds spiking FC layers, e.g.
``[4096, 4096]`` for the original ImageNet classifier). Parameters at 3×32×32, 10 classes: VGG-11 9,228,362,
VGG-16 14,724,042.

**CIFARConvNet**, the network the MSG code builds for CIFAR (Brain-Cog-Lab/msg, model/convnet.py:30-73, selected by
``--model cifarconvnet`` in main.py:334-336, whose spiking version replaces every ReLU by the LIF neuron,
snn_model.py:23 and 69-76)::

    256C3 - 256C3 - AP2 - 256C3 - 256C3 - AP2 - 512C3 - 512C3 - AP2 - 1024C3 - 1024C3 - GAP - FC(K)

Each convolution has no bias and is followed by BN and the spiking layer (convnet.py:35-64); the three 2×2 pools
are average pools of the spikes (convnet.py:41, 49, 57); the global average pool (convnet.py:65) averages the
last spikes and a Linear layer with bias gives the logits (convnet.py:68, replaced by ``Linear(1024, K)`` in
main.py:336). Parameters: 19,489,546 for 10 classes, 19,581,796 for 100 (any input size: the global pool
makes the head independent of it). The code runs the network one step at a time (snn_model.py:35-36), so its
BN takes each step's statistics: ``norm: per_step``.

All convolutions are ``Conv3x3 (no bias) -> BN -> LIF``; the first one receives the encoder's input.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.blocks import conv_norm_spike, linear_head, make_norm, spatial_size
from spikegrad.models.layers import TimeDistributed

__all__ = ["CIFARConvNet", "VGG11", "VGG16", "VGGSNN", "SpikingVGG", "VGG_LAYERS"]

POOL = "P"
VGG_LAYERS: dict[str, tuple] = {
    "vggsnn": (64, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg11": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    "cifarconvnet": (256, 256, POOL, 256, 256, POOL, 512, 512, POOL, 1024, 1024),
}
"""Layer lists: an int is a ``C3`` convolution with that many channels, ``"P"`` a 2×2 pooling."""
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class SpikingVGG(nn.Sequential, Backbone):
    """A VGG-style spiking network from a layer list; ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one step; H and W at least ``2**pools``.
        num_classes: K.
        neuron: factory of the spiking layers.
        layers: the layer list (see :data:`VGG_LAYERS`).
        norm: batch-norm form, ``tbn``, ``per_step`` or ``tdbn`` (see :mod:`spikegrad.models.norm`).
        pool: ``avg`` or ``max`` pooling.
        hidden: widths of spiking fully connected layers before the Linear head.
        dropout: dropout probability before each fully connected layer.
        global_pool: average the last features over H and W (global average pooling) before the head, instead
            of flattening them.
        name: the backbone's name in error messages.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        layers: Sequence[int | str],
        norm: str = "tbn",
        pool: str = "avg",
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        global_pool: bool = False,
        name: str = "vgg",
    ) -> None:
        if pool not in POOLS:
            raise ValueError(f"{name}: unknown pool {pool!r}; valid choices: {', '.join(POOLS)}")
        pools = sum(1 for item in layers if item == POOL)
        h, w = spatial_size(input_shape, 2**pools, name)
        bn = make_norm(norm, neuron)
        c = int(input_shape[0])
        modules: list[nn.Module] = []
        for item in layers:
            if item == POOL:
                modules.append(TimeDistributed(POOLS[pool](2)))
                h, w = h // 2, w // 2
            else:
                modules.append(conv_norm_spike(c, int(item), bn, neuron))
                c = int(item)
        if global_pool:
            modules.append(TimeDistributed(nn.AdaptiveAvgPool2d(1)))
            h = w = 1
        modules.append(linear_head(c * h * w, num_classes, neuron, hidden, dropout))
        super().__init__(*modules)


class VGGSNN(SpikingVGG):
    """VGGSNN of TET / MSG for 48×48 event frames (9.27 M parameters at 2×48×48, 10 classes); options as
    :class:`SpikingVGG`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, norm: str = "tbn",
        pool: str = "avg", hidden: Sequence[int] = (), dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, VGG_LAYERS["vggsnn"], norm, pool, hidden, dropout,
                         name="vggsnn")


class VGG11(SpikingVGG):
    """Spiking VGG-11, CIFAR form (9.23 M parameters at 3×32×32, 10 classes); options as :class:`SpikingVGG`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, norm: str = "tbn",
        pool: str = "avg", hidden: Sequence[int] = (), dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, VGG_LAYERS["vgg11"], norm, pool, hidden, dropout,
                         name="vgg11")


class VGG16(SpikingVGG):
    """Spiking VGG-16, CIFAR form (14.72 M parameters at 3×32×32, 10 classes); options as :class:`SpikingVGG`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, norm: str = "tbn",
        pool: str = "avg", hidden: Sequence[int] = (), dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, VGG_LAYERS["vgg16"], norm, pool, hidden, dropout,
                         name="vgg16")


class CIFARConvNet(SpikingVGG):
    """The MSG code's CIFAR network (19.49 M parameters for 10 classes; see the module docstring); options as
    :class:`SpikingVGG`. Use ``norm: per_step`` for the code's step-by-step batch norm."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, norm: str = "tbn",
        pool: str = "avg", hidden: Sequence[int] = (), dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, VGG_LAYERS["cifarconvnet"], norm, pool, hidden, dropout,
                         global_pool=True, name="cifarconvnet")
