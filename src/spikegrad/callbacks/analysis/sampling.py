"""Shared machinery of the analysis monitors: record the spiking layers on one sampled training batch every N
optimizer steps, reduce the statistics across processes with torchmetrics, and log them once.

Recording is the neurons' own switch (:class:`spikegrad.neurons.SpikingNeuron`): a monitor asks with
``request_recording`` before the sampled batch and withdraws with ``release_recording`` after it; while a
request is pending a layer keeps its last call's spikes and pre-spike potentials (detached) in ``recorded`` and
its backward writes the zero fractions of ``∂s/∂h`` and ``∂L/∂h`` into ``backward_stats``. Nothing here runs
an extra forward pass, draws random numbers, or changes a module's mode, so training is bitwise the same with
the monitors on or off.

A monitor turns one sampled batch into sums (and maxima) per layer, which :class:`SampleSums`, a torchmetrics
``Metric``, reduces over processes (``dist_reduce_fx`` "sum" and "max"): under DDP every process samples the
same steps, so the collective calls line up. The numbers are then logged to the loggers at the sampled step
itself: ``pl_module.log`` would write them only on ``trainer.log_every_n_steps`` boundaries, which need not be
the sampled steps.
"""

from __future__ import annotations

import os

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import Metric

from spikegrad.layer_names import named_spiking_layers
from spikegrad.neurons import SpikingNeuron

__all__ = [
    "SampleSums",
    "reduced",
    "SampledBatchCallback",
    "epoch_end_step",
    "figure_due",
    "log_constants",
    "log_figure",
    "tell_once",
    "log_scalars",
    "tensorboard_writers",
]


class SampleSums(Metric):
    """Sums and maxima of one sampled batch, reduced over all processes by torchmetrics on ``compute()``.

    Args:
        sum_shape: shape of the summed statistics (e.g. ``[layers, columns]``).
        max_shape: shape of the statistics reduced by maximum (``None``: none).
    """

    full_state_update = False

    def __init__(self, sum_shape: tuple[int, ...], max_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.add_state("sums", default=torch.zeros(sum_shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.with_maxima = max_shape is not None
        if self.with_maxima:
            self.add_state("maxima", default=torch.full(max_shape, -torch.inf, dtype=torch.float64),
                           dist_reduce_fx="max")

    def update(self, sums: torch.Tensor, maxima: torch.Tensor | None = None) -> None:
        self.sums += sums.to(self.sums)
        if self.with_maxima:
            self.maxima = torch.maximum(self.maxima, maxima.to(self.maxima))

    def compute(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.sums, self.maxima if self.with_maxima else None


def reduced(pl_module: L.LightningModule, sums: torch.Tensor, maxima: torch.Tensor | None = None):
    """``(Σ sums, max maxima)`` over all processes, on the CPU, for one sampled batch."""
    metric = SampleSums(tuple(sums.shape), None if maxima is None else tuple(maxima.shape)).to(sums.device)
    metric.update(sums, maxima)
    total, largest = metric.compute()
    return total.cpu(), None if largest is None else largest.cpu()


def log_scalars(trainer: L.Trainer, metrics: dict[str, float], step: int) -> None:
    """Log plain numbers to every logger, once (global rank zero)."""
    if not metrics or not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


def log_constants(trainer: L.Trainer, tag: str, values: dict[str, float], step: int) -> None:
    """Numbers that stay the same over a run, once: a text table ``tag`` in TensorBoard, one row elsewhere."""
    if not values or not trainer.is_global_zero:
        return
    table = "| quantity | value |\n|---|---|\n" + "".join(f"| `{k}` | {v:.6g} |\n" for k, v in values.items())
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text(tag, table, global_step=step)
        else:
            logger.log_metrics(values, step=step)


def log_figure(trainer: L.Trainer, tag: str, figure, step: int) -> None:
    """A matplotlib figure to every logger, from global rank zero: TensorBoard's Images tab, an MLflow artifact
    ``<tag>/step_<step>.png``, and for a logger with a folder (CSVLogger) ``<log_dir>/figures/<tag>/step_<step>.png``.
    """
    if not trainer.is_global_zero:
        return
    for logger in trainer.loggers:
        name = f"{tag}/step_{step:06d}.png"
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, figure, global_step=step, close=False)
        elif type(logger).__name__ == "MLFlowLogger":
            logger.experiment.log_figure(logger.run_id, figure, name)
        elif getattr(logger, "log_dir", None):
            path = os.path.join(logger.log_dir, "figures", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            figure.savefig(path, dpi=100)


def tell_once(owner, what: str, trainer: L.Trainer) -> None:
    """Says once per callback which of its outputs the run's loggers cannot show."""
    if getattr(owner, "_told", False) or not trainer.is_global_zero:
        return
    lacking = [type(lg).__name__ for lg in trainer.loggers if not isinstance(lg, TensorBoardLogger)]
    if lacking:
        owner._told = True
        rank_zero_info(f"{type(owner).__name__}: {what} need TensorBoardLogger; {', '.join(lacking)} get the "
                       f"scalars only")


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
        self._layers: dict[str, SpikingNeuron] = {}
        self._sample_step: int | None = None
        self._last_sampled_step: int | None = None

    # --- hooks for subclasses ----------------------------------------------------------------------
    def before_sample(self, trainer: L.Trainer, pl_module: L.LightningModule,
                      layers: dict[str, SpikingNeuron]) -> None:
        """Called before the sampled batch's forward (e.g. to attach forward hooks)."""

    def on_sample(self, trainer: L.Trainer, pl_module: L.LightningModule, layers: dict[str, SpikingNeuron],
                  step: int) -> None:
        """Called after the sampled batch's optimizer step; ``step`` is the global step it was sampled at."""
        raise NotImplementedError

    def on_sampled_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called at the end of every training epoch."""

    def _release(self) -> None:
        for layer in self._layers.values():
            layer.release_recording(self)

    # --- Lightning hooks ------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps != 0 or step == self._last_sampled_step:
            return
        self._layers = named_spiking_layers(pl_module)  # readable names: conv1.lif, fc1.lif, ...
        if not self._layers:
            return
        self._sample_step = self._last_sampled_step = step
        for layer in self._layers.values():
            layer.request_recording(self)
        self.before_sample(trainer, pl_module, self._layers)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._sample_step is None:
            return
        step, self._sample_step = self._sample_step, None
        try:
            self.on_sample(trainer, pl_module, self._layers, step)
        finally:
            self._release()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.on_sampled_epoch_end(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._release()
        self._sample_step = None
