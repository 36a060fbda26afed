"""Training methods as callbacks: they probe the model with extra passes (isolated from training, see
:mod:`spikegrad.callbacks.methods.probing`), change its surrogates, and each logs its own state once."""

from spikegrad.callbacks.methods.dspike_search import DspikeTemperatureSearch, FixedTemperatureProbe
from spikegrad.callbacks.methods.psg import ParametricSurrogate

__all__ = ["DspikeTemperatureSearch", "FixedTemperatureProbe", "ParametricSurrogate"]
