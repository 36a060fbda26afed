"""Common DataModule for event and spike datasets: file listing -> checks -> recordings -> frames -> cache ->
split -> loaders.

Batches are ``(frames [B, T, P, H, W] float32, labels [B] int64)`` (``[B, T, channels]`` for 1-D sensors)
with ``encoding = "sequence"``; the model makes them time-first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn
from tonic import MemoryCachedDataset
from torch.utils.data import Dataset, Subset

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.cache import DiskFrameCache, MappedFrames
from spikegrad.data.errors import CorruptEventFileError, DataError, DatasetNotFoundError, DataWarning
from spikegrad.data.files import Listing, RecordingFile, describe_stray
from spikegrad.data.frames import EventsToFrames, FramesToTensor
from spikegrad.data.splits import seeded_holdout, write_split
from spikegrad.data.storage import parameter_key, staged_download
from spikegrad.data.verify import (
    OUTSIDE_TOLERANCE,
    check_classes,
    check_counts,
    check_files,
    check_verify_mode,
    count_outside,
    read_everything,
)

CACHE_MODES = ("disk", "memory", "none")
RESIZE_MODES = ("events", "bilinear")
FRAMES_FORMAT = 2  # part of the cache folder name: bump when the framing code changes what it produces


class FileReader:
    """``reader(file)`` -> ``read(root/file.relpath, **options)`` (picklable for DataLoader workers)."""

    def __init__(self, root: str, read: Callable, **options) -> None:
        self.root, self.read, self.options = root, read, options

    def __call__(self, file: RecordingFile) -> np.ndarray:
        return self.read(os.path.join(self.root, file.relpath), **self.options)


class RowReader:
    """``reader(file)`` -> ``read(file.row)``, for recordings stored as rows of one file."""

    def __init__(self, read: Callable[[int], np.ndarray]) -> None:
        self.read = read

    def __call__(self, file: RecordingFile) -> np.ndarray:
        return self.read(file.row)


class Recordings(Dataset):
    """Raw recordings ``(structured events, label)`` of one part of a dataset, each read and checked.

    ``files[i]`` is recording i's :class:`RecordingFile` below ``root``. A reader failure, a recording without
    events, or one with more than :data:`OUTSIDE_TOLERANCE` of its events outside ``sensor_size`` raises
    :class:`CorruptEventFileError` whose message starts with the dataset and the file's absolute path.
    """

    def __init__(
        self,
        dataset: str,
        root: str,
        files: Sequence[RecordingFile],
        targets: Sequence[int],
        read: Callable[[RecordingFile], np.ndarray],
        sensor_size: Sequence[int],
    ) -> None:
        self.dataset, self.root = dataset, os.path.abspath(root)
        self.files = list(files)
        self.targets = [int(t) for t in targets]
        self.read = read
        self.sensor_size = tuple(sensor_size)

    def __len__(self) -> int:
        return len(self.files)

    def path(self, index: int) -> str:
        """Absolute path of recording ``index`` (``file[row]`` for a row of a file)."""
        return os.path.join(self.root, self.files[index].name)

    def error(self, index: int, cause: str, kind: type[DataError] = CorruptEventFileError) -> DataError:
        return kind(self.dataset, self.path(index), cause)

    def __getitem__(self, index: int):
        try:
            events = self.read(self.files[index])
        except Exception as err:  # any decoder failure: report the file, not the decoder's internals
            raise self.error(index, f"cannot decode: {type(err).__name__}: {err}") from err
        if len(events) == 0:
            raise self.error(index, "holds no events")
        outside = count_outside(events, self.sensor_size)
        if outside > OUTSIDE_TOLERANCE * len(events):
            width, height, polarities = self.sensor_size
            raise self.error(
                index,
                f"{outside} of {len(events)} events ({outside / len(events):.1%}) fall outside the "
                f"{width}×{height} sensor with {polarities} polarities (damaged, or not a recording of this dataset)",
            )
        return events, self.targets[index]


class FramedRecordings:
    """Recordings and their frames: ``frames(i)`` is ``to_frames(events of recording i)``, errors naming the file."""

    def __init__(self, recordings: Recordings, to_frames: EventsToFrames) -> None:
        self.recordings, self.to_frames = recordings, to_frames
        self.files, self.targets = recordings.files, recordings.targets

    def __len__(self) -> int:
        return len(self.recordings)

    def frames(self, index: int) -> np.ndarray:
        events, _ = self.recordings[index]
        try:
            return self.to_frames(events)
        except ValueError as err:  # events that the frame settings cannot place (e.g. all after `duration`)
            raise self.recordings.error(index, str(err), DataError) from err


class EventDataModule(SpikeDataModule):
    """Base of the event DataModules.

    Subclasses give the dataset facts (``dataset_name``, ``folder``, ``sensor_size``, ``layout``, ``source``,
    ``num_classes``, ``class_names``, ``parts``: ``{part: (path below root, published count)}``) and
    ``_fetch(staging_root)`` (download there; ``download_entries`` are then moved into ``data_dir``),
    ``_load_parts()`` (``{part: Recordings}``, with the listing and header checks of ``verify: quick``) and
    ``_split(parts)`` (``(train Recordings, indices), (test Recordings, indices)``; default: the official
    ``train`` and ``test`` parts).

    Args:
        data_dir: folder holding every dataset (each in ``data_dir/<folder>``) and the frame cache
            (``data_dir/cache/<folder>/<frame settings>/<recording identity>.hdf5``).
        batch_size, num_workers, pin_memory: DataLoader settings.
        time_steps: T, the number of equal time bins per recording (unless ``time_window`` is set).
        time_window, duration: instead of T bins, windows of ``time_window`` µs over ``duration`` µs from the
            time origin.
        time_origin: ``first_event`` (each recording's first event, default) or ``zero`` (the recording's clock)
            for ``time_window`` frames.
        denoise_time: tonic ``Denoise`` filter time in µs (``None``: off).
        target_size: ``(W, H)`` of the frames (``None``: the sensor's size).
        resize: how frames reach ``target_size``: ``events`` (tonic ``Downsample`` scales the event coordinates,
            then events are counted per pixel: every event counted once) or ``bilinear`` (events are counted on
            the full sensor, and each frame is resized by bilinear interpolation with ``align_corners=True``
            when it is loaded, as the MSG code does, Brain-Cog-Lab/msg, dataset.py:177-183; the cache then holds
            sensor-size frames).
        crop_padding, flip, rotation, max_roll: training-frame augmentation (see :class:`FramesToTensor`).
        binarize: clamp frame counts to {0, 1}.
        val_fraction: fraction of the training recordings held out for validation (seeded); 0 validates
            on the test split.
        split_seed: seed of the validation hold-out.
        drop_last: leave out the last incomplete training batch of every epoch.
        cache: ``disk`` (frames stored per recording identity), ``memory`` (tonic ``MemoryCachedDataset``) or
            ``none``.
        download: try to download a missing dataset in ``prepare_data``.
        verify: checks at ``setup``: ``quick`` (counts, classes, sizes and headers), ``full`` (also decodes every
            recording once) or ``off``.
        allow_subset: accept a deliberately reduced copy (fewer recordings or classes than published), with a
            warning.
    """

    encoding = "sequence"
    dataset_name: str
    folder: str
    sensor_size: tuple[int, int, int]
    layout: str
    source: str
    class_names: tuple[str, ...]
    parts: dict[str, tuple[str, int | None]]
    published_per_class: int | None = None
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
        time_origin: str = "first_event",
        denoise_time: float | None = None,
        target_size: tuple[int, int] | None = None,
        resize: str = "events",
        crop_padding: int = 0,
        flip: bool = False,
        rotation: float = 0.0,
        max_roll: int = 0,
        binarize: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        drop_last: bool = False,
        cache: str = "disk",
        download: bool = True,
        pin_memory: bool = False,
        verify: str = "quick",
        allow_subset: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, drop_last)
        if cache not in CACHE_MODES:
            raise ValueError(f"unknown cache {cache!r}; valid choices: {', '.join(CACHE_MODES)}")
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize {resize!r}; valid choices: {', '.join(RESIZE_MODES)}")
        if resize == "bilinear" and (target_size is None or self.squeeze_polarity):
            raise ValueError("resize: bilinear needs a target_size (W, H) and a 2-D sensor")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.data_dir = data_dir
        self.to_frames = EventsToFrames(
            sensor_size=tuple(self.sensor_size),
            n_time_bins=None if time_window is not None else time_steps,
            time_window=time_window,
            duration=duration,
            denoise_time=denoise_time,
            target_size=tuple(target_size) if target_size is not None and resize == "events" else None,
            time_origin=time_origin,
        )
        # bilinear: frames are counted on the sensor and resized at load time, to (H, W) = target_size reversed
        resize_to = (int(target_size[1]), int(target_size[0])) if resize == "bilinear" else None
        self.train_transform = FramesToTensor(
            crop_padding, flip, max_roll, binarize, self.squeeze_polarity, rotation=rotation, resize_to=resize_to
        )
        self.eval_transform = FramesToTensor(
            binarize=binarize, squeeze_polarity=self.squeeze_polarity, resize_to=resize_to
        )
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.cache = cache
        self.download = download
        self.verify = check_verify_mode(verify)
        self.allow_subset = allow_subset
        width, height, polarities = self.to_frames.frame_sensor_size
        if resize_to is not None:
            height, width = resize_to
        self.input_shape = (width,) if self.squeeze_polarity else (polarities, height, width)
        self.time_steps = self.to_frames.time_steps
        self.save_hyperparameters({"dataset": self.dataset_name})
        self.split_sizes: dict[str, int] = {}
        self.split_names: dict[str, list[str]] = {}

    # --- dataset facts ---------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """``data_dir/<folder>``: where this dataset's files are expected."""
        return os.path.join(self.data_dir, self.folder)

    @property
    def cache_dir(self) -> str:
        """Frame cache folder; its name holds every setting that changes the cached frames."""
        fields = {k: v for k, v in vars(self.to_frames).items() if v is not None and k != "sensor_size"}
        if self.to_frames.time_window is None:
            fields.pop("time_origin")  # T bins always span first to last event
        fields.update(self.recording_options())
        fields["format"] = FRAMES_FORMAT
        return os.path.join(self.data_dir, "cache", self.folder, parameter_key(**fields))

    def recording_options(self) -> dict:
        """Options that change the recordings' events before framing (they become part of the cache path)."""
        return {}

    def _entries_present(self) -> bool:
        return all(os.path.exists(os.path.join(self.data_dir, entry)) for entry in self.download_entries)

    def _fetch(self, staging_root: str) -> None:
        raise NotImplementedError

    def _load_parts(self) -> dict[str, Recordings]:
        raise NotImplementedError

    def _split(self, parts: dict[str, Recordings]) -> tuple[tuple[Recordings, list[int]], tuple[Recordings, list[int]]]:
        return (parts["train"], list(range(len(parts["train"])))), (parts["test"], list(range(len(parts["test"]))))

    def missing_error(self, reason: str = "") -> DatasetNotFoundError:
        return DatasetNotFoundError(self.dataset_name, os.path.abspath(self.root), self.layout, self.source, reason)

    # --- Lightning hooks -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Downloads the entries that are absent once (rank 0), staged so that a failed download leaves nothing
        behind. Entries that are present are not downloaded again; ``setup`` checks them."""
        if self._entries_present():
            return
        if not self.download:
            raise self.missing_error("download=False")
        try:
            staged_download(self.data_dir, self.download_entries, self._fetch)
        except Exception as err:  # network, checksum or archive failure: one line naming the dataset
            raise self.missing_error(f"download failed: {type(err).__name__}: {err}") from None
        if not self._entries_present():
            raise self.missing_error("the download did not produce the expected layout")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if not self._entries_present():
            raise self.missing_error()
        parts = self._load_parts()
        self._check(parts)
        (recordings, train_indices), (test_recordings, test_indices) = self._split(parts)
        train_indices, val_indices = seeded_holdout(train_indices, self.val_fraction, self.split_seed)
        self.train_set = self._framed(recordings, train_indices, self.train_transform)
        self.test_set = self._framed(test_recordings, test_indices, self.eval_transform)
        self.val_set = self._framed(recordings, val_indices, self.eval_transform) if val_indices else self.test_set
        self.split_sizes = {"train": len(train_indices), "val": len(val_indices), "test": len(test_indices)}
        self.split_names = {
            "train": [recordings.files[i].name for i in train_indices],
            "val": [recordings.files[i].name for i in val_indices],
            "test": [test_recordings.files[i].name for i in test_indices],
        }
        self._write_split()

    def _check(self, parts: dict[str, Recordings]) -> None:
        """Labels (always), then per ``verify``: counts and classes (quick), every recording decoded (full)."""
        for recordings in parts.values():
            wrong = [i for i, label in enumerate(recordings.targets) if not 0 <= label < self.num_classes]
            if wrong:
                label = recordings.targets[wrong[0]]
                raise recordings.error(wrong[0], f"label {label} outside 0..{self.num_classes - 1}")
        if self.verify == "off":
            return
        root = os.path.abspath(self.root)
        where = {part: os.path.normpath(os.path.join(root, path)) for part, (path, _) in self.parts.items()}
        counts = {part: (where[part], len(parts[part]), published) for part, (_, published) in self.parts.items()}
        check_counts(self.dataset_name, counts, self.allow_subset)
        for part, recordings in parts.items():
            names, per_class = self.class_names, self.published_per_class
            check_classes(self.dataset_name, where[part], recordings.targets, names, self.allow_subset, per_class)
        if self.verify == "full":
            read_everything(self.dataset_name, list(parts.values()), self.num_workers)

    def _listed(
        self, listing: Listing, read: Callable[[RecordingFile], np.ndarray], check: Callable[[str, int], str | None]
    ) -> dict[str, Recordings]:
        """Recordings of each part of a file listing: stray entries warned about (skipped), header checks run."""
        if listing.stray:
            rank_zero_warn(
                f"{self.dataset_name}: {os.path.abspath(self.root)}: skipped {len(listing.stray)} entries that are "
                f"not part of the layout ({self.layout}): {describe_stray(listing.stray)}",
                category=DataWarning,
            )
        parts = {}
        for part in self.parts:
            entries = listing.files.get(part, [])
            files, labels = [file for file, _ in entries], [label for _, label in entries]
            if self.verify != "off":
                check_files(self.dataset_name, self.root, files, check)
            parts[part] = Recordings(self.dataset_name, self.root, files, labels, read, self.sensor_size)
        return parts

    def _framed(self, recordings: Recordings, indices: list[int], transform) -> Dataset:
        framed = FramedRecordings(recordings, self.to_frames)
        if self.cache == "disk":
            cached = DiskFrameCache(framed, self.cache_dir, transform=transform)
        elif self.cache == "memory":
            cached = MemoryCachedDataset(MappedFrames(framed), transform=transform)
        else:
            cached = MappedFrames(framed, transform)
        return Subset(cached, indices)

    def _write_split(self) -> None:
        log_dir = self.log_dir()
        if log_dir is None or not self.trainer.is_global_zero:
            return
        write_split(log_dir, self.dataset_name, self.split_names, root=os.path.abspath(self.root))
