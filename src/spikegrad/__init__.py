"""spikegrad: reproducible surrogate-gradient training of spiking neural networks with PyTorch Lightning."""

from spikegrad.neurons import LIF, NeuronSettings, SurrogateSettings, lif_multistep

__all__ = ["LIF", "NeuronSettings", "SurrogateSettings", "lif_multistep"]
__version__ = "0.1.0"
