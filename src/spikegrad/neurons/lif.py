"""Leaky integrate-and-fire (LIF) with a fixed membrane time constant τ.

Charge, in the family's recursion (:mod:`spikegrad.neurons.base`), ``λ = 1 - 1/τ`` and

* ``κ = 1/τ`` (``decay_input: true``, SpikingJelly's ``h = v + (x - v)/τ``, the MSG code's form), or
* ``κ = 1`` (``decay_input: false``, the leak form ``h = λ·v + x`` of the TET and Dspike code; ``λ = 0.5`` is
  ``τ = 2``, ``λ = 0.25`` is ``τ = 4/3``).

:func:`lif_multistep` is the same neuron as a function of the input, for benchmarks and tests.
"""

from __future__ import annotations

import torch

from spikegrad.kernels import fused_multistep
from spikegrad.neurons.base import SpikingNeuron
from spikegrad.surrogates import Surrogate

__all__ = ["LIF", "lif_multistep"]


def lif_coefficients(tau: float, decay_input: bool) -> tuple[float, float]:
    """``(λ, κ) = (1 - 1/τ, 1/τ or 1)``, with a one-line error when τ leaves ``λ`` outside ``[0, 1)``."""
    if decay_input and not tau > 1:
        raise ValueError(f"neuron tau must be > 1 for the charge form (decay_input=true), got {tau!r}")
    if not decay_input and not tau >= 1:
        raise ValueError(f"neuron tau must be >= 1 (leak 1 - 1/tau in [0, 1)), got {tau!r}")
    return 1.0 - 1.0 / tau, (1.0 / tau if decay_input else 1.0)


class LIF(SpikingNeuron):
    """Multi-step LIF layer on time-first input ``[T, B, ...]`` (see the module docstring for the maths).

    Args:
        surrogate: the surrogate derivative (see :class:`~spikegrad.neurons.base.SpikingNeuron`).
        tau: membrane time constant τ (> 1 for the charge form, >= 1 for the leak form).
        decay_input: charge form ``h = v + (x - v)/τ`` (``true``) or leak form ``h = (1 - 1/τ)·v + x``.
        **options: ``v_threshold``, ``reset``, ``detach_reset``, ``learn_threshold``, ``backend`` of
            :class:`~spikegrad.neurons.base.SpikingNeuron`.
    """

    def __init__(self, surrogate: Surrogate | None = None, tau: float = 2.0, decay_input: bool = True,
                 **options) -> None:
        coefficients = lif_coefficients(float(tau), bool(decay_input))  # validates tau first
        super().__init__(surrogate, **options)
        self._coefficients = coefficients
        self.tau = float(tau)
        self.decay_input = bool(decay_input)

    def coefficients(self) -> tuple[float, float]:
        return self._coefficients

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, decay_input={self.decay_input}, " + super().extra_repr()


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
    """The fused LIF over time-first ``x`` of shape ``[T, ...]``: ``(spikes, h)`` (see
    :func:`spikegrad.kernels.fused_multistep`)."""
    decay, input_scale = lif_coefficients(float(tau), bool(decay_input))
    return fused_multistep(x, surrogate, decay, input_scale, float(v_threshold), reset == "hard", detach_reset,
                           backend, True, recorder)
