"""The state of the training methods of DESIGN §4, logged once per training epoch from wherever it lives.

Reads only what is present, so it works with any combination of methods:

* ``method/two_weights/t<k>``: the temporally weighted output's per-step weights ``f_k`` (TWO, Li et al.,
  Neural Networks 2024), from the buffer ``weights`` of ``pl_module.decoder`` when it has one;
* ``method/surrogate_alpha/<layer>``: each spiking layer's surrogate parameter (``b`` for Dspike, the
  per-layer parameter that the parametric surrogate gradient calibrates), and the text
  ``method/surrogate`` (each layer's shape and parameter) whenever it changes;
* ``method/dspike_b`` and ``method/fdg_cosine/<candidate>``: the temperature and the last cosine
  similarities between the finite-difference and the surrogate gradient of the Dspike temperature search
  (Li et al., NeurIPS 2021), from any callback with the attributes ``b`` and ``last_similarities``.

The state is the same on every process, so it is logged from global rank zero without a reduction.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from spikegrad.callbacks.sampling import epoch_end_step, log_scalars, spiking_layers, tensorboard_writers

__all__ = ["MethodStateMonitor"]


class MethodStateMonitor(Callback):
    """Logs TWO weights, per-layer surrogate parameters and the Dspike search state at each epoch end."""

    def __init__(self) -> None:
        super().__init__()
        self._last_text: str | None = None

    def state(self, trainer, pl_module) -> dict[str, float]:
        """The method state as flat ``tag -> number`` pairs."""
        metrics: dict[str, float] = {}
        weights = getattr(getattr(pl_module, "decoder", None), "weights", None)
        if isinstance(weights, torch.Tensor):
            for k, value in enumerate(weights.detach().flatten().cpu().tolist(), start=1):
                metrics[f"method/two_weights/t{k}"] = float(value)
        for name, lif in spiking_layers(pl_module).items():
            metrics[f"method/surrogate_alpha/{name}"] = float(lif.surrogate.alpha)
        for callback in trainer.callbacks:
            if hasattr(callback, "b") and hasattr(callback, "last_similarities"):
                if callback.b is not None:  # None until the search has run or read the model's temperature
                    metrics["method/dspike_b"] = float(callback.b)
                for candidate, similarity in dict(callback.last_similarities or {}).items():
                    metrics[f"method/fdg_cosine/{candidate}"] = float(similarity)
        return metrics

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        log_scalars(trainer, self.state(trainer, pl_module), epoch_end_step(trainer))
        text = "  \n".join(
            f"`{name}`: {lif.surrogate!r}" for name, lif in spiking_layers(pl_module).items()
        )
        if text and text != self._last_text:
            self._last_text = text
            for writer in tensorboard_writers(trainer):
                writer.add_text("method/surrogate", text, global_step=epoch_end_step(trainer))
