"""Stops training on a NaN/Inf loss, NaN/Inf weights or optimizer state, and never writes a checkpoint holding them.

A NaN membrane potential produces no spikes, so NaN weights in one layer can leave the loss finite while they
spread: checking the loss alone is not enough. :class:`NonFiniteLossGuard` also checks the parameters, buffers
and optimizer state every ``every_n_steps`` optimizer steps, at the end of every epoch and right before every
checkpoint is written.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from spikegrad.errors import RunFailed

HINT = "lower model.optimizer.init_args.lr or check the data and model settings"


class NonFiniteLoss(RunFailed):
    """The training loss became NaN or Inf."""


class NonFiniteWeights(RunFailed):
    """A parameter, buffer or optimizer state tensor holds NaN or Inf."""


def nonfinite_names(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """The names of the floating-point tensors that hold a NaN or an Inf.

    One max-abs reduction per tensor (``max`` propagates NaN) and one host synchronisation per device, however
    many tensors there are.
    """
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, tensor in named_tensors:
        if isinstance(tensor, torch.Tensor) and (tensor.is_floating_point() or tensor.is_complex()) and tensor.numel():
            by_device.setdefault(tensor.device, []).append((name, tensor.detach()))
    bad: list[str] = []
    for items in by_device.values():
        peaks = torch.stack([t.abs().max().float() for _, t in items])
        finite = torch.isfinite(peaks)
        if not bool(finite.all()):
            bad += [name for (name, _), ok in zip(items, finite.tolist(), strict=True) if not ok]
    return bad


def _optimizer_tensors(optimizer_states: Iterable[dict]) -> Iterator[tuple[str, torch.Tensor]]:
    for i, state in enumerate(optimizer_states):
        for index, entries in (state.get("state") or {}).items():
            for key, value in entries.items():
                yield f"optimizer {i} state {index}.{key}", value


def checkpoint_tensors(checkpoint: dict) -> Iterator[tuple[str, torch.Tensor]]:
    """The weights, buffers and optimizer state of a checkpoint dict, by name."""
    yield from (checkpoint.get("state_dict") or {}).items()
    yield from _optimizer_tensors(checkpoint.get("optimizer_states") or [])


def training_tensors(trainer: L.Trainer, pl_module: L.LightningModule) -> Iterator[tuple[str, torch.Tensor]]:
    """The live parameters, buffers and optimizer state of a run, by name."""
    yield from pl_module.state_dict(keep_vars=False).items()
    names = {id(p): name for name, p in pl_module.named_parameters()}
    for i, optimizer in enumerate(trainer.optimizers):
        for parameter, entries in optimizer.state.items():
            for key, value in entries.items():
                yield f"optimizer {i} state {names.get(id(parameter), '?')}.{key}", value


def checkpoint_is_finite(path: str) -> bool:
    """Whether the checkpoint file reads and holds only finite weights and optimizer state."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable: not a checkpoint one can continue from
        return False
    return isinstance(checkpoint, dict) and not nonfinite_names(checkpoint_tensors(checkpoint))


def last_finite_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest checkpoint file of the run's checkpoint folders that is finite (read back to be sure)."""
    folders = {cb.dirpath for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
    files = [p for folder in folders for p in glob.glob(os.path.join(glob.escape(folder), "*.ckpt"))]
    for path in sorted(files, key=os.path.getmtime, reverse=True):
        if checkpoint_is_finite(path):
            return path
    return None


def _kept(trainer: L.Trainer) -> str:
    if not trainer.is_global_zero:
        return "last finite checkpoint: see process 0"
    path = last_finite_checkpoint(trainer)
    return f"last finite checkpoint: {path}" if path else "no finite checkpoint had been written"


def _listed(names: list[str]) -> str:
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")


class NonFiniteLossGuard(Callback):
    """Stops a fit with a one-line message when the loss, the weights or the optimizer state are not finite.

    * the training loss is checked before each backward pass: the update that would spread a NaN/Inf loss
      into the weights never runs (one device synchronisation per step);
    * parameters, buffers and optimizer state are checked every ``every_n_steps`` optimizer steps and at the end
      of each epoch, right before the epoch's checkpoints are written; any other checkpoint (``interrupted.ckpt``,
      a user's ``ModelCheckpoint``) is checked in :meth:`on_save_checkpoint` before it is written. A checkpoint
      holding NaN/Inf is never written.

    A state found finite is not checked again until the next training batch starts (weights, BatchNorm
    statistics and optimizer state change only in training batches): the best and the last checkpoint of an epoch
    cost one check together. The spikegrad command adds this callback after the configured ones, so its
    end-of-epoch check runs after theirs and right before the checkpoint callbacks, which Lightning runs last.

    The message names the newest checkpoint of the run that is finite (read back from disk to be sure).
    Under DDP the decision is shared by all processes (one all-reduce of a flag per check), so every process
    stops at the same step instead of waiting on the others.

    Args:
        every_n_steps: optimizer steps between two checks of the weights and optimizer state (>= 1).
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        if every_n_steps < 1:
            raise ValueError(f"finite_check.every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._periodic_step = 0  # the global step of the last check every n steps
        self._clean_step: int | None = None  # the step whose state was found finite, until a training batch starts

    @staticmethod
    def _shared(trainer: L.Trainer, bad: bool) -> bool:
        return trainer.strategy.reduce_boolean_decision(bad, all=False) if trainer.world_size > 1 else bad

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not self._shared(trainer, not bool(torch.isfinite(loss.detach()).all())):
            return
        value = "nan" if bool(torch.isnan(loss.detach()).any()) else "inf"
        raise NonFiniteLoss(
            f"training loss is {value} at epoch {trainer.current_epoch}, global step {trainer.global_step}; "
            f"stopped before this update ({_kept(trainer)}); {HINT}"
        )

    def _check(self, trainer: L.Trainer, tensors: Iterable[tuple[str, torch.Tensor]], when: str) -> None:
        if self._clean_step == trainer.global_step:
            return
        bad = nonfinite_names(tensors)
        if self._shared(trainer, bool(bad)):
            what = f"NaN/Inf in {_listed(bad)}" if bad else "NaN/Inf on another process"
            raise NonFiniteWeights(
                f"weights or optimizer state not finite ({what}) at epoch {trainer.current_epoch}, global step "
                f"{trainer.global_step}, found {when}; stopped ({_kept(trainer)}); {HINT}"
            )
        self._clean_step = trainer.global_step

    def _check_training(self, trainer: L.Trainer, pl_module: L.LightningModule, when: str) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check(trainer, training_tensors(trainer, pl_module), when)

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        self._clean_step = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if trainer.global_step - self._periodic_step >= self.every_n_steps:
            self._periodic_step = trainer.global_step
            self._check_training(trainer, pl_module, f"by the check every {self.every_n_steps} steps")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_training(trainer, pl_module, "at the end of the epoch, before its checkpoints")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_training(trainer, pl_module, "at the end of the epoch, before its checkpoints")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._check(trainer, checkpoint_tensors(checkpoint), "in a checkpoint about to be written; not written")
