"""The settings that change a run's results, as flat readable keys, for the loggers' hyperparameter views.

TensorBoard's HPARAMS tab (and MLflow's parameters, CSVLogger's ``hparams.yaml``) compare runs by the keys
logged with ``log_hyperparams``. Lightning logs the model's and the data module's constructor arguments there,
which mixes internals (``_instantiator``, the data split's ``*_sha1``, ``input_shape``) with the settings and
leaves out the optimizer, the schedule, the batch size, the epochs, the seed and the callbacks that train
differently. :func:`run_hparams` builds the table from the run's config instead:

* every class-with-options setting as its class name plus one key per option: ``optimizer: AdamW``,
  ``optimizer.lr``, ``lr_scheduler: CosineAnnealingLR``, ``neuron: LIF``, ``neuron.tau`` (every neuron option,
  whatever the class has), ``surrogate.alpha``, ``backbone.channels``, ``decoder``, ``loss``, ``pda.weight``;
* ``seed``, ``max_epochs``, ``batch_size``, ``time_steps`` (the T in use), ``data`` (the data module class),
  ``dataset`` and the data options that change what is trained on (not its folder, workers or cache);
* the trainer options that change the optimisation when set (``accumulate_grad_batches``, gradient clipping,
  precision, batch limits);
* the options of every callback that takes part in training (the method callbacks such as
  ``DspikeTemperatureSearch.b0``); the analysis monitors, which leave training bitwise the same, and the
  run-safety callbacks are left out.

TensorBoard lists the keys of the first run it finds and shows five of them until others are ticked: the
ones in :data:`SHOWN_FIRST` (learning rate, surrogate, neuron, T, batch size). The compared metrics
(:data:`HPARAM_METRICS`) are ``test/acc``, ``val/acc_best``, ``firing_rate/mean`` and
``grad_sparsity/mean``; TensorBoard shows the last value of each tag, so ``spikegrad test`` run later into the
same folder updates ``test/acc`` in the table.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard.summary import hparams

from spikegrad.callbacks.run.neuron_backend import NeuronBackendChoice
from spikegrad.tensorboard_layout import write_layout

__all__ = ["HPARAM_METRICS", "HyperparameterTable", "log_hparams", "run_hparams"]

HPARAM_METRICS = ("test/acc", "val/acc_best", "firing_rate/mean", "grad_sparsity/mean")
# TensorBoard's table shows five settings until others are ticked: those it is told differ, then by name
SHOWN_FIRST = ("optimizer.lr", "surrogate", "neuron", "time_steps", "batch_size")
# model settings the data module fills in (the CLI links them), not choices of the run
LINKED_MODEL_SETTINGS = ("num_classes", "input_shape", "encoding", "data_time_steps", "time_steps")
# data options that say where data is or how fast it loads, not what is trained on
DATA_PLUMBING = ("data_dir", "num_workers", "pin_memory", "download", "cache", "persistent_workers", "verify")
# trainer options that change the optimisation (logged when set)
TRAINER_SETTINGS = (
    "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm", "precision", "max_steps",
    "limit_train_batches", "deterministic",
)
TRAINER_DEFAULTS = {"accumulate_grad_batches": 1, "max_steps": -1, "limit_train_batches": None}
# callbacks that observe or protect a run without changing its results
NOT_TRAINING_CALLBACKS = ("spikegrad.callbacks.analysis", "spikegrad.callbacks.run", "lightning.")
ANALYSIS_CLASS_NAMES = (
    "FiringRateMonitor", "GradientSparsityMonitor", "PotentialMonitor", "EnergyMonitor", "MethodStateMonitor",
)


def _plain(value: Any) -> Any:
    """A value TensorBoard's hparams accept: numbers, strings and booleans; lists and ``None`` as text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return str([_plain(v) for v in value])
    return "none" if value is None else str(value)


def _class_name(class_path: str) -> str:
    return str(class_path).rsplit(".", 1)[-1]


def _put(flat: dict[str, Any], key: str, value: Any) -> None:
    """A class-with-options value becomes ``key: ClassName`` plus ``key.option``; a mapping ``key.option``."""
    if isinstance(value, dict) and "class_path" in value:
        flat[key] = _class_name(value["class_path"])
        for option, option_value in (value.get("init_args") or {}).items():
            if option_value is not None:  # an option left to its class's choice (torch's foreach, fused, ...)
                _put(flat, f"{key}.{option}", option_value)
    elif isinstance(value, dict):
        for option, option_value in value.items():
            _put(flat, f"{key}.{option}", option_value)
    else:
        flat[key] = _plain(value)


def _is_training_callback(class_path: str) -> bool:
    return not (class_path.startswith(NOT_TRAINING_CALLBACKS) or _class_name(class_path) in ANALYSIS_CLASS_NAMES)


def run_hparams(settings: dict, time_steps: int | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The flat, readable settings of one run (see the module docstring) from the subcommand's config as a
    dict (``config.yaml``'s content); ``time_steps`` is the T in use, ``dataset`` the data module's name."""
    flat: dict[str, Any] = {}
    if settings.get("seed_everything") is not None:
        flat["seed"] = _plain(settings["seed_everything"])
    trainer = settings.get("trainer") or {}
    flat["max_epochs"] = _plain(trainer.get("max_epochs"))
    data = settings.get("data") or {}
    data_args = (data.get("init_args") or {}) if isinstance(data, dict) else {}
    if "batch_size" in data_args:
        flat["batch_size"] = _plain(data_args["batch_size"])
    if time_steps is not None:
        flat["time_steps"] = int(time_steps)
    model = settings.get("model") or {}
    for key, value in model.items():
        if key not in LINKED_MODEL_SETTINGS:
            _put(flat, key, value)
    if isinstance(data, dict) and "class_path" in data:
        flat["data"] = _class_name(data["class_path"])
    if dataset:
        flat["dataset"] = dataset
    for option, value in data_args.items():
        if option not in DATA_PLUMBING and option != "batch_size":
            _put(flat, f"data.{option}", value)
    for option in TRAINER_SETTINGS:
        value = trainer.get(option)
        if value is not None and value != TRAINER_DEFAULTS.get(option, None):
            flat[f"trainer.{option}"] = _plain(value)
    callbacks = trainer.get("callbacks") or []
    for entry in callbacks if isinstance(callbacks, list) else [callbacks]:
        if isinstance(entry, dict) and "class_path" in entry and _is_training_callback(entry["class_path"]):
            name = _class_name(entry["class_path"])
            flat[name] = True
            for option, value in (entry.get("init_args") or {}).items():
                _put(flat, f"{name}.{option}", value)
    return flat


class HyperparameterTable(Callback):
    """Logs :func:`run_hparams` of the run once its first training epoch has ended (so that ``test``,
    ``validate`` and ``max_epochs 0`` runs are no trials), to every logger, from global rank zero.

    Args:
        settings: the subcommand's config as a plain dict (what ``config.yaml`` holds).
    """

    def __init__(self, settings: dict) -> None:
        super().__init__()
        self.settings = settings
        self.written = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning logs the constructor arguments of the model and the data module at the start of every run
        # (trainer._run -> loggers.utilities._log_hyperparams, which reads these two flags; lightning 2.4-2.6);
        # the table of this callback replaces them
        pl_module._log_hyperparams = False
        if trainer.datamodule is not None:
            trainer.datamodule._log_hyperparams = False

    def params(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        datamodule_hparams = getattr(trainer.datamodule, "hparams", {}) or {}
        params = run_hparams(self.settings, getattr(pl_module, "time_steps", None), datamodule_hparams.get("dataset"))
        for callback in trainer.callbacks:  # backend auto, resolved after the first batch
            if isinstance(callback, NeuronBackendChoice) and callback.choice is not None:
                params["neuron_backend"] = callback.choice
        return params

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.written or trainer.sanity_checking:
            return
        self.written = True
        if trainer.is_global_zero:
            present = {type(callback).__name__ for callback in trainer.callbacks}
            pda = getattr(pl_module, "pda", None)
            if pda is not None and pda.weight > 0:
                present.add("pda")
            log_hparams(trainer.loggers, self.params(trainer, pl_module), present)


def log_hparams(loggers: list, params: dict[str, Any], present: set[str] = frozenset()) -> None:
    """``params`` to every logger; for TensorBoard with :data:`HPARAM_METRICS` as the compared metrics, and the
    custom-scalars layout for the callbacks ``present`` (class names)."""
    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params)
            continue
        # metrics={}: hparams.yaml and no hp_metric. Lightning's log_hyperparams(params, metrics) would also write
        # each metric's value at step 0, a false first point on those curves; the session summary that names
        # the metrics is written here instead (what that method does after logging the values).
        logger.log_hyperparams(params, metrics={})
        experiment, start, end = hparams(params, dict.fromkeys(HPARAM_METRICS, 0.0))
        _show_first(experiment, SHOWN_FIRST)
        writer = logger.experiment._get_file_writer()  # SummaryWriter's writer, as Lightning itself uses it
        for summary in (experiment, start, end):
            writer.add_summary(summary)
        write_layout(logger.experiment, set(present))  # loss and accuracy first in CUSTOM SCALARS
        logger.experiment.flush()
        save_hparams_to_yaml(os.path.join(logger.log_dir, logger.NAME_HPARAMS_FILE), logger.hparams)


def _show_first(experiment_summary, names: tuple[str, ...]) -> None:
    """Marks ``names`` as the settings that differ between runs in the experiment summary, so that TensorBoard's
    HPARAMS tab shows them by default (it shows the first five, sorted by that flag and then by name; the flag is
    otherwise unset in a summary written by one run, which cannot know the others)."""
    value = experiment_summary.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in names
    value.metadata.plugin_data.content = data.SerializeToString()
