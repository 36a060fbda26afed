"""DataModules. Each sets ``num_classes``, ``input_shape`` and ``encoding`` (see :class:`SpikeDataModule`)."""

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.digits import DigitsDataModule

__all__ = ["SpikeDataModule", "DigitsDataModule"]
