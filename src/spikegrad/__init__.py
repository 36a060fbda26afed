"""spikegrad: reproducible surrogate-gradient training of spiking neural networks with PyTorch Lightning."""

from spikegrad.neurons import IF, LIF, PLIF, SpikingNeuron, lif_multistep, spiking_layers

__all__ = ["IF", "LIF", "PLIF", "SpikingNeuron", "lif_multistep", "spiking_layers"]
__version__ = "0.1.0"
