"""Checks at setup on fabricated defects in the real formats: damaged files named, partial sets refused, stray
entries skipped with a warning, events outside the sensor, and one-line errors from DataLoader workers."""

import gc
import logging
import os

import h5py
import numpy as np
import pytest
import torch.utils.data
import yaml

from _data_files import make_cifar10dvs, make_gestures, make_ncaltech, make_nmnist, write_atis_bin, write_shd
from _tiny_run import run_main, tiny_config
from spikegrad.data import (
    CIFAR10DVSDataModule,
    CorruptEventFileError,
    CorruptFileError,
    DataWarning,
    DVSGestureDataModule,
    IncompleteDatasetError,
    NCaltech101DataModule,
    NMNISTDataModule,
    SHDDataModule,
)
from spikegrad.data.errors import WorkerTraceback
from spikegrad.data.tonic_sets import NCALTECH101_CLASSES

SMALL = {"allow_subset": True, "val_fraction": 0, "cache": "none"}


def one_line(error) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def random_bytes(path, size, seed=0):
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())


# --- file sizes and headers (verify: quick) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "cause"),
    [(1003, "1003 bytes is not a whole number of 5-byte ATIS events"), (0, "empty file (0 bytes)")],
)
def test_bin_files_of_impossible_size_are_refused_at_setup(tmp_path, size, cause):
    make_nmnist(tmp_path, per_class=1)
    damaged = tmp_path / "NMNIST" / "Train" / "7" / "00000.bin"
    random_bytes(damaged, size)
    with pytest.raises(CorruptEventFileError) as info:
        NMNISTDataModule(data_dir=str(tmp_path), **SMALL).setup()
    assert one_line(info.value).startswith(f"N-MNIST: {damaged}: {cause}")


def test_random_bytes_in_a_bin_file_are_refused_by_full_verify_and_when_read(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    damaged = tmp_path / "NMNIST" / "Test" / "2" / "00000.bin"
    random_bytes(damaged, 1500)  # 300 "events": a size quick cannot tell from a recording
    with pytest.raises(CorruptEventFileError) as info:
        NMNISTDataModule(data_dir=str(tmp_path), verify="full", **SMALL).setup()
    message = one_line(info.value)
    assert message.startswith(f"N-MNIST: {damaged}: ") and "fall outside the 34×34 sensor" in message
    dm = NMNISTDataModule(data_dir=str(tmp_path), **SMALL)
    dm.setup()  # quick: sizes are fine
    with pytest.raises(CorruptEventFileError, match=f"^N-MNIST: {damaged}: .* events .* fall outside"):
        dm.test_set[2]  # never served with the few events that happen to land on the sensor


def test_damaged_npy_aedat4_and_h5_headers_are_named(tmp_path):
    make_gestures(tmp_path)
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user02_fluorescent"
    good = np.load(folder / "3.npy")
    (folder / "3.npy").write_bytes((folder / "3.npy").read_bytes()[:-40])  # truncated
    with pytest.raises(CorruptEventFileError, match=f"^DVS Gesture: {folder / '3.npy'}: .* bytes, the .npy header"):
        DVSGestureDataModule(data_dir=str(tmp_path), **SMALL).setup()
    np.save(folder / "3.npy", good[:, :3])  # three columns
    with pytest.raises(CorruptEventFileError, match=r"3.npy: .npy header holds a int64 array of shape \(200, 3\)"):
        DVSGestureDataModule(data_dir=str(tmp_path), **SMALL).setup()

    make_cifar10dvs(tmp_path, CIFAR10DVSDataModule.class_names, per_class=2, events=20)
    damaged = tmp_path / "CIFAR10DVS" / "dog" / "cifar10_dog_1.aedat4"
    random_bytes(damaged, 500)
    with pytest.raises(CorruptEventFileError, match=f"^CIFAR10-DVS: {damaged}: not an AEDAT4 file"):
        CIFAR10DVSDataModule(data_dir=str(tmp_path), **SMALL).setup()

    rng = np.random.default_rng(0)
    write_shd(tmp_path / "SHD" / "shd_train.h5", 20, rng)
    write_shd(tmp_path / "SHD" / "shd_test.h5", 20, rng)
    with h5py.File(tmp_path / "SHD" / "shd_test.h5", "a") as f:
        del f["spikes/units"]
    with pytest.raises(CorruptFileError, match=f"^SHD: {tmp_path / 'SHD' / 'shd_test.h5'}: HDF5 file without spikes"):
        SHDDataModule(data_dir=str(tmp_path), **SMALL).setup()
    (tmp_path / "SHD" / "shd_test.h5").write_bytes(b"\x89HDF\r\n")
    with pytest.raises(CorruptFileError, match="shd_test.h5: not a readable HDF5 file"):
        SHDDataModule(data_dir=str(tmp_path), verify="off", **SMALL).setup()  # the labels are needed to list it


# --- counts and classes --------------------------------------------------------------------------------------------
def test_a_partly_extracted_set_is_refused_and_a_reduced_copy_needs_the_switch(tmp_path, monkeypatch):
    make_nmnist(tmp_path, per_class=2)
    # the published counts, scaled down to the fabricated copy: then the full copy passes without a warning
    monkeypatch.setattr(NMNISTDataModule, "parts", {"train": ("Train", 20), "test": ("Test", 20)})
    NMNISTDataModule(data_dir=str(tmp_path), val_fraction=0, cache="none").setup()
    os.remove(tmp_path / "NMNIST" / "Train" / "5" / "00001.bin")
    with pytest.raises(IncompleteDatasetError) as info:
        NMNISTDataModule(data_dir=str(tmp_path), val_fraction=0, cache="none").setup()
    assert one_line(info.value) == (
        f"N-MNIST: {tmp_path / 'NMNIST' / 'Train'}: 19 recordings, fewer than the 20 of the published set (a partly "
        "extracted, damaged or mixed copy? delete it to download it again), or set allow_subset: true to use a "
        "deliberately reduced copy"
    )
    with pytest.warns(DataWarning, match=r"reduced copy accepted \(allow_subset: true\): train 19 of 20 recordings"):
        NMNISTDataModule(data_dir=str(tmp_path), **SMALL).setup()


def test_missing_class_folders_are_refused_and_cannot_renumber_labels(tmp_path, monkeypatch):
    make_ncaltech(tmp_path, ("BACKGROUND_Google", "accordion", "yin_yang"), per_class=10)
    monkeypatch.setattr(NCaltech101DataModule, "parts", {"all": ("Caltech101", 30)})
    with pytest.raises(IncompleteDatasetError) as info:
        NCaltech101DataModule(data_dir=str(tmp_path), val_fraction=0).setup()
    message = one_line(info.value)
    assert message.startswith(f"N-Caltech101: {tmp_path / 'NCALTECH101' / 'Caltech101'}: no recordings of 98 of the ")
    assert "101 classes: Faces_easy, Leopards, Motorbikes, airplanes," in message
    # a reduced copy on request: the labels stay the positions in the fixed class list
    dm = NCaltech101DataModule(data_dir=str(tmp_path), **SMALL)
    dm.setup()
    assert sorted({label for _, label in (dm.test_set[i] for i in range(len(dm.test_set)))}) == [0, 4, 100]
    assert NCALTECH101_CLASSES[100] == "yin_yang"


def test_cifar10dvs_recordings_per_class(tmp_path, monkeypatch):
    make_cifar10dvs(tmp_path, CIFAR10DVSDataModule.class_names, per_class=3, events=20)
    monkeypatch.setattr(CIFAR10DVSDataModule, "parts", {"all": ("", 30)})
    monkeypatch.setattr(CIFAR10DVSDataModule, "published_per_class", 3)
    CIFAR10DVSDataModule(data_dir=str(tmp_path), val_fraction=0).setup()
    folder = tmp_path / "CIFAR10DVS"
    os.replace(folder / "cat" / "cifar10_cat_2.aedat4", folder / "dog" / "cifar10_cat_2.aedat4")
    with pytest.raises(IncompleteDatasetError, match=r"differ from the published 3 each: cat 2, dog 4$"):
        CIFAR10DVSDataModule(data_dir=str(tmp_path), val_fraction=0).setup()


# --- stray entries -------------------------------------------------------------------------------------------------
def test_stray_folders_and_files_are_skipped_with_a_warning_naming_them(tmp_path):
    make_gestures(tmp_path)
    train = tmp_path / "DVSGesture" / "ibmGestureTrain"
    os.makedirs(train / "__MACOSX" / "user01_fluorescent")
    (train / "__MACOSX" / "user01_fluorescent" / "._0.npy").write_bytes(b"\x00\x05\x16\x07")
    (train / "user01_fluorescent" / ".DS_Store").write_bytes(b"\x00")
    (train / "user01_fluorescent" / "notes.txt").write_text("x")
    (tmp_path / "DVSGesture" / "ibmGestureTrain.tar.gz").write_bytes(b"\x1f\x8b")  # an archive: ignored
    dm = DVSGestureDataModule(data_dir=str(tmp_path), **SMALL)
    with pytest.warns(DataWarning) as warned:
        dm.setup()
    (stray,) = [str(w.message) for w in warned if "skipped" in str(w.message)]
    assert stray.startswith(f"DVS Gesture: {tmp_path / 'DVSGesture'}: skipped 3 entries that are not part of the ")
    assert stray.endswith(
        ": ibmGestureTrain/__MACOSX, ibmGestureTrain/user01_fluorescent/.DS_Store, "
        "ibmGestureTrain/user01_fluorescent/notes.txt"
    )
    assert dm.split_sizes["train"] == 6  # the recordings, and nothing else


# --- verify: full --------------------------------------------------------------------------------------------------
def test_full_verify_reports_events_outside_the_sensor(tmp_path, caplog):
    make_gestures(tmp_path)
    path = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_fluorescent" / "3.npy"
    events = np.load(path)
    events[0, 0] = 128  # one of 200 events just right of the 128-pixel sensor: 0.5%, above the tolerance
    np.save(path, events)
    with pytest.raises(CorruptEventFileError, match=f"^DVS Gesture: {path}: 1 of 200 events \\(0.5%\\) fall outside"):
        DVSGestureDataModule(data_dir=str(tmp_path), verify="full", **SMALL).setup()
    events = np.concatenate([np.load(tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_fluorescent" / "0.npy")] * 6)
    events[0, 1] = 200  # one of 1200 events: below the tolerance (0.1%), counted and reported
    np.save(path, events)
    with caplog.at_level(logging.INFO):
        DVSGestureDataModule(data_dir=str(tmp_path), verify="full", **SMALL).setup()
    (line,) = [r.getMessage() for r in caplog.records if "verify full" in r.getMessage()]
    assert line.startswith("DVS Gesture: verify full: 9 recordings, 2800 events decoded in ")
    assert "; 1 events (3.57e-04) outside the sensor" in line


# --- errors from DataLoader workers --------------------------------------------------------------------------------
@pytest.fixture
def quick_worker_shutdown(monkeypatch):
    """torch waits up to MP_STATUS_CHECK_INTERVAL (5 s) for each worker of a loader that raised when the loader is
    collected; shortened here, and collected within the test instead of in a later one."""
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.2)
    yield
    gc.collect()


def test_worker_errors_are_one_line_with_the_path_first(tmp_path, quick_worker_shutdown):
    make_nmnist(tmp_path, per_class=1)
    damaged = tmp_path / "NMNIST" / "Train" / "4" / "00000.bin"
    random_bytes(damaged, 1500)
    for verify, run in (
        ("full", lambda dm: dm.setup()),  # full verify reads in num_workers workers
        ("quick", lambda dm: (dm.setup(), list(dm.train_dataloader()))),
    ):
        dm = NMNISTDataModule(data_dir=str(tmp_path), num_workers=1, batch_size=4, verify=verify, **SMALL)
        with pytest.raises(CorruptEventFileError) as info:
            run(dm)
        message = one_line(info.value)
        assert message.startswith(f"N-MNIST: {damaged}: ") and message.endswith("(in DataLoader worker 0)")
        assert info.value.path == str(damaged) and len(message) < 250
        assert isinstance(info.value.__cause__, WorkerTraceback)
        assert "Traceback (most recent call last)" in info.value.worker_traceback
        del info


def test_the_cli_prints_a_worker_data_error_as_one_line(tmp_path, capsys, quick_worker_shutdown):
    make_nmnist(tmp_path, per_class=1)
    damaged = tmp_path / "NMNIST" / "Train" / "6" / "00000.bin"
    random_bytes(damaged, 1000)
    config = tiny_config(tmp_path)
    with open(config) as f:
        settings = yaml.safe_load(f)
    settings["data"] = {
        "class_path": "spikegrad.data.NMNISTDataModule",
        "init_args": {"data_dir": str(tmp_path), "num_workers": 1, "batch_size": 10, "time_steps": 3, **SMALL},
    }
    with open(config, "w") as f:
        yaml.safe_dump(settings, f)
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config], cwd=tmp_path)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"spikegrad: error: N-MNIST: {damaged}: "), lines


def test_labels_outside_the_classes_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    write_shd(tmp_path / "SHD" / "shd_train.h5", 20, rng)
    write_shd(tmp_path / "SHD" / "shd_test.h5", 3, rng, labels=[0, 25, 1])
    with pytest.raises(CorruptEventFileError, match=r"^SHD: .*shd_test.h5\[1\]: label 25 outside 0..19$"):
        SHDDataModule(data_dir=str(tmp_path), verify="off", **SMALL).setup()


def test_out_of_range_atis_coordinates_of_a_real_layout(tmp_path):
    make_nmnist(tmp_path, per_class=1)
    path = tmp_path / "NMNIST" / "Test" / "0" / "00000.bin"
    x = np.full(100, 40)  # a 40-pixel-wide recording in an N-MNIST folder
    write_atis_bin(str(path), x, np.zeros(100, int), np.arange(100), np.zeros(100, int))
    dm = NMNISTDataModule(data_dir=str(tmp_path), **SMALL)
    dm.setup()
    with pytest.raises(CorruptEventFileError, match="100 of 100 events .100.0%. fall outside the 34×34 sensor"):
        dm.test_set[0]
