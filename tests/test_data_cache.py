"""The frame cache serves what the files hold now (delete / add / replace), and data_split.json names the files."""

import hashlib
import json
import os
import shutil

import lightning as L
import numpy as np
from lightning.pytorch.loggers import CSVLogger

from _data_files import make_ncaltech, make_nmnist, random_events, write_atis_bin
from spikegrad.data import NCaltech101DataModule, NMNISTDataModule, SHDDataModule

CLASSES = ("accordion", "airplanes")
FRAMES = {"time_steps": 3, "flip": False, "max_roll": 0, "val_fraction": 0, "allow_subset": True}


def served(dm):
    """Every sample of a fresh DataModule: name -> (frames, label, split)."""
    dm.setup()
    out = {}
    for split, subset in (("train", dm.train_set), ("test", dm.test_set)):
        for position, name in enumerate(dm.split_names[split]):
            frames, label = subset[position]
            out[name] = (frames.numpy(), int(label), split)
    return out


def assert_fresh(root):
    """The disk-cached DataModule serves exactly what an uncached one reads from the files now."""
    cached = served(NCaltech101DataModule(data_dir=str(root), **FRAMES))
    uncached = served(NCaltech101DataModule(data_dir=str(root), cache="none", **FRAMES))
    assert cached.keys() == uncached.keys()
    for name, (frames, label, split) in uncached.items():
        np.testing.assert_array_equal(cached[name][0], frames, err_msg=name)
        assert cached[name][1:] == (label, split), name
    return cached


def test_deleted_added_and_replaced_files_are_served_fresh(tmp_path):
    make_ncaltech(tmp_path, CLASSES, per_class=10)
    folder = tmp_path / "NCALTECH101" / "Caltech101"
    before = assert_fresh(tmp_path)  # fills the cache
    assert before["Caltech101/accordion/image_0010.bin"][2] == "test"

    # delete a training recording: every later position of the file list shifts (an index-keyed cache would
    # serve each sample the frames of its predecessor)
    os.remove(folder / "accordion" / "image_0001.bin")
    after = assert_fresh(tmp_path)
    assert "Caltech101/accordion/image_0001.bin" not in after and len(after) == 19

    # add a recording of another class folder: served with its own frames and label
    rng = np.random.default_rng(11)
    x, y, t, p = random_events(rng, 150, 200, 150, 300_000)
    write_atis_bin(str(folder / "yin_yang" / "image_0001.bin"), x, y, t, p)
    write_atis_bin(str(folder / "yin_yang" / "image_0002.bin"), x, y, t, p)
    after = assert_fresh(tmp_path)
    assert (
        after["Caltech101/yin_yang/image_0001.bin"][1] == 100
        and after["Caltech101/yin_yang/image_0001.bin"][0].sum() == 150
    )

    # replace a recording by another of the same size (a copy made later: another mtime)
    replaced = folder / "airplanes" / "image_0003.bin"
    old_frames, old_mtime = after["Caltech101/airplanes/image_0003.bin"][0], os.stat(replaced).st_mtime_ns
    x, y, t, p = random_events(rng, 100, 230, 170, 300_000)
    write_atis_bin(str(replaced), x, y, t, p)
    os.utime(replaced, ns=(old_mtime + 10**9, old_mtime + 10**9))
    after = assert_fresh(tmp_path)
    assert not np.array_equal(after["Caltech101/airplanes/image_0003.bin"][0], old_frames)

    # ... and by one of another size, keeping the old mtime
    write_atis_bin(str(replaced), x[:60], y[:60], t[:60], p[:60])
    os.utime(replaced, ns=(old_mtime, old_mtime))
    after = assert_fresh(tmp_path)
    assert after["Caltech101/airplanes/image_0003.bin"][0].sum() == 60


def test_cache_path_holds_every_frame_parameter(tmp_path):
    plain = NMNISTDataModule(data_dir=str(tmp_path), time_steps=8)
    other = NMNISTDataModule(data_dir=str(tmp_path), time_steps=8, first_saccade_only=True, denoise_time=5000)
    assert os.path.basename(plain.cache_dir).startswith("format=2-n_time_bins=8-")
    assert "denoise_time=5000-first_saccade_only=True-format=2-n_time_bins=8-" in other.cache_dir
    assert plain.cache_dir != other.cache_dir
    shd = SHDDataModule(data_dir=str(tmp_path), time_window=10_000, duration=1_000_000, channels=140)
    assert "duration=1000000-format=2-target_size=140x1-time_origin=first_event-time_window=10000-" in shd.cache_dir
    on_clock = SHDDataModule(data_dir=str(tmp_path), time_window=10_000, duration=1_000_000, time_origin="zero")
    assert "time_origin=zero" in on_clock.cache_dir and shd.time_steps == 100


def split_file(root, log_dir):
    dm = NMNISTDataModule(data_dir=str(root), time_steps=2, val_fraction=0.2, allow_subset=True)
    dm.trainer = L.Trainer(logger=CSVLogger(str(log_dir)), enable_progress_bar=False)
    dm.setup()
    with open(os.path.join(dm.trainer.log_dir, "data_split.json")) as f:
        return json.load(f)


def test_data_split_lists_file_names_and_digests_that_match_between_copies(tmp_path):
    make_nmnist(tmp_path / "a", per_class=2)
    split = split_file(tmp_path / "a", tmp_path / "logs_a")
    assert split["dataset"] == "N-MNIST" and split["root"] == str(tmp_path / "a" / "NMNIST")
    assert [len(split[k]) for k in ("train", "val", "test")] == [16, 4, 20]
    assert split["test"][:2] == ["Test/0/00000.bin", "Test/0/00001.bin"]
    assert not set(split["train"]) & set(split["val"])
    for name in ("train", "val", "test"):  # the digest is SHA-256 of the listed names, one per line
        assert split["sha256"][name] == hashlib.sha256("\n".join(split[name]).encode()).hexdigest()
    # another copy of the same files elsewhere: the same split and digests
    shutil.copytree(tmp_path / "a" / "NMNIST", tmp_path / "b" / "NMNIST")
    copy = split_file(tmp_path / "b", tmp_path / "logs_b")
    assert copy["sha256"] == split["sha256"] and copy["train"] == split["train"]
    # a copy with one file renamed: the digests say so
    os.rename(
        tmp_path / "b" / "NMNIST" / "Test" / "4" / "00001.bin", tmp_path / "b" / "NMNIST" / "Test" / "4" / "7.bin"
    )
    renamed = split_file(tmp_path / "b", tmp_path / "logs_c")
    assert renamed["sha256"]["test"] != split["sha256"]["test"]
