"""A Lightning callback that prints the wall time of every training epoch (training + validation) as one line
``EPOCH_SECONDS <seconds>``; used by ``bench_quickstart.py`` through ``--trainer.callbacks+=epoch_timer.EpochTimer``."""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback


class EpochTimer(Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        print(f"EPOCH_SECONDS {time.perf_counter() - self._start:.4f}", flush=True)
