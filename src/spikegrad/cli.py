"""The ``spikegrad`` command: LightningCLI (fit / validate / test / predict) with omegaconf configs.

``spikegrad fit --config configs/quickstart.yaml`` trains, tests the best checkpoint at the end (unless
``--test_after_fit false``) and prints the test metrics and the TensorBoard log folder.
"""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI

from spikegrad.data.base import SpikeDataModule
from spikegrad.module import SpikingClassifier

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

    def _instantiate_trainer(self, config: dict, callbacks: list):
        """Adds a rich progress bar unless progress bars are off or the config brings its own."""
        configured = list(callbacks) + list(config.get("callbacks") or [])
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(c, ProgressBar) for c in configured
        ):
            callbacks = [*callbacks, RichProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit", True):
            ckpt = "best" if self.trainer.checkpoint_callback and self.trainer.checkpoint_callback.best_model_path else None
            results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt, verbose=False)
            if self.trainer.is_global_zero and results:
                summary = ", ".join(f"{k} = {v:.4f}" for k, v in sorted(results[0].items()))
                print(f"\nTest results ({ckpt or 'last'} checkpoint): {summary}")
        if self.trainer.is_global_zero and self.trainer.log_dir:
            print(f"TensorBoard logs: {self.trainer.log_dir}  (view with: tensorboard --logdir logs)")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``spikegrad`` console script."""
    SpikegradCLI(
        SpikingClassifier,
        SpikeDataModule,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf+"},
        save_config_kwargs={"overwrite": True},
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        auto_configure_optimizers=False,
        args=args if args is not None else sys.argv[1:],
    )


if __name__ == "__main__":
    main()
