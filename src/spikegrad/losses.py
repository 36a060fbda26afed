"""Training losses of a spiking classifier: ``loss(per-step logits o [T, B, K], decoded y [B, K], targets [B])``.

* :class:`CrossEntropyLoss`: cross-entropy of the decoded prediction (the usual choice);
* :class:`TemporalEfficientTrainingLoss`: TET (Deng, Li, Zhang, Gu, ICLR 2022),
  ``(1-λ)·(1/T)·Σ_t CE(o[t], y) + λ·MSE(o, φ)``, the mean squared error taken over every element of ``o``;
  defaults ``λ = 1e-3``, ``φ = 1``.

Configs name the loss by class (``model.loss: {class_path: TemporalEfficientTrainingLoss, init_args: {lam:
0.001}}``); a loss of your own is a :class:`Loss` subclass in your module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

__all__ = ["CrossEntropyLoss", "Loss", "TemporalEfficientTrainingLoss"]


class Loss(ABC):
    """Base class: ``loss(per_step_logits [T, B, K], decoded [B, K], target [B]) -> scalar``.

    A loss is a configuration object (not a module): it has no parameters and no state in checkpoints.
    """

    @abstractmethod
    def __call__(self, per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of one batch."""


class CrossEntropyLoss(Loss):
    """``CE(y, target)`` on the decoded prediction.

    Args:
        label_smoothing: ε of label smoothing (torch's ``cross_entropy``): the target is ``(1 - ε)`` on the
            class plus ``ε/K`` on every class (default 0: none).
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"loss CrossEntropyLoss: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def __call__(self, per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(decoded, target, label_smoothing=self.label_smoothing)


class TemporalEfficientTrainingLoss(Loss):
    """TET (Deng et al., ICLR 2022): ``(1-λ)·(1/T)·Σ_t CE(o[t], y) + λ·MSE(o, φ)``.

    Args:
        lam: λ, the weight of the regulariser that pulls every logit towards φ (default 1e-3).
        phi: φ, the target value of the logits in the regulariser (default 1).
    """

    def __init__(self, lam: float = 1e-3, phi: float = 1.0) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"loss TemporalEfficientTrainingLoss: lam must be in [0, 1], got {lam}")
        self.lam = float(lam)
        self.phi = float(phi)

    def __call__(self, per_step_logits: torch.Tensor, decoded: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        T = per_step_logits.shape[0]
        per_step_ce = F.cross_entropy(per_step_logits.flatten(0, 1), target.repeat(T))  # = (1/T)·Σ_t CE(o[t], y)
        mse = F.mse_loss(per_step_logits, torch.full_like(per_step_logits, self.phi))
        return (1.0 - self.lam) * per_step_ce + self.lam * mse

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lam={self.lam:g}, phi={self.phi:g})"
