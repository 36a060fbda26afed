"""DataModules. Each sets ``num_classes``, ``input_shape`` and ``encoding`` (see :class:`SpikeDataModule`)."""

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.digits import DigitsDataModule
from spikegrad.data.errors import (
    CorruptEventFileError,
    CorruptFileError,
    DataError,
    DatasetNotFoundError,
    DataWarning,
    IncompleteDatasetError,
)
from spikegrad.data.event_base import EventDataModule
from spikegrad.data.event_digits import EventDigitsDataModule
from spikegrad.data.spike_patterns import SpikePatternDataModule
from spikegrad.data.static import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from spikegrad.data.tonic_sets import (
    CIFAR10DVSDataModule,
    DVSGestureDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
    SHDDataModule,
)

__all__ = [
    "SpikeDataModule",
    "DigitsDataModule",
    "EventDataModule",
    "EventDigitsDataModule",
    "MNISTDataModule",
    "FashionMNISTDataModule",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "NMNISTDataModule",
    "DVSGestureDataModule",
    "CIFAR10DVSDataModule",
    "NCaltech101DataModule",
    "SHDDataModule",
    "DataError",
    "SpikePatternDataModule",
    "DatasetNotFoundError",
    "IncompleteDatasetError",
    "CorruptFileError",
    "CorruptEventFileError",
    "DataWarning",
]
