"""Tiny datasets written in the real on-disk formats, for the data tests (written independently of the readers)."""

import os

import h5py
import numpy as np


def random_events(rng, n, width, height, duration_us, start_us=0):
    t = np.sort(rng.integers(start_us, start_us + duration_us, n))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n)


def write_atis_bin(path, x, y, t, p):
    """N-MNIST / N-Caltech101 format: 5 bytes per event, x | y | p<<7 + t[22:16] | t[15:8] | t[7:0]."""
    raw = np.zeros((len(x), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((np.asarray(t) >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (np.asarray(t) >> 8) & 0xFF, np.asarray(t) & 0xFF
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw.tofile(path)


def make_nmnist(root, per_class=2, seed=0, events=300):
    rng = np.random.default_rng(seed)
    for part in ("Train", "Test"):
        for digit in range(10):
            for i in range(per_class):
                path = os.path.join(root, "NMNIST", part, str(digit), f"{i:05d}.bin")
                write_atis_bin(path, *random_events(rng, events, 34, 34, 300_000))


def write_gesture_npy(path, rng, n=200, start_ms=0):
    """tonic's DVS Gesture copy: an N×4 integer array x, y, p, t with t in milliseconds."""
    x, y, t, p = random_events(rng, n, 128, 128, 2000, start_ms)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.stack([x, y, p, t], axis=1))


def make_gestures(root, users=(("ibmGestureTrain", (1, 2)), ("ibmGestureTest", (24,))), labels=(0, 3, 10), seed=1):
    rng = np.random.default_rng(seed)
    for part, part_users in users:
        for user in part_users:
            for label in labels:
                write_gesture_npy(
                    os.path.join(root, "DVSGesture", part, f"user{user:02d}_fluorescent", f"{label}.npy"), rng
                )


def write_aedat4(path, x, y, t, p, resolution=(128, 128)):
    """A real AEDAT4 file (iniVation's dv-processing writer, LZ4-compressed event packets)."""
    import dv_processing as dv

    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("DVXplorer_test", resolution))
    store = dv.EventStore()
    for xi, yi, ti, pi in zip(x.tolist(), y.tolist(), t.tolist(), p.tolist(), strict=True):
        store.push_back(ti, xi, yi, bool(pi))
    writer.writeEvents(store)
    del writer  # closes the file


def make_cifar10dvs(root, classes, per_class=20, events=50, seed=2, start_us=1_600_000_000_000_000):
    """Recordings on the camera's clock (timestamps far from 0, as a real recording's)."""
    rng = np.random.default_rng(seed)
    for name in classes:
        for i in range(per_class):
            x, y, t, p = random_events(rng, events, 128, 128, 1_000_000, start_us)
            write_aedat4(os.path.join(root, "CIFAR10DVS", name, f"cifar10_{name}_{i}.aedat4"), x, y, t, p)


def make_ncaltech(root, classes, per_class=10, seed=3):
    rng = np.random.default_rng(seed)
    for name in classes:
        for i in range(1, per_class + 1):
            x, y, t, p = random_events(rng, 100, 230, 170, 300_000)
            write_atis_bin(
                os.path.join(root, "NCALTECH101", "Caltech101", name, f"image_{i:04d}.bin"), x + 5, y + 3, t, p
            )


def write_shd(path, n, rng, spikes=80, labels=None, units=700):
    """SHD's HDF5 layout (Cramer et al. 2020): variable-length spike times (s) and units per recording."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        vlen_f, vlen_u = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
        times = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
        unit_lists = f.create_dataset("spikes/units", (n,), dtype=vlen_u)
        for i in range(n):
            times[i] = np.sort(rng.uniform(0, 0.9, spikes)).astype(np.float32)  # seconds
            unit_lists[i] = rng.integers(0, units, spikes).astype(np.uint16)
        f["labels"] = (np.arange(n) % 20 if labels is None else np.asarray(labels)).astype(np.uint8)
        f["extra/keys"] = np.array([b"digit"] * 20)
        f["extra/speaker"] = np.zeros(n, dtype=np.uint8)


def write_idx(folder, prefix, images, labels):
    """idx format (LeCun): big-endian magic 2051/2049, sizes, then unsigned bytes."""
    os.makedirs(folder, exist_ok=True)
    n, rows, cols = images.shape
    with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(np.array([2051, n, rows, cols], dtype=">i4").tobytes() + images.astype(np.uint8).tobytes())
    with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(np.array([2049, n], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes())
