"""A resumable checkpoint when a run is interrupted by Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import os

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from spikegrad.errors import RunFailed

INTERRUPTED_NAME = "interrupted"


class InterruptCheckpoint(Callback):
    """Saves ``interrupted.ckpt`` beside ``last.ckpt`` when a fit is interrupted by Ctrl-C or SIGTERM.

    Like Lightning's ``OnExceptionCheckpoint``, but only for interruptions: errors (a non-finite loss, a bug)
    save nothing, so the checkpoints left are the last good ones; a state that fails the finiteness check of
    :class:`~spikegrad.callbacks.run.finite_loss.NonFiniteLossGuard` is not saved either (the message says so).
    (``OnExceptionCheckpoint`` is not used as
    is: its presence makes every ``fit`` without ``ckpt_path`` silently resume from ``last``.)
    ``--ckpt_path last`` picks ``interrupted.ckpt`` when it is newer than ``last.ckpt``; the file is removed
    when a later run finishes normally. Resuming from it continues mid-epoch: the data order of that epoch
    differs from an uninterrupted run's (``last.ckpt``, written at the end of each epoch, resumes exactly).

    Args:
        dirpath: folder of the file; default: the ``ModelCheckpoint`` folder of the run.
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath

    def ckpt_path(self, trainer: L.Trainer) -> str | None:
        dirpath = self.dirpath or getattr(trainer.checkpoint_callback, "dirpath", None)
        return os.path.join(dirpath, f"{INTERRUPTED_NAME}.ckpt") if dirpath else None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        path = self.ckpt_path(trainer)
        if path is None or trainer.state.fn != "fit":
            return
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return
        try:
            trainer.save_checkpoint(path)
        except RunFailed as refused:  # NaN/Inf weights: better no interrupted.ckpt than a poisoned one
            if trainer.is_global_zero:
                print(f"\nInterrupted: {path} not saved: {refused}", flush=True)
            return
        if trainer.is_global_zero:
            print(f"\nInterrupted: saved {path} (continue with --ckpt_path last)", flush=True)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = self.ckpt_path(trainer)  # a finished fit has consumed (or superseded) an earlier interruption
        if path and trainer.is_global_zero and os.path.exists(path):
            os.remove(path)
