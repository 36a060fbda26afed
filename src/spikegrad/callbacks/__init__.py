"""Lightning callbacks, by role:

* :mod:`spikegrad.callbacks.analysis`: monitors that record the spiking layers on one sampled batch every N
  steps and log firing rates, gradient sparsity, potentials, an energy estimate and the model's method state;
* :mod:`spikegrad.callbacks.methods`: training methods that act on the model (Dspike temperature search, PSG)
  and the fixed-temperature probe of the Dspike study;
* :mod:`spikegrad.callbacks.run`: run safety, added to every run by the CLI.

All are re-exported here, so configs name them as ``spikegrad.callbacks.<Class>``.
"""

from spikegrad.callbacks.analysis import (
    EnergyMonitor,
    FiringRateMonitor,
    GradientSparsityMonitor,
    MethodStateMonitor,
    PotentialMonitor,
)
from spikegrad.callbacks.methods import DspikeTemperatureSearch, FixedTemperatureProbe, ParametricSurrogate
from spikegrad.callbacks.run import InterruptCheckpoint, LastCheckpoint, NonFiniteLossGuard, RandomStateCheckpoint

__all__ = [
    "DspikeTemperatureSearch",
    "EnergyMonitor",
    "FiringRateMonitor",
    "FixedTemperatureProbe",
    "GradientSparsityMonitor",
    "InterruptCheckpoint",
    "LastCheckpoint",
    "MethodStateMonitor",
    "NonFiniteLossGuard",
    "ParametricSurrogate",
    "PotentialMonitor",
    "RandomStateCheckpoint",
]
