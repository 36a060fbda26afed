"""Parametric LIF (PLIF): a LIF whose membrane time constant is learned, one per layer.

Fang, Yu, Chen, Masquelier, Huang, Tian, "Incorporating learnable membrane time constant to enhance learning of
spiking neural networks", ICCV 2021: the layer owns a parameter ``w`` and ``1/τ = k = sigmoid(w)``, which keeps
``τ > 1`` for every ``w``. In the family's recursion (:mod:`spikegrad.neurons.base`) ``λ = 1 - k`` and

* ``κ = k`` (``decay_input: true``, the paper's ``h = v + k·(x - v)``), or
* ``κ = 1`` (``decay_input: false``, the leak form ``h = (1 - k)·v + x``).

The fused backward returns ``∂L/∂λ = Σ_t a[t+1]·v[t]`` and ``∂L/∂κ = Σ_t a[t]·x[t]`` (``a = ∂L/∂h``,
docs/design.md), and autograd takes them on to ``w``::

    ∂L/∂w = (∂L/∂κ·1[decay_input] - ∂L/∂λ)·k·(1 - k)

This file and ``tests/test_neuron_plif.py`` are all that adding PLIF took.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from spikegrad.neurons.base import SpikingNeuron
from spikegrad.surrogates import Surrogate

__all__ = ["PLIF"]


class PLIF(SpikingNeuron):
    """Multi-step parametric LIF layer on ``[T, B, ...]`` with a learnable time constant (see the module docstring).

    Args:
        surrogate: the surrogate derivative (see :class:`~spikegrad.neurons.base.SpikingNeuron`).
        init_tau: τ at initialisation (> 1): ``w = -ln(τ - 1)``, so that ``sigmoid(w) = 1/τ`` (the paper's 2.0).
        decay_input: charge form ``h = v + k·(x - v)`` (``true``) or leak form ``h = (1 - k)·v + x``.
        **options: ``v_threshold``, ``reset``, ``detach_reset``, ``learn_threshold``, ``backend`` of
            :class:`~spikegrad.neurons.base.SpikingNeuron`.
    """

    def __init__(self, surrogate: Surrogate | None = None, init_tau: float = 2.0, decay_input: bool = True,
                 **options) -> None:
        if not init_tau > 1:
            raise ValueError(f"neuron init_tau must be > 1 (1/tau = sigmoid(w) < 1), got {init_tau!r}")
        super().__init__(surrogate, **options)
        self.init_tau = float(init_tau)
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(-math.log(self.init_tau - 1.0)))

    @property
    def tau(self) -> float:
        """The current time constant ``1/sigmoid(w)``."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor | float]:
        k = torch.sigmoid(self.w)
        return 1.0 - k, (k if self.decay_input else 1.0)

    def learned_values(self) -> dict[str, float]:
        return {"tau": self.tau, **super().learned_values()}

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g} (learned), decay_input={self.decay_input}, " + super().extra_repr()
