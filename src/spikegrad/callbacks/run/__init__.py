"""Run safety, added to every ``spikegrad`` run by the CLI: ``last.ckpt`` at every epoch end, a stop on a NaN/Inf
loss, weights or optimizer state, a checkpoint on Ctrl-C or SIGTERM, and the random generators' state in
checkpoints (exact resume); and the choice of the neuron kernels for ``backend: auto``."""

from spikegrad.callbacks.run.finite_loss import NonFiniteLossGuard
from spikegrad.callbacks.run.interrupt_checkpoint import InterruptCheckpoint
from spikegrad.callbacks.run.last_checkpoint import LastCheckpoint
from spikegrad.callbacks.run.neuron_backend import NeuronBackendChoice
from spikegrad.callbacks.run.random_state import RandomStateCheckpoint

__all__ = ["InterruptCheckpoint", "LastCheckpoint", "NeuronBackendChoice", "NonFiniteLossGuard",
           "RandomStateCheckpoint"]
