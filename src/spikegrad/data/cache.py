"""Frame caches keyed by what a sample is: the recording's file identity under a folder of the frame settings.

tonic's ``DiskCachedDataset`` names a cached sample by its position in the dataset (``<index>_0.hdf5``), so a
deleted, added or replaced file silently shifts or keeps stale frames and labels. :class:`DiskFrameCache` keeps
tonic's file format (``tonic.cached_dataset.save_to_disk_cache`` / ``load_from_disk_cache``, lzf-compressed
HDF5) but names each file by :attr:`RecordingFile.key` (relative path, size, mtime, row), in a folder named by
every frame setting; labels are never read from the cache but from the current file listing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np
from tonic.cached_dataset import load_from_disk_cache, save_to_disk_cache
from torch.utils.data import Dataset


class DiskFrameCache(Dataset):
    """``(transform(frames), label)`` of ``framed[i]``, with the frames stored once in ``cache_dir/<key>.hdf5``.

    ``framed`` has ``files`` (one :class:`RecordingFile` per sample), ``targets`` and ``frames(i)``. Cache files are
    written to a temporary name and renamed, so a crash or two processes writing the same sample never leave a
    half-written file under the real name. Counts are stored in the smallest unsigned type that holds them.
    """

    def __init__(self, framed, cache_dir: str, transform: Callable | None = None) -> None:
        self.framed, self.cache_dir, self.transform = framed, cache_dir, transform
        os.makedirs(cache_dir, exist_ok=True)

    def __len__(self) -> int:
        return len(self.framed)

    def path(self, index: int) -> str:
        return os.path.join(self.cache_dir, f"{self.framed.files[index].key}.hdf5")

    def __getitem__(self, index: int):
        path = self.path(index)
        try:
            frames, _ = load_from_disk_cache(path)
        except (OSError, KeyError):  # not cached yet (or unreadable): frame the recording and store it
            frames = self.framed.frames(index)
            self._store(path, frames, self.framed.targets[index])
        frames = np.asarray(frames)
        return (self.transform(frames) if self.transform else frames), self.framed.targets[index]

    def _store(self, path: str, frames: np.ndarray, label: int) -> None:
        small = frames.astype(np.min_scalar_type(int(frames.max()) if frames.size else 0))
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=self.cache_dir)
        os.close(fd)
        try:
            save_to_disk_cache(small, label, file_path=tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


class MappedFrames(Dataset):
    """``(transform(framed.frames(i)), label)``: the uncached path, and what tonic's memory cache wraps."""

    def __init__(self, framed, transform: Callable | None = None) -> None:
        self.framed, self.transform = framed, transform

    def __len__(self) -> int:
        return len(self.framed)

    def __getitem__(self, index: int):
        frames = self.framed.frames(index)
        return (self.transform(frames) if self.transform else frames), self.framed.targets[index]
