"""Time-distributed building blocks: stateless layers applied to every time step of ``[T, B, ...]``."""

from __future__ import annotations

import torch
from torch import nn


class TimeDistributed(nn.Sequential):
    """Applies stateless layers to ``[T, B, ...]`` by folding time into the batch: ``[T·B, ...]``.

    BatchNorm inside therefore normalises over ``T×B`` ("BN through time" statistics shared by all steps).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = super().forward(x.flatten(0, 1))
        return y.unflatten(0, (T, B))


class Flatten(nn.Module):
    """Flattens everything after the time and batch dimensions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)
