"""Lightning callbacks: analysis monitors and the training methods' own callbacks.

Each engineer's callbacks are re-exported here, so configs can name them as ``spikegrad.callbacks.<Class>``.
"""

from spikegrad.callbacks.dspike_search import DspikeTemperatureSearch
from spikegrad.callbacks.energy import EnergyMonitor
from spikegrad.callbacks.finite_loss import NonFiniteLossGuard
from spikegrad.callbacks.firing_rate import FiringRateMonitor
from spikegrad.callbacks.gradient_sparsity import GradientSparsityMonitor
from spikegrad.callbacks.interrupt_checkpoint import InterruptCheckpoint
from spikegrad.callbacks.last_checkpoint import LastCheckpoint
from spikegrad.callbacks.method_state import MethodStateMonitor
from spikegrad.callbacks.potential import PotentialMonitor
from spikegrad.callbacks.psg import ParametricSurrogate
from spikegrad.callbacks.random_state import RandomStateCheckpoint

__all__ = [
    "DspikeTemperatureSearch",
    "ParametricSurrogate",
    "EnergyMonitor",
    "FiringRateMonitor",
    "GradientSparsityMonitor",
    "MethodStateMonitor",
    "PotentialMonitor",
    "NonFiniteLossGuard",
    "InterruptCheckpoint",
    "LastCheckpoint",
    "RandomStateCheckpoint",
]
