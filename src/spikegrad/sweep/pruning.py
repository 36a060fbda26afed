"""Pruning of search trials: the validation metric of every epoch goes to the Optuna trial, which may stop the run.

The sweep worker runs a trial's ``spikegrad fit`` in its own process and puts the live :class:`optuna.Trial` in
:data:`ACTIVE` before; the :class:`TrialPruning` callback (added to the trial's ``trainer.callbacks``) reports
``monitor`` after each validation (``trial.report(value, epoch)``) and, when the pruner says so
(``trial.should_prune()``), ends fit after this epoch and marks the trial pruned. One process per trial: the
callback refuses DDP (the reports of several processes would interleave on one trial).
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

from spikegrad.errors import UsageError

__all__ = ["ACTIVE", "TrialPruning"]

# the running trial of this process and whether its pruner stopped it: set by spikegrad.sweep.worker
ACTIVE: dict = {"trial": None, "pruned_at": None}


class TrialPruning(Callback):
    """Reports ``monitor`` (a metric logged at validation, e.g. ``val/acc``) to the running sweep trial each
    epoch and stops fit when the trial's pruner prunes it."""

    def __init__(self, monitor: str = "val/acc") -> None:
        self.monitor = monitor

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.world_size > 1:
            raise UsageError(
                f"search with a pruner runs one process per trial, this trial has {trainer.world_size} "
                "(DDP); valid: trainer.devices 1 and trainer.num_nodes 1, or search.pruner none"
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        trial = ACTIVE["trial"]
        if trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise UsageError(
                f"search.monitor {self.monitor!r} was not logged at validation; valid values: "
                + ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith("val/")))
            )
        value = float(value)
        if not math.isfinite(value):
            return
        trial.report(value, trainer.current_epoch)
        if trial.should_prune():
            ACTIVE["pruned_at"] = trainer.current_epoch
            trainer.should_stop = True
