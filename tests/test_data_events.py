"""Event DataModules on tiny files fabricated in the real on-disk formats, plus missing and corrupt data."""

import os
import pickle
from functools import partial

import aedat
import h5py
import lightning as L
import numpy as np
import pytest
import torch

from spikegrad.data import (
    CIFAR10DVSDataModule,
    CorruptEventFileError,
    DatasetNotFoundError,
    DVSGestureDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
    SHDDataModule,
)
from spikegrad.data.frames import EventsToFrames, FramesToTensor
from spikegrad.data.tonic_sets import CIFAR10DVS_CLASSES
from spikegrad.models import SpikingMLP
from spikegrad.module import SpikingClassifier


def random_events(rng, n, width, height, duration_us):
    t = np.sort(rng.integers(0, duration_us, n))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n)


def write_atis_bin(path, x, y, t, p):
    """N-MNIST / N-Caltech101 format: 5 bytes per event, x | y | p<<7 + t[22:16] | t[15:8] | t[7:0]."""
    raw = np.zeros((len(x), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((np.asarray(t) >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (np.asarray(t) >> 8) & 0xFF, np.asarray(t) & 0xFF
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw.tofile(path)


def make_nmnist(root, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    for part in ("Train", "Test"):
        for digit in range(10):
            for i in range(per_class):
                path = os.path.join(root, "NMNIST", part, str(digit), f"{i:05d}.bin")
                write_atis_bin(path, *random_events(rng, 300, 34, 34, 300_000))


def test_nmnist_batches_and_disk_cache(tmp_path):
    make_nmnist(tmp_path)
    dm = NMNISTDataModule(data_dir=str(tmp_path), time_steps=4, batch_size=5, val_fraction=0.25, download=False)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.split_sizes == {"train": 15, "val": 5, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (5, 4, 2, 34, 34) and x.dtype == torch.float32 and y.dtype == torch.int64
    # every event lands in one frame, and the test labels follow the sorted digit folders
    xs, ys = zip(*(dm.test_set[i] for i in range(20)), strict=True)
    assert [float(f.sum()) for f in xs] == [300.0] * 20
    assert list(ys) == [d for d in range(10) for _ in range(2)]
    # the cache folder names the frame parameters
    cache = os.path.join(tmp_path, "cache", "NMNIST")
    (key,) = os.listdir(cache)
    assert key.startswith("n_time_bins=4-")
    assert len(os.listdir(os.path.join(cache, key, "test"))) == 20
    pickle.dumps(dm.train_set)  # DataLoader workers started by spawn receive the dataset pickled


def test_nmnist_through_the_model(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    dm = NMNISTDataModule(data_dir=str(tmp_path), time_steps=3, batch_size=10, val_fraction=0, cache="none")
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
    dm = NMNISTDataModule(data_dir=str(tmp_path), time_steps=2, batch_size=4, num_workers=1, val_fraction=0)
    dm.setup()
    labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert labels.tolist() == list(range(10))


def test_dvs_gesture_npy(tmp_path):
    rng = np.random.default_rng(1)
    for part, users in (("ibmGestureTrain", (1, 2)), ("ibmGestureTest", (24,))):
        for user in users:
            folder = os.path.join(tmp_path, "DVSGesture", part, f"user{user:02d}_fluorescent")
            os.makedirs(folder)
            for label in (0, 3, 10):
                x, y, t, p = random_events(rng, 200, 128, 128, 2000)  # t in ms, as tonic's copy
                np.save(os.path.join(folder, f"{label}.npy"), np.stack([x, y, p, t], axis=1))
    dm = DVSGestureDataModule(data_dir=str(tmp_path), time_steps=5, target_size=(32, 32), batch_size=3, val_fraction=0)
    dm.setup()
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (3, 5, 2, 32, 32) and sorted(y.tolist()) == [0, 3, 10]
    assert float(x.sum()) == 600.0
    assert dm.num_classes == 11 and dm.split_sizes["train"] == 6


class FakeAedatDecoder:
    """Stands in for the Rust AEDAT4 decoder (``aedat.Decoder``), the narrowest point of tonic's reader:
    the fabricated ``.aedat4`` files hold an ``.npy`` event packet, which it returns as one packet."""

    def __init__(self, path):
        self.events = np.load(path)

    def id_to_stream(self):
        return {0: {"type": "events", "width": 128, "height": 128}}

    def __iter__(self):
        yield {"stream_id": 0, "events": self.events}


def write_aedat_like(path, rng, n):
    events = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "?")])
    x, y, t, p = random_events(rng, n, 128, 128, 1_000_000)
    events["t"], events["x"], events["y"], events["on"] = t, x, y, p.astype(bool)
    with open(path, "wb") as f:
        np.save(f, events)


def test_cifar10dvs_fixed_split(tmp_path, monkeypatch):
    monkeypatch.setattr(aedat, "Decoder", FakeAedatDecoder)
    rng = np.random.default_rng(2)
    for name in CIFAR10DVS_CLASSES:
        os.makedirs(tmp_path / "CIFAR10DVS" / name)
        for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19):
            write_aedat_like(tmp_path / "CIFAR10DVS" / name / f"cifar10_{name}_{i}.aedat4", rng, 50)
    dm = CIFAR10DVSDataModule(data_dir=str(tmp_path), batch_size=4, val_fraction=0)
    dm.setup()
    # 9:1 per class in numeric file order: files 18 and 19 of each class are the test set
    recordings = dm.test_set.dataset.dataset.dataset
    test_names = [os.path.basename(recordings.names[i]) for i in dm.test_set.indices]
    assert test_names[:2] == ["cifar10_airplane_18.aedat4", "cifar10_airplane_19.aedat4"]
    assert dm.split_sizes == {"train": 180, "val": 0, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 10, 2, 48, 48) and x.dtype == torch.float32
    frames, label = dm.test_set[5]
    assert label == 2 and float(frames.sum()) == 50.0


def test_ncaltech101_bins(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("accordion", "airplanes", "BACKGROUND_Google", "yin_yang"):
        for i in range(1, 11):
            path = tmp_path / "NCALTECH101" / "Caltech101" / name / f"image_{i:04d}.bin"
            x, y, t, p = random_events(rng, 100, 230, 170, 300_000)
            write_atis_bin(str(path), x + 5, y + 3, t, p)
    dm = NCaltech101DataModule(data_dir=str(tmp_path), time_steps=3, batch_size=6, val_fraction=0)
    dm.setup()
    assert dm.split_sizes["test"] == 3 and dm.split_sizes["train"] == 27  # background left out
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (3, 3, 2, 48, 48) and y.tolist() == [0, 1, 2]


def write_shd(path, n, rng):
    with h5py.File(path, "w") as f:
        vlen_f, vlen_u = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
        times = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
        units = f.create_dataset("spikes/units", (n,), dtype=vlen_u)
        for i in range(n):
            times[i] = np.sort(rng.uniform(0, 0.9, 80)).astype(np.float32)  # seconds
            units[i] = rng.integers(0, 700, 80).astype(np.uint16)
        f["labels"] = (np.arange(n) % 20).astype(np.uint8)
        f["extra/keys"] = np.array([b"digit"] * 20)
        f["extra/speaker"] = np.zeros(n, dtype=np.uint8)


def test_shd_h5(tmp_path):
    rng = np.random.default_rng(4)
    os.makedirs(tmp_path / "SHD")
    write_shd(tmp_path / "SHD" / "shd_train.h5", 20, rng)
    write_shd(tmp_path / "SHD" / "shd_test.h5", 6, rng)
    dm = SHDDataModule(data_dir=str(tmp_path), time_steps=8, channels=140, batch_size=6, val_fraction=0.1)
    dm.setup()
    assert dm.input_shape == (140,) and dm.split_sizes == {"train": 18, "val": 2, "test": 6}
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (6, 8, 140) and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert float(x.sum()) == 6 * 80.0


def test_missing_dataset_names_path_layout_and_source(tmp_path):
    dm = NMNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"N-MNIST not found at {tmp_path / 'NMNIST'}")
    assert "NMNIST/Train/<0-9>/*.bin" in message and "garrickorchard.com" in message
    with pytest.raises(DatasetNotFoundError, match="SHD not found"):
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


def test_corrupt_and_empty_event_files_are_named(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    empty = tmp_path / "NMNIST" / "Test" / "3" / "00000.bin"
    empty.write_bytes(b"")
    dm = NMNISTDataModule(data_dir=str(tmp_path), batch_size=10, val_fraction=0, cache="none")
    dm.setup()
    with pytest.raises(CorruptEventFileError, match=f"event file {empty} holds no events"):
        next(iter(dm.test_dataloader()))
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not numpy")
    os.makedirs(tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led")
    os.makedirs(tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led")
    os.replace(broken, tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "4.npy")
    np.save(tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led" / "4.npy", np.zeros((0, 4), dtype=int))
    gestures = DVSGestureDataModule(data_dir=str(tmp_path), val_fraction=0, cache="none")
    gestures.setup()
    with pytest.raises(CorruptEventFileError, match="cannot read event file .*user01_led/4.npy"):
        gestures.train_set[0]


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown cache 'ram'; valid choices: disk, memory, none"):
        NMNISTDataModule(cache="ram")
    with pytest.raises(ValueError, match="time_window frames need duration >= time_window"):
        NMNISTDataModule(time_window=1000.0)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        NMNISTDataModule(val_fraction=1.0)


def test_fixed_time_windows_give_the_same_t_for_every_recording():
    to_frames = EventsToFrames(sensor_size=(4, 4, 2), time_window=100.0, duration=300.0)
    events = np.zeros(4, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    events["t"] = [0, 99, 150, 420]  # the last one is past the duration
    events["x"] = [0, 1, 2, 3]
    frames = to_frames(events)
    assert to_frames.time_steps == 3 and frames.shape == (3, 2, 4, 4)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [2.0, 1.0, 0.0]
    bins = EventsToFrames(sensor_size=(4, 4, 2), n_time_bins=2)(events)
    assert bins.sum(axis=(1, 2, 3)).tolist() == [3.0, 1.0]  # equal bins over [0, 420], last event included


def test_frame_augmentation_moves_all_time_steps_together():
    torch.manual_seed(0)
    frames = np.zeros((3, 2, 8, 8), dtype=np.float32)
    frames[:, :, 2, 1] = 1.0  # one lit pixel, the same at every step
    for augment in (FramesToTensor(max_roll=3), FramesToTensor(flip=True), FramesToTensor(crop_padding=2)):
        for _ in range(5):
            out = augment(frames)
            assert out.shape == (3, 2, 8, 8)
            lit = [tuple(torch.nonzero(out[t, 0]).flatten().tolist()) for t in range(3)]
            assert lit[0] == lit[1] == lit[2]
    assert FramesToTensor(flip=True)(frames).sum() == 6.0
    mirrored = {tuple(torch.nonzero(FramesToTensor(flip=True)(frames)[0, 0]).flatten().tolist()) for _ in range(20)}
    assert mirrored == {(2, 1), (2, 6)}
    assert FramesToTensor(binarize=True)(frames * 4).max() == 1.0


def test_cache_path_holds_every_frame_parameter(tmp_path):
    plain = NMNISTDataModule(data_dir=str(tmp_path), time_steps=8)
    other = NMNISTDataModule(data_dir=str(tmp_path), time_steps=8, first_saccade_only=True, denoise_time=5000)
    assert os.path.basename(plain.cache_dir).startswith("n_time_bins=8-")
    assert "denoise_time=5000-first_saccade_only=True-n_time_bins=8-" in other.cache_dir
    assert plain.cache_dir != other.cache_dir
    shd = SHDDataModule(data_dir=str(tmp_path), time_window=10_000, duration=1_000_000, channels=140)
    assert "duration=1000000-target_size=140x1-time_window=10000-" in shd.cache_dir and shd.time_steps == 100
