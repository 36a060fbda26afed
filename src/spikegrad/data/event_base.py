"""Common DataModule for event and spike datasets: recordings -> frames -> cache -> split -> loaders.

Batches are ``(frames [B, T, P, H, W] float32, labels [B] int64)`` (``[B, T, channels]`` for 1-D sensors)
with ``encoding = "sequence"``; the model makes them time-first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from tonic import DiskCachedDataset, MemoryCachedDataset
from torch.utils.data import Dataset, Subset

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.errors import CorruptEventFileError, DatasetNotFoundError
from spikegrad.data.frames import EventsToFrames, FramesToTensor
from spikegrad.data.splits import seeded_holdout
from spikegrad.data.storage import parameter_key, staged_download

CACHE_MODES = ("disk", "memory", "none")


class Recordings(Dataset):
    """Raw recordings ``(structured events, label)`` read through ``read(i)``, with checked files.

    ``names[i]`` says where recording i lives (a file path, or ``file.h5[i]``); a reader failure or a
    recording without events raises :class:`CorruptEventFileError` naming it.
    """

    def __init__(self, dataset: str, names: Sequence[str], targets: Sequence[int], read: Callable[[int], Any]):
        self.dataset = dataset
        self.names = list(names)
        self.targets = [int(t) for t in targets]
        self.read = read

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        try:
            events = self.read(index)
        except Exception as err:  # any decoder failure: report the file, not the decoder's internals
            raise CorruptEventFileError(
                f"{self.dataset}: cannot read event file {self.names[index]}: {type(err).__name__}: {err}"
            ) from None
        if len(events) == 0:
            raise CorruptEventFileError(f"{self.dataset}: event file {self.names[index]} holds no events")
        return events, self.targets[index]


class _Mapped(Dataset):
    """``(transform(x), y)`` for each ``(x, y)`` of ``dataset`` (the uncached path)."""

    def __init__(self, dataset: Dataset, transform: Callable) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return self.transform(x), y


class EventDataModule(SpikeDataModule):
    """Base of the event DataModules.

    Subclasses give the dataset facts (``dataset_name``, ``folder``, ``sensor_size``, ``layout``,
    ``source``, ``num_classes``) and three methods: ``_is_complete()`` (is the expected layout under
    ``root`` present?), ``_fetch(staging_root)`` (download there; ``download_entries`` are then moved
    into ``data_dir``) and ``_recordings()`` returning ``{"train": (cache_name, Recordings, indices),
    "test": (...)}``.

    Args:
        data_dir: folder holding every dataset (each in ``data_dir/<folder>``) and the frame cache
            (``data_dir/cache/<folder>/<transform parameters>/<part>``).
        batch_size, num_workers, pin_memory: DataLoader settings.
        time_steps: T, the number of equal time bins per recording (unless ``time_window`` is set).
        time_window, duration: instead of T bins, windows of ``time_window`` µs from 0 to ``duration`` µs.
        denoise_time: tonic ``Denoise`` filter time in µs (``None``: off).
        target_size: ``(W, H)`` to downsample the sensor to (``None``: native size).
        crop_padding, flip, max_roll: training-frame augmentation (see :class:`FramesToTensor`).
        binarize: clamp frame counts to {0, 1}.
        val_fraction: fraction of the training recordings held out for validation (seeded); 0 validates
            on the test split.
        split_seed: seed of the validation hold-out.
        cache: ``disk`` (tonic ``DiskCachedDataset``), ``memory`` (``MemoryCachedDataset``) or ``none``.
        download: try to download a missing dataset in ``prepare_data``.
    """

    encoding = "sequence"
    dataset_name: str
    folder: str
    sensor_size: tuple[int, int, int]
    layout: str
    source: str
    download_entries: tuple[str, ...] = ()
    squeeze_polarity = False

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 32,
        num_workers: int = 0,
        time_steps: int = 10,
        time_window: float | None = None,
        duration: float | None = None,
        denoise_time: float | None = None,
        target_size: tuple[int, int] | None = None,
        crop_padding: int = 0,
        flip: bool = False,
        max_roll: int = 0,
        binarize: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        cache: str = "disk",
        download: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if cache not in CACHE_MODES:
            raise ValueError(f"unknown cache {cache!r}; valid choices: {', '.join(CACHE_MODES)}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.data_dir = data_dir
        self.to_frames = EventsToFrames(
            sensor_size=tuple(self.sensor_size),
            n_time_bins=None if time_window is not None else time_steps,
            time_window=time_window,
            duration=duration,
            denoise_time=denoise_time,
            target_size=tuple(target_size) if target_size is not None else None,
        )
        self.train_transform = FramesToTensor(crop_padding, flip, max_roll, binarize, self.squeeze_polarity)
        self.eval_transform = FramesToTensor(binarize=binarize, squeeze_polarity=self.squeeze_polarity)
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.cache = cache
        self.download = download
        width, height, polarities = self.to_frames.frame_sensor_size
        self.input_shape = (width,) if self.squeeze_polarity else (polarities, height, width)
        self.time_steps = self.to_frames.time_steps
        self.save_hyperparameters({"dataset": self.dataset_name})
        self.split_sizes: dict[str, int] = {}

    # --- dataset facts ---------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """``data_dir/<folder>``: where this dataset's files are expected."""
        return os.path.join(self.data_dir, self.folder)

    @property
    def cache_dir(self) -> str:
        """Frame cache folder; its name holds every parameter that changes the cached frames."""
        fields = {k: v for k, v in vars(self.to_frames).items() if v is not None and k != "sensor_size"}
        fields.update(self.recording_options())
        return os.path.join(self.data_dir, "cache", self.folder, parameter_key(**fields))

    def recording_options(self) -> dict:
        """Options that change the recordings' events before framing (they become part of the cache path)."""
        return {}

    def _is_complete(self) -> bool:
        raise NotImplementedError

    def _fetch(self, staging_root: str) -> None:
        raise NotImplementedError

    def _recordings(self) -> dict[str, tuple[str, Recordings, list[int]]]:
        raise NotImplementedError

    def missing_error(self, reason: str = "") -> DatasetNotFoundError:
        return DatasetNotFoundError(self.dataset_name, os.path.abspath(self.root), self.layout, self.source, reason)

    # --- Lightning hooks -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Downloads the dataset once (rank 0), staged so that a failed download leaves nothing behind."""
        if self._is_complete():
            return
        if not self.download:
            raise self.missing_error("download=False")
        try:
            staged_download(self.data_dir, self.download_entries, self._fetch)
        except Exception as err:  # network, checksum or archive failure: one line naming the dataset
            raise self.missing_error(f"download failed: {type(err).__name__}: {err}") from None
        if not self._is_complete():
            raise self.missing_error("the download did not produce the expected layout")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if not self._is_complete():
            raise self.missing_error()
        parts = self._recordings()
        cache_name, recordings, train_indices = parts["train"]
        train_indices, val_indices = seeded_holdout(train_indices, self.val_fraction, self.split_seed)
        self.train_set = self._framed(cache_name, recordings, train_indices, self.train_transform)
        test_name, test_recordings, test_indices = parts["test"]
        self.test_set = self._framed(test_name, test_recordings, test_indices, self.eval_transform)
        self.val_set = (
            self._framed(cache_name, recordings, val_indices, self.eval_transform) if val_indices else self.test_set
        )
        self.split_sizes = {"train": len(train_indices), "val": len(val_indices), "test": len(test_indices)}
        self._write_split({"train": train_indices, "val": val_indices, "test": test_indices})

    def _framed(self, cache_name: str, recordings: Recordings, indices: list[int], transform) -> Dataset:
        framed = _Mapped(recordings, self.to_frames)
        if self.cache == "disk":
            cached = DiskCachedDataset(
                framed, cache_path=os.path.join(self.cache_dir, cache_name), transform=transform, target_transform=int
            )
        elif self.cache == "memory":
            cached = MemoryCachedDataset(framed, transform=transform)
        else:
            cached = _Mapped(framed, transform)
        return Subset(cached, indices)

    def _write_split(self, split: dict[str, list[int]]) -> None:
        log_dir = self.log_dir()
        if log_dir is None or not self.trainer.is_global_zero:
            return
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, "data_split.json"), "w") as f:
            json.dump({"dataset": self.dataset_name, **split}, f)
