"""Spiking ResNets of the SNN literature: ResNet-18, -19, -20 and -34.

Every form uses the same residual block, the one of tdBN (Zheng et al., AAAI 2021, Fig. 3) and of the
TET / Dspike / MSG code: the shortcut is added *before* the block's last spiking layer, ::

    out = LIF( BN(Conv3x3( LIF(BN(Conv3x3_s(x))) )) + shortcut(x) ),
    shortcut = x, or BN(Conv1x1_s(x)) where the width or the resolution changes,

and a stem (``stem``): ``cifar`` (default), one ``Conv3x3 (stride 1, no bias) -> BN -> LIF`` and no pooling, as in
the CIFAR code of TET and Dspike's first author; or ``imagenet``, ``Conv7x7 (stride 2) -> BN -> LIF -> Pool3x3
(stride 2)`` (He et al., CVPR 2016, Table 1), with max pooling (``stem_pool: max``, He et al.) or average pooling
(``stem_pool: avg``, the ResNet-18 of the MSG code, Brain-Cog-Lab/msg, model/resnet.py:43-50, built with
``pool='avg'`` by main.py:347). After the stages come a global average pool and a Linear head giving per-step
logits (ResNet-19 has a spiking FC256 before it).

======== ============================================== ============== ==================================
name     stages (blocks × width), source                 stem           parameters (3×32×32, 10 classes)
======== ============================================== ============== ==================================
resnet18 2×64, 2×128, 2×256, 2×512 (He et al. CVPR 2016  64             11,173,962 (CIFAR stem);
         Table 1)                                                      11,178,506 at 2×48×48 with the
                                                                       ImageNet stem (the MSG code's)
resnet19 3×128, 3×256, 2×512 + FC256 (Zheng et al.       128            12,697,994
         "Going deeper with directly-trained larger
         SNNs", AAAI 2021, Table 1)
resnet20 3×64, 3×128, 3×256 (the ResNet-20 of the CIFAR 64             4,327,754
         code released by Dspike's first author, SNN
         calibration, ICML 2021: He et al.'s CIFAR
         ResNet-20 at 4× width; ``widths: [16, 32, 64]``
         with ``stem_channels: 16`` gives the original
         0.27 M-parameter net)
resnet34 3×64, 4×128, 6×256, 3×512 (He et al. Table 1)  64             21,282,122 (CIFAR stem)
======== ============================================== ============== ==================================

With ``norm: tdbn`` the two batch norms a block adds (its second one and the shortcut's) use α = 1/√2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.blocks import conv_norm, conv_norm_spike, linear_head, make_norm, spatial_size, spiking_stem
from spikegrad.models.layers import TimeDistributed
from spikegrad.models.norm import RESIDUAL_ALPHA, NormFactory

__all__ = ["ResNet18", "ResNet19", "ResNet20", "ResNet34", "SpikingBasicBlock", "SpikingResNet"]


class SpikingBasicBlock(nn.Module):
    """Residual block with the shortcut added before the last spiking layer (see the module docstring)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: NormFactory, neuron: NeuronFactory) -> None:
        super().__init__()
        self.conv1 = conv_norm_spike(c_in, c_out, norm, neuron, 3, stride)
        self.conv2 = conv_norm(c_out, c_out, norm, 3, 1, alpha=RESIDUAL_ALPHA)
        if stride != 1 or c_in != c_out:
            self.shortcut = conv_norm(c_in, c_out, norm, 1, stride, alpha=RESIDUAL_ALPHA)
        else:
            self.shortcut = nn.Identity()
        self.spike = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.conv2(self.conv1(x)) + self.shortcut(x))


class SpikingResNet(nn.Sequential, Backbone):
    """Spiking ResNet; ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one step.
        num_classes: K.
        neuron: factory of the spiking layers.
        blocks: residual blocks per stage; every stage after the first halves the resolution.
        widths: channels per stage.
        stem_channels: channels of the stem convolution.
        stem: ``cifar`` (3×3 stride-1 convolution) or ``imagenet`` (7×7 stride-2 convolution and a 3×3 stride-2
            pooling: a quarter of the resolution).
        stem_pool: ``max`` or ``avg``, the pooling of the ``imagenet`` stem.
        norm: batch-norm form, ``tbn``, ``per_step`` or ``tdbn`` (see :mod:`spikegrad.models.norm`).
        hidden: widths of spiking fully connected layers before the Linear head.
        dropout: dropout probability before each fully connected layer.
        name: the backbone's name in error messages.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        blocks: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_channels: int = 64,
        stem: str = "cifar",
        stem_pool: str = "max",
        norm: str = "tbn",
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        name: str = "resnet",
    ) -> None:
        spatial_size(input_shape, 1, name)
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ValueError(f"{name}: blocks {list(blocks)} and widths {list(widths)} need equal length, >= 1 each")
        bn = make_norm(norm, neuron)
        layers: list[nn.Module] = spiking_stem(int(input_shape[0]), stem_channels, bn, neuron, stem, stem_pool, name)
        c = stem_channels
        for stage, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            stage_blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                stage_blocks.append(SpikingBasicBlock(c, width, stride, bn, neuron))
                c = width
            layers.append(nn.Sequential(*stage_blocks))
        layers.append(TimeDistributed(nn.AdaptiveAvgPool2d(1)))
        layers.append(linear_head(c, num_classes, neuron, hidden, dropout))
        super().__init__(*layers)


class ResNet18(SpikingResNet):
    """Spiking ResNet-18 (11.17 M parameters at 3×32×32 with the CIFAR stem, 10 classes); options as
    :class:`SpikingResNet`. The MSG code's ResNet-18 is ``stem: imagenet, stem_pool: avg``."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory,
        blocks: Sequence[int] = (2, 2, 2, 2), widths: Sequence[int] = (64, 128, 256, 512), stem_channels: int = 64,
        stem: str = "cifar", stem_pool: str = "max", norm: str = "tbn", hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, blocks=blocks, widths=widths, stem_channels=stem_channels,
                         stem=stem, stem_pool=stem_pool, norm=norm, hidden=hidden, dropout=dropout, name="resnet18")


class ResNet19(SpikingResNet):
    """Spiking ResNet-19 of tdBN (12.70 M parameters at 3×32×32, 10 classes); options as :class:`SpikingResNet`.
    TET's code builds it with a 64-channel stem (``stem_channels: 64``)."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory,
        blocks: Sequence[int] = (3, 3, 2), widths: Sequence[int] = (128, 256, 512), stem_channels: int = 128,
        stem: str = "cifar", stem_pool: str = "max", norm: str = "tbn", hidden: Sequence[int] = (256,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, blocks=blocks, widths=widths, stem_channels=stem_channels,
                         stem=stem, stem_pool=stem_pool, norm=norm, hidden=hidden, dropout=dropout, name="resnet19")


class ResNet20(SpikingResNet):
    """Spiking ResNet-20 as used by Dspike (4.33 M parameters at 3×32×32, 10 classes); options as
    :class:`SpikingResNet`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory,
        blocks: Sequence[int] = (3, 3, 3), widths: Sequence[int] = (64, 128, 256), stem_channels: int = 64,
        stem: str = "cifar", stem_pool: str = "max", norm: str = "tbn", hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, blocks=blocks, widths=widths, stem_channels=stem_channels,
                         stem=stem, stem_pool=stem_pool, norm=norm, hidden=hidden, dropout=dropout, name="resnet20")


class ResNet34(SpikingResNet):
    """Spiking ResNet-34 (21.28 M parameters at 3×32×32 with the CIFAR stem, 10 classes); options as
    :class:`SpikingResNet`."""

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory,
        blocks: Sequence[int] = (3, 4, 6, 3), widths: Sequence[int] = (64, 128, 256, 512), stem_channels: int = 64,
        stem: str = "cifar", stem_pool: str = "max", norm: str = "tbn", hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes, neuron, blocks=blocks, widths=widths, stem_channels=stem_channels,
                         stem=stem, stem_pool=stem_pool, norm=norm, hidden=hidden, dropout=dropout, name="resnet34")
