"""Slow, obviously-correct neurons: a Python loop over time with autograd through every step.

They are the yardstick for the fused kernels (:mod:`spikegrad.kernels`): tests compare spikes, potentials and
the gradients of the input *and* of learnable parameters (λ, κ, θ as tensors, and through them PLIF's ``w``),
for every option, and the benchmarks use them as a baseline. The maths is the family's recursion
(docs/design.md, "The neuron family") written out literally; the spike is a Heaviside whose backward is the
surrogate derivative ``g(h - θ)``.
"""

from __future__ import annotations

import torch

from spikegrad.neurons.base import SpikingNeuron
from spikegrad.surrogates import Surrogate

__all__ = ["lif_reference", "neuron_reference", "reference_forward"]


class _Spike(torch.autograd.Function):
    """``s = H(x)`` with ``H(0) = 1``; backward ``∂s/∂x = g(x)``."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


def neuron_reference(
    x: torch.Tensor,
    surrogate: Surrogate,
    decay: float | torch.Tensor,
    input_scale: float | torch.Tensor,
    v_threshold: float | torch.Tensor = 1.0,
    reset: str = "hard",
    detach_reset: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step by step over ``x`` ``[T, ...]``: ``h = λ·v + κ·x``, fire, reset; returns ``(spikes, h)`` over time."""
    v = torch.zeros_like(x[0])
    spikes, potentials = [], []
    for t in range(x.shape[0]):
        h = decay * v + input_scale * x[t]
        s = _Spike.apply(h - v_threshold, surrogate)
        s_reset = s.detach() if detach_reset else s
        if reset == "hard":
            v = h * (1.0 - s_reset)
        else:
            v = h - v_threshold * s_reset
        spikes.append(s)
        potentials.append(h)
    return torch.stack(spikes), torch.stack(potentials)


def lif_reference(
    x: torch.Tensor,
    surrogate: Surrogate,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = True,
    decay_input: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step LIF, written in its own form: ``h = v + (x - v)/τ`` or ``h = (1 - 1/τ)·v + x``."""
    v = torch.zeros_like(x[0])
    spikes, potentials = [], []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau if decay_input else (1.0 - 1.0 / tau) * v + x[t]
        s = _Spike.apply(h - v_threshold, surrogate)
        s_reset = s.detach() if detach_reset else s
        v = h * (1.0 - s_reset) if reset == "hard" else h - v_threshold * s_reset
        spikes.append(s)
        potentials.append(h)
    return torch.stack(spikes), torch.stack(potentials)


def reference_forward(neuron: SpikingNeuron, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's settings and parameters run through :func:`neuron_reference` (autograd reaches its parameters)."""
    decay, input_scale = neuron.coefficients()
    return neuron_reference(x, neuron.surrogate, decay, input_scale, neuron.v_threshold, neuron.reset,
                            neuron.detach_reset)
