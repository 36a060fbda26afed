"""Dspike temperature search by finite-difference gradients (Li, Guo, Zhang, Deng, Hai, Gu, "Differentiable
Spike: Rethinking Gradient-Descent for Training Spiking Neural Networks", NeurIPS 2021, Algorithm 1).

Every ``every_n_epochs`` epochs, on the epoch's first training batch and before the optimiser step on it:

1. the finite-difference gradient (FDG) of the task loss w.r.t. the first layer's weights, with the true
   (Heaviside) spiking forward, on ``num_coordinates`` coordinates ``i`` drawn at random (own generator):
   ``FDG_i = [L(w + ε·e_i) - L(w - ε·e_i)] / 2ε``;
2. the surrogate gradient of the same coordinates under Dspike temperatures ``b' ∈ {b - Δb, b, b + Δb}``
   (all spiking layers use ``b'``);
3. ``b <- argmax_b' cos(FDG, SG_b')`` (ties keep the current ``b``); the epoch trains with it.

ε, Δb, b0 and the sampling of coordinates are not given in the paper's text: they are settings here. Cost of a
search: ``2·num_coordinates`` forward passes plus 3 forward/backward passes on one batch. Every evaluation
runs under :func:`spikegrad.callbacks.probing.isolated_probe` with the same seed: BatchNorm uses batch
statistics as in training but its running statistics are restored, the RNG state is restored, ``.grad`` is
never touched, and MSG masking is switched off while the surrogate gradients are compared (the mask is the
same noise for every candidate and is not part of the search).

:class:`FixedTemperatureProbe` measures the same cosine for the current temperature alone and never changes it:
the control runs of a fixed-``b`` comparison log ``dspike/cosine/b`` exactly like the searched ones.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from spikegrad.callbacks.methods.probing import first_weight, isolated_probe, seeded
from spikegrad.neurons import spiking_layers
from spikegrad.surrogates import DSpike

__all__ = [
    "DspikeTemperatureSearch",
    "FixedTemperatureProbe",
    "finite_difference_gradient",
    "surrogate_gradient",
    "set_temperature",
]

CANDIDATE_NAMES = ("b", "b-db", "b+db")


@torch.no_grad()
def finite_difference_gradient(
    loss_fn: Callable[[], torch.Tensor], weight: torch.Tensor, coordinates: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """``[L(w + ε·e_i) - L(w - ε·e_i)] / 2ε`` for each flat index ``i`` in ``coordinates`` (``w`` restored)."""
    grads = torch.empty(len(coordinates), dtype=torch.float64)
    for j, flat_index in enumerate(coordinates.tolist()):
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(flat_index), weight.shape))
        original = weight.data[index].clone()
        weight.data[index] = original + epsilon
        loss_plus = float(loss_fn())
        weight.data[index] = original - epsilon
        loss_minus = float(loss_fn())
        weight.data[index] = original
        grads[j] = (loss_plus - loss_minus) / (2 * epsilon)
    return grads


def surrogate_gradient(
    loss_fn: Callable[[], torch.Tensor], weight: torch.Tensor, coordinates: torch.Tensor
) -> torch.Tensor:
    """``∂L/∂w`` at the flat indices ``coordinates`` through the surrogate backward (``.grad`` untouched)."""
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss_fn(), weight)
    return grad.detach().flatten()[coordinates].double()


def set_temperature(model: nn.Module, b: float, mask_off: bool = False) -> None:
    """Give every spiking layer a Dspike surrogate with temperature ``b`` (other settings kept)."""
    for name, layer in spiking_layers(model).items():
        if not isinstance(layer.surrogate, DSpike):
            raise ValueError(f"Dspike temperature search needs surrogate DSpike in every layer; {name!r} has "
                             f"{type(layer.surrogate).__name__}")
        changes = {"alpha": b, "mask_p": 0.0} if mask_off else {"alpha": b}
        layer.surrogate = layer.surrogate.replace(**changes)


def _mean_over(trainer: L.Trainer) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The mean over data-parallel processes (``None`` on a single process)."""
    if trainer.world_size <= 1:
        return None
    return lambda t: trainer.strategy.reduce(t, reduce_op="mean")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.unsqueeze(0), b.unsqueeze(0), eps=1e-30))


class DspikeTemperatureSearch(Callback):
    """Chooses the Dspike temperature ``b`` by cosine similarity to finite-difference gradients (Algorithm 1).

    Args:
        b0: initial temperature; ``None`` keeps the model's configured ``surrogate`` ``alpha``.
        delta_b: step Δb of the candidates ``{b - Δb, b, b + Δb}``.
        epsilon: finite-difference step ε on a weight.
        num_coordinates: how many first-layer weight coordinates are sampled for the FDG each search.
        every_n_epochs: search at the start of every N-th epoch (epoch 0 included).
        b_min: smallest temperature allowed (``b - Δb`` is clipped to it).
        b_max: largest temperature allowed.
        weight: the probed parameter's name; ``None`` takes the first weight with ``ndim >= 2`` (first layer).
        seed: seed of the coordinate sampling and of the probe passes (the training RNG is not used).

    Public state: ``b`` (current temperature), ``last_similarities`` (``{"b", "b-db", "b+db"} -> cosine``),
    ``history`` (one dict per search). Logged: ``dspike/b``, ``dspike/cosine/<candidate>``.
    """

    def __init__(
        self,
        b0: float | None = None,
        delta_b: float = 0.5,
        epsilon: float = 0.05,
        num_coordinates: int = 64,
        every_n_epochs: int = 1,
        b_min: float = 0.1,
        b_max: float = 20.0,
        weight: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if b0 is not None and not b0 > 0:
            raise ValueError(f"DspikeTemperatureSearch b0 must be > 0, got {b0}")
        if not delta_b > 0 or not epsilon > 0:
            raise ValueError(f"DspikeTemperatureSearch delta_b and epsilon must be > 0, got {delta_b}, {epsilon}")
        if num_coordinates < 1 or every_n_epochs < 1:
            raise ValueError("DspikeTemperatureSearch num_coordinates and every_n_epochs must be >= 1")
        if not 0 < b_min < b_max:
            raise ValueError(f"DspikeTemperatureSearch needs 0 < b_min < b_max, got {b_min}, {b_max}")
        self.b0 = b0
        self.delta_b = float(delta_b)
        self.epsilon = float(epsilon)
        self.num_coordinates = int(num_coordinates)
        self.every_n_epochs = int(every_n_epochs)
        self.b_min = float(b_min)
        self.b_max = float(b_max)
        self.weight = weight
        self.seed = int(seed)
        self.b: float | None = None
        self.last_similarities: dict[str, float] = {}
        self.history: list[dict] = []

    # --- the algorithm ---------------------------------------------------------------------------------
    def candidates(self) -> dict[str, float]:
        """``{"b": b, "b-db": max(b - Δb, b_min), "b+db": min(b + Δb, b_max)}``."""
        b = float(self.b)
        return {
            "b": b,
            "b-db": max(b - self.delta_b, self.b_min),
            "b+db": min(b + self.delta_b, self.b_max),
        }

    def search(
        self,
        model: nn.Module,
        loss_fn: Callable[[], torch.Tensor],
        search_index: int = 0,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> float:
        """One search on ``model`` with the closure ``loss_fn`` (the loss on one fixed batch); returns new ``b``.

        ``reduce`` (e.g. the mean over data-parallel processes) is applied to the three similarities before the
        choice, so that every process keeps the same ``b``.
        """
        if self.b is None:
            self.b = self._model_temperature(model)
        _, weight = first_weight(model, self.weight)
        generator = torch.Generator().manual_seed(self.seed + search_index)
        count = min(self.num_coordinates, weight.numel())
        coordinates = torch.randperm(weight.numel(), generator=generator)[:count]
        originals = {name: layer.surrogate for name, layer in spiking_layers(model).items()}
        probe = seeded(loss_fn, self.seed + search_index)
        try:
            with isolated_probe(model):
                fdg = finite_difference_gradient(probe, weight, coordinates, self.epsilon)
                similarities = {}
                for label, b in self.candidates().items():
                    set_temperature(model, b, mask_off=True)
                    similarities[label] = _cosine(fdg, surrogate_gradient(probe, weight, coordinates))
        finally:
            for name, layer in spiking_layers(model).items():
                layer.surrogate = originals[name]
        if reduce is not None:
            values = reduce(torch.tensor(list(similarities.values()), dtype=torch.float64, device=weight.device))
            similarities = dict(zip(similarities, values.cpu().tolist(), strict=True))
        best = max(similarities, key=lambda k: (similarities[k], k == "b"))  # ties keep the current b
        self.b = self.candidates()[best]
        set_temperature(model, self.b)
        self.last_similarities = similarities
        self.history.append(
            {"temperature": self.b, "chosen": best, "similarities": similarities, "fdg_norm": float(fdg.norm())}
        )
        return self.b

    def _model_temperature(self, model: nn.Module) -> float:
        layers = spiking_layers(model)
        if not layers:
            raise ValueError("DspikeTemperatureSearch: the model has no spiking layers")
        first = next(iter(layers.values()))
        set_temperature(model, first.surrogate.alpha)  # validates that every layer uses dspike
        return float(first.surrogate.alpha)

    # --- Lightning hooks -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not hasattr(pl_module, "task_loss"):
            raise ValueError("DspikeTemperatureSearch needs a module with task_loss(batch) (SpikingClassifier)")
        if self.b is None and self.b0 is not None:  # not resumed from a checkpoint: start from b0
            set_temperature(pl_module, float(self.b0))
        self.b = self._model_temperature(pl_module) if self.b is None else self.b
        set_temperature(pl_module, self.b)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        epoch = trainer.current_epoch
        if batch_idx != 0 or epoch % self.every_n_epochs != 0:
            return
        self.search(pl_module, lambda: pl_module.task_loss(batch), search_index=epoch, reduce=_mean_over(trainer))
        pl_module.log("dspike/b", self.b, on_step=False, on_epoch=True)
        for label, value in self.last_similarities.items():
            pl_module.log(f"dspike/cosine/{label}", value, on_step=False, on_epoch=True)

    def state_dict(self) -> dict:
        return {"b": self.b, "history": list(self.history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.b = state_dict.get("b")
        self.history = list(state_dict.get("history", []))


class FixedTemperatureProbe(DspikeTemperatureSearch):
    """Measures the cosine between the finite-difference and the Dspike surrogate gradient at the current, fixed
    temperature (the search with the single candidate ``b``, so ``b`` never changes); logs ``dspike/cosine/b``
    like :class:`DspikeTemperatureSearch` and takes the same settings."""

    def candidates(self) -> dict[str, float]:
        return {"b": float(self.b)}
