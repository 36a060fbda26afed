"""Batch normalisation for time-first activations ``[T, B, C, ...]``, in the three forms the SNN papers use.

``norm`` (a backbone option, ``model.backbone.init_args.norm`` in configs):

* ``tbn`` (default), *BN through time*: one set of statistics per channel over ``T×B×H×W``; every step is
  normalised with the same mean and variance (the usual multi-step implementation, e.g. TET, SpikingJelly).
* ``per_step``: the statistics of each step are taken over that step's ``B×H×W`` alone, with one shared
  affine transform and one shared running estimate (updated once per step); this is what a network run
  step by step does: the MSG code (Li et al., Neural Networks 2024; Brain-Cog-Lab/msg, standalone PyTorch) calls
  its network once per time step (snn_model.py:35-36), so its ``nn.BatchNorm2d`` layers normalise each step with
  that step's batch statistics and update their running estimates T times per batch.
* ``tdbn``, threshold-dependent BN (Zheng, Wu, Deng, Hu, Li, "Going deeper with directly-trained larger
  spiking neural networks", AAAI 2021, Eq. 7): statistics over ``T×B×H×W`` and the normalised value is
  scaled by ``α·θ`` before the affine transform, ``y = λ·(α·θ·x̂) + β``, with θ the neurons' threshold and
  ``α = 1`` except ``α = 1/√2`` on the two branches that a residual block adds (the paper's choice for the
  pre-activations that meet at a shortcut).

None of the three has parameters beyond a plain BatchNorm (``2·C``): α·θ is a fixed number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["NORMS", "NormFactory", "RESIDUAL_ALPHA", "SpikingBatchNorm", "norm_factory"]

NORMS = ("tbn", "per_step", "tdbn")
RESIDUAL_ALPHA = 1.0 / math.sqrt(2.0)
"""tdBN's α for the batch norms whose outputs a residual block adds (Zheng et al. 2021)."""

NormFactory = Callable[..., nn.Module]
"""``norm(channels, alpha=1.0)`` -> a fresh time-first batch norm with the backbone's settings."""


class SpikingBatchNorm(nn.Module):
    """Batch norm over the channel axis (dim 2) of time-first conv features ``[T, B, C, H, W]``.

    The statistics come from an ordinary ``nn.BatchNorm2d`` (``self.bn``) called on ``[T·B, C, H, W]`` or on
    each step's ``[B, C, H, W]``, so Lightning's ``sync_batchnorm`` (which converts every ``BatchNorm2d`` into
    a ``SyncBatchNorm``) keeps working under data parallelism.

    Args:
        num_features: channels C.
        per_step: statistics per time step (``True``) or over all ``T×B`` samples (``False``).
        scale: fixed factor applied to the normalised value before the affine transform (tdBN's ``α·θ``);
            when given, the affine parameters ``weight`` and ``bias`` live in this module and ``self.bn`` only
            normalises; ``None`` is a plain BatchNorm.
    """

    def __init__(self, num_features: int, per_step: bool = False, scale: float | None = None) -> None:
        super().__init__()
        if scale is not None and not scale > 0:
            raise ValueError(f"norm scale (alpha * v_threshold) must be > 0, got {scale}")
        self.per_step = bool(per_step)
        self.scale = None if scale is None else float(scale)
        self.bn = nn.BatchNorm2d(num_features, affine=scale is None)
        if scale is not None:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.weight = self.bias = None

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        if self.weight is None:
            return y
        shape = (1, -1) + (1,) * (y.dim() - 2)
        return torch.addcmul(self.bias.view(shape), y, self.weight.view(shape), value=self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"norm expects time-first conv features [T, B, C, H, W], got shape {tuple(x.shape)}")
        if self.per_step:
            return torch.stack([self._normalise(x_t) for x_t in x.unbind(0)])
        return self._normalise(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return f"per_step={self.per_step}" + ("" if self.scale is None else f", scale={self.scale:.4g}")


def norm_factory(norm: str, v_threshold: float = 1.0) -> NormFactory:
    """The ``norm(channels, alpha=1.0)`` factory of a backbone for ``norm`` in :data:`NORMS`.

    ``v_threshold`` is the neurons' θ, used by ``tdbn`` only; ``alpha`` is ignored by the other two forms.
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORMS)}")

    def make(channels: int, alpha: float = 1.0) -> nn.Module:
        if norm == "tdbn":
            return SpikingBatchNorm(channels, scale=alpha * v_threshold)
        return SpikingBatchNorm(channels, per_step=norm == "per_step")

    return make
