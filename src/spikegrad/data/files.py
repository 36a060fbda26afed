"""What a recording is on disk: its file's identity, and the listing of a dataset tree against its layout."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordingFile:
    """One recording: the file holding it (``relpath`` below the dataset root, ``/``-separated), that file's
    size and modification time, and ``row`` for recordings stored as rows of one file (HDF5, npz).

    ``key`` is the recording's identity for caches: a file that is replaced, rewritten or touched gets a new
    key (size or mtime changes), a removed file is simply never asked for again.
    """

    relpath: str
    size: int
    mtime_ns: int
    row: int | None = None

    @property
    def name(self) -> str:
        """``relpath``, or ``relpath[row]`` for a row of a file (what ``data_split.json`` lists)."""
        return self.relpath if self.row is None else f"{self.relpath}[{self.row}]"

    @property
    def key(self) -> str:
        fields = [self.relpath, self.size, self.mtime_ns, self.row]
        return hashlib.sha1(json.dumps(fields).encode()).hexdigest()

    @classmethod
    def of(cls, root: str, relpath: str, row: int | None = None) -> RecordingFile:
        stat = os.stat(os.path.join(root, relpath))
        return cls(relpath, stat.st_size, stat.st_mtime_ns, row)


# Archives a manual extraction may leave beside the extracted tree (tonic's and the publishers' downloads):
# ignored without a warning. Everything else that is not part of the layout is reported.
ARCHIVE = re.compile(r"[^/]+\.(zip|tar|tar\.gz|tgz|gz|rar|7z)")


@dataclass
class Listing:
    """The files of a dataset tree that match its layout, with their labels, and the stray entries."""

    files: dict[str, list[tuple[RecordingFile, int]]]  # part -> [(file, label)] in sorted path order
    stray: list[str]  # relative paths of the highest folders / files that hold nothing of the layout

    def count(self, part: str) -> int:
        return len(self.files.get(part, []))


def list_tree(
    root: str, match: Callable[[str], tuple[str, int] | None], key: Callable[[str], list] | None = None
) -> Listing:
    """Walks ``root`` and sorts every file into ``match(relpath) -> (part, label)`` or stray (``None``).

    Hidden files and folders (``.DS_Store``, ``._x.bin``, ``.partial-*``) and ``__MACOSX`` are stray like any other
    entry outside the layout; archives at the top level (:data:`ARCHIVE`) are ignored. Stray paths are reported
    by their highest folder below ``root`` that holds no file of the layout (one ``__MACOSX`` entry, not its
    thousands of files). Files are sorted by ``key`` (default: numbers in names compared as numbers).
    """
    key = key or natural_key
    files: dict[str, list[tuple[RecordingFile, int]]] = {}
    stray_files: list[str] = []
    used_dirs: set[str] = {""}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        for filename in sorted(filenames):
            relpath = f"{rel_dir}/{filename}" if rel_dir else filename
            found = None if filename.startswith(".") or "__MACOSX" in relpath.split("/") else match(relpath)
            if found is None:
                if not (rel_dir == "" and ARCHIVE.fullmatch(filename)):
                    stray_files.append(relpath)
                continue
            part, label = found
            files.setdefault(part, []).append((RecordingFile.of(root, relpath), label))
            parts = relpath.split("/")
            used_dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for entries in files.values():
        entries.sort(key=lambda entry: key(entry[0].relpath))
    return Listing(files, _highest_unused(stray_files, used_dirs))


def _highest_unused(paths: list[str], used_dirs: set[str]) -> list[str]:
    shown: list[str] = []
    for path in paths:
        parts = path.split("/")
        top = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) not in used_dirs), path)
        if top not in shown:
            shown.append(top)
    return shown


def natural_key(path: str) -> list:
    """Sort key comparing digit runs as numbers: ``x_2`` before ``x_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def describe_stray(stray: list[str], shown: int = 5) -> str:
    """``a, b, c and 4 more`` for a warning line."""
    more = f" and {len(stray) - shown} more" if len(stray) > shown else ""
    return ", ".join(stray[:shown]) + more
