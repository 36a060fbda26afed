"""Time of the setup-time checks (``verify: off | quick | full``) per event dataset, and an estimate for the real sets.

For each dataset, trees are fabricated in the real on-disk formats (the writers of ``tests/_data_files.py``) with
``--files`` recordings of a small and of a typical number of events, and ``setup()`` of a fresh DataModule
(``cache: none``, ``allow_subset: true``) is timed with each ``verify`` setting (median of ``--reps``, page cache
warm). ``off`` still lists and stats the files (the cache keys need them); quick adds the count, class, size and
header checks; full also decodes every recording once. Per recording, quick costs ``t_quick / n`` (listing
included) and decoding ``(t_full - t_quick) / n``, fitted as ``a + b·events`` from the two event counts. The
estimate for a real set of ``N`` recordings is ``N · t_quick / n`` for quick and ``N · (t_quick / n + a + b·E)``
for full, ``E`` the assumed typical events per recording (``TYPICAL_EVENTS``: assumptions, not measured here).
It holds for files in the page cache; a first read from a cold disk or a network file system adds its I/O.

Run: ``.venv/bin/python benchmarks/bench_verify.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _data_files import random_events, write_aedat4, write_atis_bin, write_shd  # noqa: E402
from common import machine, table  # noqa: E402
from spikegrad.data import (  # noqa: E402
    CIFAR10DVSDataModule,
    DVSGestureDataModule,
    NCaltech101DataModule,
    NMNISTDataModule,
    SHDDataModule,
)

# typical events per recording of the real sets: assumptions for the estimate (order of magnitude)
TYPICAL_EVENTS = {
    "N-MNIST": 4_000,
    "N-Caltech101": 100_000,
    "DVS Gesture": 300_000,
    "CIFAR10-DVS": 200_000,
    "SHD": 10_000,
}
REAL_COUNTS = {"N-MNIST": 70_000, "N-Caltech101": 8_709, "DVS Gesture": 1_341, "CIFAR10-DVS": 10_000, "SHD": 10_420}


def fabricate(name: str, root: str, n: int, events: int, rng) -> None:
    """``n`` recordings of ``events`` events each, split over the dataset's parts / classes."""
    if name == "N-MNIST":
        for i in range(n):
            part, digit = ("Train", "Test")[i % 2], (i // 2) % 10
            write_atis_bin(
                os.path.join(root, "NMNIST", part, str(digit), f"{i:05d}.bin"),
                *random_events(rng, events, 34, 34, 300_000),
            )
    elif name == "N-Caltech101":
        for i in range(n):
            write_atis_bin(
                os.path.join(root, "NCALTECH101", "Caltech101", ("accordion", "ant")[i % 2], f"image_{i:04d}.bin"),
                *random_events(rng, events, 200, 150, 300_000),
            )
    elif name == "DVS Gesture":
        for i in range(n):
            part = ("ibmGestureTrain", "ibmGestureTest")[i % 2]
            x, y, t, p = random_events(rng, events, 128, 128, 6_000)
            path = os.path.join(root, "DVSGesture", part, f"user{i // 22 + 1:02d}_led", f"{(i // 2) % 11}.npy")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, np.stack([x, y, p, t], axis=1))
    elif name == "CIFAR10-DVS":
        for i in range(n):
            cls = CIFAR10DVSDataModule.class_names[i % 10]
            x, y, t, p = random_events(rng, events, 128, 128, 1_300_000, 1_600_000_000_000_000)
            write_aedat4(os.path.join(root, "CIFAR10DVS", cls, f"cifar10_{cls}_{i}.aedat4"), x, y, t, p)
    elif name == "SHD":
        half = max(1, n // 2)
        write_shd(os.path.join(root, "SHD", "shd_train.h5"), half, rng, spikes=events)
        write_shd(os.path.join(root, "SHD", "shd_test.h5"), n - half, rng, spikes=events)


MODULES = {
    "N-MNIST": NMNISTDataModule,
    "N-Caltech101": NCaltech101DataModule,
    "DVS Gesture": DVSGestureDataModule,
    "CIFAR10-DVS": CIFAR10DVSDataModule,
    "SHD": SHDDataModule,
}


def setup_seconds(name: str, root: str, verify: str, reps: int) -> float:
    times = []
    for _ in range(reps):
        dm = MODULES[name](data_dir=root, verify=verify, allow_subset=True, cache="none", val_fraction=0)
        start = time.perf_counter()
        dm.setup()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40, help="recordings per fabricated tree")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(MODULES), help="datasets to time")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the reduced-copy warnings
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    print(machine())
    rows = []
    for name in args.only:
        rng = np.random.default_rng(0)
        cost = {}
        for events in (max(50, TYPICAL_EVENTS[name] // 20), TYPICAL_EVENTS[name]):
            with tempfile.TemporaryDirectory() as root:
                fabricate(name, root, args.files, events, rng)
                t = {v: setup_seconds(name, root, v, args.reps) for v in ("off", "quick", "full")}
            cost[events] = t
            n = args.files
            rows.append(
                [
                    name,
                    f"{events:,}",
                    f"{t['off'] * 1e3:.1f}",
                    f"{t['quick'] * 1e3:.1f}",
                    f"{t['full'] * 1e3:.1f}",
                    f"{t['quick'] / n * 1e6:.0f}",
                    f"{(t['full'] - t['quick']) / n * 1e3:.2f}",
                ]
            )
        (e1, t1), (e2, t2) = sorted(cost.items())
        n, real, typical = args.files, REAL_COUNTS[name], TYPICAL_EVENTS[name]
        decode1, decode2 = (t1["full"] - t1["quick"]) / n, (t2["full"] - t2["quick"]) / n
        per_event = (decode2 - decode1) / (e2 - e1)
        overhead = decode1 - per_event * e1
        quick_real = t2["quick"] / n * real
        full_real = quick_real + real * (overhead + per_event * typical)
        rows.append(
            [
                f"**{name}: {real:,} recordings (estimate)**",
                f"~{typical:,} (assumed)",
                "",
                f"{quick_real:.1f} s",
                f"{full_real:.0f} s",
                "",
                f"{overhead * 1e3:.2f} + {per_event * 1e9:.0f} ns × events",
            ]
        )
    print(
        table(
            [
                "dataset",
                "events / recording",
                "off (ms)",
                "quick (ms)",
                "full (ms)",
                "quick per recording (µs)",
                "decode per recording (ms)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
