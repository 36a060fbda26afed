"""CIFARNet, the CIFAR network of the masked-surrogate-gradient (MSG) experiments.

Layer list (Wu, Deng, Li, Zhu, Xie, Shi, "Direct training for spiking neural networks: faster, larger,
better", AAAI 2019, Table 1, "CIFARNet")::

    128C3 - 256C3 - AP2 - 512C3 - AP2 - 1024C3 - 512C3 - FC1024 - FC512 - FC(K)

Every convolution is ``Conv3x3 (no bias) -> BN -> LIF``; the fully connected layers are ``Linear -> LIF``
without BN (as in Wu et al.); the last layer is a plain Linear giving per-step logits, which is the output
layer that TWO and TET read (Wu et al.'s voting layer is replaced by it, as in the MSG paper's CIFARNet rows).
The first convolution receives the real-valued image (direct encoding).

Parameters at 3×32×32: 45,005,450 for 10 classes, 45,051,620 for 100 (33.6 M of them in FC1024, whose input
is 512×8×8).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.blocks import conv_norm_spike, linear_head, make_norm, spatial_size
from spikegrad.models.layers import TimeDistributed

__all__ = ["CIFARNet"]


class CIFARNet(nn.Sequential, Backbone):
    """Spiking CIFARNet (Wu et al. 2019); ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one step (H and W at least 4).
        num_classes: K.
        neuron: factory of the spiking layers.
        norm: batch-norm form, ``tbn``, ``per_step`` or ``tdbn`` (see :mod:`spikegrad.models.norm`).
        hidden: widths of the spiking fully connected layers (default ``(1024, 512)``).
        dropout: dropout probability before each fully connected layer (0: none).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        norm: str = "tbn",
        hidden: Sequence[int] = (1024, 512),
        dropout: float = 0.0,
    ) -> None:
        h, w = spatial_size(input_shape, 4, "cifarnet")
        bn = make_norm(norm, neuron)
        c = int(input_shape[0])
        super().__init__(
            conv_norm_spike(c, 128, bn, neuron),
            conv_norm_spike(128, 256, bn, neuron),
            TimeDistributed(nn.AvgPool2d(2)),
            conv_norm_spike(256, 512, bn, neuron),
            TimeDistributed(nn.AvgPool2d(2)),
            conv_norm_spike(512, 1024, bn, neuron),
            conv_norm_spike(1024, 512, bn, neuron),
            linear_head(512 * (h // 4) * (w // 4), num_classes, neuron, hidden, dropout),
        )
