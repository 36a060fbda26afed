"""Stops training on a NaN/Inf loss before the update that would spread it into the weights."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from spikegrad.errors import RunFailed


class NonFiniteLoss(RunFailed):
    """The training loss became NaN or Inf."""


class NonFiniteLossGuard(Callback):
    """Raises :class:`NonFiniteLoss` when the training loss is NaN or Inf, before its backward pass.

    The optimizer step of that batch never runs, so the weights stay finite and the checkpoints already
    written (``last.ckpt``, the best one) are the last good ones; nothing is saved on this stop. Under DDP
    the decision is shared by all processes (one all-reduce of a flag per step), so every process stops at
    the same step instead of waiting on the others. The check costs one device synchronisation per step.
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return
        checkpoint = trainer.checkpoint_callback
        last_good = getattr(checkpoint, "last_model_path", "") or getattr(checkpoint, "best_model_path", "")
        kept = f"last good checkpoint: {last_good}" if last_good else "no checkpoint had been written yet"
        value = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
        raise NonFiniteLoss(
            f"training loss is {value} at epoch {trainer.current_epoch}, global step {trainer.global_step}; "
            f"stopped before this update ({kept}); lower model.optimizer.init_args.lr or check the data and "
            f"model settings"
        )
