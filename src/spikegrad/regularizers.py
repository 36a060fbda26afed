"""Potential distribution adjustment (PDA): a regulariser on the pre-spike membrane potentials.

Reconstruction, not the published method: PSG and PDA (Wang, Cheng, Lim, arXiv 2304.13289) are available to
us only through the paper's abstract ("the
potential distribution deviates due to quantization error; PDA minimises the loss of undesired
pre-activations"). We read it as a penalty on the mass of the threshold-relative potential ``u = h/θ`` that
falls outside the window ``[lo, hi]`` a spiking neuron can represent::

    R = λ · Σ_l mean( relu(lo - u_l)² + relu(u_l - hi)² )

with the mean over all neurons, time steps and samples of layer ``l`` (docs/methods.md; defaults ``lo = 0``,
``hi = 2``). The potentials come from each layer's ``potential`` (:class:`spikegrad.neurons.SpikingNeuron` with
``keep_potential = True``), which carries gradient into the neuron's fused backward, so ``∂R/∂h`` flows back
through time into the weights like any other gradient (and into θ when the threshold is learned).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["PDASettings", "potential_window_penalty", "potential_statistics"]


@dataclass
class PDASettings:
    """PDA settings as they appear in configs (``model.pda``); ``weight = 0`` switches PDA off.

    Args:
        weight: λ, the regulariser's weight in the training loss.
        lo: lower edge of the window for ``h/θ``.
        hi: upper edge of the window for ``h/θ``.
    """

    weight: float = 0.0
    lo: float = 0.0
    hi: float = 2.0

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise ValueError(f"pda weight must be >= 0, got {self.weight!r}")
        if not self.lo < self.hi:
            raise ValueError(f"pda window needs lo < hi, got lo={self.lo!r}, hi={self.hi!r}")


def potential_window_penalty(potentials: Iterable[tuple[torch.Tensor, float | torch.Tensor]], lo: float,
                             hi: float) -> torch.Tensor:
    """``Σ_l mean(relu(lo - h_l/θ_l)² + relu(h_l/θ_l - hi)²)`` over ``(h_l, θ_l)`` pairs (without λ)."""
    total = None
    for h, threshold in potentials:
        u = h / threshold
        term = (F.relu(lo - u).square() + F.relu(u - hi).square()).mean()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("pda needs at least one spiking layer with kept potentials")
    return total


@torch.no_grad()
def potential_statistics(potentials: Mapping[str, tuple[torch.Tensor, float]], lo: float, hi: float) -> dict:
    """Per layer: mean and std of ``h/θ`` and the fractions below ``lo`` and above ``hi`` (the logged shift)."""
    stats = {}
    for name, (h, threshold) in potentials.items():
        u = h.detach().float() / (threshold.detach() if isinstance(threshold, torch.Tensor) else threshold)
        stats[f"{name}/mean"] = u.mean()
        stats[f"{name}/std"] = u.std()
        stats[f"{name}/below"] = (u < lo).float().mean()
        stats[f"{name}/above"] = (u > hi).float().mean()
    return stats
