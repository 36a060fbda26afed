"""The on-disk event formats: a cheap header check (``verify: quick``) and a reader to structured events.

Readers return numpy structured arrays with ``x, y, t, p`` (``t, x, p`` for 1-D sensors) as int64, ``t`` in
microseconds. They decode with tonic's readers where tonic has one (``tonic.io.read_mnist_file``,
``tonic.io.read_aedat4``) and write out the conventions of tonic's dataset classes (N-Caltech101 shifted to
the origin, DVS Gesture milliseconds to microseconds, SHD seconds to microseconds) so that the DataModules can
list the files themselves. A header check returns ``None`` or the reason the file is damaged.
"""

from __future__ import annotations

import h5py
import numpy as np
from numpy.lib import format as npy_format
from tonic.io import read_aedat4, read_mnist_file

EVENTS_2D = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
EVENTS_1D = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
ATIS_EVENT_BYTES = 5
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


def structured(dtype: np.dtype, **fields) -> np.ndarray:
    first = next(iter(fields.values()))
    events = np.empty(len(first), dtype=dtype)
    for name, values in fields.items():
        events[name] = values
    return events


# --- N-MNIST / N-Caltech101: 5-byte ATIS events ---------------------------------------------------------------
def check_atis_bin(path: str, size: int) -> str | None:
    """Orchard's ATIS format: 5 bytes per event (x | y | p<<7 + t[22:16] | t[15:8] | t[7:0])."""
    if size == 0:
        return "empty file (0 bytes)"
    if size % ATIS_EVENT_BYTES:
        return f"{size} bytes is not a whole number of 5-byte ATIS events (truncated or not an event file)"
    return None


def read_atis_bin(path: str, first_saccade_only: bool = False, shift_to_origin: bool = False) -> np.ndarray:
    """Events of an N-MNIST / N-Caltech101 ``.bin`` file (tonic's ``read_mnist_file``: timestamps in µs from the
    start of the recording, overflow markers removed). ``first_saccade_only`` keeps ``t < 100 ms`` (tonic's
    N-MNIST option); ``shift_to_origin`` moves the smallest x and y to 0 (tonic's N-Caltech101 convention)."""
    events = read_mnist_file(path, dtype=EVENTS_2D)
    if first_saccade_only:
        events = events[events["t"] < 100_000]
    if shift_to_origin and len(events):
        events["x"] -= events["x"].min()
        events["y"] -= events["y"].min()
    return events


# --- DVS Gesture (tonic's copy): N×4 .npy arrays (x, y, p, t[ms]) --------------------------------------------------
def check_npy_events(path: str, size: int) -> str | None:
    """An ``.npy`` file whose header promises an ``N×4`` numeric array that the file size holds."""
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            header = f.tell()
    except Exception as err:  # noqa: BLE001 - any header failure is a damaged file
        return f"not an .npy file ({type(err).__name__}: {err})"
    if len(shape) != 2 or shape[1] != 4 or dtype.kind not in "iuf":
        return f".npy header holds a {dtype} array of shape {shape}, expected N×4 numbers (x, y, p, t)"
    expected = header + shape[0] * shape[1] * dtype.itemsize
    if size != expected:
        return f"{size} bytes, the .npy header promises {expected} (truncated or padded)"
    return None


def read_gesture_npy(path: str) -> np.ndarray:
    """Events of a DVS Gesture ``.npy`` of tonic's copy: columns x, y, p, t with t in milliseconds (-> µs)."""
    raw = np.load(path)
    if raw.ndim != 2 or raw.shape[1] != 4:
        raise ValueError(f"array of shape {raw.shape}, expected N×4 (x, y, p, t)")
    raw = raw.astype(np.int64)
    return structured(EVENTS_2D, x=raw[:, 0], y=raw[:, 1], t=raw[:, 3] * 1000, p=raw[:, 2])


# --- CIFAR10-DVS: AEDAT4 ---------------------------------------------------------------------------------------
def check_aedat4(path: str, size: int) -> str | None:
    """An AEDAT4 file starts with the line ``#!AER-DAT4.0`` (iniVation's file format, version 4)."""
    with open(path, "rb") as f:
        head = f.read(len(AEDAT4_MAGIC))
    if head != AEDAT4_MAGIC:
        return f"not an AEDAT4 file (starts with {head[:16]!r}, expected {AEDAT4_MAGIC!r})"
    if size <= len(AEDAT4_MAGIC) + 4:
        return f"{size} bytes: an AEDAT4 header without data"
    return None


def read_aedat4_events(path: str) -> np.ndarray:
    """Events of the first event stream of an AEDAT4 file (tonic's ``read_aedat4``, iniVation's ``aedat``
    decoder); timestamps in µs on the camera's clock."""
    raw = read_aedat4(path)
    polarity = raw["on"] if "on" in raw.dtype.names else raw["p"]
    return structured(EVENTS_2D, x=raw["x"], y=raw["y"], t=raw["t"].astype(np.int64), p=polarity)


# --- SHD: HDF5 with variable-length spike lists --------------------------------------------------------------------
SHD_KEYS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


def check_shd_h5(path: str) -> tuple[str | None, list[int]]:
    """``(problem, labels)`` of an SHD file: the keys Cramer et al. publish, one times/units list per label."""
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in SHD_KEYS if key not in f]
            if missing:
                return f"HDF5 file without {', '.join(missing)} (expected keys: {', '.join(SHD_KEYS)})", []
            labels = f["labels"][()]
            lengths = {key: len(f[key]) for key in ("spikes/times", "spikes/units")}
    except OSError as err:
        return f"not a readable HDF5 file ({err})", []
    if labels.ndim != 1 or any(n != len(labels) for n in lengths.values()):
        return f"{len(labels)} labels but {lengths['spikes/times']} times and {lengths['spikes/units']} units", []
    return None, labels.astype(np.int64).tolist()


class H5Rows:
    """``reader(row)`` -> the spikes of one SHD recording: times (s, float) -> µs (rounded), units -> ``x``.

    The file is opened on first use in each process (h5py handles cannot be pickled for DataLoader workers).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "_file": None}

    def __call__(self, row: int) -> np.ndarray:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        times = np.asarray(self._file["spikes/times"][row], dtype=np.float64)
        units = np.asarray(self._file["spikes/units"][row], dtype=np.int64)
        if len(times) != len(units):
            raise ValueError(f"{len(times)} spike times but {len(units)} units")
        return structured(EVENTS_1D, t=np.rint(times * 1e6), x=units, p=np.zeros(len(units), dtype=np.int64))


# --- MNIST / Fashion-MNIST: idx files ------------------------------------------------------------------------------
IDX_UBYTE = 0x08  # the idx type code of unsigned bytes, the only one MNIST uses


def check_idx(path: str, size: int, item_shape: tuple[int, ...]) -> tuple[str | None, int]:
    """``(problem, n)`` of an idx file of unsigned bytes (LeCun et al.): a big-endian header (magic
    ``0x0000 08 <ndim>``, then ndim int32 sizes) followed by ``n · prod(item_shape)`` bytes."""
    ndim = 1 + len(item_shape)
    header = 4 + 4 * ndim
    if size < header:
        return f"{size} bytes, shorter than the {header}-byte idx header (truncated)", 0
    with open(path, "rb") as f:
        magic, *dims = np.frombuffer(f.read(header), dtype=">u4").tolist()
    if magic != (IDX_UBYTE << 8 | ndim):
        return (
            f"not an idx file of {ndim}-D unsigned bytes (magic {magic:#010x}, expected {IDX_UBYTE << 8 | ndim:#010x})",
            0,
        )
    if tuple(dims[1:]) != tuple(item_shape):
        return f"idx items of shape {tuple(dims[1:])}, expected {tuple(item_shape)}", 0
    expected = header + dims[0] * int(np.prod(item_shape, dtype=np.int64))
    if size != expected:
        return f"{size} bytes, the idx header promises {dims[0]} items in {expected} bytes (truncated or padded)", 0
    return None, dims[0]
