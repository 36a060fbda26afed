"""``--ckpt_path last``: find the newest resumable checkpoint of earlier runs with the same logger settings.

Lightning looks for ``last.ckpt`` only in the current run's checkpoint folder, and with a TensorBoard logger
every new run gets a new ``version_<n>`` folder, so ``last`` alone would never find the previous run's file.
Here ``last`` means: the newest ``last*.ckpt`` or ``interrupted.ckpt`` in ``<save_dir>/<name>/*/checkpoints``
(or in ``checkpoint.dirpath`` when that is set), and the run continues in that folder (same logger
version), so its TensorBoard curves and checkpoints carry on where they stopped.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

from spikegrad.callbacks.run.interrupt_checkpoint import INTERRUPTED_NAME
from spikegrad.errors import UsageError

LIGHTNING_SPECIAL_PATHS = ("best", "hpc", "registry")


@dataclass
class ResumePoint:
    checkpoint: str
    logger_version: str | None  # the run folder to continue in, None when the logger has no versions


def _get(namespace: Any, key: str, default: Any = None) -> Any:
    if namespace is None:
        return default
    getter = getattr(namespace, "get", None)
    return getter(key, default) if callable(getter) else getattr(namespace, key, default)


def _is_resumable(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(".ckpt") and (name.startswith("last") or name == f"{INTERRUPTED_NAME}.ckpt")


def newest_checkpoint(folders: list[str]) -> str | None:
    files = [p for folder in folders for p in glob.glob(os.path.join(folder, "*.ckpt")) if _is_resumable(p)]
    return max(files, key=os.path.getmtime) if files else None


def find_last(trainer_config: Any, checkpoint_dirpath: str | None) -> ResumePoint:
    """The newest resumable checkpoint for these trainer/checkpoint settings (raises :class:`UsageError`)."""
    if checkpoint_dirpath:
        found = newest_checkpoint([checkpoint_dirpath])
        where = checkpoint_dirpath
        if found:
            return ResumePoint(os.path.abspath(found), None)
    else:
        logger = _get(trainer_config, "logger")
        init_args = _get(logger, "init_args")
        root = _get(trainer_config, "default_root_dir") or os.getcwd()
        if logger in (None, False):
            where = os.path.join(root, "checkpoints")
            found = newest_checkpoint([where])
            if found:
                return ResumePoint(os.path.abspath(found), None)
        elif init_args is not None and _get(init_args, "save_dir") is not None:
            run_root = os.path.join(_get(init_args, "save_dir"), _get(init_args, "name") or "")
            where = os.path.join(run_root, "*", "checkpoints")
            found = newest_checkpoint(sorted(glob.glob(where)))
            if found:
                version = os.path.basename(os.path.dirname(os.path.dirname(found)))
                return ResumePoint(os.path.abspath(found), version)
        else:
            raise UsageError(
                "ckpt_path last: cannot tell where this logger keeps its runs; set checkpoint.dirpath or give "
                "the checkpoint file as --ckpt_path PATH"
            )
    raise UsageError(
        f"ckpt_path last: no last.ckpt or {INTERRUPTED_NAME}.ckpt in {where}; start without --ckpt_path or give "
        f"a checkpoint file as --ckpt_path PATH"
    )


def resolve_ckpt_path(subcommand: str, config: Any) -> None:
    """Checks ``ckpt_path`` of ``config[subcommand]`` and turns ``last`` into a file and a logger version, in place."""
    sub = config[subcommand]
    ckpt_path = _get(sub, "ckpt_path")
    if ckpt_path is None or ckpt_path in LIGHTNING_SPECIAL_PATHS:
        return
    if ckpt_path != "last":
        if not os.path.isfile(ckpt_path):
            raise UsageError(
                f"ckpt_path: no such checkpoint file {ckpt_path!r}; valid values: a .ckpt file, last, best"
            )
        return
    point = find_last(_get(sub, "trainer"), _get(_get(sub, "checkpoint"), "dirpath"))
    sub["ckpt_path"] = point.checkpoint
    if subcommand == "fit" and point.logger_version is not None:
        sub["trainer"]["logger"]["init_args"]["version"] = point.logger_version
