"""Firing rate of every spiking layer (spikes per neuron per time step) on sampled training batches.

For layer ``l`` with spikes ``s[t, b, i]`` on a batch of ``B`` samples, ``T`` steps and ``N_l`` neurons::

    r_l = Σ_{t,b,i} s[t,b,i] / (T·B·N_l)          network mean  r = Σ_l Σ s / Σ_l T·B·N_l

(the network mean weights each layer by its number of neurons). Under DDP the spike counts and the entry
counts are summed over processes (torchmetrics) before dividing, so the logged rate is the global one.
"""

from __future__ import annotations

import torch

from spikegrad.callbacks.analysis.sampling import (
    SampledBatchCallback,
    check_figure_every,
    epoch_end_step,
    figure_due,
    log_figure,
    log_scalars,
    reduced,
)
from spikegrad.plotting import layer_bars_figure

__all__ = ["FiringRateMonitor"]


class FiringRateMonitor(SampledBatchCallback):
    """Logs ``firing_rate/<layer>`` and ``firing_rate/mean`` every ``every_n_steps`` steps.

    Every ``figure_every_n_epochs`` training epochs and at the last one (``0``: never), a bar chart of the
    epoch's per-layer rates (over its sampled batches) goes to the loggers as ``firing_rate/layers``
    (:func:`~spikegrad.callbacks.analysis.sampling.log_figure`).
    """

    def __init__(self, every_n_steps: int = 50, figure_every_n_epochs: int = 1) -> None:
        super().__init__(every_n_steps)
        self.figure_every_n_epochs = check_figure_every(type(self).__name__, figure_every_n_epochs)
        self._epoch_counts: dict[str, torch.Tensor] = {}

    def on_sample(self, trainer, pl_module, layers, step) -> None:
        names = [name for name, layer in layers.items() if "spikes" in layer.recorded]
        if not names:
            return
        # one [L, 2] tensor (spike count, entry count), so that DDP needs a single collective call
        rows = []
        for name in names:
            spikes = layers[name].recorded["spikes"]
            entries = spikes.new_tensor(spikes.numel(), dtype=torch.float64)
            rows.append(torch.stack([spikes.sum(dtype=torch.float64), entries]))
        counts, _ = reduced(pl_module, torch.stack(rows))
        for name, row in zip(names, counts, strict=True):
            self._epoch_counts[name] = self._epoch_counts.get(name, torch.zeros(2, dtype=torch.float64)) + row
        metrics = {f"firing_rate/{n}": float(row[0] / row[1]) for n, row in zip(names, counts, strict=True)}
        metrics["firing_rate/mean"] = float(counts[:, 0].sum() / counts[:, 1].sum())
        log_scalars(trainer, metrics, step)

    def on_sampled_epoch_end(self, trainer, pl_module) -> None:
        counts, self._epoch_counts = self._epoch_counts, {}
        if not counts or not figure_due(trainer, self.figure_every_n_epochs):
            return
        rates = {name: float(c[0] / c[1]) for name, c in counts.items()}
        total = torch.stack(list(counts.values())).sum(0)
        if trainer.is_global_zero and trainer.loggers:
            figure = layer_bars_figure(
                rates, float(total[0] / total[1]), "spikes per neuron per step",
                f"Firing rate per layer, epoch {trainer.current_epoch}",
            )
            log_figure(trainer, "firing_rate/layers", figure, epoch_end_step(trainer))
