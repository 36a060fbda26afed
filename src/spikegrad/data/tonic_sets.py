"""Event and spike datasets: N-MNIST, DVS Gesture, CIFAR10-DVS, N-Caltech101, SHD.

Each DataModule lists its files itself against its published layout (so stray entries are reported, not
mistaken for recordings, and labels come from fixed class lists), checks them (:mod:`spikegrad.data.verify`) and
decodes them with tonic's readers (:mod:`spikegrad.data.formats`). tonic's dataset classes are used only to
download (``prepare_data``, staged), through their public constructors.
"""

from __future__ import annotations

import os
import re

import tonic.datasets as td
from tonic.download_utils import extract_archive

from spikegrad.data.errors import CorruptFileError
from spikegrad.data.event_base import EventDataModule, FileReader, Recordings, RowReader
from spikegrad.data.files import RecordingFile, list_tree
from spikegrad.data.formats import (
    H5Rows,
    check_aedat4,
    check_atis_bin,
    check_npy_events,
    check_shd_h5,
    read_aedat4_events,
    read_atis_bin,
    read_gesture_npy,
)
from spikegrad.data.splits import first_fraction_per_class


class NMNISTDataModule(EventDataModule):
    """N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on three saccades.

    34×34×2 sensor, 60000 train / 10000 test recordings of about 300 ms, 10 classes.
    """

    dataset_name = "N-MNIST"
    folder = "NMNIST"
    num_classes = 10
    class_names = tuple(str(digit) for digit in range(10))
    sensor_size = (34, 34, 2)
    layout = "NMNIST/Train/<0-9>/*.bin and NMNIST/Test/<0-9>/*.bin (5-byte ATIS events)"
    source = "https://www.garrickorchard.com/datasets/n-mnist (train.zip, test.zip; extract into data/NMNIST)"
    parts = {"train": ("Train", 60_000), "test": ("Test", 10_000)}
    download_entries = ("NMNIST/Train", "NMNIST/Test")
    _pattern = re.compile(r"(Train|Test)/([0-9])/[^/]+\.bin")

    def __init__(self, data_dir: str = "data", time_steps: int = 10, first_saccade_only: bool = False, **kwargs):
        self.first_saccade_only = first_saccade_only
        super().__init__(data_dir=data_dir, time_steps=time_steps, **kwargs)

    def recording_options(self) -> dict:
        return {"first_saccade_only": True} if self.first_saccade_only else {}

    def _fetch(self, staging_root: str) -> None:
        td.NMNIST(staging_root, train=True)
        td.NMNIST(staging_root, train=False)

    def _match(self, relpath: str):
        found = self._pattern.fullmatch(relpath)
        return (found.group(1).lower(), int(found.group(2))) if found else None

    def _load_parts(self) -> dict[str, Recordings]:
        read = FileReader(self.root, read_atis_bin, first_saccade_only=self.first_saccade_only)
        return self._listed(list_tree(self.root, self._match), read, check_atis_bin)


class DVSGestureDataModule(EventDataModule):
    """IBM DVS Gesture (Amir et al. 2017), tonic's preprocessed copy: 128×128×2, 11 classes.

    tonic's copy cuts the original recordings into one file per gesture: 1077 train / 264 test recordings
    (SpikingJelly and snnTorch cut them themselves and get 1176 / 288). Horizontal flips are off by default:
    they swap left- and right-hand classes.
    """

    dataset_name = "DVS Gesture"
    folder = "DVSGesture"
    num_classes = 11
    class_names = tuple(td.DVSGesture.classes)
    sensor_size = (128, 128, 2)
    layout = (
        "DVSGesture/ibmGestureTrain/user<NN>_<lighting>/<label 0-10>.npy and DVSGesture/ibmGestureTest/... "
        "(N×4 arrays x, y, p, t[ms])"
    )
    source = "tonic's preprocessed copy, https://figshare.com/ndownloader/files/38022171 and /38020584"
    parts = {"train": ("ibmGestureTrain", 1077), "test": ("ibmGestureTest", 264)}
    download_entries = ("DVSGesture/ibmGestureTrain", "DVSGesture/ibmGestureTest")
    _pattern = re.compile(r"ibmGesture(Train|Test)/user\d+_[A-Za-z_]+/(\d+)\.npy")

    def __init__(self, data_dir: str = "data", time_steps: int = 16, **kwargs):
        super().__init__(data_dir=data_dir, time_steps=time_steps, **kwargs)

    def _fetch(self, staging_root: str) -> None:
        td.DVSGesture(staging_root, train=True)
        td.DVSGesture(staging_root, train=False)

    def _match(self, relpath: str):
        found = self._pattern.fullmatch(relpath)
        if found is None or int(found.group(2)) >= self.num_classes:
            return None
        return found.group(1).lower(), int(found.group(2))

    def _load_parts(self) -> dict[str, Recordings]:
        return self._listed(
            list_tree(self.root, self._match), FileReader(self.root, read_gesture_npy), check_npy_events
        )


class _PerClassSplitDataModule(EventDataModule):
    """Event sets without an official split: per class, the first ``train_fraction`` of the sorted files train.

    Frames default to T = 10 bins at 48×48 with a random horizontal flip and a roll of up to 5 pixels for
    training. Subclasses give ``class_names`` (the class folders, label = position) and ``_class_root``.
    """

    _class_root = ""
    _suffix: str

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

    def _match(self, relpath: str):
        prefix = f"{self._class_root}/" if self._class_root else ""
        if not relpath.startswith(prefix) or not relpath.endswith(self._suffix):
            return None
        class_name, _, name = relpath[len(prefix) :].partition("/")
        label = self._labels.get(class_name)
        return ("all", label) if label is not None and name and "/" not in name else None

    @property
    def _labels(self) -> dict[str, int]:
        return {name: label for label, name in enumerate(self.class_names)}

    def _split(self, parts):
        recordings = parts["all"]
        train, test = first_fraction_per_class(recordings.targets, self.train_fraction)
        return (recordings, train), (recordings, test)


class CIFAR10DVSDataModule(_PerClassSplitDataModule):
    """CIFAR10-DVS (Li et al. 2017): 10000 recordings (1000 per class) of moving CIFAR-10 images, 128×128×2.

    No official split. Fixed here: per class, files sorted by name with numbers compared numerically, the
    first 90% (900) train and the last 10% (100) test: 9000 / 1000. Default frames: T = 10 bins at 48×48
    (as the MSG paper), random horizontal flip and a roll of up to 5 pixels for training.
    """

    dataset_name = "CIFAR10-DVS"
    folder = "CIFAR10DVS"
    num_classes = 10
    class_names = tuple(td.CIFAR10DVS.classes)
    sensor_size = (128, 128, 2)
    layout = "CIFAR10DVS/<class>/*.aedat4 for the classes " + ", ".join(class_names)
    source = "https://figshare.com/ndownloader/files/38023437 (CIFAR10DVS.zip; extract the class zips)"
    parts = {"all": ("", 10_000)}
    published_per_class = 1000
    download_entries = tuple(f"CIFAR10DVS/{name}" for name in class_names)
    _suffix = ".aedat4"

    def _fetch(self, staging_root: str) -> None:
        td.CIFAR10DVS(staging_root)

    def _load_parts(self) -> dict[str, Recordings]:
        return self._listed(list_tree(self.root, self._match), FileReader(self.root, read_aedat4_events), check_aedat4)


# Caltech101's 102 category folders (Fei-Fei et al. 2004) without "Faces", which N-Caltech101 leaves out (it
# keeps Faces_easy): 100 object classes and the background class, 8709 recordings. Sorted as Python sorts the
# folder names (upper case first), as SpikingJelly's folder dataset does: label 0 is BACKGROUND_Google.
NCALTECH101_CLASSES = tuple(
    sorted(
        """accordion airplanes anchor ant BACKGROUND_Google barrel bass beaver binocular bonsai brain brontosaurus
        buddha butterfly camera cannon car_side ceiling_fan cellphone chair chandelier cougar_body cougar_face crab
        crayfish crocodile crocodile_head cup dalmatian dollar_bill dolphin dragonfly electric_guitar elephant emu
        euphonium ewer Faces_easy ferry flamingo flamingo_head garfield gerenuk gramophone grand_piano hawksbill
        headphone hedgehog helicopter ibis inline_skate joshua_tree kangaroo ketch lamp laptop Leopards llama lobster
        lotus mandolin mayfly menorah metronome minaret Motorbikes nautilus octopus okapi pagoda panda pigeon pizza
        platypus pyramid revolver rhino rooster saxophone schooner scissors scorpion sea_horse snoopy soccer_ball
        stapler starfish stegosaurus stop_sign strawberry sunflower tick trilobite umbrella watch water_lilly
        wheelchair wild_cat windsor_chair wrench yin_yang""".split()
    )
)


class NCaltech101DataModule(_PerClassSplitDataModule):
    """N-Caltech101 (Orchard et al. 2015): Caltech101 images recorded by an ATIS sensor on three saccades.

    101 classes: the 100 object classes and ``BACKGROUND_Google`` (label = position in the sorted folder names,
    fixed, so a missing folder cannot renumber the others); 8709 recordings. Recordings differ in size; tonic's
    convention shifts each to the origin (at most 240×180); frames are made on a 240×180 sensor and downsampled
    to ``target_size`` (default 48×48). No official split: per class, files sorted by name (numbers
    numerically), the first 90% train and the rest test.
    """

    dataset_name = "N-Caltech101"
    folder = "NCALTECH101"
    num_classes = 101
    class_names = NCALTECH101_CLASSES
    sensor_size = (240, 180, 2)
    layout = "NCALTECH101/Caltech101/<class>/image_<NNNN>.bin (5-byte ATIS events; 100 classes + BACKGROUND_Google)"
    source = "https://www.garrickorchard.com/datasets/n-caltech101 (extract Caltech101.zip into data/NCALTECH101)"
    parts = {"all": ("Caltech101", 8709)}
    download_entries = ("NCALTECH101/Caltech101",)
    _class_root = "Caltech101"
    _suffix = ".bin"

    def _fetch(self, staging_root: str) -> None:
        dataset = td.NCALTECH101(staging_root)
        inner = os.path.join(dataset.location_on_system, "Caltech101.zip")
        if not os.path.isdir(os.path.join(dataset.location_on_system, "Caltech101")) and os.path.exists(inner):
            extract_archive(inner)

    def _load_parts(self) -> dict[str, Recordings]:
        read = FileReader(self.root, read_atis_bin, shift_to_origin=True)
        return self._listed(list_tree(self.root, self._match), read, check_atis_bin)


class SHDDataModule(EventDataModule):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits 0-9 in English and German (20 classes)
    as spikes of 700 cochlear channels; 8156 train / 2264 test recordings of up to about 1 s.

    Batches are ``[B, T, channels]``: spikes counted in T bins per channel; ``channels`` < 700 sums
    neighbouring channels (tonic ``Downsample``).
    """

    dataset_name = "SHD"
    folder = "SHD"
    num_classes = 20
    class_names = tuple(f"{digit} ({language})" for language in ("English", "German") for digit in range(10))
    sensor_size = (700, 1, 1)
    layout = "SHD/shd_train.h5 and SHD/shd_test.h5 (spikes/times, spikes/units, labels, extra/keys, extra/speaker)"
    source = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (shd_train.h5, shd_test.h5)"
    parts = {"train": ("shd_train.h5", 8156), "test": ("shd_test.h5", 2264)}
    download_entries = ("SHD/shd_train.h5", "SHD/shd_test.h5")
    squeeze_polarity = True

    def __init__(self, data_dir: str = "data", time_steps: int = 100, channels: int = 700, **kwargs):
        if not 1 <= channels <= 700:
            raise ValueError(f"SHD channels must be in [1, 700], got {channels}")
        self.channels = channels
        target = None if channels == 700 else (channels, 1)
        super().__init__(data_dir=data_dir, time_steps=time_steps, target_size=target, **kwargs)

    def _fetch(self, staging_root: str) -> None:
        td.SHD(staging_root, train=True)
        td.SHD(staging_root, train=False)

    def _load_parts(self) -> dict[str, Recordings]:
        parts = {}
        for part, (filename, _) in self.parts.items():
            path = os.path.join(self.root, filename)
            problem, labels = check_shd_h5(path)
            if problem:  # the labels are needed to list the recordings: checked with every verify setting
                raise CorruptFileError(self.dataset_name, os.path.abspath(path), problem)
            stat = os.stat(path)
            files = [RecordingFile(filename, stat.st_size, stat.st_mtime_ns, row) for row in range(len(labels))]
            reader = RowReader(H5Rows(path))
            parts[part] = Recordings(self.dataset_name, self.root, files, labels, reader, self.sensor_size)
        return parts
