"""Small spiking conv net: ``[Conv3x3 -> BN -> LIF (-> AvgPool2)] × n -> Flatten -> [Linear -> LIF] -> Linear``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.layers import Flatten, TimeDistributed


class SpikingConvNet(nn.Sequential, Backbone):
    """Spiking CNN for small images; returns per-step logits ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one time step.
        num_classes: number of output logits K.
        neuron: factory for the spiking layers.
        channels: output channels of the conv blocks.
        pool: for each block, whether a 2×2 average pool follows its neuron (default: pool after every
            block whose spatial size is still >= 4).
        hidden: width of a spiking fully connected layer before the head (0: none).
        dropout: dropout probability before the head.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        neuron: NeuronFactory,
        channels: Sequence[int] = (32, 64),
        pool: Sequence[bool] | None = None,
        hidden: int = 0,
        dropout: float = 0.0,
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"convnet needs input_shape (C, H, W), got {tuple(input_shape)}; use mlp for 1-D input")
        c, h, w = input_shape
        if pool is None:
            pool = []
            size = min(h, w)
            for _ in channels:
                pool.append(size >= 8)
                size = size // 2 if size >= 8 else size
        if len(pool) != len(channels):
            raise ValueError(f"convnet: pool has {len(pool)} entries but channels has {len(channels)}")
        layers: list[nn.Module] = []
        for out, do_pool in zip(channels, pool, strict=True):
            layers += [
                TimeDistributed(nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out)),
                neuron(),
            ]
            if do_pool:
                layers.append(TimeDistributed(nn.AvgPool2d(2)))
                h, w = h // 2, w // 2
            c = out
        layers.append(Flatten())
        width = c * h * w
        if hidden:
            layers += [TimeDistributed(nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden)), neuron()]
            width = hidden
        head = [nn.Dropout(dropout)] if dropout > 0 else []
        layers.append(TimeDistributed(*head, nn.Linear(width, num_classes)))
        super().__init__(*layers)
