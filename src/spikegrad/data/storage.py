"""Where datasets live on disk, and downloads that never leave a partial copy looking complete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence


def staged_download(data_dir: str, entries: Sequence[str], fetch: Callable[[str], None]) -> None:
    """Runs ``fetch(staging_root)`` in a fresh folder beside ``data_dir`` and then moves ``entries``
    (paths relative to the staging root, e.g. ``"NMNIST/Train"``) into ``data_dir``.

    Each entry is moved with one ``os.replace`` after the whole download and extraction succeeded, so an
    interrupted download leaves only the staging folder (removed here on failure), never a half-filled
    dataset folder. Entries already present in ``data_dir`` are kept.
    """
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".partial-", dir=data_dir)
    try:
        fetch(staging)
        for entry in entries:
            source, target = os.path.join(staging, entry), os.path.join(data_dir, entry)
            if not os.path.exists(source):
                raise FileNotFoundError(f"the download did not produce {entry}")
            if os.path.exists(target):
                continue
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def parameter_key(**params) -> str:
    """A readable, stable folder name for transform parameters, e.g. ``n_time_bins=10-size=34x34-1a2b3c4d``.

    The frame cache's folder name (:mod:`spikegrad.data.cache`): frames made with other settings go to another
    folder.
    """
    shown = []
    for name, value in sorted(params.items()):
        if isinstance(value, (tuple, list)):
            value = "x".join(str(v) for v in value)
        shown.append(f"{name}={value}")
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return "-".join([*shown, digest])
