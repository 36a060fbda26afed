"""Integrate-and-fire (IF): no leak, ``h[t] = v[t-1] + x[t]``.

The perfect integrator of the SNN literature (e.g. SpikingJelly's ``IFNode``): in the family's recursion
(:mod:`spikegrad.neurons.base`) ``λ = 1`` and ``κ = 1``. With ``learn_threshold`` its one learnable quantity is
the threshold θ.
"""

from __future__ import annotations

from spikegrad.neurons.base import SpikingNeuron

__all__ = ["IF"]


class IF(SpikingNeuron):
    """Multi-step integrate-and-fire layer on ``[T, B, ...]``: ``h[t] = v[t-1] + x[t]``, fire at θ, reset.

    Takes the options of :class:`~spikegrad.neurons.base.SpikingNeuron` (threshold, reset, learnable threshold,
    backend).
    """

    def coefficients(self) -> tuple[float, float]:
        return 1.0, 1.0
