"""``spikegrad report LOGDIR... --out DIR``: compare runs in one table and a few plots.

Every folder under the given paths that holds ``events.out.tfevents.*`` files is one run. Its scalars are read
with TensorBoard's own reader (:class:`~tensorboard.backend.event_processing.event_accumulator.EventAccumulator`)
and its settings from the ``config.yaml`` that ``spikegrad fit`` saves beside the events (or, without one,
the logger's ``hparams.yaml``). Runs of CSVLogger (``metrics.csv``, no times) and of MLflowLogger with a local
file store are read too (:mod:`spikegrad.run_readers`). The report holds, per run:

* the settings in which the runs differ (flattened keys such as ``model.surrogate.alpha``; output folders
  (logger, checkpoint folder, ``default_root_dir``) and the config file names are left out; callbacks are
  compared by class, ``trainer.callbacks.<Class>.enabled`` and ``trainer.callbacks.<Class>.<argument>``);
* ``best_val_acc`` (maximum of ``val/acc``) and ``test_acc`` (last ``test/acc``);
* ``firing_rate``, ``grad_sparsity``, ``energy_uJ`` (``energy/snn_uJ``) and ``snn_to_ann``: means over the
  samples of the last training epoch of the analysis callbacks' tags (``firing_rate/mean``, ...);
* ``epochs`` and ``sec_per_epoch``: wall time between consecutive epoch ends (``train/acc`` events,
  validation included) within one process, or from the first event to the only epoch end; a resumed run writes
  a new events file, and the time between its files (while the run was stopped) is not counted.

Written into ``--out``: ``report.md`` (table and plots), ``report.csv`` (the same table), ``accuracy.png``
(validation and training accuracy per epoch), ``firing_rate.png`` and ``grad_sparsity.png`` (per spiking
layer, last epoch, one bar per run; only when the runs logged them).
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import os
from dataclasses import dataclass, field

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spikegrad.aggregate import over_seeds_section, run_metrics
from spikegrad.plotting import accuracy_figure, grouped_bars_figure
from spikegrad.run_readers import CSV_METRICS, logger_kind, read_csv_scalars, read_mlflow_run

__all__ = ["Run", "build_report", "differing_settings", "find_runs", "load_run", "main"]

EVENTS_GLOB = "events.out.tfevents.*"
# where outputs go, not how a run trains
IGNORED_SETTINGS = ("trainer.logger", "trainer.default_root_dir", "checkpoint.dirpath", "config")
LAYER_PLOTS = {
    "firing_rate": ("firing_rate/", "spikes per neuron per step", "Firing rate per spiking layer (last epoch)"),
    "grad_sparsity": ("grad_sparsity/", "zero fraction of ∂s/∂h", "Surrogate-gradient sparsity (last epoch)"),
}


@dataclass
class Run:
    """One TensorBoard run: its folder, display name, scalars ``tag -> [(step, wall_time, value)]`` and settings."""

    path: str
    name: str
    scalars: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    first_wall_time: float = math.nan
    # per events file (one per process that wrote the run): its first wall time and its epoch ends' wall times
    segments: list[tuple[float, list[float]]] = field(default_factory=list)

    def values(self, tag: str) -> list[float]:
        return [value for _, _, value in self.scalars.get(tag, [])]

    def epoch_ends(self) -> list[tuple[int, float]]:
        """``(step, wall_time)`` of each training epoch end (``train/acc``, else ``val/acc`` events)."""
        events = self.scalars.get("train/acc") or self.scalars.get("val/acc") or []
        return [(step, wall) for step, wall, _ in events]

    def last_epoch_mean(self, tag: str) -> float:
        """Mean of ``tag`` over the events logged during the last training epoch (all of them if unknown)."""
        events = self.scalars.get(tag, [])
        if not events:
            return math.nan
        ends = self.epoch_ends()
        start = ends[-2][0] if len(ends) >= 2 else -1
        last = [value for step, _, value in events if step > start] or [events[-1][2]]
        return sum(last) / len(last)

    def seconds_per_epoch(self) -> float:
        """Mean time between consecutive epoch ends of the same events file; with one epoch end only, the time
        from the file's first event to it. Gaps between files (a run stopped and resumed) are not epochs."""
        segments = self.segments or [(self.first_wall_time, [wall for _, wall in self.epoch_ends()])]
        steps = [b - a for _, ends in segments for a, b in zip(ends, ends[1:], strict=False)]
        if steps:
            return sum(steps) / len(steps)
        single = [ends[0] - first for first, ends in segments if len(ends) == 1 and math.isfinite(first)]
        return sum(single) / len(single) if single else math.nan


def find_runs(paths: list[str]) -> list[str]:
    """Every folder at or below ``paths`` that holds a run of TensorBoardLogger, CSVLogger or MLflowLogger (file
    store), sorted (:func:`spikegrad.run_readers.logger_kind`)."""
    runs: set[str] = set()
    for path in paths:
        if not os.path.isdir(path):
            raise ValueError(f"report: log folder {path!r} does not exist")
        for root, _, files in os.walk(path):
            if logger_kind(root, files):
                runs.add(os.path.abspath(root))
    if not runs:
        raise ValueError(
            f"report: no runs under {', '.join(paths)}; valid: folders with TensorBoard events ({EVENTS_GLOB}), "
            f"a CSVLogger's {CSV_METRICS} or an MLflow file-store run (meta.yaml and metrics/)"
        )
    return sorted(runs)


def flatten(config, prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists -> ``{"a.b.0.c": "value"}``; lists of plain values stay one entry, e.g. ``[32, 64]``."""
    if isinstance(config, dict):
        items = config.items()
    elif isinstance(config, list) and any(isinstance(v, (dict, list)) for v in config):
        items = ((str(i), v) for i, v in enumerate(config))
    else:
        return {prefix: "null" if config is None else str(config)}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _callbacks_by_class(config: dict) -> dict:
    """``trainer.callbacks: [{class_path, init_args}, ...]`` -> ``{ClassName: {**init_args, "enabled": True}}``.

    Keyed by class rather than list position, so runs whose callback lists differ compare callback by callback.
    """
    trainer = config.get("trainer")
    if not isinstance(trainer, dict) or "callbacks" not in trainer:
        return config
    by_class: dict[str, dict] = {}
    entries = trainer["callbacks"] or []
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or "class_path" not in entry:
            continue
        name = entry["class_path"].rsplit(".", 1)[-1]
        key, n = name, 1
        while key in by_class:
            n += 1
            key = f"{name}#{n}"
        by_class[key] = {"enabled": True, **(entry.get("init_args") or {})}
    return {**config, "trainer": {**trainer, "callbacks": by_class}}


def _read_settings(run_dir: str) -> dict[str, str]:
    for filename in ("config.yaml", "hparams.yaml"):
        path = os.path.join(run_dir, filename)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    settings = yaml.safe_load(f) or {}
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise ValueError(f"report: {path} is not valid YAML{where}; fix or remove it") from None
            if not isinstance(settings, dict):
                raise ValueError(
                    f"report: {path} holds a {type(settings).__name__}, not a mapping of settings; fix or remove it"
                )
            return flatten(_callbacks_by_class(settings))
    return {}


def load_run(run_dir: str, name: str) -> Run:
    """Read a run's scalars (every events file in the folder, in time order; or its CSV or MLflow metrics) and
    settings."""
    kind = logger_kind(run_dir, os.listdir(run_dir))
    if kind == "csv":
        return Run(path=run_dir, name=name, settings=_read_settings(run_dir), scalars=read_csv_scalars(run_dir))
    if kind == "mlflow":
        run_name, scalars, settings = read_mlflow_run(run_dir)
        run = Run(path=run_dir, name=f"{name} ({run_name})", scalars=scalars, settings=settings)
        walls = [wall for events in scalars.values() for _, wall, _ in events]
        run.first_wall_time = min(walls) if walls else math.nan
        for events in run.scalars.values():
            events.sort(key=lambda event: event[1])
        run.segments.append((run.first_wall_time, [wall for _, wall in run.epoch_ends()]))
        return run
    run = Run(path=run_dir, name=name, settings=_read_settings(run_dir))
    for events_file in sorted(glob.glob(os.path.join(glob.escape(run_dir), EVENTS_GLOB))):
        accumulator = EventAccumulator(
            events_file, size_guidance={"scalars": 0, "histograms": 1, "images": 1, "tensors": 1}
        )
        accumulator.Reload()
        try:
            first = accumulator.FirstEventTimestamp()
        except ValueError:
            continue
        run.first_wall_time = first if math.isnan(run.first_wall_time) else min(run.first_wall_time, first)
        tags = accumulator.Tags()["scalars"]
        epoch_tag = "train/acc" if "train/acc" in tags else "val/acc" if "val/acc" in tags else None
        ends = sorted(event.wall_time for event in accumulator.Scalars(epoch_tag)) if epoch_tag else []
        run.segments.append((first, ends))
        for tag in tags:
            run.scalars.setdefault(tag, []).extend(
                (event.step, event.wall_time, event.value) for event in accumulator.Scalars(tag)
            )
    for events in run.scalars.values():
        events.sort(key=lambda event: event[1])
    return run


def differing_settings(runs: list[Run]) -> list[str]:
    """The setting keys whose values are not the same in every run (a key missing in a run counts as differing)."""
    keys = sorted({key for run in runs for key in run.settings})
    differing = []
    for key in keys:
        if any(key == ignored or key.startswith(ignored + ".") for ignored in IGNORED_SETTINGS):
            continue
        if len({run.settings.get(key, "-") for run in runs}) > 1:
            differing.append(key)
    # A key that differs only by being absent, below a differing parent (e.g. the arguments of a callback that
    # some runs do not have, below its differing ``<Class>.enabled``), adds nothing to that parent.
    parents = set(differing) | {key.removesuffix(".enabled") for key in differing if key.endswith(".enabled")}
    return [
        key
        for key in differing
        if key.endswith(".enabled")
        or not (
            any(key.startswith(parent + ".") for parent in parents)
            and len({run.settings[key] for run in runs if key in run.settings}) <= 1
        )
    ]


def summary_row(run: Run, setting_keys: list[str]) -> dict[str, object]:
    """One table row: the run's differing settings, accuracies, analysis means and timing."""
    row: dict[str, object] = {"run": run.name}
    row.update({key: run.settings.get(key, "-") for key in setting_keys})
    metrics = run_metrics(run)  # the same numbers as a sweep's summary
    for column in ("best_val_acc", "test_acc", "firing_rate", "grad_sparsity", "energy_uJ"):
        row[column] = metrics[column]
    row["snn_to_ann"] = run.last_epoch_mean("energy/snn_to_ann")
    row["epochs"] = int(metrics["epochs"])
    row["sec_per_epoch"] = metrics["sec_per_epoch"]
    return row


def _layer_values(run: Run, prefix: str) -> dict[str, float]:
    return {
        tag[len(prefix):]: run.last_epoch_mean(tag)
        for tag in run.scalars
        if tag.startswith(prefix) and tag.count("/") == prefix.count("/") and not tag.endswith("/mean")
    }


def _format(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _cell(value: object) -> str:
    """A markdown table cell: ``|`` escaped, line breaks as ``<br>`` (a raw newline would end the table row)."""
    return "<br>".join(_format(value).replace("|", "\\|").splitlines())


def _markdown_table(rows: list[dict[str, object]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def build_report(log_dirs: list[str], out_dir: str) -> str:
    """Write ``report.md``, ``report.csv`` and the PNGs for the runs under ``log_dirs``; returns the markdown path."""
    run_dirs = find_runs(log_dirs)
    base = os.path.commonpath(run_dirs) if len(run_dirs) > 1 else os.path.dirname(run_dirs[0])
    runs = [load_run(d, os.path.relpath(d, base)) for d in run_dirs]
    setting_keys = differing_settings(runs)
    rows = [summary_row(run, setting_keys) for run in runs]
    os.makedirs(out_dir, exist_ok=True)

    with open(os.path.join(out_dir, "report.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    plots: list[tuple[str, str]] = []
    curves = {run.name: {tag: run.values(tag) for tag in ("val/acc", "train/acc")} for run in runs}
    if any(any(series.values()) for series in curves.values()):
        accuracy_figure(curves, "Accuracy per epoch (solid: validation, dashed: training)").savefig(
            os.path.join(out_dir, "accuracy.png"), dpi=120
        )
        plots.append(("Accuracy", "accuracy.png"))
    for filename, (prefix, ylabel, title) in LAYER_PLOTS.items():
        values = {run.name: _layer_values(run, prefix) for run in runs}
        if any(values.values()):
            grouped_bars_figure(values, ylabel, title).savefig(os.path.join(out_dir, f"{filename}.png"), dpi=120)
            plots.append((title, f"{filename}.png"))

    lines = [
        "# spikegrad report",
        "",
        f"{len(runs)} run(s) under `{base}`:",
        "",
        *[f"- `{run.name}`: `{run.path}`" for run in runs],
        "",
        "Settings that differ between the runs: "
        + (", ".join(f"`{key}`" for key in setting_keys) if setting_keys else "none")
        + ".",
        "",
        _markdown_table(rows),
        "",
        "`best_val_acc`: maximum of `val/acc`; `test_acc`: last `test/acc`; `firing_rate` (spikes per neuron per "
        "step), `grad_sparsity` (zero fraction of ∂s/∂h), `energy_uJ` (SNN energy per sample) and `snn_to_ann`: "
        "means over the last training epoch's sampled batches; `sec_per_epoch`: wall time per training epoch, "
        "validation included.",
        "",
        *[f"## {title}\n\n![{title}]({filename})\n" for title, filename in plots],
        *over_seeds_section(runs, setting_keys, out_dir),  # several seeds per setting: mean ± std over seeds
    ]
    markdown = os.path.join(out_dir, "report.md")
    with open(markdown, "w") as f:
        f.write("\n".join(lines))
    return markdown


def main(args: list[str] | None = None) -> None:
    """``spikegrad report LOGDIR [LOGDIR ...] --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="spikegrad report",
        description="Compare TensorBoard runs: a markdown/CSV table of their differing settings and results, and "
        "PNG plots (accuracy curves, per-layer firing rate and gradient sparsity).",
    )
    parser.add_argument("log_dirs", nargs="+", metavar="LOGDIR", help="run folders or folders holding runs")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write report.md, report.csv, *.png")
    options = parser.parse_args(args)
    if os.path.exists(options.out) and not os.path.isdir(options.out):
        parser.error(f"--out {options.out} is a file; valid values: a folder (created when missing)")
    try:
        markdown = build_report(options.log_dirs, options.out)
    except ValueError as err:
        parser.error(str(err))
    except OSError as err:  # --out below a file, or not writable
        parser.error(f"--out {options.out}: cannot write the report there ({err.strerror or err})")
    print(f"Report written to {markdown}")


if __name__ == "__main__":
    main()
