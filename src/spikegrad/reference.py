"""Slow, obviously-correct LIF: a Python loop over time with autograd through every step.

It is the yardstick for the fused :func:`spikegrad.neurons.lif_multistep` (tests compare spikes and
gradients for every option) and the baseline in the benchmarks. The maths is DESIGN §2, written out
literally; the spike is a Heaviside whose backward is the surrogate derivative ``g(h - θ)``.
"""

from __future__ import annotations

import torch

from spikegrad.surrogates import Surrogate


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


def lif_reference(
    x: torch.Tensor,
    surrogate: Surrogate,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = True,
    decay_input: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step LIF over ``x`` of shape ``[T, ...]``; returns ``(spikes, h)`` stacked over time."""
    v = torch.zeros_like(x[0])
    spikes, potentials = [], []
    for t in range(x.shape[0]):
        if decay_input:
            h = v + (x[t] - v) / tau
        else:
            h = (1.0 - 1.0 / tau) * v + x[t]
        s = _Spike.apply(h - v_threshold, surrogate)
        s_reset = s.detach() if detach_reset else s
        if reset == "hard":
            v = h * (1.0 - s_reset)
        else:
            v = h - v_threshold * s_reset
        spikes.append(s)
        potentials.append(h)
    return torch.stack(spikes), torch.stack(potentials)
