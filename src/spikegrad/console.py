"""What a run prints: known-harmless noise filtered by its exact text, a progress bar whose metrics fit 80
columns, and one plain line per epoch when the output is not a terminal (a cluster log, a pipe).

* :func:`spikegrad.noise.quiet_known_noise`: Lightning's advert for its cloud logger and the ``_pytree``
  deprecation, filtered by their exact text; every other warning is shown as before.
* :class:`CompactModelSummary`: Lightning's model summary without the FLOPs it cannot count (it counts them
  only on an ``example_input_array``, which would cost an extra forward pass: ``Total FLOPs: 0`` otherwise).
* :class:`CompactProgressBar`: Rich's bar with short metric names (``loss``, ``acc``, ``val_loss``,
  ``val_acc``), three decimals and the logger version as an integer.
* :class:`EpochLine`: ``epoch 3/15  loss 0.412  val_loss 0.380  val_acc 0.912  2.1 s`` after each training
  epoch (with its validation), for output that is not a terminal, where a progress bar keeps only its last state.
"""

from __future__ import annotations

import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Callback, RichModelSummary, RichProgressBar

__all__ = ["CompactModelSummary", "CompactProgressBar", "EpochLine", "is_terminal"]

# progress-bar metric -> the short name shown (others are left out of the bar; all are logged)
BAR_METRICS = {"train/loss_step": "loss", "train/acc": "acc", "val/loss": "val_loss", "val/acc": "val_acc"}


def is_terminal(stream=None) -> bool:
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class CompactProgressBar(RichProgressBar):
    """Rich's progress bar with the metrics of :data:`BAR_METRICS` under short names and an integer ``v_num``."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        metrics = super().get_metrics(trainer, pl_module)
        shown: dict[str, int | str | float] = {}
        if "v_num" in metrics:
            shown["v_num"] = str(metrics["v_num"])  # a string: Rich's column formats numbers as 0.000
        for key, short in BAR_METRICS.items():
            if key in metrics:
                value = metrics[key]
                shown[short] = f"{float(value):.3f}" if isinstance(value, (int, float)) else value
        return shown


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class EpochLine(Callback):
    """Prints one line per training epoch: epoch, training loss, validation loss and accuracy, wall time."""

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {trainer.current_epoch + 1}{total}"]
        for key, label in (("train/loss_epoch", "loss"), ("train/acc", "acc"), ("val/loss", "val_loss"),
                           ("val/acc", "val_acc")):
            value = _number(metrics.get(key))
            if value is not None:
                parts.append(f"{label} {value:.4f}")
        parts.append(f"{time.perf_counter() - self._start:.1f} s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


class CompactModelSummary(RichModelSummary):
    """Lightning's Rich model summary without the FLOPs column and total when they were not counted (0)."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **summarize_kwargs) -> None:
        if total_flops:
            return RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                              total_training_modes, total_flops, **summarize_kwargs)
        from lightning.pytorch.utilities.model_summary import get_human_readable_count
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:  # the first column (" ") holds the row numbers
            table.add_column(name, justify="right" if name.startswith("Params") else "left", no_wrap=name == "Name",
                             style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(
            f"Trainable params: {get_human_readable_count(int(trainable_parameters))}   "
            f"Total params: {get_human_readable_count(int(total_parameters))}   "
            f"Size: {model_size:.3f} MB"
        )
