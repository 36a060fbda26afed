"""The two data errors: a dataset missing from disk, and an event file that cannot be read."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk and could not be downloaded.

    The message is one line: the dataset, the exact path and layout expected there, and where to get it.
    """

    def __init__(self, dataset: str, path: str, layout: str, source: str, reason: str = "") -> None:
        because = f" ({reason})" if reason else ""
        super().__init__(f"{dataset} not found at {path}{because}; expected layout: {layout}; get it from {source}")

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None]"
        return self.args[0]


class CorruptEventFileError(RuntimeError):
    """An event file that is empty or cannot be decoded; the message names the file."""
