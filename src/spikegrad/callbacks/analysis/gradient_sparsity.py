"""Gradient sparsity of every spiking layer on sampled training batches (docs/analysis.md).

Two fractions per layer, both over all ``T·B·N_l`` entries of the batch, filled by the neuron's own fused
backward while recording is on (:class:`spikegrad.neurons.SpikingNeuron`, either backend):

* ``grad_sparsity/<layer>``: the fraction of zero entries of the surrogate derivative ``∂s/∂h = g(h - θ)``
  after masking. For a compact surrogate of half-width ``w`` this is ``P(|h - θ| > w)`` plus the masked
  share; with masked surrogate gradients (MSG, Li et al. 2024) it is what the drop probability ``p`` trades
  against the gradient's effectiveness;
* ``grad_sparsity_h/<layer>``: the fraction of zero entries of ``∂L/∂h``, the gradient that reaches the
  potential (through the spike and through time).

``grad_sparsity/mean`` and ``grad_sparsity_h/mean`` pool all layers' entries. Under DDP the zero counts
and entry counts are summed over processes (torchmetrics).
"""

from __future__ import annotations

import torch

from spikegrad.callbacks.analysis.sampling import SampledBatchCallback, log_scalars, reduced

__all__ = ["GradientSparsityMonitor"]

STATS = {"surrogate_zero_fraction": "grad_sparsity", "grad_h_zero_fraction": "grad_sparsity_h"}


class GradientSparsityMonitor(SampledBatchCallback):
    """Logs ``grad_sparsity/<layer>`` (zeros of ``∂s/∂h``) and ``grad_sparsity_h/<layer>`` (zeros of ``∂L/∂h``)."""

    def on_sample(self, trainer, pl_module, layers, step) -> None:
        names = [n for n, layer in layers.items() if all(k in layer.backward_stats for k in STATS) and layer.recorded]
        if not names:
            return
        rows = []
        for name in names:
            layer = layers[name]
            entries = layer.recorded["spikes"].new_tensor(layer.recorded["spikes"].numel(), dtype=torch.float64)
            fractions = [layer.backward_stats[key].to(entries.device, torch.float64) for key in STATS]
            rows.append(torch.stack([*(f * entries for f in fractions), entries]))
        counts, _ = reduced(pl_module, torch.stack(rows))  # [L, (zeros of g, zeros of ∂L/∂h, entries)]
        metrics: dict[str, float] = {}
        for column, prefix in enumerate(STATS.values()):
            for name, row in zip(names, counts, strict=True):
                metrics[f"{prefix}/{name}"] = float(row[column] / row[-1])
            metrics[f"{prefix}/mean"] = float(counts[:, column].sum() / counts[:, -1].sum())
        log_scalars(trainer, metrics, step)
