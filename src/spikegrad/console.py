"""What a run prints: known-harmless noise filtered by its exact text, a progress bar whose metrics fit 80
columns, and one plain line per epoch when the output is not a terminal (a cluster log, a pipe).

* :func:`spikegrad.noise.quiet_known_noise`: Lightning's advert for its cloud logger and the ``_pytree``
  deprecation, filtered by their exact text; every other warning is shown as before.
* :class:`CompactModelSummary`: Lightning's model summary without the FLOPs it cannot count (it counts them
  only on an ``example_input_array``, which would cost an extra forward pass: ``Total FLOPs: 0`` otherwise).
* :class:`CompactProgressBar`: Rich's bar in 80 columns: ``Epoch 3/14 ━━━━━━━━━━ 20/20 v_num: 0 loss: 0.412
  val loss/acc: 0.380/0.912``, the logger version as an integer.
* :class:`EpochLine`: ``epoch 3/15  loss 0.412  val_loss 0.380  val_acc 0.912  2.1 s`` after each training
  epoch (with its validation), for output that is not a terminal, where a progress bar keeps only its last state.
* :func:`progress`: a bar for the slow preparation steps (event generation), or two lines in a log.
"""

from __future__ import annotations

import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Callback, RichModelSummary, RichProgressBar

__all__ = ["CompactModelSummary", "CompactProgressBar", "EpochLine", "is_terminal", "logger_hints", "progress"]

# what the bar shows after the batch count (all metrics are logged; the epoch line and the loggers have the rest)
BAR_WIDTH = 10
def is_terminal(stream=None) -> bool:
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class CompactProgressBar(RichProgressBar):
    """Rich's progress bar in 80 columns: description, a 10-cell bar, the batch count, then ``v_num`` as an
    integer, the training loss and ``val loss/acc`` as ``0.234/0.903`` (Rich's own layout, with its time and
    speed columns and all metrics, wraps over several lines at 80 columns)."""

    def configure_columns(self, trainer: L.Trainer) -> list:
        from lightning.pytorch.callbacks.progress.rich_progress import BatchesProcessedColumn, CustomBarColumn
        from rich.progress import TextColumn

        theme = self.theme
        bar = CustomBarColumn(bar_width=BAR_WIDTH, complete_style=theme.progress_bar,
                              finished_style=theme.progress_bar_finished, pulse_style=theme.progress_bar_pulse)
        return [TextColumn("[progress.description]{task.description}"), bar,
                BatchesProcessedColumn(style=self.theme.batch_progress)]

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        metrics = super().get_metrics(trainer, pl_module)
        shown: dict[str, int | str | float] = {}
        if "v_num" in metrics:
            shown["v_num"] = str(metrics["v_num"])  # a string: Rich's column formats numbers as 0.000
        loss = _number(metrics.get("train/loss_step", metrics.get("train/loss")))
        if loss is not None:
            shown["loss"] = f"{loss:.3f}"
        val_loss, val_acc = _number(metrics.get("val/loss")), _number(metrics.get("val/acc"))
        if val_loss is not None and val_acc is not None:
            shown["val loss/acc"] = f"{val_loss:.3f}/{val_acc:.3f}"
        return shown


def progress(items: list, description: str):
    """``items``, one by one, with a progress bar on a terminal; elsewhere a line before and one after."""
    if is_terminal():
        from rich.progress import track

        yield from track(items, description=description, total=len(items), transient=True)
        return
    start = time.perf_counter()
    print(f"{description} ...", flush=True)
    yield from items
    print(f"{description}: done in {time.perf_counter() - start:.1f} s", flush=True)


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


def logger_hints(loggers: list, log_dir: str | None) -> list[str]:
    """Where each logger put the run, and how to look at it (printed after fit)."""
    hints = []
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            hints.append(f"TensorBoard logs: {logger.log_dir}  (view with: tensorboard --logdir {logger.save_dir})")
        elif kind == "CSVLogger":
            hints.append(f"CSV logs: {logger.log_dir}/metrics.csv  (figures in {logger.log_dir}/figures; "
                         f"histograms need TensorBoard; compare runs with: spikegrad report {logger.save_dir})")
        elif kind == "MLFlowLogger":
            uri = getattr(logger.experiment, "tracking_uri", None) or getattr(logger, "_tracking_uri", "")
            name = getattr(logger, "_experiment_name", None) or logger.name
            hints.append(f"MLflow run {logger.run_id} of experiment {name!r} in {uri}  "
                         f"(view with: mlflow ui --backend-store-uri {uri}; figures are its artifacts)")
        elif kind == "WandbLogger":
            url = getattr(getattr(logger, "experiment", None), "url", None)
            hints.append(f"W&B run {logger.version}: {url or 'see wandb'}")
        else:
            hints.append(f"{kind} logs: {getattr(logger, 'log_dir', None) or log_dir}")
    return hints
