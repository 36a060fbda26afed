"""Spiking neurons on one contract (:class:`SpikingNeuron`), one file each.

* :mod:`spikegrad.neurons.base`: the contract (surrogate, threshold, reset, recording, kept potentials) and
  :func:`spiking_layers`;
* :mod:`spikegrad.neurons.if_`: ``IF``, integrate-and-fire;
* :mod:`spikegrad.neurons.lif`: ``LIF``, leaky integrate-and-fire with a fixed τ;
* :mod:`spikegrad.neurons.plif`: ``PLIF``, LIF with a learnable τ per layer (Fang et al., ICCV 2021);
* :mod:`spikegrad.neurons.reference`: step-by-step autograd versions, the yardstick of the fused kernels.

Configs name the neuron by class: ``model.neuron: {class_path: PLIF, init_args: {init_tau: 2.0}}``.
"""

from spikegrad.neurons.base import SpikingNeuron, spiking_layers
from spikegrad.neurons.if_ import IF
from spikegrad.neurons.lif import LIF, lif_multistep
from spikegrad.neurons.plif import PLIF

__all__ = ["IF", "LIF", "PLIF", "SpikingNeuron", "lif_multistep", "spiking_layers"]
