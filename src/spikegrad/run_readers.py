"""What ``spikegrad report`` reads from a run folder, whichever Lightning logger wrote it.

* TensorBoardLogger (``events.out.tfevents.*``): read in :mod:`spikegrad.report` with TensorBoard's reader;
* CSVLogger (``metrics.csv``): one row per logging call, a ``step`` column and one column per tag; the file
  holds no times, so ``sec_per_epoch`` is unknown for such runs. Settings from the ``config.yaml`` beside it;
* MLflowLogger with a local file store (``mlruns/<experiment>/<run>/``, ``meta.yaml`` and ``metrics/``): each
  metric is a file ``metrics/<tag>`` of lines ``<unix ms> <value> <step>``, each setting a file ``params/<key>``
  (MLflow's file-store layout, read directly so that the report needs no MLflow installation; mlflow 2.x–3.x).

Figures are not read back: they are in TensorBoard's Images tab, MLflow's artifacts, or ``figures/`` of a CSV run.
"""

from __future__ import annotations

import csv
import math
import os

import yaml

__all__ = ["CSV_METRICS", "logger_kind", "read_csv_scalars", "read_mlflow_run"]

CSV_METRICS = "metrics.csv"
Scalars = dict[str, list[tuple[int, float, float]]]


def logger_kind(folder: str, files: list[str]) -> str | None:
    """``tensorboard``, ``csv`` or ``mlflow`` for a run folder written by that logger, else ``None``."""
    if any(name.startswith("events.out.tfevents.") for name in files):
        return "tensorboard"
    if CSV_METRICS in files:
        return "csv"
    if "meta.yaml" in files and os.path.isdir(os.path.join(folder, "metrics")):
        return "mlflow"
    return None


def read_csv_scalars(folder: str) -> Scalars:
    """``tag -> [(step, nan, value)]`` from a CSVLogger's ``metrics.csv`` (no wall times there)."""
    scalars: Scalars = {}
    with open(os.path.join(folder, CSV_METRICS), newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for tag, cell in row.items():
                if tag in ("step", "epoch") or tag is None or cell in (None, ""):
                    continue
                scalars.setdefault(tag, []).append((step, math.nan, float(cell)))
    return scalars


def _files_below(folder: str) -> dict[str, str]:
    """``{relative path with /: absolute path}`` of the files below ``folder``."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder).replace(os.sep, "/")] = path
    return found


def read_mlflow_run(folder: str) -> tuple[str, Scalars, dict[str, str]]:
    """``(run name, scalars, settings)`` of one run folder of an MLflow file store."""
    scalars: Scalars = {}
    for tag, path in _files_below(os.path.join(folder, "metrics")).items():
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    scalars.setdefault(tag, []).append((int(parts[2]), int(parts[0]) / 1000.0, float(parts[1])))
    settings = {}
    for key, path in _files_below(os.path.join(folder, "params")).items():
        with open(path) as f:
            settings[key] = f.read().strip()
    with open(os.path.join(folder, "meta.yaml")) as f:
        meta = yaml.safe_load(f) or {}
    return str(meta.get("run_name") or os.path.basename(folder)), scalars, settings
