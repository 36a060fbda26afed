"""``--ckpt_path``: find, read and check the checkpoint a command starts from, before any work.

* ``last`` means the newest ``last*.ckpt`` or ``interrupted.ckpt`` of earlier runs with the same logger settings:
  ``<save_dir>/<name>/*/checkpoints`` (or ``checkpoint.dirpath`` when that is set). Lightning looks for
  ``last.ckpt`` only in the current run's folder, and with a TensorBoard logger every new run gets a new
  ``version_<n>`` folder, so ``last`` alone would never find the previous run's file. ``fit`` then continues in
  that run folder (same logger version), so its curves and checkpoints carry on where they stopped.
* ``best`` means the best checkpoint (by the ``checkpoint`` monitor, ``val/acc``) recorded in that newest file.
* The file must read as a Lightning checkpoint (:func:`read_checkpoint`): an empty, truncated or foreign file is
  a one-line :class:`~spikegrad.errors.UsageError`.
* The model and data settings given to the command (config files and command line) are compared with the ones
  the checkpoint was trained with (:func:`settings_differences`); see :data:`CKPT_SETTINGS` for what happens
  when they differ. :class:`SettingsInCheckpoint` stores the settings in every checkpoint.
"""

from __future__ import annotations

import glob
import os
import pickle
import re
from dataclasses import dataclass
from typing import Any

import torch
import yaml
from lightning.pytorch.cli import SaveConfigCallback

from spikegrad.callbacks.run.interrupt_checkpoint import INTERRUPTED_NAME
from spikegrad.errors import UsageError

LIGHTNING_SPECIAL_PATHS = ("hpc", "registry")
SETTINGS_KEY = "spikegrad_settings"
# What ``--ckpt_settings`` may say when the given model/data settings differ from the checkpoint's.
CKPT_SETTINGS = {
    "refuse": "stop with a one-line error that lists the differing settings (the default)",
    "checkpoint": "continue with the checkpoint's settings (a full resume: weights, optimizer, epoch, generators)",
    "given": "start a new run from the checkpoint's weights only, with the given settings (fine-tuning)",
}
# Settings that say where data is or how fast it loads, not what is computed: never compared.
UNCOMPARED_SETTINGS = tuple(
    f"data.init_args.{key}" for key in ("data_dir", "num_workers", "pin_memory", "download", "cache")
)


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
    files = [p for folder in folders for p in glob.glob(os.path.join(glob.escape(folder), "*.ckpt"))]
    files = [p for p in files if _is_resumable(p)]
    return max(files, key=os.path.getmtime) if files else None


def _run_folders(trainer_config: Any, checkpoint_dirpath: str | None, wanted: str) -> tuple[list[str], str, bool]:
    """The checkpoint folders of earlier runs, a description for messages, and whether they are logger versions."""
    if checkpoint_dirpath:
        return [checkpoint_dirpath], checkpoint_dirpath, False
    logger = _get(trainer_config, "logger")
    root = _get(trainer_config, "default_root_dir") or os.getcwd()
    if logger in (None, False):
        where = os.path.join(root, "checkpoints")
        return [where], where, False
    init_args = _get(logger, "init_args")
    if init_args is not None and _get(init_args, "save_dir") is not None:
        run_root = os.path.join(_get(init_args, "save_dir"), _get(init_args, "name") or "")
        where = os.path.join(run_root, "*", "checkpoints")
        return sorted(glob.glob(os.path.join(glob.escape(run_root), "*", "checkpoints"))), where, True
    raise UsageError(
        f"ckpt_path {wanted}: cannot tell where this logger keeps its runs; set checkpoint.dirpath or give "
        f"the checkpoint file as --ckpt_path PATH"
    )


def _newest_of_earlier_runs(trainer_config: Any, checkpoint_dirpath: str | None, wanted: str) -> tuple[str, bool]:
    """The newest resumable checkpoint of earlier runs, and whether its folder is a logger version."""
    folders, where, versioned = _run_folders(trainer_config, checkpoint_dirpath, wanted)
    newest = newest_checkpoint(folders)
    if newest is None:
        raise UsageError(
            f"ckpt_path {wanted}: no earlier run in {where} (no last.ckpt or {INTERRUPTED_NAME}.ckpt there); "
            f"start without --ckpt_path or give a checkpoint file as --ckpt_path PATH"
        )
    return newest, versioned


def find_last(trainer_config: Any, checkpoint_dirpath: str | None) -> ResumePoint:
    """The newest resumable checkpoint for these trainer/checkpoint settings (raises :class:`UsageError`)."""
    found, versioned = _newest_of_earlier_runs(trainer_config, checkpoint_dirpath, "last")
    version = os.path.basename(os.path.dirname(os.path.dirname(found))) if versioned else None
    return ResumePoint(os.path.abspath(found), version)


def find_best(trainer_config: Any, checkpoint_dirpath: str | None) -> str:
    """The best checkpoint recorded in the newest resumable checkpoint of earlier runs (raises :class:`UsageError`)."""
    newest, _ = _newest_of_earlier_runs(trainer_config, checkpoint_dirpath, "best")
    states = read_checkpoint(newest).get("callbacks") or {}
    recorded = [
        state.get("best_model_path") for key, state in states.items()
        if key.startswith("ModelCheckpoint{") and isinstance(state, dict) and state.get("best_model_path")
    ]
    for path in recorded:
        for candidate in (path, os.path.join(os.path.dirname(newest), os.path.basename(path))):
            if os.path.isfile(candidate):
                return os.path.abspath(candidate)
    raise UsageError(
        f"ckpt_path best: the newest run ({newest}) records no best checkpoint that still exists; give a "
        f"checkpoint file as --ckpt_path PATH"
    )


def read_checkpoint(path: str, weights_only: bool | None = True) -> dict:
    """Loads ``path`` (on the CPU) and checks that it is a Lightning checkpoint; any failure is a one-line
    :class:`UsageError` that names the file and what is wrong with it.

    Read with ``torch.load(weights_only=True)`` unless the command says ``--weights_only false``: a checkpoint
    of spikegrad holds only tensors and plain values, so a file that needs more is not one of them.
    """
    valid = "valid values: a checkpoint file written by spikegrad fit, last, best"
    if not os.path.isfile(path):
        raise UsageError(f"ckpt_path: no such checkpoint file {path!r}; {valid}")
    if os.path.getsize(path) == 0:
        raise UsageError(f"ckpt_path {path}: the file is empty (0 bytes); {valid}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only is not False)
    except pickle.UnpicklingError as error:
        foreign = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        reason = (f"it holds a Python object of type {foreign.group(1)}, which checkpoints of spikegrad never hold"
                  if foreign else "it is not a checkpoint file (or is damaged)")
        raise UsageError(f"ckpt_path {path}: cannot be read: {reason}; {valid}") from None
    except Exception as error:  # EOFError, zip reader errors, ...: a truncated or foreign file
        raise UsageError(
            f"ckpt_path {path}: cannot be read, the file is truncated or not a checkpoint "
            f"({type(error).__name__}); {valid}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UsageError(f"ckpt_path {path}: not a Lightning checkpoint (it has no state_dict); {valid}")
    return checkpoint


def resolve_ckpt_path(subcommand: str, config: Any) -> ResumePoint | None:
    """The checkpoint of ``config[subcommand].ckpt_path``, with ``last``/``best`` resolved to a file
    (``None`` without ``ckpt_path``; ``hpc``/``registry`` are left to Lightning)."""
    sub = config[subcommand]
    ckpt_path = _get(sub, "ckpt_path")
    if ckpt_path is None or ckpt_path in LIGHTNING_SPECIAL_PATHS:
        return None
    trainer, dirpath = _get(sub, "trainer"), _get(_get(sub, "checkpoint"), "dirpath")
    if ckpt_path == "last":
        return find_last(trainer, dirpath)
    if ckpt_path == "best":
        return ResumePoint(find_best(trainer, dirpath), None)
    return ResumePoint(str(ckpt_path), None)


# --- test / validate / predict of a run's checkpoint ----------------------------------------------------------------
RUN_CONFIG = "config.yaml"
VERSIONED_LOGGERS = ("TensorBoardLogger", "CSVLogger")  # loggers whose folder is save_dir/name/version


def run_folder_of(ckpt_path: str | None) -> str | None:
    """The run folder of a checkpoint written by ``spikegrad fit`` (``RUN/checkpoints/x.ckpt`` -> ``RUN``) when it
    holds the run's ``config.yaml``; ``None`` otherwise."""
    if not ckpt_path or ckpt_path in ("last", "best", *LIGHTNING_SPECIAL_PATHS):
        return None
    folder = os.path.dirname(os.path.abspath(ckpt_path))
    run = os.path.dirname(folder)
    if os.path.basename(folder) != "checkpoints" or not os.path.isfile(os.path.join(run, RUN_CONFIG)):
        return None
    return run


def with_run_config(args: list[str]) -> list[str]:
    """``test|validate|predict --ckpt_path RUN/checkpoints/x.ckpt`` without ``--config``: the run's
    ``RUN/config.yaml`` first, so that the command has the run's settings (logger, callbacks, data) by itself."""
    if not args or args[0] not in ("test", "validate", "predict"):
        return args
    if any(a in ("-c", "--config") or a.startswith("--config=") for a in args):
        return args
    ckpt = None
    for i, arg in enumerate(args):
        if arg == "--ckpt_path" and i + 1 < len(args):
            ckpt = args[i + 1]
        elif arg.startswith("--ckpt_path="):
            ckpt = arg.split("=", 1)[1]
    run = run_folder_of(ckpt)
    return [args[0], "--config", os.path.join(run, RUN_CONFIG), *args[1:]] if run else args


def log_into_run(trainer_settings: Any, run: str) -> None:
    """Points a TensorBoard/CSV logger setting at the run folder ``run`` (``save_dir/name/version``), so that a
    test of the run's checkpoint logs beside its fit: no new version folder."""
    logger = _get(trainer_settings, "logger")
    class_path = str(_get(logger, "class_path") or "")
    init_args = _get(logger, "init_args")
    if init_args is None or class_path.rsplit(".", 1)[-1] not in VERSIONED_LOGGERS:
        return
    init_args["save_dir"] = os.path.dirname(os.path.dirname(run))
    init_args["name"] = os.path.basename(os.path.dirname(run))
    init_args["version"] = os.path.basename(run)


# --- the settings a checkpoint was trained with ------------------------------------------------------------------
def recorded_settings(checkpoint: dict) -> dict[str, Any]:
    """``{"model": ..., "data": ...}`` as stored by :class:`SettingsInCheckpoint`; for checkpoints without them,
    the model's hyperparameters (what Lightning itself stores)."""
    settings = checkpoint.get(SETTINGS_KEY)
    if isinstance(settings, dict):
        return settings
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    if "_class_path" in hparams:
        hparams = {"class_path": hparams.pop("_class_path"), "init_args": hparams}
    return {"model": hparams} if hparams else {}


def _canonical(value: Any) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str):  # "5" given for an untyped (dict) setting on the command line
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if isinstance(parsed, (int, float, bool)) else value
    return value


def flatten(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"model.surrogate.alpha": 2.0}``; lists stay whole values."""
    if not isinstance(settings, dict) or not settings:
        return {prefix: _canonical(settings)} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def settings_differences(recorded: dict, given: dict) -> list[tuple[str, Any, Any]]:
    """``(key, checkpoint value, given value)`` for every model/data setting in ``given`` (the settings the user
    gave explicitly) that differs from ``recorded``; keys the checkpoint does not record are not compared."""
    old = flatten({k: recorded[k] for k in ("model", "data") if k in recorded})
    new = flatten({k: given[k] for k in ("model", "data") if k in given})
    return [
        (key, old[key], value) for key, value in new.items()
        if key in old and old[key] != value and not key.startswith(UNCOMPARED_SETTINGS)
    ]


def differences_message(ckpt_path: str, differences: list[tuple[str, Any, Any]]) -> str:
    listed = ", ".join(f"{key} (checkpoint: {old}, given: {new})" for key, old, new in differences)
    return (
        f"ckpt_path {ckpt_path}: the given settings differ from the checkpoint's: {listed}; to continue with the "
        f"checkpoint's settings add --ckpt_settings checkpoint, to start a new run from its weights with the "
        f"given settings add --ckpt_settings given"
    )


class SettingsInCheckpoint(SaveConfigCallback):
    """Lightning's ``SaveConfigCallback`` (``config.yaml`` in the run folder) that also stores the model and data
    settings in every checkpoint (``spikegrad_settings``), so that a resumed command can be compared with them.
    ``test``/``validate``/``predict`` into a run folder keep the run's own ``config.yaml``."""

    _settings: dict | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective call under DDP: every process makes it
        if stage != "fit" and log_dir and os.path.isfile(os.path.join(log_dir, self.config_filename)):
            return
        super().setup(trainer, pl_module, stage)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self._settings is None:  # the settings of a run do not change: dumped once
            dumped = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
            self._settings = {key: dumped[key] for key in ("model", "data") if key in dumped}
        checkpoint[SETTINGS_KEY] = self._settings
