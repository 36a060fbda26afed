"""Data errors and warnings. Every error is one line that starts with the dataset and the path it is about:
``"<dataset>: <path>: <cause>"``, e.g. ``N-MNIST: /data/NMNIST/Train/3/00001.bin: 1234 bytes is not ...``.

* :class:`DatasetNotFoundError` — nothing (or a file the layout needs) is on disk and it was not downloaded.
* :class:`IncompleteDatasetError` — fewer (or more) recordings than the published set, or missing class folders.
* :class:`CorruptFileError` — a file whose size, header or content is wrong; :class:`CorruptEventFileError` for
  event recordings.
* :class:`DataError` — the base; raised itself for data that does not fit the frame settings.

Errors raised inside a DataLoader worker process reach the main process through torch, which builds a new
exception of the same class from a single string: the worker's whole traceback. :class:`DataError` accepts that
string and turns it back into the one-line message; the traceback stays available as ``worker_traceback`` and as
the exception's ``__cause__`` (so a log that prints the chain shows it).
"""

from __future__ import annotations

import re

# torch.utils.data's worker error text (torch._utils.ExceptionWrapper.reraise):
# "Caught <Class> in DataLoader worker process <n>.\nOriginal Traceback (most recent call last): ..."
_WORKER_TEXT = re.compile(r"Caught \w+ in DataLoader worker process (\d+)\.\nOriginal (Traceback.*)", re.S)


class WorkerTraceback(Exception):
    """The traceback of an error raised in a DataLoader worker process (kept as the re-raised error's cause)."""


class DataError(Exception):
    """A problem with data on disk: ``str(error)`` is ``"<dataset>: <path>: <cause>"`` on one line."""

    def __init__(self, dataset: str, path: str | None = None, cause: str | None = None) -> None:
        worker_traceback = None
        if path is None and cause is None:  # torch re-raising a worker's error: one string holding the traceback
            dataset, path, cause, worker_traceback = _from_worker_text(type(self), dataset)
        self.dataset, self.path, self.cause = str(dataset), str(path), " ".join(str(cause).split())
        self.worker_traceback = worker_traceback
        super().__init__(str(self))
        if worker_traceback is not None:
            self.__cause__ = WorkerTraceback(worker_traceback)

    # no attribute named ``message``: torch's re-raise would pass the worker text as ``message=`` then
    def __str__(self) -> str:
        return f"{self.dataset}: {self.path}: {self.cause}"

    def __reduce__(self):  # the subclasses' constructors differ; rebuild from the three fields
        return _rebuild, (type(self), self.dataset, self.path, self.cause)


def _rebuild(cls: type, dataset: str, path: str, cause: str) -> DataError:
    error = cls.__new__(cls)
    DataError.__init__(error, dataset, path, cause)
    return error


def _from_worker_text(cls: type, text: str) -> tuple[str, str, str, str]:
    """``(dataset, path, cause, traceback)`` from torch's worker error text; the last line of the traceback is
    ``<module>.<Class>: <dataset>: <path>: <cause>`` (paths holding ``": "`` are not told apart from the cause)."""
    match = _WORKER_TEXT.fullmatch(str(text))
    prefix = f"{cls.__module__}.{cls.__qualname__}: "
    lines = [line for line in str(text).splitlines() if line.startswith(prefix)] if match else []
    if not lines:
        raise TypeError(f"{cls.__name__} needs (dataset, path, cause)")  # torch then raises RuntimeError(text)
    dataset, _, rest = lines[-1][len(prefix) :].partition(": ")
    path, _, cause = rest.partition(": ")
    return dataset, path, f"{cause} (in DataLoader worker {match.group(1)})", match.group(2)


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset (or a file of it) is not on disk and was not downloaded: the message names the path, the layout
    expected there and where to get it."""

    def __init__(self, dataset: str, path: str, layout: str, source: str, reason: str = "") -> None:
        because = f" ({reason})" if reason else ""
        super().__init__(dataset, path, f"not found{because}; expected layout: {layout}; get it from {source}")


class IncompleteDatasetError(DataError):
    """Fewer or more recordings than the published set, or missing class folders (``allow_subset`` accepts a
    deliberately reduced copy)."""


class CorruptFileError(DataError):
    """A file whose size, header or content is not what its format promises."""


class CorruptEventFileError(CorruptFileError):
    """An event recording that cannot be decoded, holds no events, or whose events fall outside the sensor."""


class DataWarning(UserWarning):
    """Something in a dataset tree that was skipped or accepted on request (stray entries, a reduced copy)."""
