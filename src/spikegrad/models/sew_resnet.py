"""SEW-ResNet-34 (Fang, Yu, Chen, Huang, Masquelier, Tian, "Deep residual learning in spiking neural
networks", NeurIPS 2021, Fig. 1(c) and Table 2), for ImageNet-scale input.

Spike-element-wise block: both branches end in a spiking layer and are combined *after* it, ::

    out = g( LIF(BN(Conv3x3( LIF(BN(Conv3x3_s(x))) ))), shortcut(x) ),
    shortcut = x, or LIF(BN(Conv1x1_s(x))) where the width or the resolution changes,

with the connect function ``g``: ``ADD`` (``a + s``, the paper's ImageNet choice; outputs can exceed 1),
``AND`` (``a·s``) or ``IAND`` (``(1 - a)·s``). The ImageNet stem is ``Conv7x7 (stride 2) -> BN -> LIF ->
MaxPool3x3 (stride 2)``; stages 3×64, 4×128, 6×256, 3×512 (ResNet-34 of He et al., CVPR 2016, Table 1); then
global average pooling and a Linear head.

Parameters: 21,797,672 at 3×224×224 with 1000 classes (the same as the ANN ResNet-34: the spiking layers and
connect functions have none).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.blocks import conv_norm_spike, linear_head, make_norm, spatial_size, spiking_stem
from spikegrad.models.layers import TimeDistributed
from spikegrad.models.norm import NormFactory

__all__ = ["CONNECT_FUNCTIONS", "SEWBasicBlock", "SEWResNet", "SEWResNet34"]

CONNECT_FUNCTIONS = ("ADD", "AND", "IAND")


class SEWBasicBlock(nn.Module):
    """Spike-element-wise residual block (see the module docstring)."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, norm: NormFactory, neuron: NeuronFactory, connect: str = "ADD"
    ) -> None:
        super().__init__()
        if connect not in CONNECT_FUNCTIONS:
            raise ValueError(f"sew_resnet connect {connect!r} unknown; valid choices: {', '.join(CONNECT_FUNCTIONS)}")
        self.connect = connect
        self.conv1 = conv_norm_spike(c_in, c_out, norm, neuron, 3, stride)
        self.conv2 = conv_norm_spike(c_out, c_out, norm, neuron, 3, 1)
        if stride != 1 or c_in != c_out:
            self.shortcut = conv_norm_spike(c_in, c_out, norm, neuron, 1, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv2(self.conv1(x))
        s = self.shortcut(x)
        if self.connect == "ADD":
            return a + s
        if self.connect == "AND":
            return a * s
        return (1.0 - a) * s


class SEWResNet(nn.Sequential, Backbone):
    """SEW ResNet with the ImageNet stem; ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one step.
        num_classes: K.
        neuron: factory of the spiking layers.
        blocks: SEW blocks per stage (default ResNet-34's ``(3, 4, 6, 3)``).
        widths: channels per stage.
        connect: connect function ``ADD``, ``AND`` or ``IAND``.
        norm: batch-norm form, ``tbn``, ``per_step`` or ``tdbn`` (see :mod:`spikegrad.models.norm`).
        name: the backbone's name in error messages.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        connect: str = "ADD",
        norm: str = "tbn",
        name: str = "sew_resnet",
    ) -> None:
        spatial_size(input_shape, 1, name)
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ValueError(f"{name}: blocks {list(blocks)} and widths {list(widths)} need equal length, >= 1 each")
        bn = make_norm(norm, neuron)
        c = widths[0]
        layers: list[nn.Module] = spiking_stem(int(input_shape[0]), c, bn, neuron, "imagenet", "max", name)
        for stage, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            stage_blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                stage_blocks.append(SEWBasicBlock(c, width, stride, bn, neuron, connect))
                c = width
            layers.append(nn.Sequential(*stage_blocks))
        layers.append(TimeDistributed(nn.AdaptiveAvgPool2d(1)))
        layers.append(linear_head(c, num_classes, neuron))
        super().__init__(*layers)


class SEWResNet34(SEWResNet):
    """SEW-ResNet-34, ADD connect (21.80 M parameters at 3×224×224, 1000 classes); options as :class:`SEWResNet`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory,
        blocks: Sequence[int] = (3, 4, 6, 3), widths: Sequence[int] = (64, 128, 256, 512), connect: str = "ADD",
        norm: str = "tbn",
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, blocks, widths, connect, norm, "sew_resnet34")
