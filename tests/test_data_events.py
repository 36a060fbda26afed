"""Event DataModules on tiny files fabricated in the real on-disk formats, plus missing and corrupt data."""

import os
import pickle
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch

from _data_files import (
    make_cifar10dvs,
    make_gestures,
    make_ncaltech,
    make_nmnist,
    write_atis_bin,
    write_shd,
)
from spikegrad.data import (
    CIFAR10DVSDataModule,
    CorruptEventFileError,
    DatasetNotFoundError,
    DVSGestureDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
    SHDDataModule,
)
from spikegrad.data.tonic_sets import NCALTECH101_CLASSES
from spikegrad.models import SpikingMLP
from spikegrad.module import SpikingClassifier

CIFAR10DVS_CLASSES = CIFAR10DVSDataModule.class_names
SMALL = {"allow_subset": True}  # the fabricated sets are deliberately reduced copies


def test_nmnist_batches_and_disk_cache(tmp_path):
    make_nmnist(tmp_path)
    dm = NMNISTDataModule(
        data_dir=str(tmp_path), time_steps=4, batch_size=5, val_fraction=0.25, download=False, **SMALL
    )
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 15, "val": 5, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 4, 2, 34, 34) and x.dtype == torch.float32 and y.dtype == torch.int64
    # every event lands in one frame, and the test labels follow the digit folders
    xs, ys = zip(*(dm.test_set[i] for i in range(20)), strict=True)
    assert [float(f.sum()) for f in xs] == [300.0] * 20
    assert list(ys) == [d for d in range(10) for _ in range(2)]
    assert dm.split_names["test"][:3] == ["Test/0/00000.bin", "Test/0/00001.bin", "Test/1/00000.bin"]
    # the cache folder names the frame parameters; one file per recording, named by the file's identity
    cache = os.path.join(tmp_path, "cache", "NMNIST")
    (key,) = os.listdir(cache)
    assert key.startswith("format=2-n_time_bins=4-")
    assert len(os.listdir(os.path.join(cache, key))) == 20 + 5  # the test set and the one train batch read so far
    pickle.dumps(dm.train_set)  # DataLoader workers started by spawn receive the dataset pickled


def test_nmnist_through_the_model(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    dm = NMNISTDataModule(data_dir=str(tmp_path), time_steps=3, batch_size=10, val_fraction=0, cache="none", **SMALL)
    model = SpikingClassifier(
        backbone=partial(SpikingMLP, hidden=[16]),
        num_classes=dm.num_classes,
        input_shape=dm.input_shape,
        encoding=dm.encoding,
        data_time_steps=dm.time_steps,
    )
    dm.setup("fit")
    x, _ = next(iter(dm.train_dataloader()))
    assert model(x).shape == (3, 10, 10)  # time-first per-step logits
    trainer = L.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_nmnist_with_worker_processes(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    dm = NMNISTDataModule(data_dir=str(tmp_path), time_steps=2, batch_size=4, num_workers=1, val_fraction=0, **SMALL)
    dm.setup()
    labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert labels.tolist() == list(range(10))


def test_dvs_gesture_npy(tmp_path):
    make_gestures(tmp_path)
    dm = DVSGestureDataModule(
        data_dir=str(tmp_path), time_steps=5, target_size=(32, 32), batch_size=3, val_fraction=0, **SMALL
    )
    dm.setup()
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (3, 5, 2, 32, 32) and sorted(y.tolist()) == [0, 3, 10]
    assert float(x.sum()) == 600.0
    assert dm.num_classes == 11 and dm.split_sizes["train"] == 6
    assert dm.split_names["test"] == [f"ibmGestureTest/user24_fluorescent/{k}.npy" for k in (0, 3, 10)]


def test_cifar10dvs_real_aedat4_and_fixed_split(tmp_path):
    make_cifar10dvs(tmp_path, CIFAR10DVS_CLASSES, per_class=20)
    dm = CIFAR10DVSDataModule(data_dir=str(tmp_path), batch_size=4, val_fraction=0, **SMALL)
    dm.setup()
    # 9:1 per class in numeric file order: files 18 and 19 of each class are the test set
    assert dm.split_names["test"][:2] == ["airplane/cifar10_airplane_18.aedat4", "airplane/cifar10_airplane_19.aedat4"]
    assert dm.split_sizes == {"train": 180, "val": 0, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 10, 2, 48, 48) and x.dtype == torch.float32
    frames, label = dm.test_set[5]
    assert label == 2 and float(frames.sum()) == 50.0  # decoded by the aedat decoder: every event counted


def test_cifar10dvs_with_the_msg_codes_frames_and_augmentation(tmp_path):
    """Frames counted on the 128×128 sensor and resized bilinearly, crop + flip + rotation, last batch dropped."""
    make_cifar10dvs(tmp_path, CIFAR10DVS_CLASSES, per_class=10)
    dm = CIFAR10DVSDataModule(data_dir=str(tmp_path), batch_size=4, val_fraction=0, resize="bilinear",
                              crop_padding=4, flip=True, rotation=15.0, max_roll=0, drop_last=True, **SMALL)
    dm.setup()
    assert dm.input_shape == (2, 48, 48) and dm.to_frames.target_size is None  # the cache holds sensor frames
    assert len(dm.train_dataloader()) == 90 // 4 and len(dm.test_dataloader()) == 3  # 22 full batches; test: all
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 10, 2, 48, 48)
    frames, _ = dm.test_set[5]
    counted = torch.as_tensor(dm.to_frames(dm.test_set.dataset.framed.recordings[dm.test_set.indices[5]][0]),
                              dtype=torch.float32)
    assert counted.shape == (10, 2, 128, 128)
    torch.testing.assert_close(frames, torch.nn.functional.interpolate(counted, size=(48, 48), mode="bilinear",
                                                                       align_corners=True))


def test_ncaltech101_bins_with_the_background_class(tmp_path):
    make_ncaltech(tmp_path, ("accordion", "airplanes", "BACKGROUND_Google", "yin_yang"))
    dm = NCaltech101DataModule(data_dir=str(tmp_path), time_steps=3, batch_size=6, val_fraction=0, **SMALL)
    dm.setup()
    assert dm.split_sizes == {"train": 36, "val": 0, "test": 4}
    x, y = next(iter(dm.test_dataloader()))
    # labels are positions in the fixed list of the 101 folder names, whichever folders are present
    assert len(NCALTECH101_CLASSES) == 101 and "Faces" not in NCALTECH101_CLASSES
    names = ["BACKGROUND_Google", "accordion", "airplanes", "yin_yang"]
    assert x.shape == (4, 3, 2, 48, 48) and y.tolist() == [NCALTECH101_CLASSES.index(n) for n in names]
    assert y.tolist() == [0, 4, 5, 100]


def test_shd_h5(tmp_path):
    rng = np.random.default_rng(4)
    write_shd(tmp_path / "SHD" / "shd_train.h5", 20, rng)
    write_shd(tmp_path / "SHD" / "shd_test.h5", 6, rng, labels=[0, 1, 2, 3, 4, 5])
    dm = SHDDataModule(data_dir=str(tmp_path), time_steps=8, channels=140, batch_size=6, val_fraction=0.1, **SMALL)
    dm.setup()
    assert dm.input_shape == (140,) and dm.split_sizes == {"train": 18, "val": 2, "test": 6}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (6, 8, 140) and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert float(x.sum()) == 6 * 80.0
    assert dm.split_names["test"][:2] == ["shd_test.h5[0]", "shd_test.h5[1]"]


def test_missing_dataset_names_path_layout_and_source(tmp_path):
    dm = NMNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"N-MNIST: {tmp_path / 'NMNIST'}: not found (download=False)")
    assert "NMNIST/Train/<0-9>/*.bin" in message and "garrickorchard.com" in message
    with pytest.raises(DatasetNotFoundError, match="SHD: .*: not found"):
        SHDDataModule(data_dir=str(tmp_path)).setup()


def test_failed_download_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def interrupted(self, staging_root):  # a download that dies half-way through extraction
        write_atis_bin(os.path.join(staging_root, "NMNIST", "Train", "0", "a.bin"), [1], [1], [0], [1])
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(NMNISTDataModule, "_fetch", interrupted)
    dm = NMNISTDataModule(data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="download failed: ConnectionError: network unreachable"):
        dm.prepare_data()
    assert os.listdir(tmp_path) == []


def test_corrupt_and_empty_event_files_are_named_when_read(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    empty = tmp_path / "NMNIST" / "Test" / "3" / "00000.bin"
    empty.write_bytes(b"")
    dm = NMNISTDataModule(data_dir=str(tmp_path), batch_size=10, val_fraction=0, cache="none", verify="off", **SMALL)
    dm.setup()
    with pytest.raises(CorruptEventFileError, match=f"^N-MNIST: {empty}: holds no events$"):
        next(iter(dm.test_dataloader()))
    broken = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "4.npy"
    os.makedirs(broken.parent)
    broken.write_bytes(b"not numpy")
    np.save(tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "5.npy", np.zeros((0, 4), dtype=int))
    os.makedirs(tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led")
    np.save(tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led" / "4.npy", np.ones((3, 4), dtype=int))
    gestures = DVSGestureDataModule(data_dir=str(tmp_path), val_fraction=0, cache="none", verify="off", **SMALL)
    gestures.setup()
    with pytest.raises(CorruptEventFileError, match=f"^DVS Gesture: {broken}: cannot decode: "):
        gestures.train_set[0]
    with pytest.raises(CorruptEventFileError, match="user01_led/5.npy: holds no events"):
        gestures.train_set[1]


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown cache 'ram'; valid choices: disk, memory, none"):
        NMNISTDataModule(cache="ram")
    with pytest.raises(ValueError, match="unknown resize 'nearest'; valid choices: events, bilinear"):
        NMNISTDataModule(resize="nearest")
    with pytest.raises(ValueError, match="resize: bilinear needs a target_size"):
        NMNISTDataModule(resize="bilinear")
    with pytest.raises(ValueError, match="crop_padding, max_roll and rotation must be >= 0"):
        NMNISTDataModule(rotation=-1.0)
    with pytest.raises(ValueError, match="time_window frames need duration >= time_window"):
        NMNISTDataModule(time_window=1000.0)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        NMNISTDataModule(val_fraction=1.0)
    with pytest.raises(ValueError, match="unknown verify 'fast'; valid choices: quick, full, off"):
        NMNISTDataModule(verify="fast")
    with pytest.raises(ValueError, match="unknown time_origin 'start'; valid choices: first_event, zero"):
        NMNISTDataModule(time_window=1000.0, duration=2000.0, time_origin="start")
