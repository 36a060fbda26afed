"""Multi-step leaky integrate-and-fire (LIF) neuron with a fused forward/backward over time.

Notation (DESIGN §2). Input current ``x[t]``, ``t = 1..T``, state ``v[0] = 0``:

* charge  ``h[t] = λ·v[t-1] + κ·x[t]`` with ``λ = 1 - 1/τ`` and ``κ = 1/τ`` (``decay_input=True``, SpikingJelly's
  ``h = v + (x - v)/τ``) or ``κ = 1`` (``decay_input=False``, the leak form ``h = λ·v + x`` of the TET and
  Dspike code; ``λ = 0.5`` is ``τ = 2``, ``λ = 0.25`` is ``τ = 4/3``);
* fire    ``s[t] = H(h[t] - θ)``, ``H(0) = 1``;
* reset   hard ``v[t] = h[t]·(1 - s[t])`` or soft ``v[t] = h[t] - θ·s[t]``.

Backward, with ``∂s/∂h := g(h - θ)`` (masked for MSG, see :class:`spikegrad.surrogates.Surrogate`)::

    ∂L/∂h[t] = ∂L/∂s[t]·g[t] + ∂L/∂h_ext[t] + λ·∂L/∂h[t+1]·∂v[t]/∂h[t]
    ∂L/∂x[t] = κ·∂L/∂h[t]

with ``∂v/∂h = 1 - s`` (hard) or ``1`` (soft) when the reset's gradient is detached, and, when it is kept
(Yang, "Temporal surrogate back-propagation", arXiv 2011.09964), ``(1 - s) - h·g`` (hard) or ``1 - θ·g``
(soft). ``∂L/∂h_ext`` is the gradient of losses that read the potentials directly (e.g. PDA).

The whole sequence is one :class:`torch.autograd.Function`: forward saves only the potentials ``h`` (spikes
are recomputed as ``h >= θ``), and backward computes every per-element factor for all ``T`` steps in a few
vectorised kernels, leaving one fused multiply-add per step in the time recursion. The state starts at
zero on every call, so there is nothing to reset between batches. A step-by-step autograd reference
lives in :mod:`spikegrad.reference`; the tests prove the two equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from spikegrad import surrogates
from spikegrad.surrogates import Surrogate

__all__ = ["LIF", "NeuronSettings", "SurrogateSettings", "lif_multistep"]

RESETS = ("hard", "soft")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Membrane state is integrated in at least float32, also when the input is fp16/bf16 (autocast)."""
    return torch.promote_types(dtype, torch.float32)


class _LIFMultiStep(torch.autograd.Function):
    """Fused multi-step LIF; returns ``(spikes, potentials h)`` for time-first input ``[T, ...]``."""

    @staticmethod
    def forward(ctx, x, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder):
        cdtype = _compute_dtype(x.dtype)
        xs = x.to(cdtype)
        if input_scale != 1.0:
            xs = xs * input_scale
        T = xs.shape[0]
        h_seq = torch.empty_like(xs)
        spikes = torch.empty_like(xs)
        v = None
        for t in range(T):
            h = h_seq[t]
            if v is None:
                h.copy_(xs[t])
            else:
                torch.add(xs[t], v, alpha=decay, out=h)
            fired = h >= v_threshold
            spikes[t].copy_(fired)
            if t == T - 1:
                break
            if hard_reset:
                v = h.masked_fill(fired, 0.0)
            else:
                v = torch.add(h, spikes[t], alpha=-v_threshold)
        ctx.save_for_backward(h_seq)
        ctx.cfg = (decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder, x.dtype)
        ctx.set_materialize_grads(False)
        out = spikes if spikes.dtype == x.dtype else spikes.to(x.dtype)
        return out, h_seq

    @staticmethod
    def backward(ctx, grad_spikes, grad_h_ext):
        (h_seq,) = ctx.saved_tensors
        decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder, in_dtype = ctx.cfg
        if grad_spikes is None and grad_h_ext is None:
            return (None,) * 8
        # g = ∂s/∂h for all steps at once (in a fresh buffer the surrogate may overwrite).
        g = surrogate.grad_(h_seq - v_threshold)
        if surrogate.mask_p > 0.0:
            keep = torch.rand_like(g) >= surrogate.mask_p
            if surrogate.mask_rescale:
                g.mul_(1.0 / (1.0 - surrogate.mask_p))
            if surrogate.mask_fill != 0.0:
                g = torch.where(keep, g, surrogate.mask_fill)
            else:
                g.mul_(keep)
        if recorder is not None:
            recorder["surrogate_zero_fraction"] = (g == 0).float().mean().detach()
        T = h_seq.shape[0]
        # ∂v[t]/∂h[t]·λ for all steps (None means the constant λ, soft reset with detached spike).
        carry = None
        if T > 1 and decay != 0.0:
            if hard_reset:
                carry = (h_seq < v_threshold).to(g.dtype)
                if not detach_reset:
                    carry.addcmul_(h_seq, g, value=-1.0)
                carry.mul_(decay)
            elif not detach_reset:
                carry = torch.mul(g, -v_threshold * decay).add_(decay)
        # Local gradient a[t] = ∂L/∂s[t]·g[t] + ∂L/∂h_ext[t], computed in place in g.
        if grad_spikes is not None:
            grad_h = g.mul_(grad_spikes)
        else:
            grad_h = g.zero_()
        if grad_h_ext is not None:
            grad_h.add_(grad_h_ext)
        # Time recursion ∂L/∂h[t] += carry[t]·∂L/∂h[t+1], one fused op per step.
        if T > 1 and decay != 0.0:
            for t in range(T - 2, -1, -1):
                if carry is None:
                    grad_h[t].add_(grad_h[t + 1], alpha=decay)
                else:
                    grad_h[t].addcmul_(grad_h[t + 1], carry[t])
        if recorder is not None:
            recorder["grad_h_zero_fraction"] = (grad_h == 0).float().mean().detach()
        grad_x = grad_h.mul_(input_scale) if input_scale != 1.0 else grad_h
        return grad_x.to(in_dtype), None, None, None, None, None, None, None


def lif_multistep(
    x: torch.Tensor,
    surrogate: Surrogate,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = True,
    decay_input: bool = True,
    recorder: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional fused LIF over time-first ``x`` of shape ``[T, ...]``: returns ``(spikes, h)``.

    ``spikes`` has the dtype of ``x``; ``h`` (the pre-spike potentials) is float32 or float64 and carries
    gradient too, for regularisers that read it. ``recorder``, when a dict, receives the fraction of zero
    entries of the (masked) surrogate derivative and of ``∂L/∂h`` during backward.
    """
    decay = 1.0 - 1.0 / tau
    input_scale = 1.0 / tau if decay_input else 1.0
    return _LIFMultiStep.apply(
        x, decay, input_scale, float(v_threshold), reset == "hard", bool(detach_reset), surrogate, recorder
    )


@dataclass
class NeuronSettings:
    """LIF settings as they appear in configs (``model.neuron``); see :class:`LIF`."""

    tau: float = 2.0
    v_threshold: float = 1.0
    reset: Literal["hard", "soft"] = "hard"
    detach_reset: bool = True
    decay_input: bool = True


@dataclass
class SurrogateSettings:
    """Surrogate settings as they appear in configs (``model.surrogate``); see :mod:`spikegrad.surrogates`.

    ``alpha: null`` takes the shape's default; ``mask_*`` are the masked-surrogate-gradient (MSG) options.
    """

    name: str = "atan"
    alpha: float | None = None
    mask_p: float = 0.0
    mask_rescale: bool = False
    mask_fill: float = 0.0


class LIF(nn.Module):
    """Multi-step LIF layer on time-first input ``[T, B, ...]`` (see the module docstring for the maths).

    Args:
        tau: membrane time constant τ (> 1 for the charge form, >= 1 for the leak form).
        v_threshold: firing threshold θ > 0.
        reset: ``"hard"`` (to zero) or ``"soft"`` (subtract θ).
        detach_reset: drop the reset's gradient (``True``) or keep it (``False``, temporal surrogate BP).
        decay_input: charge form ``h = v + (x - v)/τ`` (``True``) or leak form ``h = (1 - 1/τ)·v + x``.
        surrogate: a :class:`~spikegrad.surrogates.Surrogate` or its name (Dspike's window is set to θ).
        surrogate_params: parameters for a surrogate given by name (``alpha``, ``mask_p``, ...).

    Recording switches for analysis and regularisers (cheap, off by default):
        ``record = True`` keeps the last call's spikes and potentials (detached) in ``self.recorded`` and the
        backward's zero fractions in ``self.backward_stats``; ``keep_potential = True`` keeps the last call's
        potentials *with* their graph in ``self.potential`` (for potential regularisers).
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        reset: str = "hard",
        detach_reset: bool = True,
        decay_input: bool = True,
        surrogate: str | Surrogate = "atan",
        surrogate_params: dict | None = None,
    ) -> None:
        super().__init__()
        validate_neuron(tau, v_threshold, reset, decay_input)
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.decay_input = bool(decay_input)
        self.surrogate = _build_surrogate(surrogate, surrogate_params or {}, self.v_threshold)
        self.record = False
        self.keep_potential = False
        self.recorded: dict[str, torch.Tensor] = {}
        self.backward_stats: dict[str, torch.Tensor] = {}
        self.potential: torch.Tensor | None = None

    @classmethod
    def from_settings(cls, neuron: NeuronSettings, surrogate: SurrogateSettings) -> LIF:
        params = {k: v for k, v in vars(surrogate).items() if k != "name"}
        return cls(**vars(neuron), surrogate=surrogate.name, surrogate_params=params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recorder = self.backward_stats if (self.record and torch.is_grad_enabled()) else None
        spikes, h = lif_multistep(
            x, self.surrogate, self.tau, self.v_threshold, self.reset, self.detach_reset, self.decay_input,
            recorder,
        )
        if self.record:
            self.recorded = {"spikes": spikes.detach(), "potential": h.detach()}
        self.potential = h if self.keep_potential else None
        return spikes

    # The surrogate (and any parameter a search changed) is part of the state dict and the checkpoint.
    def get_extra_state(self) -> dict:
        return {"surrogate": self.surrogate.config()}

    def set_extra_state(self, state: dict) -> None:
        config = dict(state["surrogate"])
        self.surrogate = surrogates.get(config.pop("name"), **config)

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, reset={self.reset!r}, "
            f"detach_reset={self.detach_reset}, decay_input={self.decay_input}, surrogate={self.surrogate}"
        )


def validate_neuron(tau: float, v_threshold: float, reset: str, decay_input: bool) -> None:
    """One-line errors for impossible neuron settings."""
    if reset not in RESETS:
        raise ValueError(f"neuron reset must be one of {', '.join(RESETS)}; got {reset!r}")
    if not (math.isfinite(v_threshold) and v_threshold > 0):
        raise ValueError(f"neuron v_threshold must be > 0, got {v_threshold!r}")
    if decay_input and not tau > 1:
        raise ValueError(f"neuron tau must be > 1 for the charge form (decay_input=true), got {tau!r}")
    if not decay_input and not tau >= 1:
        raise ValueError(f"neuron tau must be >= 1 (leak 1 - 1/tau in [0, 1)), got {tau!r}")


def _build_surrogate(surrogate: str | Surrogate, params: dict, v_threshold: float) -> Surrogate:
    if isinstance(surrogate, str) and surrogate.lower() == surrogates.DSpike.name:
        params = {"width": v_threshold, **params}
    return surrogates.get(surrogate, **params)
