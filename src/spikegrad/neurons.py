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

The whole sequence is one :class:`torch.autograd.Function`: forward saves only the potentials ``h`` (in the
compute dtype; spikes are recomputed as ``h >= θ``) and writes them in place, with one comparison and one fused
multiply-add per step; backward computes every per-element factor for all ``T`` steps in a few vectorised
kernels, leaving one fused multiply-add per step in the time recursion. Reset factors are float 0/1 tensors,
never boolean ones (boolean arithmetic is several times slower on CPU); MSG's dropped entries are ``+∞`` in the
shifted potentials ``h - θ`` the surrogate reads (:mod:`spikegrad.kernels.masks`). The state starts at zero
on every call, so there is nothing to reset between batches. ``backend="compile"`` swaps both passes for
``torch.compile``-generated kernels (:mod:`spikegrad.kernels`). A step-by-step autograd reference lives in
:mod:`spikegrad.reference`; the tests prove them equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from spikegrad import surrogates
from spikegrad.kernels import check_backend, compiled
from spikegrad.kernels.masks import BernoulliMask
from spikegrad.surrogates import Surrogate

__all__ = ["LIF", "NeuronSettings", "SurrogateSettings", "lif_multistep"]

RESETS = ("hard", "soft")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Membrane state is integrated in at least float32, also when the input is fp16/bf16 (autocast)."""
    return torch.promote_types(dtype, torch.float32)


class _LIFMultiStep(torch.autograd.Function):
    """Fused multi-step LIF; returns ``(spikes, potentials h)`` for time-first input ``[T, ...]``."""

    @staticmethod
    def forward(ctx, x, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder, backend):
        if backend == "compile":
            h_seq, spikes = compiled.lif_forward(x, decay, input_scale, v_threshold, hard_reset)
        else:
            h_seq, spikes = _forward_eager(x, decay, input_scale, v_threshold, hard_reset)
        ctx.save_for_backward(h_seq)
        ctx.cfg = (decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder, x.dtype, backend)
        ctx.set_materialize_grads(False)
        return spikes, h_seq

    @staticmethod
    def backward(ctx, grad_spikes, grad_h_ext):
        (h_seq,) = ctx.saved_tensors
        decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, recorder, in_dtype, backend = ctx.cfg
        if grad_spikes is None and grad_h_ext is None:
            return (None,) * 9
        if backend == "compile" and recorder is None:
            grad_x = compiled.lif_backward(
                h_seq, grad_spikes, grad_h_ext, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate,
                in_dtype,
            )
        else:
            grad_x = _backward_eager(
                h_seq, grad_spikes, grad_h_ext, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate,
                recorder,
            ).to(in_dtype)
        return grad_x, None, None, None, None, None, None, None, None


class _LIFSpikesCompiled(torch.autograd.Function):
    """Compiled LIF that returns only the spikes and saves only its input ``x``.

    Forward reads ``x`` once and writes the spikes once; backward recomputes ``h`` from ``x`` inside its fused
    kernel. This is the memory traffic of one elementwise activation. Used by :class:`LIF` with
    ``backend="compile"`` when neither ``record`` nor ``keep_potential`` asks for the potentials.
    """

    @staticmethod
    def forward(ctx, x, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate):
        ctx.save_for_backward(x)
        ctx.cfg = (decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate)
        return compiled.lif_spikes(x, decay, input_scale, v_threshold, hard_reset)

    @staticmethod
    def backward(ctx, grad_spikes):
        (x,) = ctx.saved_tensors
        decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate = ctx.cfg
        grad_x = compiled.lif_backward(
            x, grad_spikes, None, decay, input_scale, v_threshold, hard_reset, detach_reset, surrogate, x.dtype,
            from_input=True,
        )
        return grad_x, None, None, None, None, None, None


def _forward_eager(x, decay, input_scale, v_threshold, hard_reset):
    """Forward in place in the potentials buffer: ``h = κ·x`` for all steps, then ``h[t] += λ·v[t-1]`` per step.

    Per step one comparison into a reused float buffer and one fused multiply-add (hard reset:
    ``h[t] += λ·h[t-1]·1[h[t-1] < θ]``; soft: ``v = h[t-1] - θ·s[t-1]``, ``h[t] += λ·v``); the spikes of all
    steps come from one comparison at the end. No boolean tensors (slow on CPU), no per-step allocation.
    """
    h_seq = torch.empty_like(x, dtype=_compute_dtype(x.dtype))
    if input_scale != 1.0:
        torch.mul(x, input_scale, out=h_seq)
    else:
        h_seq.copy_(x)
    T = x.shape[0]
    if T > 1 and decay != 0.0:
        buf = torch.empty_like(h_seq[0])
        for t in range(1, T):
            prev = h_seq[t - 1]
            if hard_reset:
                torch.lt(prev, v_threshold, out=buf)
                h_seq[t].addcmul_(prev, buf, value=decay)
            else:
                torch.ge(prev, v_threshold, out=buf)
                torch.add(prev, buf, alpha=-v_threshold, out=buf)
                h_seq[t].add_(buf, alpha=decay)
    spikes = torch.ge(h_seq, v_threshold, out=torch.empty_like(x))
    return h_seq, spikes


def _backward_eager(h_seq, grad_spikes, grad_h_ext, decay, input_scale, v_threshold, hard_reset, detach_reset,
                    surrogate, recorder):
    """``∂L/∂x`` for all steps: per-element factors vectorised over T, then one fused multiply-add per step."""
    # g = ∂s/∂h for all steps at once, in a fresh buffer the surrogate overwrites. MSG: the buffer holds +∞ at
    # the dropped entries (g(+∞) = 0), written in the same pass as h - θ; see spikegrad.kernels.masks.
    p = surrogate.mask_p
    if p > 0.0:
        mask = BernoulliMask(h_seq, p)
        shifted = mask.shifted(h_seq, v_threshold)
        g = surrogate.grad_(shifted, 1.0 / (1.0 - p)) if surrogate.mask_rescale else surrogate.grad_(shifted)
        if surrogate.mask_fill != 0.0:
            mask.fill_(g, surrogate.mask_fill)
    else:
        g = surrogate.grad_(torch.sub(h_seq, v_threshold))
    if recorder is not None:
        recorder["surrogate_zero_fraction"] = (g == 0).float().mean().detach()
    T = h_seq.shape[0]
    recursion = T > 1 and decay != 0.0
    # ∂v[t]/∂h[t] for all steps where it needs g (kept reset gradient); None: computed per step or constant 1.
    carry = None
    if recursion and not detach_reset:
        if hard_reset:
            carry = torch.lt(h_seq, v_threshold, out=torch.empty_like(g))
            carry.addcmul_(h_seq, g, value=-1.0)
        else:
            carry = torch.mul(g, -v_threshold).add_(1.0)
    # Local gradient a[t] = ∂L/∂s[t]·g[t] + ∂L/∂h_ext[t], computed in place in g.
    if grad_spikes is not None:
        grad_h = g.mul_(grad_spikes)
    else:
        grad_h = g.zero_()
    if grad_h_ext is not None:
        grad_h.add_(grad_h_ext)
    # Time recursion ∂L/∂h[t] += λ·∂v[t]/∂h[t]·∂L/∂h[t+1], one fused op per step.
    if recursion:
        buf = torch.empty_like(grad_h[0]) if (carry is None and hard_reset) else None
        for t in range(T - 2, -1, -1):
            if carry is not None:
                grad_h[t].addcmul_(grad_h[t + 1], carry[t], value=decay)
            elif hard_reset:
                torch.lt(h_seq[t], v_threshold, out=buf)
                grad_h[t].addcmul_(grad_h[t + 1], buf, value=decay)
            else:
                grad_h[t].add_(grad_h[t + 1], alpha=decay)
    if recorder is not None:
        recorder["grad_h_zero_fraction"] = (grad_h == 0).float().mean().detach()
    return grad_h.mul_(input_scale) if input_scale != 1.0 else grad_h


def lif_multistep(
    x: torch.Tensor,
    surrogate: Surrogate,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = True,
    decay_input: bool = True,
    recorder: dict | None = None,
    backend: str = "eager",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional fused LIF over time-first ``x`` of shape ``[T, ...]``: returns ``(spikes, h)``.

    ``spikes`` has the dtype of ``x``; ``h`` (the pre-spike potentials) is float32 or float64 and carries
    gradient too, for regularisers that read it. ``recorder``, when a dict, receives the fraction of zero
    entries of the (masked) surrogate derivative and of ``∂L/∂h`` during backward. ``backend`` is ``"eager"``
    or ``"compile"`` (see :mod:`spikegrad.kernels`).
    """
    check_backend(backend)
    decay = 1.0 - 1.0 / tau
    input_scale = 1.0 / tau if decay_input else 1.0
    return _LIFMultiStep.apply(
        x, decay, input_scale, float(v_threshold), reset == "hard", bool(detach_reset), surrogate, recorder, backend
    )


@dataclass
class NeuronSettings:
    """LIF settings as they appear in configs (``model.neuron``); see :class:`LIF`."""

    tau: float = 2.0
    v_threshold: float = 1.0
    reset: Literal["hard", "soft"] = "hard"
    detach_reset: bool = True
    decay_input: bool = True
    backend: Literal["eager", "compile"] = "eager"


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
        backend: ``"eager"`` (default) or ``"compile"`` (``torch.compile``-generated kernels), see
            :mod:`spikegrad.kernels`; the maths is the same.

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
        backend: str = "eager",
    ) -> None:
        super().__init__()
        validate_neuron(tau, v_threshold, reset, decay_input)
        self.backend = check_backend(backend)
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
        if self.backend == "compile" and not (self.record or self.keep_potential):
            self.potential = None
            return _LIFSpikesCompiled.apply(
                x, 1.0 - 1.0 / self.tau, 1.0 / self.tau if self.decay_input else 1.0, self.v_threshold,
                self.reset == "hard", self.detach_reset, self.surrogate,
            )
        recorder = self.backward_stats if (self.record and torch.is_grad_enabled()) else None
        spikes, h = lif_multistep(
            x, self.surrogate, self.tau, self.v_threshold, self.reset, self.detach_reset, self.decay_input,
            recorder, self.backend,
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
            + (f", backend={self.backend!r}" if self.backend != "eager" else "")
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
