"""Event streams to frames (tonic transforms) and the usual augmentations of frame sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tonic.transforms as tt
import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class EventsToFrames:
    """Structured events -> frames ``[T, P, H, W]`` (``[T, P, X]`` for 1-D sensors such as SHD's).

    Steps, all tonic's: optional ``Denoise(filter_time)`` (drops events with no neighbour event within
    ``denoise_time`` µs), optional ``Downsample(sensor_size, target_size)`` (scales coordinates), then
    ``ToFrame``: either ``n_time_bins`` equal windows covering each recording from its first to its last
    event (every event is counted once), or windows of ``time_window`` µs
    from t = 0 up to ``duration`` µs (T = duration // time_window, the same for every sample). Events
    outside the (downsampled) sensor are dropped.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int | None = None
    time_window: float | None = None
    duration: float | None = None
    denoise_time: float | None = None
    target_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if (self.n_time_bins is None) == (self.time_window is None):
            raise ValueError("set exactly one of n_time_bins or time_window (with duration) for the frames")
        if self.n_time_bins is not None and self.n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {self.n_time_bins}")
        if self.time_window is not None and (self.duration is None or self.duration < self.time_window):
            raise ValueError("time_window frames need duration >= time_window (both in microseconds)")

    @property
    def frame_sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, P)`` after downsampling."""
        if self.target_size is None:
            return tuple(self.sensor_size)
        return (self.target_size[0], self.target_size[1], self.sensor_size[2])

    @property
    def time_steps(self) -> int:
        """T of every frame sequence."""
        return self.n_time_bins if self.n_time_bins is not None else int(self.duration // self.time_window)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.denoise_time:
            events = tt.Denoise(filter_time=self.denoise_time)(events)
        if self.target_size is not None:
            events = tt.Downsample(sensor_size=tuple(self.sensor_size), target_size=tuple(self.target_size))(events)
        width, height, _ = self.frame_sensor_size
        inside = (events["x"] >= 0) & (events["x"] < width)
        if "y" in events.dtype.names:
            inside &= (events["y"] >= 0) & (events["y"] < height)
        events = events[inside]
        if len(events) and np.any(np.diff(events["t"].astype(np.int64)) < 0):
            events = events[np.argsort(events["t"], kind="stable")]
        if self.n_time_bins is not None and len(events):
            # T equal windows covering [t_first, t_last] inclusive: tonic's n_time_bins slicing rounds the bin
            # length down and leaves out the events at the last timestamps
            first, last = int(events["t"][0]), int(events["t"][-1])
            window = max(1, -(-(last - first + 1) // self.n_time_bins))
            to_frame = tt.ToFrame(
                sensor_size=self.frame_sensor_size,
                time_window=window,
                start_time=first,
                end_time=first + window * self.n_time_bins,
            )
        elif self.n_time_bins is not None:
            to_frame = tt.ToFrame(sensor_size=self.frame_sensor_size, n_time_bins=self.n_time_bins)
        else:
            events = events[events["t"] < self.duration]
            to_frame = tt.ToFrame(
                sensor_size=self.frame_sensor_size, time_window=self.time_window, start_time=0, end_time=self.duration
            )
        frames = to_frame(events)
        if len(frames) < self.time_steps:  # tonic gives fewer bins when all events share one timestamp
            pad = np.zeros((self.time_steps - len(frames), *frames.shape[1:]), dtype=frames.dtype)
            frames = np.concatenate([frames, pad])
        return frames[: self.time_steps].astype(np.float32)


@dataclass(frozen=True)
class FramesToTensor:
    """Cached frames (numpy) -> float tensor, with optional augmentation of the whole sequence.

    The same random crop / flip / roll applies to all T frames of a sample: ``crop_padding`` pads by that
    many pixels and crops back (a random shift, torchvision ``RandomCrop``), ``flip`` mirrors left-right
    with probability 1/2 (torchvision ``RandomHorizontalFlip``), ``max_roll`` rolls H and W by a uniform
    integer in ``[-max_roll, max_roll]`` with wrap-around. ``binarize`` clamps counts to {0, 1}.
    ``squeeze_polarity`` turns ``[T, 1, X]`` (1-D sensors) into ``[T, X]``.
    """

    crop_padding: int = 0
    flip: bool = False
    max_roll: int = 0
    binarize: bool = False
    squeeze_polarity: bool = False

    def __call__(self, frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames), dtype=torch.float32)
        if self.binarize:
            x = x.clamp(max=1.0)
        if self.squeeze_polarity:
            return x.squeeze(1)
        if self.crop_padding > 0:
            x = v2.RandomCrop(tuple(x.shape[-2:]), padding=self.crop_padding)(x)
        if self.flip:
            x = v2.RandomHorizontalFlip()(x)
        if self.max_roll > 0:
            dy, dx = torch.randint(-self.max_roll, self.max_roll + 1, (2,)).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x
