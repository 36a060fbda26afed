"""Decoders (per-step logits ``o[t]`` of shape ``[T, B, K]`` -> prediction ``[B, K]``) and losses.

Decoders (``model.decoding``, options in ``model.decoding_args``):

* ``mean``: ``y = (1/T)·Σ_t o[t]`` (rate decoding, the usual choice);
* ``last``: ``y = o[T]``;
* ``two``: temporally weighted output (TWO; Li, Zhao, Zhao, Zeng, "Masked surrogate gradients", Neural
  Networks 2024): ``y = (1/T)·Σ_t f_t·o[t]`` with fixed (no-grad) per-step weights ``f`` initialised to ones.
  At the start of every epoch ``e >= start`` (``e`` counted from 0, so the first update uses the statistics of
  the ``start``-th epoch) the weights follow ``f <- (1-β)·f + β·a/mean(a)``, where ``a_t`` is the training
  accuracy of ``argmax o[t]`` alone over the previous epoch. ``f`` is a registered buffer named ``weights``
  (so it is in the checkpoint) and is used unchanged at test time.

Losses (``model.loss``, options in ``model.loss_args``) take the per-step logits, the decoded prediction and
the targets:

* ``ce``: cross-entropy of the decoded prediction;
* ``tet``: temporal efficient training (Deng, Li, Zhang, Gu, ICLR 2022):
  ``(1-λ)·(1/T)·Σ_t CE(o[t], y) + λ·MSE(o, φ)``, the mean squared error taken over every element of ``o``;
  defaults ``λ = 1e-3``, ``φ = 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

__all__ = [
    "DECODERS",
    "LOSSES",
    "CrossEntropyLoss",
    "Decoder",
    "LastStepDecoder",
    "MeanDecoder",
    "PerStepAccuracy",
    "TemporalEfficientTrainingLoss",
    "TemporallyWeightedDecoder",
    "build_decoder",
    "get_loss",
]


class Decoder(nn.Module):
    """Base decoder: ``forward(o) -> y`` plus two hooks the classifier calls during training.

    ``observe(o, target)`` sees every training batch's per-step logits (detached) and ``on_train_epoch_start``
    runs before every training epoch; both do nothing unless a decoder adapts itself (TWO).
    """

    def observe(self, per_step_logits: torch.Tensor, target: torch.Tensor) -> None:
        """Called with each training batch's detached per-step logits ``[T, B, K]`` and targets ``[B]``."""

    def on_train_epoch_start(self, epoch: int) -> None:
        """Called at the start of training epoch ``epoch`` (counted from 0)."""


class MeanDecoder(Decoder):
    """``y = (1/T)·Σ_t o[t]``."""

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        return per_step_logits.mean(0)


class LastStepDecoder(Decoder):
    """``y = o[T]``: the last step's logits."""

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        return per_step_logits[-1]


class PerStepAccuracy(Metric):
    """Accuracy of ``argmax o[t]`` for each step ``t`` separately, accumulated over batches: a vector ``[T]``.

    The counts are summed across processes on ``compute()`` (torchmetrics), so every process gets the same
    accuracies and TWO's weights stay identical under data parallelism. They are in the state dict, so a run
    resumed from an end-of-epoch checkpoint makes the same update as an uninterrupted one.
    """

    full_state_update = False

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        self.add_state("correct", default=torch.zeros(time_steps, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, per_step_logits: torch.Tensor, target: torch.Tensor) -> None:
        hits = per_step_logits.argmax(-1) == target.unsqueeze(0)  # [T, B]
        self.correct += hits.sum(1).to(self.correct.dtype)
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1)


class TemporallyWeightedDecoder(Decoder):
    """Temporally weighted output (TWO): ``y = (1/T)·Σ_t f_t·o[t]`` with EMA-updated, no-grad weights ``f``.

    Args:
        time_steps: T (the length of ``f``).
        start: the first epoch (counted from 0) at whose start the weights are updated; the default 5 means
            five epochs are trained with uniform weights.
        beta: EMA factor β of ``f <- (1-β)·f + β·a/mean(a)`` (default 0.3).
    """

    def __init__(self, time_steps: int, start: int = 5, beta: float = 0.3) -> None:
        super().__init__()
        if time_steps < 1:
            raise ValueError(f"decoding 'two': time_steps must be >= 1, got {time_steps}")
        if start < 1:
            raise ValueError(f"decoding 'two': start must be >= 1 (an epoch of statistics first), got {start}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"decoding 'two': beta must be in [0, 1], got {beta}")
        self.start = int(start)
        self.beta = float(beta)
        self.register_buffer("weights", torch.ones(time_steps))
        self.step_accuracy = PerStepAccuracy(time_steps)
        self.step_accuracy.persistent(True)  # the epoch's counts go into checkpoints: a resumed run updates f alike
        self.last_step_accuracy: torch.Tensor | None = None

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        if per_step_logits.shape[0] != self.weights.shape[0]:
            raise ValueError(
                f"decoding 'two': got {per_step_logits.shape[0]} time steps, the weights have {self.weights.shape[0]}"
            )
        f = self.weights.to(per_step_logits.dtype).view(-1, *([1] * (per_step_logits.dim() - 1)))
        return (f * per_step_logits).mean(0)

    def observe(self, per_step_logits: torch.Tensor, target: torch.Tensor) -> None:
        self.step_accuracy.update(per_step_logits, target)

    @torch.no_grad()
    def update_weights(self, step_accuracy: torch.Tensor) -> None:
        """``f <- (1-β)·f + β·a/mean(a)`` for per-step accuracies ``a`` (no change when ``mean(a) = 0``)."""
        a = step_accuracy.to(self.weights)
        if a.mean() > 0:
            self.weights.mul_(1.0 - self.beta).add_(a / a.mean(), alpha=self.beta)

    def on_train_epoch_start(self, epoch: int) -> None:
        """Update ``f`` from the previous epoch's per-step training accuracy when ``epoch >= start``."""
        if self.step_accuracy.total > 0:  # (update_count is not restored from a checkpoint, the counts are)
            self.step_accuracy._update_count = max(self.step_accuracy._update_count, 1)  # no "compute before update"
            self.last_step_accuracy = self.step_accuracy.compute().float()
            if epoch >= self.start:
                self.update_weights(self.last_step_accuracy)
        self.step_accuracy.reset()


DECODERS: dict[str, type[Decoder]] = {
    "mean": MeanDecoder,
    "last": LastStepDecoder,
    "two": TemporallyWeightedDecoder,
}


class CrossEntropyLoss:
    """``CE(y, target)`` on the decoded prediction."""

    def __call__(self, per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(decoded, target)


class TemporalEfficientTrainingLoss:
    """TET (Deng et al., ICLR 2022): ``(1-λ)·(1/T)·Σ_t CE(o[t], y) + λ·MSE(o, φ)``.

    Args:
        lam: λ, the weight of the regulariser that pulls every logit towards φ (default 1e-3).
        phi: φ, the target value of the logits in the regulariser (default 1).
    """

    def __init__(self, lam: float = 1e-3, phi: float = 1.0) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"loss 'tet': lam must be in [0, 1], got {lam}")
        self.lam = float(lam)
        self.phi = float(phi)

    def __call__(self, per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        T = per_step_logits.shape[0]
        per_step_ce = F.cross_entropy(per_step_logits.flatten(0, 1), target.repeat(T))  # = (1/T)·Σ_t CE(o[t], y)
        mse = F.mse_loss(per_step_logits, torch.full_like(per_step_logits, self.phi))
        return (1.0 - self.lam) * per_step_ce + self.lam * mse


LOSSES: dict[str, type] = {"ce": CrossEntropyLoss, "tet": TemporalEfficientTrainingLoss}


def build_decoder(name: str, time_steps: int, **kwargs) -> Decoder:
    """A decoder by name; an unknown name or option is a one-line error listing the valid ones."""
    cls = DECODERS.get(name)
    if cls is None:
        raise ValueError(f"unknown decoding {name!r}; valid choices: {', '.join(DECODERS)}")
    if cls is TemporallyWeightedDecoder:
        kwargs = {"time_steps": time_steps, **kwargs}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"decoding {name!r}: {err}") from None


def get_loss(name: str, **kwargs):
    """A loss ``(per_step_logits, decoded, target) -> scalar`` by name; unknown names/options are one-line errors."""
    cls = LOSSES.get(name)
    if cls is None:
        raise ValueError(f"unknown loss {name!r}; valid choices: {', '.join(LOSSES)}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"loss {name!r}: {err}") from None
