"""Sweeps that reproduce a claim of a paper end to end: the reset-gradient learning-rate sweep (its toy task is
:class:`spikegrad.data.SpikePatternDataModule`)."""
