"""Event and spike datasets read with tonic: N-MNIST, DVS Gesture, CIFAR10-DVS, N-Caltech101, SHD.

tonic's dataset classes list and decode the files; their constructors would check for the downloaded
archives and download again when absent, so the subclasses here skip that check: the DataModule has
verified the extracted layout itself (and downloads through tonic, staged, in ``prepare_data``).
"""

from __future__ import annotations

import os
import re

import h5py
import tonic.datasets as td
from tonic.download_utils import extract_archive

from spikegrad.data.errors import CorruptEventFileError
from spikegrad.data.event_base import EventDataModule, Recordings
from spikegrad.data.splits import first_fraction_per_class
from spikegrad.data.storage import has_files


class NMNIST(td.NMNIST):
    def _check_exists(self) -> bool:
        return True


class DVSGesture(td.DVSGesture):
    def _check_exists(self) -> bool:
        return True


class CIFAR10DVS(td.CIFAR10DVS):
    def _check_exists(self) -> bool:
        return True


class NCALTECH101(td.NCALTECH101):
    def _check_exists(self) -> bool:
        return True


class SHD(td.SHD):
    def _check_exists(self) -> bool:
        return True


class TonicReader:
    """``reader(i)`` -> the raw events of recording ``order[i]`` of a tonic dataset (picklable for workers)."""

    def __init__(self, dataset, order: list[int]) -> None:
        self.dataset, self.order = dataset, order

    def __call__(self, index: int):
        return self.dataset[self.order[index]][0]


def natural_key(path: str) -> list:
    """Sort key comparing digit runs as numbers: ``x_2`` before ``x_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def tonic_recordings(name: str, dataset, targets=None, key=natural_key) -> Recordings:
    """The recordings of a tonic dataset in sorted file order (by path, numbers compared numerically)."""
    paths = list(dataset.data)
    order = sorted(range(len(paths)), key=lambda i: key(paths[i]))
    targets = dataset.targets if targets is None else targets
    return Recordings(name, [paths[i] for i in order], [targets[i] for i in order], TonicReader(dataset, order))


class NMNISTDataModule(EventDataModule):
    """N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on three saccades.

    34×34×2 sensor, 60000 train / 10000 test recordings of about 300 ms, 10 classes.
    """

    dataset_name = "N-MNIST"
    folder = "NMNIST"
    num_classes = 10
    sensor_size = td.NMNIST.sensor_size
    layout = "NMNIST/Train/<0-9>/*.bin and NMNIST/Test/<0-9>/*.bin (5-byte ATIS events)"
    source = "https://www.garrickorchard.com/datasets/n-mnist (train.zip, test.zip; extract into data/NMNIST)"
    download_entries = ("NMNIST/Train", "NMNIST/Test")

    def __init__(self, data_dir: str = "data", time_steps: int = 10, first_saccade_only: bool = False, **kwargs):
        self.first_saccade_only = first_saccade_only
        super().__init__(data_dir=data_dir, time_steps=time_steps, **kwargs)

    def recording_options(self) -> dict:
        return {"first_saccade_only": True} if self.first_saccade_only else {}

    def _is_complete(self) -> bool:
        return all(has_files(os.path.join(self.root, part), ".bin") for part in ("Train", "Test"))

    def _fetch(self, staging_root: str) -> None:
        td.NMNIST(staging_root, train=True)
        td.NMNIST(staging_root, train=False)

    def _recordings(self):
        parts = {}
        for part, train in (("train", True), ("test", False)):
            dataset = NMNIST(self.data_dir, train=train, first_saccade_only=self.first_saccade_only)
            recordings = tonic_recordings(self.dataset_name, dataset)
            parts[part] = (part, recordings, list(range(len(recordings))))
        return parts


class DVSGestureDataModule(EventDataModule):
    """IBM DVS Gesture (Amir et al. 2017), tonic's preprocessed copy: 128×128×2, 11 classes.

    tonic's copy cuts the original recordings into one file per gesture: 1077 train / 264 test recordings
    (SpikingJelly and snnTorch cut them themselves and get 1176 / 288). Horizontal flips are off by default:
    they swap left- and right-hand classes.
    """

    dataset_name = "DVS Gesture"
    folder = "DVSGesture"
    num_classes = 11
    sensor_size = td.DVSGesture.sensor_size
    layout = (
        "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label>.npy and DVSGesture/ibmGestureTest/... "
        "(N×4 arrays x, y, p, t[ms])"
    )
    source = "tonic's preprocessed copy, https://figshare.com/ndownloader/files/38022171 and /38020584"
    download_entries = ("DVSGesture/ibmGestureTrain", "DVSGesture/ibmGestureTest")

    def __init__(self, data_dir: str = "data", time_steps: int = 16, **kwargs):
        super().__init__(data_dir=data_dir, time_steps=time_steps, **kwargs)

    def _is_complete(self) -> bool:
        return all(has_files(os.path.join(self.root, p), ".npy") for p in ("ibmGestureTrain", "ibmGestureTest"))

    def _fetch(self, staging_root: str) -> None:
        td.DVSGesture(staging_root, train=True)
        td.DVSGesture(staging_root, train=False)

    def _recordings(self):
        parts = {}
        for part, train in (("train", True), ("test", False)):
            recordings = tonic_recordings(self.dataset_name, DVSGesture(self.data_dir, train=train))
            parts[part] = (part, recordings, list(range(len(recordings))))
        return parts


class _PerClassSplitDataModule(EventDataModule):
    """Event sets without an official split: per class, the first ``train_fraction`` of the sorted files train.

    Frames default to T = 10 bins at 48×48 with a random horizontal flip and a roll of up to 5 pixels for
    training.
    """

    def __init__(
        self,
        data_dir: str = "data",
        time_steps: int = 10,
        target_size: tuple[int, int] | None = (48, 48),
        flip: bool = True,
        max_roll: int = 5,
        train_fraction: float = 0.9,
        **kwargs,
    ):
        self.train_fraction = train_fraction
        super().__init__(
            data_dir=data_dir, time_steps=time_steps, target_size=target_size, flip=flip, max_roll=max_roll, **kwargs
        )


CIFAR10DVS_CLASSES = tuple(td.CIFAR10DVS.classes)


class CIFAR10DVSDataModule(_PerClassSplitDataModule):
    """CIFAR10-DVS (Li et al. 2017): 10000 recordings (1000 per class) of moving CIFAR-10 images, 128×128×2.

    No official split. Fixed here: per class, files sorted by name with numbers compared numerically, the
    first 90% (900) train and the last 10% (100) test: 9000 / 1000. Default frames: T = 10 bins at 48×48
    (as the MSG paper), random horizontal flip and a roll of up to 5 pixels for training.
    """

    dataset_name = "CIFAR10-DVS"
    folder = "CIFAR10DVS"
    num_classes = 10
    sensor_size = td.CIFAR10DVS.sensor_size
    layout = "CIFAR10DVS/<class>/*.aedat4 for the classes " + ", ".join(CIFAR10DVS_CLASSES)
    source = "https://figshare.com/ndownloader/files/38023437 (CIFAR10DVS.zip; extract the class zips)"
    download_entries = tuple(f"CIFAR10DVS/{name}" for name in CIFAR10DVS_CLASSES)

    def _is_complete(self) -> bool:
        return all(has_files(os.path.join(self.root, name), ".aedat4") for name in CIFAR10DVS_CLASSES)

    def _fetch(self, staging_root: str) -> None:
        td.CIFAR10DVS(staging_root)

    def _recordings(self):
        recordings = tonic_recordings(self.dataset_name, CIFAR10DVS(self.data_dir))
        train, test = first_fraction_per_class(recordings.targets, self.train_fraction)
        return {"train": ("all", recordings, train), "test": ("all", recordings, test)}


class NCaltech101DataModule(_PerClassSplitDataModule):
    """N-Caltech101 (Orchard et al. 2015): Caltech101 images recorded by an ATIS sensor on three saccades.

    Recordings differ in size (at most about 240×180 after tonic shifts them to the origin); frames are
    made on a 240×180 sensor and downsampled to ``target_size`` (default 48×48). The 101 object classes
    are the sorted class folders; ``BACKGROUND_Google`` is left out. No official split: per class, files
    sorted by name (numbers numerically), the first 90% train and the rest test.
    """

    dataset_name = "N-Caltech101"
    folder = "NCALTECH101"
    num_classes = 101
    sensor_size = (240, 180, 2)
    layout = "NCALTECH101/Caltech101/<class>/*.bin (5-byte ATIS events)"
    source = "https://www.garrickorchard.com/datasets/n-caltech101 (extract Caltech101.zip into data/NCALTECH101)"
    download_entries = ("NCALTECH101/Caltech101",)
    background = "BACKGROUND_Google"

    def _is_complete(self) -> bool:
        return has_files(os.path.join(self.root, "Caltech101"), ".bin")

    def _fetch(self, staging_root: str) -> None:
        dataset = td.NCALTECH101(staging_root)
        inner = os.path.join(dataset.location_on_system, "Caltech101.zip")
        if not os.path.isdir(os.path.join(dataset.location_on_system, "Caltech101")) and os.path.exists(inner):
            extract_archive(inner)

    def _recordings(self):
        dataset = NCALTECH101(self.data_dir)
        classes = sorted({name for name in dataset.targets if name != self.background})
        if len(classes) > self.num_classes:
            raise ValueError(f"{self.dataset_name}: found {len(classes)} class folders, expected {self.num_classes}")
        keep = [i for i, name in enumerate(dataset.targets) if name != self.background]
        dataset.data = [dataset.data[i] for i in keep]
        dataset.targets = [dataset.targets[i] for i in keep]
        index = {name: i for i, name in enumerate(classes)}
        recordings = tonic_recordings(self.dataset_name, dataset, targets=[index[name] for name in dataset.targets])
        train, test = first_fraction_per_class(recordings.targets, self.train_fraction)
        return {"train": ("all", recordings, train), "test": ("all", recordings, test)}


class SHDDataModule(EventDataModule):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits 0-9 in English and German (20 classes)
    as spikes of 700 cochlear channels; 8156 train / 2264 test recordings of up to about 1 s.

    Batches are ``[B, T, channels]``: spikes counted in T bins per channel; ``channels`` < 700 sums
    neighbouring channels (tonic ``Downsample``).
    """

    dataset_name = "SHD"
    folder = "SHD"
    num_classes = 20
    sensor_size = td.SHD.sensor_size
    layout = "SHD/shd_train.h5 and SHD/shd_test.h5 (spikes/times, spikes/units, labels, extra/keys, extra/speaker)"
    source = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (shd_train.h5, shd_test.h5)"
    download_entries = ("SHD/shd_train.h5", "SHD/shd_test.h5")
    squeeze_polarity = True

    def __init__(self, data_dir: str = "data", time_steps: int = 100, channels: int = 700, **kwargs):
        if not 1 <= channels <= 700:
            raise ValueError(f"SHD channels must be in [1, 700], got {channels}")
        self.channels = channels
        target = None if channels == 700 else (channels, 1)
        super().__init__(data_dir=data_dir, time_steps=time_steps, target_size=target, **kwargs)

    def _files(self) -> tuple[str, str]:
        return os.path.join(self.root, "shd_train.h5"), os.path.join(self.root, "shd_test.h5")

    def _is_complete(self) -> bool:
        return all(os.path.isfile(path) for path in self._files())

    def _fetch(self, staging_root: str) -> None:
        td.SHD(staging_root, train=True)
        td.SHD(staging_root, train=False)

    def _recordings(self):
        parts = {}
        for (part, train), path in zip((("train", True), ("test", False)), self._files(), strict=True):
            try:
                dataset = SHD(self.data_dir, train=train)
                with h5py.File(path, "r") as f:
                    labels = f["labels"][()].tolist()
            except (OSError, KeyError) as err:
                raise CorruptEventFileError(f"{self.dataset_name}: cannot read {path}: {err}") from None
            names = [f"{path}[{i}]" for i in range(len(labels))]
            recordings = Recordings(self.dataset_name, names, labels, TonicReader(dataset, list(range(len(labels)))))
            parts[part] = (part, recordings, list(range(len(recordings))))
        return parts
