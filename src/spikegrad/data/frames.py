"""Event streams to frames (event counts per time bin, polarity and pixel) and the usual augmentations of frame
sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tonic.transforms as tt
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

TIME_ORIGINS = ("first_event", "zero")


@dataclass(frozen=True)
class EventsToFrames:
    """Structured events -> event counts ``[T, P, H, W]`` (``[T, P, X]`` for 1-D sensors such as SHD's), int32.

    Steps: optional tonic ``Denoise(filter_time)`` (drops events with no neighbour event within ``denoise_time``
    µs), optional tonic ``Downsample(sensor_size, target_size)`` (scales coordinates), then counting per time bin,
    polarity and pixel. Time bins are either ``n_time_bins`` equal windows covering each recording from its first
    to its last event (every event counted once), or windows of ``time_window`` µs from the time origin up to
    ``duration`` µs after it (T = duration // time_window, the same for every sample; later events are left out).
    ``time_origin`` is ``first_event`` (each recording's first event, tonic's ``ToFrame`` convention) or ``zero``
    (the recording's own clock). Events outside the (downsampled) sensor are dropped.

    Counts are made here with ``np.bincount`` instead of tonic's ``ToFrame``, which accumulates in int16 and wraps
    around above 32767 events per pixel and bin. A recording with events but no event inside the frames' time
    span is an error (:class:`ValueError`), not T empty frames.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int | None = None
    time_window: float | None = None
    duration: float | None = None
    denoise_time: float | None = None
    target_size: tuple[int, int] | None = None
    time_origin: str = "first_event"

    def __post_init__(self) -> None:
        if (self.n_time_bins is None) == (self.time_window is None):
            raise ValueError("set exactly one of n_time_bins or time_window (with duration) for the frames")
        if self.n_time_bins is not None and self.n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {self.n_time_bins}")
        if self.time_window is not None and (self.duration is None or self.duration < self.time_window):
            raise ValueError("time_window frames need duration >= time_window (both in microseconds)")
        if self.time_window is not None and self.time_window <= 0:
            raise ValueError(f"time_window must be > 0 microseconds, got {self.time_window}")
        if self.time_origin not in TIME_ORIGINS:
            raise ValueError(f"unknown time_origin {self.time_origin!r}; valid choices: {', '.join(TIME_ORIGINS)}")

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
        t_first = int(events["t"].min()) if len(events) else 0
        if self.denoise_time:
            events = tt.Denoise(filter_time=self.denoise_time)(events)
        if self.target_size is not None:
            events = tt.Downsample(sensor_size=tuple(self.sensor_size), target_size=tuple(self.target_size))(events)
        width, height, polarities = self.frame_sensor_size
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64) if "y" in events.dtype.names else np.zeros(len(events), dtype=np.int64)
        p = events["p"].astype(np.int64) if polarities > 1 else np.zeros(len(events), dtype=np.int64)
        t = events["t"].astype(np.int64)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (p >= 0) & (p < polarities)
        x, y, p, t = x[inside], y[inside], p[inside], t[inside]
        if self.n_time_bins is not None:
            # T equal windows covering [t_first, t_last] inclusive (tonic's own n_time_bins rounds the bin length
            # down and leaves out the events at the last timestamps)
            start = int(t.min()) if len(t) else 0
            window = max(1, -(-(int(t.max()) - start + 1) // self.n_time_bins)) if len(t) else 1
            bins = (t - start) // window
        else:
            start = t_first if self.time_origin == "first_event" else 0
            bins = np.floor((t - start) / self.time_window).astype(np.int64)
        keep = (bins >= 0) & (bins < self.time_steps)
        if len(t) and not keep.any():
            raise ValueError(
                f"no event inside the frames' time span [{start}, {start + self.time_steps * self.time_window:.0f})"
                f" µs: its events run from {int(t.min())} to {int(t.max())} µs (time_origin: {self.time_origin})"
            )
        flat = ((bins[keep] * polarities + p[keep]) * height + y[keep]) * width + x[keep]
        counts = np.bincount(flat, minlength=self.time_steps * polarities * height * width)
        shape = (
            (self.time_steps, polarities, height, width)
            if "y" in events.dtype.names
            else (self.time_steps, polarities, width)
        )
        return counts.reshape(shape).astype(np.int32)


@dataclass(frozen=True)
class FramesToTensor:
    """Cached frames (numpy) -> float tensor, with an optional resize and augmentation of the whole sequence.

    In this order: ``binarize`` clamps counts to {0, 1}; ``resize_to`` ``(H, W)`` resizes every frame by bilinear
    interpolation with ``align_corners=True`` (the MSG code's ``F.interpolate(x, size, mode='bilinear',
    align_corners=True)`` of the frames, Brain-Cog-Lab/msg, dataset.py:183); then the same random crop / flip /
    rotation / roll applies to all T frames of a sample: ``crop_padding`` pads by that many pixels and crops back
    (a random shift, torchvision ``RandomCrop``), ``flip`` mirrors left-right with probability 1/2 (torchvision
    ``RandomHorizontalFlip``), ``rotation`` rotates by a uniform angle in ``[-rotation, rotation]`` degrees
    (torchvision ``RandomRotation``: nearest neighbour, zeros outside), ``max_roll`` rolls H and W by a uniform
    integer in ``[-max_roll, max_roll]`` with wrap-around. ``squeeze_polarity`` turns ``[T, 1, X]`` (1-D sensors)
    into ``[T, X]``.
    """

    crop_padding: int = 0
    flip: bool = False
    max_roll: int = 0
    binarize: bool = False
    squeeze_polarity: bool = False
    rotation: float = 0.0
    resize_to: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.max_roll < 0 or self.rotation < 0:
            raise ValueError(f"crop_padding, max_roll and rotation must be >= 0, got {self.crop_padding}, "
                             f"{self.max_roll} and {self.rotation}")

    def __call__(self, frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames), dtype=torch.float32)
        if self.binarize:
            x = x.clamp(max=1.0)
        if self.squeeze_polarity:
            return x.squeeze(1)
        if self.resize_to is not None:
            x = F.interpolate(x, size=tuple(self.resize_to), mode="bilinear", align_corners=True)
        if self.crop_padding > 0:
            x = v2.RandomCrop(tuple(x.shape[-2:]), padding=self.crop_padding)(x)
        if self.flip:
            x = v2.RandomHorizontalFlip()(x)
        if self.rotation > 0:
            x = v2.RandomRotation(self.rotation)(x)
        if self.max_roll > 0:
            dy, dx = torch.randint(-self.max_roll, self.max_roll + 1, (2,)).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x
