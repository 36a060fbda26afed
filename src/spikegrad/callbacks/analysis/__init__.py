"""Analysis monitors: each records the spiking layers on one sampled training batch every ``every_n_steps``
optimizer steps (through the neurons' recording requests), reduces its statistics across processes with a
torchmetrics :class:`~torchmetrics.Metric` and logs them at the sampled step. None changes training: no extra
forward pass, no random draw, no change of a module's mode."""

from spikegrad.callbacks.analysis.energy import EnergyMonitor
from spikegrad.callbacks.analysis.firing_rate import FiringRateMonitor
from spikegrad.callbacks.analysis.gradient_sparsity import GradientSparsityMonitor
from spikegrad.callbacks.analysis.method_state import MethodStateMonitor
from spikegrad.callbacks.analysis.potential import PotentialMonitor

__all__ = ["EnergyMonitor", "FiringRateMonitor", "GradientSparsityMonitor", "MethodStateMonitor", "PotentialMonitor"]
