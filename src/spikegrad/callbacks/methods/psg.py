"""Parametric surrogate gradient (PSG): per-layer surrogate parameters calibrated by a look-ahead search.

Reconstruction, not the published method: PSG (Wang, Cheng, Lim, arXiv 2304.13289) is available to us only
through the paper's abstract ("PSG iteratively updates the SG and eventually determines an optimal
surrogate-gradient parameter, which calibrates the shape of candidate SGs"). We build it as follows
(docs/methods.md):

* every spiking layer ``l`` owns its surrogate and its parameter ``α_l`` (``layer.surrogate.alpha``);
* every ``every_n_epochs`` epochs, on the epoch's first training batch (split into halves A and B), the
  layers are calibrated one after the other: for each candidate ``c ∈ {α_l/κ, α_l, κ·α_l}`` of the layer's
  shape (plus, when ``shapes`` is given, each other listed shape with its listed parameter), take a virtual
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

from spikegrad.callbacks.methods.probing import isolated_probe, seeded
from spikegrad.layer_names import readable_layer_names
from spikegrad.neurons import spiking_layers
from spikegrad.surrogates import Surrogate

__all__ = ["ParametricSurrogate", "lookahead_loss", "surrogate_with"]


def surrogate_with(current: Surrogate, shape: Surrogate, alpha: float) -> Surrogate:
    """``shape`` with parameter ``alpha`` and the masking (MSG) settings of ``current``."""
    masking = {k: getattr(current, k) for k in ("mask_p", "mask_rescale", "mask_fill")}
    return shape.replace(alpha=alpha, **masking)


def _label(surrogate: Surrogate) -> str:
    return f"{type(surrogate).__name__}:{surrogate.alpha:.4g}"


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
        shapes: optional candidate shapes (surrogates, e.g. ``[ATan, Triangle, Sigmoid]``), each tried with its
            own parameter besides the layer's current shape.
        alpha_min: smallest parameter allowed.
        alpha_max: largest parameter allowed.
        seed: seed of the probe passes (the training RNG is not used).

    Logged after every calibration: ``psg/alpha/<layer>`` (and ``psg/shape/<layer>``, the index in ``shapes``,
    -1 for another shape).
    """

    def __init__(
        self,
        kappa: float = 1.5,
        every_n_epochs: int = 1,
        step_size: float | None = None,
        shapes: Sequence[Surrogate] | None = None,
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
        for shape in shapes or ():
            if not isinstance(shape, Surrogate):
                raise ValueError(f"ParametricSurrogate shapes must be surrogates (e.g. ATan, Triangle), got {shape!r}")
        self.kappa = float(kappa)
        self.every_n_epochs = int(every_n_epochs)
        self.step_size = step_size
        self.shapes = list(shapes or [])
        self.alpha_min = float(alpha_min)
        self.alpha_max = float(alpha_max)
        self.seed = int(seed)
        self.history: list[dict[str, tuple[str, float]]] = []
        self.last_losses: dict[str, dict[str, float]] = {}

    def candidates(self, current: Surrogate) -> list[Surrogate]:
        """The current surrogate first, then its parameter ``α/κ`` and ``κ·α``, then the other listed shapes."""
        alpha = float(current.alpha)
        found = [current]
        for a in (alpha / self.kappa, alpha * self.kappa):
            candidate = current.replace(alpha=min(max(a, self.alpha_min), self.alpha_max))
            if candidate not in found:
                found.append(candidate)
        for shape in self.shapes:
            if type(shape) is not type(current):
                found.append(surrogate_with(current, shape, shape.alpha))
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
        for name, layer in spiking_layers(model).items():
            current = layer.surrogate
            candidates = self.candidates(current)
            losses: list[float] = []
            try:
                with isolated_probe(model):
                    for candidate in candidates:
                        layer.surrogate = candidate
                        losses.append(lookahead_loss(model, probe_a, probe_b, step_size))
            finally:
                layer.surrogate = current
            if reduce is not None:
                device = next(model.parameters()).device
                losses = reduce(torch.tensor(losses, dtype=torch.float64, device=device)).cpu().tolist()
            best = min(range(len(losses)), key=losses.__getitem__)  # the first (current) candidate wins ties
            layer.surrogate = candidates[best]
            chosen[name] = (type(layer.surrogate).__name__, float(layer.surrogate.alpha))
            self.last_losses[name] = {_label(c): v for c, v in zip(candidates, losses, strict=True)}
        self.history.append(chosen)
        return chosen

    # --- Lightning hooks -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not hasattr(pl_module, "task_loss"):
            raise ValueError("ParametricSurrogate needs a module with task_loss(batch) (SpikingClassifier)")
        if not spiking_layers(pl_module):
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
        names = [type(shape).__name__ for shape in self.shapes]
        readable = readable_layer_names(pl_module)
        for path, (shape, alpha) in chosen.items():
            layer = readable.get(path, path)
            pl_module.log(f"psg/alpha/{layer}", alpha, on_step=False, on_epoch=True)
            if self.shapes:
                index = names.index(shape) if shape in names else -1
                pl_module.log(f"psg/shape/{layer}", float(index), on_step=False, on_epoch=True)

    def state_dict(self) -> dict:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]
