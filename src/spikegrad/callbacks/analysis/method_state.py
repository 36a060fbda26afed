"""The training state that lives in the model, logged once per training epoch.

Reads only what is present, so it works with any combination of methods:

* ``method/two_weights/t<k>``: the temporally weighted output's per-step weights ``f_k`` (TWO, Li et al.,
  Neural Networks 2024), from the buffer ``weights`` of ``pl_module.decoder`` when it has one;
* ``neuron/<layer>/<quantity>``: each spiking layer's learned quantities (PLIF's ``tau``, a learned
  ``v_threshold``; :meth:`spikegrad.neurons.SpikingNeuron.learned_values`);
* the text ``method/surrogate``: each layer's surrogate (shape and parameters), whenever it changes.

The method callbacks log their own state (``dspike/b``, ``dspike/cosine/*``, ``psg/alpha/<layer>``), so it is
not repeated here. The state is the same on every process, so it is logged from global rank zero without a
reduction.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from spikegrad.callbacks.analysis.sampling import epoch_end_step, log_scalars, tensorboard_writers
from spikegrad.layer_names import named_spiking_layers

__all__ = ["MethodStateMonitor"]


class MethodStateMonitor(Callback):
    """Logs the TWO weights, the layers' learned neuron quantities and their surrogates at each epoch end."""

    def __init__(self) -> None:
        super().__init__()
        self._last_text: str | None = None

    def state(self, trainer, pl_module) -> dict[str, float]:
        """The state as flat ``tag -> number`` pairs."""
        metrics: dict[str, float] = {}
        weights = getattr(getattr(pl_module, "decoder", None), "weights", None)
        if isinstance(weights, torch.Tensor):
            for k, value in enumerate(weights.detach().flatten().cpu().tolist(), start=1):
                metrics[f"method/two_weights/t{k}"] = float(value)
        for name, layer in named_spiking_layers(pl_module).items():
            for quantity, value in layer.learned_values().items():
                metrics[f"neuron/{name}/{quantity}"] = value
        return metrics

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        log_scalars(trainer, self.state(trainer, pl_module), epoch_end_step(trainer))
        text = "  \n".join(f"`{name}`: {layer.surrogate!r}" for name, layer in named_spiking_layers(pl_module).items())
        if text and text != self._last_text:
            self._last_text = text
            for writer in tensorboard_writers(trainer):
                writer.add_text("method/surrogate", text, global_step=epoch_end_step(trainer))
