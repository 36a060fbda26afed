"""Events to frames: time windows from each recording's first event, counts that cannot overflow, augmentation."""

import math

import numpy as np
import pytest
import tonic.transforms as tt
import torch

from _data_files import make_gestures, write_gesture_npy
from spikegrad.data import DataError, DVSGestureDataModule
from spikegrad.data.frames import EventsToFrames, FramesToTensor

EVENTS = [("x", int), ("y", int), ("t", int), ("p", int)]


def events_at(t, x=None):
    events = np.zeros(len(t), dtype=EVENTS)
    events["t"] = t
    events["x"] = np.arange(len(t)) % 4 if x is None else x
    return events


def test_fixed_time_windows_give_the_same_t_for_every_recording():
    to_frames = EventsToFrames(sensor_size=(4, 4, 2), time_window=100.0, duration=300.0)
    events = events_at([0, 99, 150, 420])  # the last one is past the duration
    frames = to_frames(events)
    assert to_frames.time_steps == 3 and frames.shape == (3, 2, 4, 4)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [2, 1, 0]
    bins = EventsToFrames(sensor_size=(4, 4, 2), n_time_bins=2)(events)
    assert bins.sum(axis=(1, 2, 3)).tolist() == [3, 1]  # equal bins over [0, 420], last event included


def test_time_windows_start_at_each_recordings_first_event():
    late = events_at(np.array([0, 99, 150, 420]) + 10_000_000)  # a clock that starts at 10 s
    frames = EventsToFrames(sensor_size=(4, 4, 2), time_window=100.0, duration=300.0)(late)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [2, 1, 0]  # the same frames as the recording starting at 0
    # the recording's own clock on request: the late recording has no event in [0, 300) µs, which is an error
    on_clock = EventsToFrames(sensor_size=(4, 4, 2), time_window=100.0, duration=300.0, time_origin="zero")
    assert on_clock(events_at([0, 99, 150, 420])).sum(axis=(1, 2, 3)).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match=r"no event inside the frames' time span \[0, 300\) µs: .* 10000000 to"):
        on_clock(late)


def test_the_origin_is_the_first_event_before_denoising():
    # the isolated first event is removed by Denoise, the windows still start at it: frames are placed on the
    # recording's timeline, not on whichever event survives the filters
    events = events_at([1000, 5000, 5001, 5002], x=[0, 2, 3, 2])
    events["y"] = [3, 1, 1, 1]  # tonic's Denoise keeps the last two (4-neighbours within 100 µs)
    frames = EventsToFrames(sensor_size=(4, 4, 2), time_window=2000.0, duration=6000.0, denoise_time=100)(events)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [0, 0, 2]


def test_late_starting_gesture_recordings_are_framed_from_their_first_event(tmp_path):
    rng = np.random.default_rng(7)
    make_gestures(tmp_path, users=(("ibmGestureTrain", (1,)), ("ibmGestureTest", (24,))), labels=(0,))
    late = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_fluorescent" / "3.npy"
    write_gesture_npy(late, rng, n=200, start_ms=10_000)  # starts 10 s into the original recording
    settings = {"time_window": 100_000.0, "duration": 2_000_000.0, "val_fraction": 0, "cache": "none"}
    dm = DVSGestureDataModule(data_dir=str(tmp_path), allow_subset=True, **settings)
    dm.setup()
    frames, label = dm.test_set[1]
    assert label == 3 and frames.shape[0] == 20 and float(frames.sum()) == 200.0  # every event in the 2 s
    on_clock = DVSGestureDataModule(data_dir=str(tmp_path), allow_subset=True, time_origin="zero", **settings)
    on_clock.setup()
    with pytest.raises(DataError, match=f"^DVS Gesture: {late}: no event inside the frames' time span"):
        on_clock.test_set[1]


def test_counts_equal_tonics_to_frame_below_its_int16_limit():
    rng = np.random.default_rng(0)
    events = np.zeros(3000, dtype=EVENTS)
    events["x"], events["y"], events["p"] = (
        rng.integers(0, 16, 3000),
        rng.integers(0, 12, 3000),
        rng.integers(0, 2, 3000),
    )
    events["t"] = np.sort(rng.integers(5_000, 905_000, 3000))
    first, last = int(events["t"][0]), int(events["t"][-1])
    window = -(-(last - first + 1) // 7)
    reference = tt.ToFrame(sensor_size=(16, 12, 2), time_window=window, start_time=first, end_time=first + 7 * window)
    np.testing.assert_array_equal(EventsToFrames(sensor_size=(16, 12, 2), n_time_bins=7)(events), reference(events))
    windows = EventsToFrames(sensor_size=(16, 12, 2), time_window=50_000.0, duration=400_000.0)
    reference = tt.ToFrame(sensor_size=(16, 12, 2), time_window=50_000, start_time=first, end_time=first + 400_000)
    np.testing.assert_array_equal(windows(events), reference(events))


@pytest.mark.parametrize("n_events", [32_768, 40_000, 70_000])
def test_counts_do_not_overflow_in_one_pixel_and_bin(n_events):
    # tonic's ToFrame accumulates in int16: 40,000 events would come out as -25,536
    events = events_at(np.arange(n_events), x=np.full(n_events, 2))
    for frames in (
        EventsToFrames(sensor_size=(4, 4, 2), n_time_bins=1)(events),
        EventsToFrames(sensor_size=(34, 34, 2), n_time_bins=1, target_size=(1, 1))(events),
    ):
        assert frames.dtype == np.int32 and int(frames.max()) == n_events and int(frames.sum()) == n_events
    tensor = FramesToTensor()(EventsToFrames(sensor_size=(4, 4, 2), n_time_bins=1)(events))
    assert tensor.dtype == torch.float32 and float(tensor.max()) == n_events


def test_frame_augmentation_moves_all_time_steps_together():
    torch.manual_seed(0)
    frames = np.zeros((3, 2, 8, 8), dtype=np.float32)
    frames[:, :, 2, 1] = 1.0  # one lit pixel, the same at every step
    for augment in (FramesToTensor(max_roll=3), FramesToTensor(flip=True), FramesToTensor(crop_padding=2),
                    FramesToTensor(rotation=15.0)):
        for _ in range(5):
            out = augment(frames)
            assert out.shape == (3, 2, 8, 8)
            lit = [tuple(torch.nonzero(out[t, 0]).flatten().tolist()) for t in range(3)]
            assert lit[0] == lit[1] == lit[2]
    assert FramesToTensor(flip=True)(frames).sum() == 6.0
    mirrored = {tuple(torch.nonzero(FramesToTensor(flip=True)(frames)[0, 0]).flatten().tolist()) for _ in range(20)}
    assert mirrored == {(2, 1), (2, 6)}
    assert FramesToTensor(binarize=True)(frames * 4).max() == 1.0


def test_rotation_turns_every_step_by_one_angle_within_the_range():
    torch.manual_seed(0)
    frames = np.zeros((2, 1, 33, 33), dtype=np.float32)
    frames[:, :, 16, 4:29] = 1.0  # a horizontal bar through the centre, the same at both steps
    angles = set()
    for _ in range(30):
        out = FramesToTensor(rotation=15.0)(frames)
        assert torch.equal(out[0], out[1])
        y, x = torch.nonzero(out[0, 0], as_tuple=True)
        slope = float(torch.linalg.lstsq(torch.stack([x.float(), torch.ones_like(x.float())], 1),
                                         y.float().unsqueeze(1)).solution[0])
        angle = math.degrees(math.atan(slope))
        assert abs(angle) <= 15.0 + 2.5  # nearest-neighbour rotation of a 25-pixel bar
        angles.add(round(angle))
    assert len(angles) > 5


def test_bilinear_resize_interpolates_each_frame_with_aligned_corners():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 4, (3, 2, 128, 128)).astype(np.uint8)
    out = FramesToTensor(resize_to=(48, 48))(frames)
    assert out.shape == (3, 2, 48, 48)
    x = torch.as_tensor(frames, dtype=torch.float32)
    # align_corners=True: output pixel (i, j) samples the input at (i, j)·127/47; the corners are copied exactly
    assert torch.equal(out[..., 0, 0], x[..., 0, 0]) and torch.equal(out[..., -1, -1], x[..., -1, -1])
    i, j = 20, 33
    yi, xj = i * 127 / 47, j * 127 / 47
    y0, x0 = int(yi), int(xj)
    wy, wx = yi - y0, xj - x0
    expected = ((1 - wy) * (1 - wx) * x[..., y0, x0] + (1 - wy) * wx * x[..., y0, x0 + 1]
                + wy * (1 - wx) * x[..., y0 + 1, x0] + wy * wx * x[..., y0 + 1, x0 + 1])
    torch.testing.assert_close(out[..., i, j], expected, rtol=1e-5, atol=1e-5)
