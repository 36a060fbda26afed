"""Decoders: per-step logits ``o[t]`` of shape ``[T, B, K]`` -> prediction ``[B, K]``.

Configs name the decoder by class (``model.decoder``); the classifier builds it with the number of steps ``T``,
the first argument of every decoder:

* :class:`MeanDecoder`: ``y = (1/T)·Σ_t o[t]`` (rate decoding, the usual choice);
* :class:`LastStepDecoder`: ``y = o[T]``;
* :class:`TemporallyWeightedDecoder`: temporally weighted output (TWO; Li, Zhao, Zhao, Zeng, "Masked surrogate
  gradients", Neural Networks 2024): ``y = (1/T)·Σ_t f_t·o[t]`` with fixed (no-grad) per-step weights ``f``
  initialised to ones. At the start of every epoch ``e > start`` (``e`` counted from 0) the weights follow
  ``f <- (1-β)·f + β·a/mean(a)``, where ``a_t`` is the training accuracy of ``argmax o[t]`` alone over the
  previous epoch; epochs ``0..start`` train with uniform weights, as in the official code (Brain-Cog-Lab/msg,
  main.py:117-123: ``if epoch <= att_startepoch`` the weights are ones, else the update). With the default
  ``start: 5`` the first update is at the start of epoch 6 and uses epoch 5's statistics. ``f`` is a registered
  buffer named ``weights`` (so it is in the checkpoint) and is used unchanged at test time.

The losses are in :mod:`spikegrad.losses`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn
from torchmetrics import Metric

__all__ = ["Decoder", "LastStepDecoder", "MeanDecoder", "PerStepAccuracy", "TemporallyWeightedDecoder"]


class Decoder(nn.Module, ABC):
    """Base decoder: ``forward(o) -> y`` plus two hooks the classifier calls during training.

    ``observe(o, target)`` sees every training batch's per-step logits (detached) and ``on_train_epoch_start``
    runs before every training epoch; both do nothing unless a decoder adapts itself (TWO).

    Args:
        time_steps: T, the number of per-step logits (given by the classifier, not set in configs).
    """

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        if time_steps < 1:
            raise ValueError(f"decoder {type(self).__name__}: time_steps must be >= 1, got {time_steps}")
        self.time_steps = int(time_steps)

    @abstractmethod
    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        """The prediction ``[B, K]`` of per-step logits ``[T, B, K]``."""

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
        return self.accuracy()

    def accuracy(self) -> torch.Tensor:
        """``correct / total`` of the current (local, or inside ``sync_context`` global) counts."""
        return self.correct / self.total.clamp(min=1)


class TemporallyWeightedDecoder(Decoder):
    """Temporally weighted output (TWO): ``y = (1/T)·Σ_t f_t·o[t]`` with EMA-updated, no-grad weights ``f``.

    Args:
        time_steps: T (the length of ``f``).
        start: the last epoch (counted from 0) trained with uniform weights; the weights are first updated at the
            start of epoch ``start + 1`` from epoch ``start``'s statistics (the official code's convention; the
            default 5 trains epochs 0-5, six epochs, with uniform weights). ``0`` updates from epoch 1 on.
        beta: EMA factor β of ``f <- (1-β)·f + β·a/mean(a)`` (default 0.3).
    """

    def __init__(self, time_steps: int, start: int = 5, beta: float = 0.3) -> None:
        super().__init__(time_steps)
        if start < 0:
            raise ValueError(f"decoder TemporallyWeightedDecoder: start must be >= 0 (the last epoch with uniform "
                             f"weights), got {start}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"decoder TemporallyWeightedDecoder: beta must be in [0, 1], got {beta}")
        self.start = int(start)
        self.beta = float(beta)
        self.register_buffer("weights", torch.ones(time_steps))
        self.step_accuracy = PerStepAccuracy(time_steps)
        self.step_accuracy.persistent(True)  # the epoch's counts go into checkpoints: a resumed run updates f alike
        self.last_step_accuracy: torch.Tensor | None = None

    def forward(self, per_step_logits: torch.Tensor) -> torch.Tensor:
        if per_step_logits.shape[0] != self.weights.shape[0]:
            raise ValueError(
                f"decoder TemporallyWeightedDecoder: got {per_step_logits.shape[0]} time steps, the weights have "
                f"{self.weights.shape[0]}"
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
        """Update ``f`` from the previous epoch's per-step training accuracy when ``epoch > start``."""
        if self.step_accuracy.total > 0:
            # The counts, not the metric's update counter, come back from a checkpoint, so the accuracies are read
            # from the counts, synchronised across processes by torchmetrics' public sync_context (compute()
            # would warn that no update happened after a resume).
            with self.step_accuracy.sync_context():
                self.last_step_accuracy = self.step_accuracy.accuracy().float()
            if epoch > self.start:
                self.update_weights(self.last_step_accuracy)
        self.step_accuracy.reset()
