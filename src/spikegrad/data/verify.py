"""Checks a dataset at ``setup()``: ``verify: quick`` (counts, classes, file sizes and headers), ``full`` (also
every recording decoded once), ``off``.

quick reads no events: the published number of recordings per split (unless ``allow_subset``), every class
present, and each file's size and header (a check function per format, see :mod:`spikegrad.data.formats`). full
then reads every recording through the same checked reader that training uses, so a file that cannot be decoded,
holds no events or whose events fall outside the sensor is named at setup instead of hours later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from spikegrad.data.errors import CorruptEventFileError, DataWarning, IncompleteDatasetError
from spikegrad.data.files import RecordingFile

VERIFY_MODES = ("quick", "full", "off")
OUTSIDE_TOLERANCE = 0.001  # fraction of a recording's events allowed outside the sensor (real recordings: 0)


def check_verify_mode(verify: str) -> str:
    if verify not in VERIFY_MODES:
        raise ValueError(f"unknown verify {verify!r}; valid choices: {', '.join(VERIFY_MODES)}")
    return verify


def count_outside(events: np.ndarray, sensor_size: Sequence[int]) -> int:
    """Events with ``x`` / ``y`` outside ``[0, W)`` / ``[0, H)`` or polarity outside ``[0, P)`` (any polarity
    counts on a one-polarity sensor, as tonic's ``ToFrame`` folds it to 0)."""
    width, height, polarities = sensor_size
    outside = (events["x"] < 0) | (events["x"] >= width)
    if "y" in events.dtype.names:
        outside |= (events["y"] < 0) | (events["y"] >= height)
    if polarities > 1:
        outside |= (events["p"] < 0) | (events["p"] >= polarities)
    return int(np.count_nonzero(outside))


def check_counts(
    dataset: str,
    counts: dict[str, tuple[str, int, int | None]],
    allow_subset: bool,
    unit: str = "recordings",
) -> None:
    """``counts[part] = (path, found, published)``: found must equal the published number unless ``allow_subset``
    (then a reduced copy is accepted with a warning); an empty part is always an error."""
    for path, found, _ in counts.values():
        if found == 0:
            raise IncompleteDatasetError(dataset, path, f"no {unit} found there")
    differing = {part: c for part, c in counts.items() if c[2] is not None and c[1] != c[2]}
    if not differing:
        return
    if allow_subset:
        shown = ", ".join(
            f"{'' if part == 'all' else part + ' '}{found} of {published} {unit}"
            for part, (_, found, published) in differing.items()
        )
        path = os.path.commonpath([c[0] for c in counts.values()])
        rank_zero_warn(f"{dataset}: {path}: reduced copy accepted (allow_subset: true): {shown}", category=DataWarning)
        return
    part, (path, found, published) = next(iter(differing.items()))
    what = "fewer" if found < published else "more"
    raise IncompleteDatasetError(
        dataset,
        path,
        f"{found} {unit}, {what} than the {published} of the published set (a partly extracted, damaged or mixed "
        f"copy? delete it to download it again), or set allow_subset: true to use a deliberately reduced copy",
    )


def check_classes(
    dataset: str,
    path: str,
    labels: Sequence[int],
    names: Sequence[str],
    allow_subset: bool,
    per_class: int | None = None,
) -> None:
    """Every class (label ``0..len(names)-1``) has recordings, ``per_class`` of them where the published set has
    equal classes; unless ``allow_subset``."""
    if allow_subset:
        return
    found = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
    missing = [name for label, name in enumerate(names) if found[label] == 0]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise IncompleteDatasetError(
            dataset, path, f"no recordings of {len(missing)} of the {len(names)} classes: {shown}"
        )
    if per_class is not None and np.any(found != per_class):
        wrong = ", ".join(f"{names[c]} {found[c]}" for c in np.flatnonzero(found != per_class)[:10])
        raise IncompleteDatasetError(
            dataset, path, f"recordings per class differ from the published {per_class} each: {wrong}"
        )


def check_files(
    dataset: str, root: str, files: Sequence[RecordingFile], check: Callable[[str, int], str | None]
) -> None:
    """Runs a format's header check on every file; the first damaged one raises :class:`CorruptEventFileError`."""
    for file in files:
        path = os.path.join(root, file.relpath)
        problem = check(path, file.size)
        if problem:
            raise CorruptEventFileError(dataset, os.path.abspath(path), problem)


class _ReadStats(Dataset):
    """``(events, events outside the sensor)`` of each recording, read through its checked reader."""

    def __init__(self, recordings) -> None:
        self.recordings = recordings

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, index: int) -> tuple[int, int]:
        events, _ = self.recordings[index]
        return len(events), count_outside(events, self.recordings.sensor_size)


def read_everything(dataset: str, recordings: Sequence, num_workers: int) -> dict[str, float]:
    """``verify: full``: decodes every recording once (in ``num_workers`` DataLoader workers) through the checked
    reader, which raises on a damaged recording; reports the number of events and the fraction outside the sensor."""
    start = time.perf_counter()
    n_recordings = n_events = n_outside = 0
    for part in recordings:
        loader = DataLoader(_ReadStats(part), batch_size=None, num_workers=num_workers)
        for events, outside in loader:
            n_recordings += 1
            n_events += int(events)
            n_outside += int(outside)
    seconds = time.perf_counter() - start
    fraction = n_outside / max(n_events, 1)
    rank_zero_info(
        f"{dataset}: verify full: {n_recordings} recordings, {n_events} events decoded in {seconds:.1f} s; "
        f"{n_outside} events ({fraction:.2e}) outside the sensor (at most {OUTSIDE_TOLERANCE:g} per recording)"
    )
    return {"recordings": n_recordings, "events": n_events, "outside": n_outside, "seconds": seconds}
