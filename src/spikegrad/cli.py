"""The ``spikegrad`` command: LightningCLI (fit / validate / test / predict) with omegaconf configs.

``spikegrad fit --config configs/quickstart.yaml`` trains, tests the best checkpoint at the end (unless
``--test_after_fit false``) and prints the test metrics and the TensorBoard log folder.

Every run also gets, without configuration: the best checkpoint by ``val/acc`` (``checkpoint.*``) and
``last.ckpt`` at the end of every epoch and of fit (:mod:`spikegrad.callbacks.run.last_checkpoint`), the run manifest
(:mod:`spikegrad.manifest`), the random generators' state and the model/data settings in every checkpoint (exact
resume, :mod:`spikegrad.resume`), ``interrupted.ckpt`` on Ctrl-C/SIGTERM, a stop with a clear message on a NaN/Inf
loss, weights or optimizer state (``finite_check.*``, never a checkpoint holding them) and the traceback of a failed
run in its ``error.log``. ``--ckpt_path last|best|FILE`` is read and compared with the given settings before any
work (``--ckpt_settings``). Invalid settings are one line with exit code 2 before any run folder is created
(:mod:`spikegrad.errors`, :mod:`spikegrad.preflight`); configs may only name trusted modules (:mod:`spikegrad.trust`).
"""

from spikegrad.caches import redirect_tool_caches

redirect_tool_caches()  # before matplotlib is imported (by the analysis callbacks below): it reads MPLCONFIGDIR once

from spikegrad.noise import quiet_known_noise  # noqa: E402

quiet_known_noise()  # before the imports that raise the known-harmless warnings

import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Literal  # noqa: E402

import yaml  # noqa: E402
from lightning.fabric.utilities.exceptions import MisconfigurationException  # noqa: E402
from lightning.pytorch.accelerators import CPUAccelerator  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary, ProgressBar  # noqa: E402
from lightning.pytorch.cli import LightningCLI  # noqa: E402
from lightning.pytorch.utilities.exceptions import SIGTERMException  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from spikegrad import preflight  # noqa: E402
from spikegrad.callbacks.run.finite_loss import NonFiniteLossGuard  # noqa: E402
from spikegrad.callbacks.run.interrupt_checkpoint import InterruptCheckpoint  # noqa: E402
from spikegrad.callbacks.run.last_checkpoint import LastCheckpoint  # noqa: E402
from spikegrad.callbacks.run.neuron_backend import NeuronBackendChoice  # noqa: E402
from spikegrad.callbacks.run.random_state import RandomStateCheckpoint  # noqa: E402
from spikegrad.class_paths import ClassPathErrorParser  # noqa: E402
from spikegrad.console import (  # noqa: E402
    CompactModelSummary,
    CompactProgressBar,
    EpochLine,
    is_terminal,
    logger_hints,
)
from spikegrad.data.base import SpikeDataModule  # noqa: E402
from spikegrad.data.errors import DataError  # noqa: E402
from spikegrad.errors import ErrorLog, RunFailed, UsageError, report  # noqa: E402
from spikegrad.hparams import HyperparameterTable  # noqa: E402
from spikegrad.manifest import RunManifest  # noqa: E402
from spikegrad.module import SpikingClassifier  # noqa: E402
from spikegrad.resume import (  # noqa: E402
    CKPT_SETTINGS,
    SettingsInCheckpoint,
    differences_message,
    log_into_run,
    read_checkpoint,
    recorded_settings,
    resolve_ckpt_path,
    run_folder_of,
    settings_differences,
    with_run_config,
)
from spikegrad.trust import enforce_trusted_modules  # noqa: E402

TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "logs", "name": "spikegrad"},
    },
}


def _section(config, subcommand: str | None):
    """The settings of the running subcommand (the whole config when the CLI runs without subcommands)."""
    return config[subcommand] if subcommand else config


class SpikegradCLI(LightningCLI):
    """LightningCLI with the DataModule's facts linked into the model, run-safety callbacks and a test after fit."""

    def add_arguments_to_parser(self, parser) -> None:
        for attribute in ("num_classes", "input_shape", "encoding"):
            parser.link_arguments(f"data.{attribute}", f"model.{attribute}", apply_on="instantiate")
        # sequence data brings its T (event frames); jsonargparse skips the link for data without `time_steps`
        parser.link_arguments("data.time_steps", "model.data_time_steps", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.filename": "epoch{epoch}-val_acc{val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # added after "checkpoint": Lightning keeps the order of checkpoint callbacks, so last.ckpt is written
        # after the best file and holds the best-checkpoint state of the same epoch
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(NonFiniteLossGuard, "finite_check")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the best checkpoint after fit.")
        parser.add_argument(
            "--ckpt_settings",
            type=Literal[tuple(CKPT_SETTINGS)],
            default="refuse",
            help="When the model/data settings given with --ckpt_path differ from the checkpoint's: "
            + "; ".join(f"{k}: {v}" for k, v in CKPT_SETTINGS.items()),
        )

    # --- parsing -------------------------------------------------------------------------------------------
    def parse_arguments(self, parser, args) -> None:
        """Parses with the trusted-module policy and config-file checks, then reads and checks ``--ckpt_path``."""
        self.argv = [sys.argv[0], *sys.argv[1:]] if args is None else ["spikegrad", *args]  # recorded in the manifest
        args = self.args = with_run_config(self.argv[1:])  # test --ckpt_path RUN/checkpoints/x.ckpt: RUN/config.yaml
        self.weights_from: tuple[str, dict] | None = None  # --ckpt_settings given: (file, state_dict)
        enforce_trusted_modules()
        for path in preflight.config_files(self.argv[1:]):
            preflight.check_config_file(path)
        try:  # what LightningCLI.parse_arguments does, on the arguments with the run's config.yaml added
            self.config = parser.parse_args(args)
        except OmegaConfBaseException as error:  # an interpolation to a missing key, ...
            key = str(getattr(error, "full_key", "") or "").split(".", 1)[-1]
            reason = str(getattr(error, "msg", None) or error).splitlines()[0]
            raise UsageError(f"{key + ': ' if key else ''}{reason}") from None
        if self.config.get("subcommand"):
            self._check_ckpt_path(parser)

    def _given_settings(self, parser) -> dict:
        """The settings given explicitly (config files and command line), without defaults."""
        explicit = parser.parse_args(self.args, defaults=False)
        return explicit.as_dict().get(self.config.subcommand) or {}

    def _check_ckpt_path(self, parser) -> None:
        """Resolves ``--ckpt_path``, reads the file and settles its settings against the given ones:
        ``refuse`` (differences are an error), ``checkpoint`` (its settings) or ``given`` (the given settings over
        the checkpoint's, and only its weights)."""
        subcommand = self.config.subcommand
        point = resolve_ckpt_path(subcommand, self.config)
        if point is None:
            return
        settings = self.config[subcommand]
        checkpoint = read_checkpoint(point.checkpoint, settings.get("weights_only"))
        mode = settings.get("ckpt_settings") or "refuse"
        recorded = recorded_settings(checkpoint)
        given = self._given_settings(parser) if mode != "checkpoint" else {}
        if mode == "refuse":
            differences = settings_differences(recorded, given)
            if differences:
                raise UsageError(differences_message(point.checkpoint, differences))
        if recorded:  # settings nobody gave come from the checkpoint, not from the defaults
            self.config = parser.parse_object({subcommand: recorded}, self.config)
        if mode == "given":  # a new run from the weights only: loaded into the model once it is built
            overrides = {key: given[key] for key in ("model", "data") if key in given}
            if overrides:
                self.config = parser.parse_object({subcommand: overrides}, self.config)
            self.weights_from = (point.checkpoint, checkpoint["state_dict"])
            self.config[subcommand]["ckpt_path"] = None
            return
        settings = self.config[subcommand]
        settings["ckpt_path"] = point.checkpoint
        run = run_folder_of(point.checkpoint)
        if subcommand in ("test", "validate", "predict") and run is not None:
            log_into_run(settings["trainer"], run)  # its metrics beside the fit's, no new version folder
        if subcommand == "fit" and point.logger_version is not None:
            settings["trainer"]["logger"]["init_args"]["version"] = point.logger_version

    # --- building --------------------------------------------------------------------------------------------
    def instantiate_classes(self) -> None:
        """Builds data, model and trainer; an invalid setting becomes a :class:`UsageError` (one line, exit 2).
        The checks that need the built objects run here too, the output folders last."""
        settings = _section(self.config, self.subcommand)
        preflight.check_accelerator(settings["trainer"].get("accelerator"))
        if settings["checkpoint"].get("save_last"):
            raise UsageError(
                "checkpoint.save_last: last.ckpt is written at the end of every epoch and of fit anyway "
                "(last_checkpoint); valid values: null, false"
            )
        data_args = (settings.get("data") or {}).get("init_args") or {}
        preflight.check_data_dir(data_args.get("data_dir"))
        try:
            super().instantiate_classes()
        except (ValueError, MisconfigurationException) as error:
            raise UsageError(self._setting_prefixed(error)) from error
        sync_batchnorm = settings["trainer"].get("sync_batchnorm")
        if sync_batchnorm and isinstance(self.trainer.accelerator, CPUAccelerator):
            raise UsageError(
                "trainer.sync_batchnorm true needs GPUs (torch's SyncBatchNorm has no CPU version); with accelerator "
                "cpu valid values: false"
            )
        if self.weights_from is not None:
            self._load_weights(*self.weights_from)
        if self.subcommand in (None, "fit"):
            preflight.check_optimizer(self.model.configure_optimizers)
        for setting, path in self._output_folders(settings).items():
            preflight.check_output_folder(setting, path)

    @staticmethod
    def _setting_prefixed(error: Exception) -> str:
        """Lightning's Trainer and ModelCheckpoint checks name the argument (`max_epochs`), not the setting."""
        message = str(error)
        files = [f.filename for f in traceback.extract_tb(error.__traceback__)]
        if any(name.endswith("model_checkpoint.py") for name in files):
            return f"checkpoint: {message.replace('`', '')}"
        if not any(f"{os.sep}trainer{os.sep}" in name for name in files):
            return message
        named = re.match(r"`(\w+)`\s*(.*)", message, re.S)
        return f"trainer.{named.group(1)}: {named.group(2)}" if named else f"trainer: {message}".replace("`", "")

    def _output_folders(self, settings) -> dict[str, str]:
        """The folders this command will write into: the logger's, the checkpoints', and ``default_root_dir`` when
        it is set or holds the checkpoints (no logger)."""
        folders = {}
        if settings["trainer"].get("default_root_dir") or self.trainer.logger is None:
            folders["trainer.default_root_dir"] = self.trainer.default_root_dir
        save_dir = getattr(self.trainer.logger, "save_dir", None) if self.trainer.logger is not None else None
        if save_dir:
            folders["trainer.logger.init_args.save_dir"] = save_dir
        if settings["checkpoint"].get("dirpath"):
            folders["checkpoint.dirpath"] = settings["checkpoint"]["dirpath"]
        return {key: str(path) for key, path in folders.items() if path}

    def _load_weights(self, path: str, state_dict: dict) -> None:
        """``--ckpt_settings given``: the checkpoint's weights into the model built from the given settings."""
        own = self.model.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        reshaped = sorted(
            k for k in set(own) & set(state_dict)
            if hasattr(own[k], "shape") and hasattr(state_dict[k], "shape") and own[k].shape != state_dict[k].shape
        )
        if missing or unexpected or reshaped:
            parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                     for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
                     if keys]
            raise UsageError(
                f"ckpt_path {path}: its weights do not fit the model of the given settings ({'; '.join(parts)}); "
                f"valid: settings that keep the architecture, or --ckpt_settings checkpoint"
            )
        self.model.load_state_dict(state_dict)

    def instantiate_trainer(self, **kwargs):
        """Adds the run-safety callbacks, the HPARAMS table (:mod:`spikegrad.hparams`), a model summary without
        uncounted FLOPs and, on a terminal, a compact progress bar unless bars are off or the config has one;
        elsewhere one line per epoch (:mod:`spikegrad.console`)."""
        config = _section(self.config_init, self.subcommand)["trainer"]
        configured = config.get("callbacks") or []
        configured = list(configured) if isinstance(configured, (list, tuple)) else [configured]
        manifest = RunManifest(self.argv, weights_from=self.weights_from[0] if self.weights_from else None)
        callbacks = [*configured, manifest, NeuronBackendChoice(), RandomStateCheckpoint(), InterruptCheckpoint(),
                     ErrorLog()]
        callbacks.append(HyperparameterTable(self._settings_dict()))
        if config.get("enable_model_summary", True) is not False and not any(
            isinstance(c, ModelSummary) for c in configured
        ):
            callbacks.append(CompactModelSummary())
            kwargs["enable_model_summary"] = False  # Lightning's own would be skipped anyway, with a notice
        own_bar = not any(isinstance(c, ProgressBar) for c in configured)
        if not is_terminal():  # a log file or a pipe: one line per epoch instead of a bar's last state
            callbacks.append(EpochLine())
            if own_bar:
                kwargs["enable_progress_bar"] = False
        elif config.get("enable_progress_bar", True) is not False and own_bar:
            callbacks.append(CompactProgressBar())
        return super().instantiate_trainer(**kwargs, callbacks=callbacks)

    def _settings_dict(self) -> dict:
        """The running subcommand's settings as plain values (what ``config.yaml`` holds)."""
        parser = self._parser(self.subcommand)
        return yaml.safe_load(parser.dump(_section(self.config, self.subcommand), skip_none=False)) or {}

    # --- after fit -----------------------------------------------------------------------------------------
    def _checkpoint_to_test(self) -> tuple[str, str] | None:
        """``(label, path)`` of the best checkpoint on disk, else of ``last.ckpt``; ``None`` when fit wrote none."""
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        last = next((c.best_model_path for c in self.trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)), "")
        found = next(((label, p) for label, p in (("best", best), ("last", last)) if p and os.path.isfile(p)), None)
        return self.trainer.strategy.broadcast(found)  # process 0 writes the files: its view decides for all

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit", True):
            chosen = self._checkpoint_to_test()
            if chosen is None:
                if self.trainer.is_global_zero:
                    print(
                        f"\nNot tested: no checkpoint was written (global step {self.trainer.global_step}, "
                        f"trainer.max_epochs {self.trainer.max_epochs}), so there are no trained weights to test"
                    )
            else:
                label, path = chosen
                results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=path, verbose=False)
                if self.trainer.is_global_zero and results:
                    summary = ", ".join(
                        f"{k} = {v:.4f}" for k, v in sorted(results[0].items()) if k.startswith("test/")
                    )
                    print(f"\nTest results ({label} checkpoint): {summary}")
        log_dir = self.trainer.log_dir  # a collective call under DDP: every process makes it
        if self.trainer.is_global_zero:
            for line in logger_hints(self.trainer.loggers, log_dir):
                print(line)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spikegrad`` console script: user errors exit with one line (code 2, or 1 for a
    failed run such as a NaN loss) instead of a traceback."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] == "report":  # spikegrad report LOGDIR... --out DIR (see spikegrad.report)
        from spikegrad.report import main as report_main

        return report_main(argv[1:])
    if argv and argv[0] == "sweep":  # spikegrad sweep SPEC.yaml [--storage URL] [--workers N] (spikegrad.sweep)
        from spikegrad.sweep.command import main as sweep_main

        return sweep_main(argv[1:])
    if argv and argv[0] == "export":  # spikegrad export --ckpt_path FILE --out FILE.nir (see spikegrad.interchange)
        from spikegrad.interchange.command import main as export_main

        return export_main(argv[1:])
    if argv and argv[0] == "neurobench":  # spikegrad neurobench --ckpt_path FILE (NeuroBench's figures and ours)
        from spikegrad.interchange.neurobench import main as neurobench_main

        return neurobench_main(argv[1:])
    try:
        SpikegradCLI(
            SpikingClassifier,
            SpikeDataModule,
            subclass_mode_data=True,
            parser_class=ClassPathErrorParser,
            parser_kwargs={"parser_mode": "omegaconf+", "prog": "spikegrad"},
            save_config_callback=SettingsInCheckpoint,
            save_config_kwargs={"overwrite": True},
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            args=args,
        )
    except (UsageError, RunFailed, DataError) as error:  # data errors: one line starting with dataset and path
        sys.exit(report(error))
    except SIGTERMException:  # Lightning stops on SIGTERM with exit code 0; a terminated run should not look finished
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
