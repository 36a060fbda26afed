"""Energy estimate of a spiking network from its synaptic operations, against the same network as an ANN.

Counting rule (per sample, one inference over ``T`` steps), measured with forward hooks on every synaptic
layer (``Linear``, ``Conv1d/2d/3d``) during a sampled training batch:

* ``MACs_l``: multiply-accumulates of synaptic layer ``l`` for one sample and one step (``Linear``: outputs
  × ``in_features``; ``ConvNd``: outputs × ``in_channels/groups`` × kernel volume). This is also the layer's
  input size × mean fan-out.
* The **ANN** is the same network with the spiking layers read as ReLUs, run once:
  ``E_ANN = E_MAC · Σ_l MACs_l``.
* A synaptic layer whose input comes from spiking layers (any layer after the first spiking layer in the
  forward pass, also through average pooling, flattening or dropout, which keep the mean rate) performs
  accumulates only, one per spike and outgoing synapse: ``SOPs_l = r_l · T · MACs_l``, where ``r_l`` is the
  mean of the layer's input per neuron and step, i.e. its input firing rate (input firing rate × fan-out).
* A synaptic layer fed by the encoder (before any spiking layer) performs multiply-accumulates on real
  values: ``MACs_l`` once under direct encoding (the same input at every step, computed once) or
  ``T · MACs_l`` for sequence input; if that input is binary (event frames of 0/1), it counts as
  ``SOPs_l = r_l · T · MACs_l`` like a spiking input.
* ``E_SNN = E_AC · Σ SOPs + E_MAC · Σ encoder MACs``, with ``E_AC = 0.9 pJ`` and ``E_MAC = 4.6 pJ`` (32-bit
  float add and multiply-add, 45 nm; Horowitz, "Computing's energy problem", ISSCC 2014), the convention of
  e.g. Zhou et al., "Spikformer", ICLR 2023.
* Not counted: BatchNorm (folded into the weights at inference), pooling, residual additions, the neurons'
  own state updates, memory access.

Logged every ``every_n_steps`` steps: ``energy/sops`` (per sample), ``energy/snn_uJ``, ``energy/snn_to_ann``
and per synaptic layer (``conv1``, ``fc1``, ...) ``energy/input_rate/<layer>`` and ``energy/sops/<layer>``.
The numbers that do not change during training, ``energy/snn_macs`` (encoder MACs), ``energy/ann_macs`` (per
sample) and ``energy/ann_uJ``, are logged once, as the text ``energy/constants`` (a single row elsewhere).
Under DDP the sums are taken over all processes (torchmetrics).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spikegrad.callbacks.analysis.sampling import SampledBatchCallback, log_constants, log_scalars, reduced
from spikegrad.layer_names import synaptic_layer_names
from spikegrad.neurons import SpikingNeuron

__all__ = ["EnergyMonitor", "synaptic_macs"]

SYNAPTIC_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
E_AC_PJ = 0.9
E_MAC_PJ = 4.6


def synaptic_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a ``Linear`` or ``ConvNd`` that produced ``output``."""
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)


class EnergyMonitor(SampledBatchCallback):
    """Synaptic operations and energy per sample of the SNN against the same network as an ANN.

    Args:
        every_n_steps: sampling period in optimizer steps.
        e_ac_pj: energy of one accumulate in pJ (default 0.9, 45 nm).
        e_mac_pj: energy of one multiply-accumulate in pJ (default 4.6, 45 nm).
    """

    def __init__(self, every_n_steps: int = 50, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> None:
        super().__init__(every_n_steps)
        if not (e_ac_pj > 0 and e_mac_pj > 0):
            raise ValueError(f"EnergyMonitor e_ac_pj and e_mac_pj must be > 0, got {e_ac_pj!r} and {e_mac_pj!r}")
        self.e_ac_pj = float(e_ac_pj)
        self.e_mac_pj = float(e_mac_pj)
        self._handles: list = []
        self._watched: SpikingNeuron | None = None
        self._after_spikes = False
        # layer name -> [input sum, input entries, MACs of all calls, non-binary input (0/1), after spikes (0/1)]
        self._stats: dict[str, list[float]] = {}
        self._constants_logged = False

    def before_sample(self, trainer, pl_module, layers) -> None:
        self._after_spikes = False
        self._stats = {}
        self._watched = next(iter(layers.values()))
        readable = synaptic_layer_names(pl_module)
        for path, module in pl_module.named_modules():
            if isinstance(module, SpikingNeuron):
                self._handles.append(module.register_forward_hook(self._spiking_hook))
            elif isinstance(module, SYNAPTIC_LAYERS):
                self._handles.append(module.register_forward_hook(self._synaptic_hook(readable.get(path, path))))

    def _counting(self) -> bool:
        # Extra passes of other callbacks (e.g. the method probes, which switch recording off) are not counted.
        return self._watched is not None and self._watched.record

    def _spiking_hook(self, module, args, output) -> None:
        if self._counting():
            self._after_spikes = True

    def _synaptic_hook(self, name: str):
        def hook(module, args, output) -> None:
            if not self._counting():
                return
            with torch.no_grad():
                x = args[0].detach()
                binary = bool(((x == 0) | (x == 1)).all())
                row = self._stats.setdefault(name, [0.0, 0.0, 0.0, 0.0, 1.0])
                row[0] += float(x.sum(dtype=torch.float64))
                row[1] += x.numel()
                row[2] += synaptic_macs(module, output)
                row[3] = max(row[3], float(not binary))
                row[4] = min(row[4], float(self._after_spikes))

        return hook

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._watched = None

    def on_sample(self, trainer, pl_module, layers, step) -> None:
        self._remove_hooks()
        first = next((layer.recorded["spikes"] for layer in layers.values() if "spikes" in layer.recorded), None)
        if first is None or not self._stats:
            return
        T, B = first.shape[:2]
        names = list(self._stats)
        device = first.device
        stats = torch.tensor([self._stats[n] for n in names], dtype=torch.float64, device=device)
        sums, flags = reduced(pl_module, torch.cat([stats[:, :3].flatten(), stats.new_tensor([B])]),
                              torch.stack([stats[:, 3], 1 - stats[:, 4]], 1))
        per_layer, total_samples = sums[:-1].view(-1, 3), float(sums[-1])
        direct = getattr(pl_module, "encoding", "direct") == "direct"
        metrics: dict[str, float] = {}
        sops = snn_macs = ann_macs = 0.0
        for name, (input_sum, entries, macs), (non_binary, before_spikes) in zip(names, per_layer, flags, strict=True):
            macs_per_step = float(macs) / (T * total_samples)
            ann_macs += macs_per_step
            rate = float(input_sum / entries)
            if before_spikes and non_binary:
                snn_macs += macs_per_step * (1 if direct else T)
                continue
            layer_sops = rate * T * macs_per_step
            sops += layer_sops
            metrics[f"energy/input_rate/{name}"] = rate
            metrics[f"energy/sops/{name}"] = layer_sops
        snn_uj = (self.e_ac_pj * sops + self.e_mac_pj * snn_macs) * 1e-6
        ann_uj = self.e_mac_pj * ann_macs * 1e-6
        metrics.update(
            {
                "energy/sops": sops,
                "energy/snn_uJ": snn_uj,
                "energy/snn_to_ann": snn_uj / ann_uj if ann_uj > 0 else float("nan"),
            }
        )
        log_scalars(trainer, metrics, step)
        # the same for every batch of a network: once, as text, not as flat curves
        constants = {"energy/snn_macs": snn_macs, "energy/ann_macs": ann_macs, "energy/ann_uJ": ann_uj}
        if not self._constants_logged:
            self._constants_logged = True
            log_constants(trainer, "energy/constants", constants, step)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._remove_hooks()
        super().on_exception(trainer, pl_module, exception)
