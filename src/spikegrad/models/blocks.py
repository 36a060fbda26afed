"""Building blocks shared by the paper backbones (time-first ``[T, B, C, H, W]`` throughout)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from spikegrad.models.base import NeuronFactory
from spikegrad.models.layers import Flatten, TimeDistributed
from spikegrad.models.norm import NormFactory, norm_factory

__all__ = [
    "STEMS",
    "STEM_POOLS",
    "conv_norm",
    "conv_norm_spike",
    "linear_head",
    "make_norm",
    "neuron_threshold",
    "spatial_size",
    "spiking_stem",
]

STEMS = ("cifar", "imagenet")
STEM_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def neuron_threshold(neuron: NeuronFactory) -> float:
    """The threshold θ of the backbone's spiking layers (its initial value when it is learned)."""
    return neuron().threshold_value()


def make_norm(norm: str, neuron: NeuronFactory) -> NormFactory:
    """The backbone's batch-norm factory for ``norm`` (see :mod:`spikegrad.models.norm`)."""
    return norm_factory(norm, neuron_threshold(neuron) if norm == "tdbn" else 1.0)


def conv_norm(
    c_in: int, c_out: int, norm: NormFactory, kernel: int = 3, stride: int = 1, alpha: float = 1.0
) -> nn.Sequential:
    """``Conv(kernel, stride, same padding, no bias) -> BN``; the conv has ``c_in·c_out·kernel²`` weights."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(TimeDistributed(conv), norm(c_out, alpha))


def conv_norm_spike(
    c_in: int, c_out: int, norm: NormFactory, neuron: NeuronFactory, kernel: int = 3, stride: int = 1
) -> nn.Sequential:
    """``Conv -> BN -> spiking layer``, the basic unit of every backbone here."""
    return nn.Sequential(*conv_norm(c_in, c_out, norm, kernel, stride), neuron())


def spiking_stem(
    c_in: int, c_out: int, norm: NormFactory, neuron: NeuronFactory, stem: str, pool: str, name: str
) -> list[nn.Module]:
    """The first layers of a ResNet, in one of two forms:

    * ``cifar``: ``Conv3x3 (stride 1) -> BN -> LIF`` (the CIFAR stem of the SNN literature: TET, Dspike);
    * ``imagenet``: ``Conv7x7 (stride 2, padding 3) -> BN -> LIF -> Pool3x3 (stride 2, padding 1)`` (He et al.,
      CVPR 2016, Table 1), which divides the resolution by 4; ``pool`` is ``max`` (He et al., SEW-ResNet) or
      ``avg`` (the MSG code's ResNet-18, with torch's default ``count_include_pad=True``).
    """
    if stem not in STEMS:
        raise ValueError(f"{name}: unknown stem {stem!r}; valid choices: {', '.join(STEMS)}")
    if pool not in STEM_POOLS:
        raise ValueError(f"{name}: unknown stem_pool {pool!r}; valid choices: {', '.join(STEM_POOLS)}")
    if stem == "cifar":
        return [conv_norm_spike(c_in, c_out, norm, neuron)]
    return [
        conv_norm_spike(c_in, c_out, norm, neuron, kernel=7, stride=2),
        TimeDistributed(STEM_POOLS[pool](3, stride=2, padding=1)),
    ]


def spatial_size(input_shape: Sequence[int], min_size: int, name: str) -> tuple[int, int]:
    """``(H, W)`` of a ``(C, H, W)`` input, with a one-line error when it is too small for the backbone."""
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape must be (C, H, W), got {tuple(input_shape)}")
    h, w = int(input_shape[1]), int(input_shape[2])
    if min(h, w) < min_size:
        raise ValueError(f"{name}: input must be at least {min_size}x{min_size}, got {h}x{w}")
    return h, w


def linear_head(
    width: int, num_classes: int, neuron: NeuronFactory, hidden: Sequence[int] = (), dropout: float = 0.0
) -> nn.Sequential:
    """``Flatten -> [Dropout -> Linear -> spiking layer] per hidden width -> Dropout -> Linear`` (logits)."""
    layers: list[nn.Module] = [Flatten()]
    for h in hidden:
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        layers += [TimeDistributed(*drop, nn.Linear(width, h)), neuron()]
        width = h
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    layers.append(TimeDistributed(*drop, nn.Linear(width, num_classes)))
    return nn.Sequential(*layers)
