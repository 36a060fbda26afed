"""The ``spikegrad`` command: LightningCLI (fit / validate / test / predict) with omegaconf configs.

``spikegrad fit --config configs/quickstart.yaml`` trains, tests the best checkpoint at the end (unless
``--test_after_fit false``) and prints the test metrics and the TensorBoard log folder.

Every run also gets, without configuration: a ``ModelCheckpoint`` (``checkpoint.*``, ``last.ckpt`` at each
epoch end), the run manifest (:mod:`spikegrad.manifest`), the random generators' state in checkpoints (exact
resume), ``interrupted.ckpt`` on Ctrl-C/SIGTERM, and a stop with a clear message on a NaN/Inf loss.
``--ckpt_path last`` continues the newest run of the same logger settings (:mod:`spikegrad.resume`).
Invalid settings are reported as one line with exit code 2 (:mod:`spikegrad.errors`).
"""

from __future__ import annotations

import signal
import sys

from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from spikegrad.callbacks.run.finite_loss import NonFiniteLossGuard
from spikegrad.callbacks.run.interrupt_checkpoint import InterruptCheckpoint
from spikegrad.callbacks.run.random_state import RandomStateCheckpoint
from spikegrad.class_paths import ClassPathErrorParser
from spikegrad.data.base import SpikeDataModule
from spikegrad.data.errors import CorruptEventFileError, DatasetNotFoundError
from spikegrad.errors import RunFailed, UsageError, report
from spikegrad.manifest import RunManifest
from spikegrad.module import SpikingClassifier
from spikegrad.resume import resolve_ckpt_path

TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "logs", "name": "spikegrad"},
    },
}


class SpikegradCLI(LightningCLI):
    """LightningCLI with the DataModule's facts linked into the model and a test after fit."""

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
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch{epoch}-val_acc{val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Test the best checkpoint after fit.")

    def parse_arguments(self, parser, args) -> None:
        self.argv = [sys.argv[0], *sys.argv[1:]] if args is None else ["spikegrad", *args]  # recorded in the manifest
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        """Checks ``--ckpt_path`` and resolves ``last`` (see :mod:`spikegrad.resume`) before the checkpoint is read."""
        if self.config.get("subcommand"):
            resolve_ckpt_path(self.config.subcommand, self.config)
        super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        """Builds data, model and trainer; an invalid setting becomes a :class:`UsageError` (one line, exit 2)."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            raise UsageError(str(error)) from error
        sync_batchnorm = (self._get(self.config_init, "trainer") or {}).get("sync_batchnorm")
        if sync_batchnorm and isinstance(self.trainer.accelerator, CPUAccelerator):
            raise UsageError(
                "trainer.sync_batchnorm true needs GPUs (torch's SyncBatchNorm has no CPU version); with accelerator "
                "cpu valid values: false"
            )

    def _instantiate_trainer(self, config: dict, callbacks: list):
        """Adds the reliability callbacks, and a rich progress bar unless bars are off or the config has one."""
        reliability = [RunManifest(self.argv), RandomStateCheckpoint(), NonFiniteLossGuard(), InterruptCheckpoint()]
        callbacks = [*callbacks, *reliability]
        configured = list(callbacks) + list(config.get("callbacks") or [])
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in configured
        ):
            callbacks = [*callbacks, RichProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit", True):
            best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
            ckpt = "best" if best else None
            results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None, verbose=False)
            if self.trainer.is_global_zero and results:
                summary = ", ".join(f"{k} = {v:.4f}" for k, v in sorted(results[0].items()) if k.startswith("test/"))
                print(f"\nTest results ({ckpt or 'last'} checkpoint): {summary}")
        log_dir = self.trainer.log_dir  # a collective call under DDP: every process makes it
        if self.trainer.is_global_zero and log_dir:
            print(f"TensorBoard logs: {log_dir}  (view with: tensorboard --logdir logs)")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spikegrad`` console script: user errors exit with one line (code 2, or 1 for a
    failed run such as a NaN loss) instead of a traceback."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] == "report":  # spikegrad report LOGDIR... --out DIR (see spikegrad.report)
        from spikegrad.report import main as report_main

        return report_main(argv[1:])
    try:
        SpikegradCLI(
            SpikingClassifier,
            SpikeDataModule,
            subclass_mode_data=True,
            parser_class=ClassPathErrorParser,
            parser_kwargs={"parser_mode": "omegaconf+", "prog": "spikegrad"},
            save_config_kwargs={"overwrite": True},
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            args=args,
        )
    except (UsageError, RunFailed, DatasetNotFoundError, CorruptEventFileError) as error:
        sys.exit(report(error))
    except SIGTERMException:  # Lightning stops on SIGTERM with exit code 0; a terminated run should not look finished
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
