"""Test-only callbacks, named by ``class_path: _probes.<Class>`` in the configs of subprocess tests."""

from __future__ import annotations

import json
import os
import time

import torch
from lightning.pytorch.callbacks import Callback


class BlockAt(Callback):
    """At (epoch, batch) writes ``marker`` and sleeps ``seconds``, so that a test can kill or interrupt it there."""

    def __init__(self, epoch: int | None = None, batch: int = 0, marker: str = "blocked", seconds: float = 600) -> None:
        self.epoch, self.batch, self.marker, self.seconds = epoch, batch, marker, seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            with open(self.marker, "w") as f:
                f.write(str(trainer.global_step))
            time.sleep(self.seconds)


class HoldWhileGate(Callback):
    """At the first batch of ``epoch`` of a run whose folder contains ``run_part``, and only while the file ``gate``
    exists: writes ``gate + ".held"`` and waits until ``gate`` is removed or a SIGTERM arrives (at most
    ``seconds``), so that a test can stop a worker mid-trial, after that trial's first checkpoint, however fast
    the machine is; a rerun without ``gate`` passes straight through."""

    def __init__(self, gate: str, run_part: str, epoch: int = 1, seconds: float = 600) -> None:
        self.gate, self.run_part, self.epoch, self.seconds = gate, run_part, epoch, seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch != self.epoch or batch_idx != 0 or not os.path.exists(self.gate):
            return
        if self.run_part not in os.path.normpath(str(trainer.log_dir)):
            return
        with open(self.gate + ".held", "w") as f:
            f.write(str(trainer.global_step))
        deadline = time.monotonic() + self.seconds
        while os.path.exists(self.gate) and not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.1)


class PoisonWeights(Callback):
    """Sets every parameter to NaN at the start of ``epoch`` (the next loss is NaN)."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))


class MetricsDump(Callback):
    """Writes each process's test metrics, world size and whether SyncBatchNorm is used to ``folder``."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.sync_batchnorm = False

    def on_fit_start(self, trainer, pl_module) -> None:
        self.sync_batchnorm = any(isinstance(m, torch.nn.SyncBatchNorm) for m in pl_module.modules())

    def on_test_end(self, trainer, pl_module) -> None:
        os.makedirs(self.folder, exist_ok=True)
        info = {
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "world_size": trainer.world_size,
            "global_rank": trainer.global_rank,
            "sync_batchnorm": self.sync_batchnorm,
        }
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as f:
            json.dump(info, f)


class SignalSelf(Callback):
    """At (epoch, batch) sends ``signal_name`` (e.g. ``SIGTERM``) to this very process."""

    def __init__(self, epoch: int, batch: int, signal_name: str = "SIGTERM") -> None:
        self.epoch, self.batch, self.signal_name = epoch, batch, signal_name

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            import signal

            os.kill(os.getpid(), getattr(signal, self.signal_name))


class PoisonFirstLayer(Callback):
    """At (epoch, batch) sets the model's first parameter (the first layer's weights) to NaN.

    The first spiking layer's membrane potentials become NaN, so it stops spiking: the loss stays finite while the
    NaN stays in the weights (and its gradients make the optimizer state NaN too).
    """

    def __init__(self, epoch: int, batch: int = 0) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


class WeightsAtStart(Callback):
    """Saves the model's state dict at the start of fit to ``path`` (the weights training starts from)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_fit_start(self, trainer, pl_module) -> None:
        state = pl_module.state_dict()
        torch.save({k: v.detach().clone() for k, v in state.items() if isinstance(v, torch.Tensor)}, self.path)
