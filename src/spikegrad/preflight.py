"""Checks that turn a bad input into one line (:class:`~spikegrad.errors.UsageError`) before any run folder exists.

What jsonargparse and the classes' own constructors check is theirs; these are the mistakes that would
otherwise surface as a traceback once the run has started: a config file that is not YAML or is empty, an
accelerator the machine does not have, an optimizer setting torch refuses (first used in ``fit``), and output or
data folders that are files or cannot be written.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable

import torch
import yaml

from spikegrad.errors import UsageError

CONFIG_FLAGS = ("-c", "--config")


def config_files(argv: list[str]) -> list[str]:
    """The files given with ``-c``/``--config`` on a command line."""
    files = []
    for i, arg in enumerate(argv):
        if arg in CONFIG_FLAGS and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def check_config_file(path: str) -> None:
    """A config file must be a YAML mapping; a missing file is left to jsonargparse (it names it)."""
    if not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            settings = yaml.safe_load(f)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"config file {path}: not valid YAML{where}: {problem}") from None
    if settings is None:
        raise UsageError(f"config file {path} is empty; valid: a YAML mapping of settings (see --print_config)")
    if not isinstance(settings, dict):
        raise UsageError(
            f"config file {path}: expected a mapping of settings (key: value), got a {type(settings).__name__}"
        )


def check_accelerator(accelerator: object) -> None:
    """``gpu``/``cuda``/``mps`` on a machine without one: Lightning's message names no setting."""
    name = str(accelerator).lower() if isinstance(accelerator, str) else None
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"trainer.accelerator {accelerator}: no CUDA GPU is visible on this machine "
            f"(torch.cuda.is_available() is false); valid values here: cpu, auto"
        )
    mps = getattr(torch.backends, "mps", None)
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise UsageError("trainer.accelerator mps: this machine has no Apple MPS device; valid values here: cpu, auto")


def check_optimizer(configure_optimizers: Callable[[], object]) -> None:
    """Builds the optimizer and scheduler once, so that a value torch refuses (a negative ``lr``) is reported
    before the run starts; the objects are thrown away."""
    try:
        configure_optimizers()
    except (ValueError, TypeError) as error:
        frames = traceback.extract_tb(error.__traceback__)
        setting = "model.lr_scheduler" if any("lr_scheduler" in f.filename for f in frames) else "model.optimizer"
        raise UsageError(f"{setting}: {error}") from None


def check_data_dir(path: object) -> None:
    if isinstance(path, str) and os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"data.init_args.data_dir {path!r} is a file; it must be a folder (created when missing)")


def check_output_folder(setting: str, path: str) -> None:
    """``path`` must be, or be creatable as, a folder one can write in; creates it (not a run folder)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{setting} {path!r}: {existing} is a file, not a folder; valid values: a folder path")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UsageError(
            f"{setting} {path!r} is not writable ({error.strerror or error}); valid values: a folder you can write in"
        ) from None
