"""Fixed, recorded splits: per-class and seeded partitions, and ``data_split.json``."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import torch


def first_fraction_per_class(targets: Sequence[int], fraction: float) -> tuple[list[int], list[int]]:
    """Per class, in the given (sorted file) order: the first ``round(n·fraction)`` indices, then the rest.

    The fixed split used for sets without an official one (CIFAR10-DVS, N-Caltech101), as SpikingJelly's
    ``split_to_train_test_set(train_ratio, ..., random_split=False)``: with 1000 recordings per class and
    ``fraction = 0.9`` the first 900 files of each class (by name) train, the last 100 test.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"train fraction must be in (0, 1), got {fraction}")
    by_class: dict[int, list[int]] = {}
    for index, target in enumerate(targets):
        by_class.setdefault(int(target), []).append(index)
    first, rest = [], []
    for indices in by_class.values():
        cut = round(len(indices) * fraction)
        first += indices[:cut]
        rest += indices[cut:]
    return sorted(first), sorted(rest)


def seeded_holdout(indices: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random ``(kept, held_out)`` partition of ``indices`` with ``round(len·fraction)`` held out."""
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    perm = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed)).tolist()
    n_out = round(len(indices) * fraction)
    held = sorted(indices[i] for i in perm[:n_out])
    kept = sorted(indices[i] for i in perm[n_out:])
    return kept, held


def split_digest(names: Sequence) -> str:
    """SHA-256 of one split's sample names as listed, one per line (``"\\n".join(str(name))``, UTF-8)."""
    return hashlib.sha256("\n".join(str(name) for name in names).encode()).hexdigest()


def write_split(log_dir: str, dataset: str, split: dict[str, Sequence], **extra) -> str:
    """Writes ``data_split.json``: ``dataset``, ``extra`` (e.g. the dataset's ``root``), the sample names of each
    split (relative file paths, ``file[row]`` for rows of one file, or indices), and ``sha256`` per split
    (:func:`split_digest`), so two machines can prove they trained on the same split. Returns the path."""
    os.makedirs(log_dir, exist_ok=True)
    record = {"dataset": dataset, **extra, **{name: list(names) for name, names in split.items()}}
    record["sha256"] = {name: split_digest(names) for name, names in split.items()}
    path = os.path.join(log_dir, "data_split.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    return path
