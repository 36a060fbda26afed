"""Decoders (per-step logits ``o[t]`` of shape ``[T, B, K]`` -> prediction ``[B, K]``) and losses.

* ``mean``: ``y = (1/T)·Σ_t o[t]`` (rate decoding, the usual choice);
* ``last``: ``y = o[T]``.

Losses take the per-step logits, the decoded prediction and the targets:

* ``ce``: cross-entropy of the decoded prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MeanDecoder(nn.Module):
    """``y = (1/T)·Σ_t o[t]``."""

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        return per_step_logits.mean(0)


class LastStepDecoder(nn.Module):
    """``y = o[T]``: the last step's logits."""

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        return per_step_logits[-1]


DECODERS: dict[str, type[nn.Module]] = {"mean": MeanDecoder, "last": LastStepDecoder}


def cross_entropy_loss(per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``CE(y, target)`` on the decoded prediction."""
    return F.cross_entropy(decoded, target)


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, LossFn] = {"ce": cross_entropy_loss}


def build_decoder(name: str, time_steps: int, **kwargs) -> nn.Module:
    """A decoder by name; an unknown name is a one-line error listing the valid ones."""
    cls = DECODERS.get(name)
    if cls is None:
        raise ValueError(f"unknown decoding {name!r}; valid choices: {', '.join(DECODERS)}")
    return cls(**kwargs)


def get_loss(name: str) -> LossFn:
    """A loss by name; an unknown name is a one-line error listing the valid ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid choices: {', '.join(LOSSES)}")
    return LOSSES[name]
