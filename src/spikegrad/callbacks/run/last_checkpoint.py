"""``last.ckpt``: the state at the end of every epoch and at the end of fit, whatever the validation accuracy did."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

LAST_NAME = "last"


class LastCheckpoint(ModelCheckpoint):
    """Writes ``<dirpath>/last.ckpt`` at the end of every training epoch (after validation) and at the end of fit.

    Lightning's ``ModelCheckpoint(save_last=True)`` (2.6) refreshes ``last.ckpt`` only when it writes a
    top-k file, i.e. beside a new best score: a run killed after non-improving epochs would lose them. This is
    Lightning's own ``ModelCheckpoint`` with public options only: it monitors the global step (``mode="max"``,
    one file named ``last``), so every epoch's step is a "new best" and the file is replaced; a separate
    ``ModelCheckpoint`` keeps the best file by ``val/acc``. The step of the file written last is
    ``best_model_score``; when fit ends after it (``max_steps`` in the middle of an epoch), :meth:`on_train_end`
    writes the final state.

    The folder is the one of the run's first checkpoint callback (``trainer.checkpoint_callback``: the best-file
    one of the ``spikegrad`` command, ``checkpoint.dirpath``, set up before this one since Lightning keeps the
    order of checkpoint callbacks), else the logger's ``<run>/checkpoints``.
    """

    def __init__(self) -> None:
        super().__init__(
            filename=LAST_NAME,
            monitor="step",
            mode="max",
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        first = trainer.checkpoint_callback
        if first is not self and getattr(first, "dirpath", None):
            self.dirpath = first.dirpath
        super().setup(trainer, pl_module, stage)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        saved_step = None if self.best_model_score is None else int(self.best_model_score)
        if trainer.global_step > 0 and saved_step != trainer.global_step and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.format_checkpoint_name({}), self.save_weights_only)
