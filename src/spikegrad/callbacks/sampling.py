"""Shared machinery of the analysis callbacks: record the spiking layers on one sampled training batch every
N optimizer steps, reduce the statistics across processes, and log them once.

Recording uses the neurons' own switch (:attr:`spikegrad.neurons.LIF.record`): while it is on, a layer keeps
its last call's spikes and pre-spike potentials (detached) in ``lif.recorded`` and its backward writes the
zero fractions of ``∂s/∂h`` and ``∂L/∂h`` into ``lif.backward_stats``. Nothing here runs an extra forward
pass, draws random numbers, or changes a module's mode, so training is bitwise the same with the callbacks
on or off. Several callbacks may want the same layers recorded on the same batch: :func:`request_recording`
and :func:`release_recording` count the requests and restore the layer's own setting after the last one.
"""

from __future__ import annotations

import weakref

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from spikegrad.neurons import LIF

__all__ = [
    "SampledBatchCallback",
    "epoch_end_step",
    "figure_due",
    "log_scalars",
    "reduce_max",
    "reduce_sum",
    "release_recording",
    "request_recording",
    "spiking_layers",
    "tensorboard_writers",
]

# layer -> (ids of the callbacks that asked for recording, the layer's own `record` setting before them)
_REQUESTS: weakref.WeakKeyDictionary[LIF, tuple[set[int], bool]] = weakref.WeakKeyDictionary()


def spiking_layers(pl_module: L.LightningModule) -> dict[str, LIF]:
    """The module's spiking layers by name, in forward order (``pl_module.spiking_layers()`` when it has one)."""
    if hasattr(pl_module, "spiking_layers"):
        return dict(pl_module.spiking_layers())
    return {name: m for name, m in pl_module.named_modules() if isinstance(m, LIF)}


def request_recording(layers, owner: object) -> None:
    """Switch recording on for ``layers`` on behalf of ``owner`` (the first request clears stale stats)."""
    for lif in layers:
        owners, previous = _REQUESTS.get(lif, (set(), lif.record))
        if not owners:
            lif.backward_stats.clear()
        owners.add(id(owner))
        _REQUESTS[lif] = (owners, previous)
        lif.record = True


def release_recording(layers, owner: object) -> None:
    """Withdraw ``owner``'s request; after the last one the layer gets its own setting back."""
    for lif in layers:
        if lif not in _REQUESTS:
            continue
        owners, previous = _REQUESTS[lif]
        owners.discard(id(owner))
        if not owners:
            del _REQUESTS[lif]
            lif.record = previous
            if not previous:
                lif.recorded = {}


def reduce_sum(trainer: L.Trainer, values: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over all processes (the tensor itself on one process)."""
    return trainer.strategy.reduce(values.detach().clone(), reduce_op="sum")


def reduce_max(trainer: L.Trainer, values: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of ``values`` over all processes."""
    return trainer.strategy.reduce(values.detach().clone(), reduce_op="max")


def log_scalars(trainer: L.Trainer, metrics: dict[str, float], step: int) -> None:
    """Log plain numbers to every logger, once (global rank zero)."""
    if not metrics or not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


def tensorboard_writers(trainer: L.Trainer) -> list:
    """The ``SummaryWriter`` of every TensorBoard logger, on global rank zero only (empty elsewhere)."""
    if not trainer.is_global_zero:
        return []
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def epoch_end_step(trainer: L.Trainer) -> int:
    """The step at which Lightning logs a training epoch's end metrics (the epoch's last batch)."""
    return max(trainer.global_step - 1, 0)


def figure_due(trainer: L.Trainer, every_n_epochs: int) -> bool:
    """Whether an epoch-end figure is due: every ``every_n_epochs`` epochs and at the last epoch (0: never)."""
    if every_n_epochs <= 0:
        return False
    epoch = trainer.current_epoch + 1
    return epoch % every_n_epochs == 0 or (trainer.max_epochs is not None and epoch >= trainer.max_epochs)


def check_figure_every(owner: str, every_n_epochs: int) -> int:
    if not isinstance(every_n_epochs, int) or every_n_epochs < 0:
        raise ValueError(f"{owner} figure_every_n_epochs must be an integer >= 0 (0: none), got {every_n_epochs!r}")
    return every_n_epochs


class SampledBatchCallback(Callback):
    """Base class: records the spiking layers during one training batch every ``every_n_steps`` optimizer steps.

    A batch is sampled when ``trainer.global_step % every_n_steps == 0`` (once per step value, so gradient
    accumulation does not sample the same step twice). Subclasses implement :meth:`on_sample` (called after
    the batch's backward and optimizer step, with the layers' ``recorded`` and ``backward_stats`` filled) and
    may implement :meth:`before_sample` and :meth:`on_sampled_epoch_end`. All processes sample the same steps,
    so the collective reductions in the subclasses line up under DDP.

    Args:
        every_n_steps: sampling period in optimizer steps (>= 1).
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ValueError(f"{type(self).__name__} every_n_steps must be an integer >= 1, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self._layers: dict[str, LIF] = {}
        self._sample_step: int | None = None
        self._last_sampled_step: int | None = None

    # --- hooks for subclasses ----------------------------------------------------------------------
    def before_sample(self, trainer: L.Trainer, pl_module: L.LightningModule, layers: dict[str, LIF]) -> None:
        """Called before the sampled batch's forward (e.g. to attach forward hooks)."""

    def on_sample(self, trainer: L.Trainer, pl_module: L.LightningModule, layers: dict[str, LIF], step: int) -> None:
        """Called after the sampled batch's optimizer step; ``step`` is the global step it was sampled at."""
        raise NotImplementedError

    def on_sampled_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called at the end of every training epoch."""

    # --- Lightning hooks ------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps != 0 or step == self._last_sampled_step:
            return
        self._layers = spiking_layers(pl_module)
        if not self._layers:
            return
        self._sample_step = self._last_sampled_step = step
        request_recording(self._layers.values(), self)
        self.before_sample(trainer, pl_module, self._layers)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._sample_step is None:
            return
        step, self._sample_step = self._sample_step, None
        try:
            self.on_sample(trainer, pl_module, self._layers, step)
        finally:
            release_recording(self._layers.values(), self)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.on_sampled_epoch_end(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._layers:
            release_recording(self._layers.values(), self)
        self._sample_step = None
