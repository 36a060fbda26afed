"""Resolves ``backend: auto`` of the spiking layers once per training run, after its first batch.

The rule is :mod:`spikegrad.kernels.choice`. The first batch runs eager and tells the layers' sizes; the choice
then holds for the rest of the run (validation included), is printed as one line, written into the run's
manifest (``neuron_backend``, :class:`spikegrad.manifest.RunManifest`) and shown as the hyperparameter
``neuron_backend`` (HPARAMS, ``hparams.yaml``). A resumed run decides again from the batches it still has to
run. Layers with an explicit ``eager`` or ``compile`` are left alone.
"""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from spikegrad.kernels.choice import COSTS, Costs, compile_pays, compile_works, kernel_setting
from spikegrad.neurons import spiking_layers

__all__ = ["NeuronBackendChoice", "choose_backend", "planned_batches"]


def planned_batches(trainer: L.Trainer, done: int) -> float:
    """Training batches this run still plans after ``done`` of them (``inf`` when it is open-ended)."""
    per_epoch = trainer.num_training_batches
    if trainer.max_steps is not None and trainer.max_steps > 0:
        by_steps = (trainer.max_steps - trainer.global_step) * trainer.accumulate_grad_batches
    else:
        by_steps = math.inf
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs >= 0 else math.inf
    by_epochs = per_epoch * (max_epochs - trainer.current_epoch) - done
    return max(0.0, min(by_steps, by_epochs))


def choose_backend(layers: list, steps: float, device_type: str, probe=compile_works,
                   costs: Costs | None = None) -> tuple[str, str]:
    """``(backend, reason)`` for the ``auto`` layers of a run with ``steps`` training batches still to run.

    ``layers`` must have run one training batch (their ``last_elements`` and ``T`` are that batch's).
    """
    costs = costs or COSTS.get(device_type)
    if not layers:
        return "eager", "no spiking layer has backend auto"
    if costs is None:
        return "eager", f"no compile costs known for device type {device_type!r}"
    elements = sum(layer.last_elements for layer in layers)
    layer_steps = sum(getattr(layer, "last_time_steps", 0) for layer in layers)
    settings = len({kernel_setting(layer) for layer in layers})
    saving = steps * (elements * costs.saving_per_element + layer_steps * costs.saving_per_layer_step)
    summary = (f"{steps:g} training batches × {elements:,} neuron elements save ≈ {saving:.1f} s against "
               f"{settings} setting(s) × {costs.compile_per_setting:g} s of compilation ({costs.source})")
    if not compile_pays(steps, elements, layer_steps, settings, costs):
        return "eager", f"eager: the run is too short to repay compilation: {summary}"
    works, why = probe(device_type)
    if not works:
        return "eager", f"eager: {why}"
    return "compile", f"compile: {summary}"


class NeuronBackendChoice(Callback):
    """Chooses the kernels of the ``auto`` spiking layers after the first training batch (module docstring)."""

    def __init__(self) -> None:
        self.choice: str | None = None
        self.reason = ""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.choice = None
        for layer in self._auto_layers(pl_module):
            layer.chosen_backend = None  # eager until this run decides

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self.choice is not None:
            return
        layers = self._auto_layers(pl_module)
        if not layers:
            self.choice = "none"
            return
        steps = planned_batches(trainer, batch_idx + 1)
        self.choice, self.reason = choose_backend(layers, steps, pl_module.device.type)
        for layer in layers:
            layer.chosen_backend = self.choice
        if trainer.is_global_zero:
            rank_zero_info(f"neuron backend auto -> {self.reason}")
            self._record(trainer)

    def _record(self, trainer: L.Trainer) -> None:
        """The choice into the manifest; the HPARAMS table (:class:`spikegrad.hparams.HyperparameterTable`, written
        after the first epoch, so after this choice) reads :attr:`choice` itself."""
        from spikegrad.manifest import RunManifest

        for callback in trainer.callbacks:
            if isinstance(callback, RunManifest):
                callback.add("neuron_backend", {"choice": self.choice, "reason": self.reason})

    @staticmethod
    def _auto_layers(pl_module: L.LightningModule) -> list:
        return [layer for layer in spiking_layers(pl_module).values() if layer.backend == "auto"]
