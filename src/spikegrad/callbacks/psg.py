"""Parametric surrogate gradient (PSG): per-layer surrogate parameters calibrated by a look-ahead search.

Reconstruction, not the published method: PSG (Wang, Cheng, Lim, arXiv 2304.13289) is available to us only
through the paper's abstract ("PSG iteratively updates the SG and eventually determines an optimal
surrogate-gradient parameter, which calibrates the shape of candidate SGs"). We build it as follows
(DESIGN §4):

* every spiking layer ``l`` owns its surrogate and its parameter ``α_l`` (``lif.surrogate.alpha``);
* every ``every_n_epochs`` epochs, on the epoch's first training batch (split into halves A and B), the
  layers are calibrated one after the other: for each candidate ``c ∈ {α_l/κ, α_l, κ·α_l}`` of the layer's
  shape (plus, when ``shapes`` is given, each other listed shape at its default parameter), take a virtual
  step ``θ' = θ - η·∇_θ L_A(θ; c) / rms(∇_θ L_A)`` (per parameter tensor: an update of root-mean-square size
  ``η``, the scale of an Adam step) and keep the candidate with the lowest ``L_B(θ')``; ties keep the current;
* ``η`` is the optimiser's learning rate unless ``step_size`` is given.

Cost of a calibration: ``n_layers · n_candidates`` forward/backward passes on half a batch plus as many
forward passes on the other half. The probes run under :func:`spikegrad.callbacks.probing.isolated_probe`
(parameters, BatchNorm statistics, RNG, ``.grad`` unchanged afterwards), every evaluation with the same seed.
Under data parallelism each process probes its own batch and the candidate losses are averaged across
processes, so all make the same choice.
The per-layer trajectory is logged as ``psg/alpha/<layer>`` (and ``psg/shape/<layer>``, the index in
``shapes``) and kept in ``history``; the surrogates themselves are checkpointed by the layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from spikegrad import surrogates
from spikegrad.callbacks.probing import isolated_probe, lif_layers, seeded
from spikegrad.neurons import LIF

__all__ = ["ParametricSurrogate", "lookahead_loss", "surrogate_with"]


def surrogate_with(lif: LIF, name: str, alpha: float) -> surrogates.Surrogate:
    """The layer's surrogate with another shape and/or parameter (MSG settings kept; Dspike width = θ)."""
    config = lif.surrogate.config()
    config.pop("name")
    config.pop("width", None)
    config["alpha"] = alpha
    if name == surrogates.DSpike.name:
        config["width"] = lif.v_threshold
    return surrogates.get(name, **config)


def lookahead_loss(
    model: nn.Module,
    loss_a: Callable[[], torch.Tensor],
    loss_b: Callable[[], torch.Tensor],
    step_size: float,
) -> float:
    """``L_B(θ - η·g/rms(g))`` with ``g = ∇_θ L_A(θ)`` per parameter tensor; the parameters are restored exactly."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        grads = torch.autograd.grad(loss_a(), params, allow_unused=True)
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    rms = g.square().mean().sqrt()
                    if rms > 0:
                        p.sub_(g, alpha=step_size / float(rms))
            return float(loss_b())
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


class ParametricSurrogate(Callback):
    """Calibrates each spiking layer's surrogate parameter (and optionally shape) by look-ahead search.

    Args:
        kappa: multiplicative step κ > 1 of the candidates ``α·{1/κ, 1, κ}``.
        every_n_epochs: calibrate at the start of every N-th epoch (epoch 0 included).
        step_size: η of the virtual step; ``None`` takes the optimiser's learning rate.
        shapes: optional candidate shapes (names from :data:`spikegrad.surrogates.SURROGATES`), each tried at
            its default parameter besides the layer's current shape.
        alpha_min: smallest parameter allowed.
        alpha_max: largest parameter allowed.
        seed: seed of the probe passes (the training RNG is not used).
    """

    def __init__(
        self,
        kappa: float = 1.5,
        every_n_epochs: int = 1,
        step_size: float | None = None,
        shapes: Sequence[str] | None = None,
        alpha_min: float = 0.05,
        alpha_max: float = 50.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not kappa > 1:
            raise ValueError(f"ParametricSurrogate kappa must be > 1, got {kappa}")
        if every_n_epochs < 1:
            raise ValueError(f"ParametricSurrogate every_n_epochs must be >= 1, got {every_n_epochs}")
        if step_size is not None and not step_size > 0:
            raise ValueError(f"ParametricSurrogate step_size must be > 0, got {step_size}")
        if not 0 < alpha_min < alpha_max:
            raise ValueError(f"ParametricSurrogate needs 0 < alpha_min < alpha_max, got {alpha_min}, {alpha_max}")
        for name in shapes or ():
            if name not in surrogates.SURROGATES:
                raise ValueError(
                    f"ParametricSurrogate shape {name!r} unknown; valid choices: {', '.join(surrogates.SURROGATES)}"
                )
        self.kappa = float(kappa)
        self.every_n_epochs = int(every_n_epochs)
        self.step_size = step_size
        self.shapes = list(shapes or [])
        self.alpha_min = float(alpha_min)
        self.alpha_max = float(alpha_max)
        self.seed = int(seed)
        self.history: list[dict[str, tuple[str, float]]] = []
        self.last_losses: dict[str, dict[str, float]] = {}

    def candidates(self, lif: LIF) -> list[tuple[str, float]]:
        """``(shape, α)`` pairs: the current one first, then ``α/κ``, ``κ·α``, then the other listed shapes."""
        name, alpha = lif.surrogate.name, float(lif.surrogate.alpha)
        found = [(name, alpha)]
        for a in (alpha / self.kappa, alpha * self.kappa):
            a = min(max(a, self.alpha_min), self.alpha_max)
            if (name, a) not in found:
                found.append((name, a))
        for other in self.shapes:
            if other != name:
                found.append((other, float(surrogates.SURROGATES[other].default_alpha)))
        return found

    def calibrate(
        self,
        model: nn.Module,
        loss_a: Callable[[], torch.Tensor],
        loss_b: Callable[[], torch.Tensor],
        step_size: float,
        search_index: int = 0,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[str, tuple[str, float]]:
        """One pass over the layers (in forward order); returns and applies ``{layer: (shape, α)}``.

        ``reduce`` (e.g. the mean over data-parallel processes) is applied to each layer's candidate losses
        before the choice, so that every process makes the same one.
        """
        chosen: dict[str, tuple[str, float]] = {}
        self.last_losses = {}
        probe_a = seeded(loss_a, self.seed + search_index)
        probe_b = seeded(loss_b, self.seed + search_index + 1)
        for layer, lif in lif_layers(model).items():
            current = lif.surrogate
            losses: dict[tuple[str, float], float] = {}
            try:
                with isolated_probe(model):
                    for shape, alpha in self.candidates(lif):
                        lif.surrogate = surrogate_with(lif, shape, alpha) if (shape, alpha) != (
                            current.name, current.alpha) else current
                        losses[(shape, alpha)] = lookahead_loss(model, probe_a, probe_b, step_size)
                        lif.surrogate = current
            finally:
                lif.surrogate = current
            if reduce is not None:
                device = next(model.parameters()).device
                values = reduce(torch.tensor(list(losses.values()), dtype=torch.float64, device=device))
                losses = dict(zip(losses, values.cpu().tolist(), strict=True))
            best = min(losses, key=losses.get)  # dicts keep order: the current candidate wins ties
            if best != (current.name, current.alpha):
                lif.surrogate = surrogate_with(lif, *best)
            chosen[layer] = (lif.surrogate.name, float(lif.surrogate.alpha))
            self.last_losses[layer] = {f"{s}:{a:.4g}": v for (s, a), v in losses.items()}
        self.history.append(chosen)
        return chosen

    # --- Lightning hooks -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not hasattr(pl_module, "task_loss"):
            raise ValueError("ParametricSurrogate needs a module with task_loss(batch) (SpikingClassifier)")
        if not lif_layers(pl_module):
            raise ValueError("ParametricSurrogate: the model has no spiking layers")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        epoch = trainer.current_epoch
        if batch_idx != 0 or epoch % self.every_n_epochs != 0:
            return
        x, y = batch
        if len(y) < 2:
            raise ValueError("ParametricSurrogate needs a training batch_size >= 2 (it splits a batch in two)")
        half = len(y) // 2
        batch_a, batch_b = (x[:half], y[:half]), (x[half:], y[half:])
        step_size = self.step_size or float(trainer.optimizers[0].param_groups[0]["lr"])
        chosen = self.calibrate(
            pl_module, lambda: pl_module.task_loss(batch_a), lambda: pl_module.task_loss(batch_b), step_size,
            search_index=2 * epoch, reduce=None if trainer.world_size <= 1 else (
                lambda t: trainer.strategy.reduce(t, reduce_op="mean")),
        )
        for layer, (shape, alpha) in chosen.items():
            pl_module.log(f"psg/alpha/{layer}", alpha, on_step=False, on_epoch=True)
            if self.shapes:
                index = self.shapes.index(shape) if shape in self.shapes else -1
                pl_module.log(f"psg/shape/{layer}", float(index), on_step=False, on_epoch=True)

    def state_dict(self) -> dict:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]
