"""The bundled event set: scikit-learn's digits turned into event streams by :mod:`spikegrad.data.emulator`."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

from spikegrad.console import progress
from spikegrad.data.digits import seeded_split
from spikegrad.data.emulator import EVENT_DTYPE, emulate_saccade_events
from spikegrad.data.errors import CorruptFileError
from spikegrad.data.event_base import EventDataModule, Recordings, RowReader
from spikegrad.data.files import RecordingFile
from spikegrad.data.storage import parameter_key

GENERATION_CHUNK = 100  # digits per step of the generation's progress bar


class EventArrays:
    """``reader(i)`` -> events of recording i from concatenated x, y, t, p arrays and their offsets."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __call__(self, index: int) -> np.ndarray:
        start, stop = self.arrays["offsets"][index], self.arrays["offsets"][index + 1]
        events = np.empty(stop - start, dtype=EVENT_DTYPE)
        for name in EVENT_DTYPE.names:
            events[name] = self.arrays[name][start:stop]
        return events


class EventDigitsDataModule(EventDataModule):
    """Event digits: the 1797 ``load_digits`` images (8×8) upsampled to ``image_size``² on a 34×34×2 sensor,
    moved along N-MNIST's three saccades, events by a log-intensity contrast threshold.

    The events are generated once, deterministically, and stored in
    ``data_dir/EventDigits/events-<parameters>.npz``; frames are kept in memory by default. Split: a
    seeded ``test_fraction`` of the recordings is the test set, then ``val_fraction`` of the rest is
    held out for validation (defaults 0.2 and 0.1: 1294 train / 144 val / 359 test recordings).
    """

    dataset_name = "EventDigits"
    folder = "EventDigits"
    num_classes = 10
    sensor_size = (34, 34, 2)
    class_names = tuple(str(digit) for digit in range(10))
    layout = "EventDigits/events-<parameters>.npz (generated here from scikit-learn's digits)"
    source = "spikegrad's emulator (generated on first use; needs scikit-learn)"

    def __init__(
        self,
        data_dir: str = "data",
        time_steps: int = 6,
        image_size: int = 24,
        steps_per_saccade: int = 10,
        saccade_us: int = 100_000,
        threshold: float = 0.3,
        eps: float = 0.1,
        test_fraction: float = 0.2,
        cache: str = "memory",
        **kwargs,
    ) -> None:
        if not 8 <= image_size <= 27:
            raise ValueError(f"EventDigits image_size must be in [8, 27] to fit the saccades, got {image_size}")
        self.emulator_args = {
            "sensor_size": 34,
            "image_size": image_size,
            "steps_per_saccade": steps_per_saccade,
            "saccade_us": saccade_us,
            "threshold": threshold,
            "eps": eps,
        }
        self.test_fraction = test_fraction
        super().__init__(data_dir=data_dir, time_steps=time_steps, cache=cache, **kwargs)
        self.save_hyperparameters({"dataset": self.dataset_name, **self.emulator_args})

    @property
    def events_file(self) -> str:
        return os.path.join(self.root, f"events-{parameter_key(**self.emulator_args)}.npz")

    @property
    def cache_dir(self) -> str:
        return os.path.join(super().cache_dir, parameter_key(**self.emulator_args))

    @property
    def parts(self) -> dict[str, tuple[str, None]]:  # generated here: no published count to compare with
        return {"all": (os.path.basename(self.events_file), None)}

    def _entries_present(self) -> bool:
        return os.path.isfile(self.events_file)

    def prepare_data(self) -> None:
        """Generates the events (once) and writes them atomically."""
        if self._entries_present():
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
        chunks = [images[i:i + GENERATION_CHUNK] for i in range(0, len(images), GENERATION_CHUNK)]
        described = f"Generating the events of {len(images)} digits (once, into {self.root})"
        # the emulator is deterministic and works image by image, so chunks give the same events
        recordings = [
            r for chunk in progress(chunks, described) for r in emulate_saccade_events(chunk, **self.emulator_args)
        ]
        lengths = np.array([len(r) for r in recordings])
        events = np.concatenate(recordings)
        os.makedirs(self.root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=self.root)
        os.close(fd)
        try:
            np.savez_compressed(
                tmp,
                x=events["x"].astype(np.uint8),
                y=events["y"].astype(np.uint8),
                t=events["t"].astype(np.int32),
                p=events["p"].astype(np.uint8),
                offsets=np.concatenate([[0], np.cumsum(lengths)]),
                labels=np.asarray(digits.target, dtype=np.int64),
            )
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.events_file)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def setup(self, stage: str | None = None) -> None:
        if not self._entries_present():
            self.prepare_data()  # generation needs no network; a process that skipped prepare_data still works
        super().setup(stage)

    def _load_parts(self) -> dict[str, Recordings]:
        path = self.events_file
        try:
            with np.load(path) as f:
                arrays = {name: f[name] for name in f.files}
            missing = [name for name in (*EVENT_DTYPE.names, "offsets", "labels") if name not in arrays]
            if missing:
                raise ValueError(f"no arrays {', '.join(missing)}")
            offsets, n_events = arrays["offsets"], len(arrays["t"])
            if len(offsets) != len(arrays["labels"]) + 1 or offsets[-1] != n_events or np.any(np.diff(offsets) < 0):
                raise ValueError(f"offsets do not split {n_events} events into {len(arrays['labels'])} recordings")
        except (OSError, ValueError, EOFError) as err:
            raise CorruptFileError(self.dataset_name, os.path.abspath(path), f"cannot read: {err}") from None
        filename, stat = os.path.basename(path), os.stat(path)
        labels = arrays["labels"].tolist()
        files = [RecordingFile(filename, stat.st_size, stat.st_mtime_ns, row) for row in range(len(labels))]
        reader = RowReader(EventArrays(arrays))
        return {"all": Recordings(self.dataset_name, self.root, files, labels, reader, self.sensor_size)}

    def _split(self, parts):
        recordings = parts["all"]
        split = seeded_split(len(recordings), 0.0, self.test_fraction, self.split_seed)
        return (recordings, sorted(split["train"].tolist())), (recordings, sorted(split["test"].tolist()))
