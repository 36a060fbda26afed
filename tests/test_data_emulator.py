"""The event-camera emulator obeys its contrast rule and is deterministic; the bundled event DataModule."""

import os

import numpy as np
import pytest
import torch
from sklearn.utils import Bunch

from spikegrad.data import EventDigitsDataModule
from spikegrad.data.emulator import EVENT_DTYPE, contrast_events, emulate_saccade_events, saccade_offsets


def test_contrast_rule_on_hand_built_sequence():
    eps, threshold = 0.1, 0.5
    # one sample, 1x3 pixels, four views; log(I + 0.1) of each value is given in the comments
    views = np.array(
        [
            [[0.0, 1.0, 0.5]],  # L = -2.303, 0.095, -0.511  (reference at t0)
            [[0.3, 1.0, 0.5]],  # pixel 0: +1.386 > 0.5 -> ON; ref -> -0.916
            [[0.4, 0.5, 0.5]],  # pixel 0: +0.223 no; pixel 1: -0.606 -> OFF; ref -> -0.511
            [[1.0, 0.5, 0.9]],  # pixel 0: +1.011 vs -0.916 -> ON; pixel 2: +0.511 > 0.5 -> ON
        ],
        dtype=np.float32,
    )[:, None]  # [K, N=1, H=1, W=3]
    times = np.array([0, 10, 20, 30])
    (events,) = contrast_events(views, times, threshold, eps)
    assert events.dtype == EVENT_DTYPE
    got = [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in events]
    assert got == [(0, 0, 10, 1), (1, 0, 20, 0), (0, 0, 30, 1), (2, 0, 30, 1)]


def test_change_below_threshold_accumulates_until_it_crosses():
    # +0.3 per view in log intensity with threshold 0.5: an event every second view, measured from the last event
    log_i = np.arange(7) * 0.3
    views = (np.exp(log_i) - 0.1).astype(np.float32)[:, None, None, None]
    (events,) = contrast_events(views, np.arange(7) * 1000, threshold=0.5, eps=0.1)
    assert events["t"].tolist() == [2000, 4000, 6000]
    assert events["p"].tolist() == [1, 1, 1]


def test_saccades_are_nmnist_triangle():
    offsets = saccade_offsets(4)
    assert len(offsets) == 13
    np.testing.assert_allclose(offsets[[0, 4, 8, 12]], [[0, 0], [3.5, 7], [7, 0], [0, 0]])


def test_emulated_saccades_are_deterministic_and_on_sensor():
    images = torch.zeros(2, 8, 8)
    images[0, 2:6, 3:5] = 1.0
    images[1, 1:7, 1:7] = torch.linspace(0, 1, 6)
    first = emulate_saccade_events(images, steps_per_saccade=5)
    second = emulate_saccade_events(images, steps_per_saccade=5)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert len(a) > 50
        assert a["x"].min() >= 0 and a["x"].max() < 34 and a["y"].min() >= 0 and a["y"].max() < 34
        assert np.all(np.diff(a["t"]) >= 0) and a["t"].max() == 300_000
        assert set(np.unique(a["p"]).tolist()) == {0, 1}


@pytest.fixture
def few_digits(monkeypatch):
    """``load_digits`` cut to 40 images (the emulator's output on all 1797 takes seconds)."""
    import sklearn.datasets

    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, size=(40, 8, 8)).astype(np.float64)
    target = np.arange(40) % 10
    monkeypatch.setattr(sklearn.datasets, "load_digits", lambda: Bunch(images=images, target=target))
    return images, target


def test_event_digits_datamodule_generates_caches_and_batches(tmp_path, few_digits):
    dm = EventDigitsDataModule(data_dir=str(tmp_path), time_steps=5, batch_size=8, steps_per_saccade=4)
    dm.prepare_data()
    path = dm.events_file
    assert os.path.dirname(path) == os.path.join(str(tmp_path), "EventDigits")
    assert "steps_per_saccade=4" in os.path.basename(path) and "threshold=0.3" in os.path.basename(path)
    mtime = os.path.getmtime(path)
    dm.setup("fit")
    assert dm.split_sizes == {"test": 8, "train": 29, "val": 3}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 5, 2, 34, 34) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.input_shape == (2, 34, 34) and dm.encoding == "sequence"
    # frames count the events: total over a sample = its number of events
    recordings = dm._load_parts()["all"]
    index = dm.test_set.indices[0]
    frames, label = dm.test_set[0]
    assert frames.sum() == len(recordings[index][0]) and label == few_digits[1][index]
    again = EventDigitsDataModule(data_dir=str(tmp_path), time_steps=5, batch_size=8, steps_per_saccade=4)
    again.prepare_data()
    assert os.path.getmtime(path) == mtime  # cached, not regenerated
    np.testing.assert_array_equal(again._load_parts()["all"][3][0], recordings[3][0])
