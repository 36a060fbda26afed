"""CPU-scale reproduction study: each claim of the four papers (docs/methods.md) tested on the bundled digits.

``make reproduce-small`` (or ``python -m studies.reproduce_small``) reads the study spec
``studies/reproduce_small.yaml``, trains every experiment × variant × seed **in this process** through
``spikegrad.cli.main`` (one TensorBoard run each, in ``<log_root>/<experiment>/<variant>/seed<k>``), then

* runs ``spikegrad report`` (:func:`spikegrad.report.build_report`) on each experiment's folder (per-run
  table and plots in ``<log_root>/<experiment>/report/``, its PNGs copied to ``<figures>/<experiment>/``);
* reads every run back with :func:`spikegrad.report.load_run` and computes per variant the mean ± standard
  deviation over seeds of test accuracy, gradient sparsity, firing rate, time per epoch and the
  experiment's own quantities (FDG cosine, potential statistics, ...), and the paired difference to the
  experiment's reference variant;
* writes the study's plots to ``<figures>/`` and its tables into the generated blocks of ``<doc>``
  (text outside the ``<!-- BEGIN generated:... -->`` / ``<!-- END generated:... -->`` markers is kept).

Runs that already finished (``study_run.json`` with status ``ok`` or ``failed`` in their folder) are not
trained again unless ``--force``; ``--report-only`` only rebuilds tables, plots and the document.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import re
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Iterable

import torch
import yaml

__all__ = [
    "collect",
    "experiment_runs",
    "load_spec",
    "main",
    "run_study",
    "summarise",
    "write_outputs",
]

DEFAULT_SPEC = "studies/reproduce_small.yaml"
RUN_FILE = "study_run.json"
STUDY_FILE = "study.json"


# --- spec -----------------------------------------------------------------------------------------------
def load_spec(path: str) -> dict:
    with open(path) as f:
        spec = yaml.safe_load(f)
    for experiment in spec["experiments"]:
        for key in ("name", "config", "variants"):
            if key not in experiment:
                raise ValueError(f"study spec {path}: an experiment lacks {key!r}")
    return spec


def merged_overrides(experiment: dict, variant: str) -> dict:
    """The experiment's overrides, then the variant's (``key+: [...]`` appends to the list under ``key``)."""
    merged = dict(experiment.get("overrides") or {})
    for key, value in (experiment["variants"][variant] or {}).items():
        if key.endswith("+"):
            base = key[:-1]
            merged[base] = [*(merged.get(base) or []), *value]
        else:
            merged[key] = value
    return merged


def _arg_value(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)  # JSON is YAML: lists, dicts, numbers, true/false, null


def run_dir(log_root: str, experiment: str, variant: str, seed: int) -> str:
    return os.path.join(log_root, experiment, variant, f"seed{seed}")


def cli_args(experiment: dict, variant: str, seed: int, log_root: str, extra: Iterable[str] = ()) -> list[str]:
    """``spikegrad fit`` arguments of one run (logger folder ``<log_root>/<experiment>/<variant>/seed<k>``)."""
    args = ["fit", "--config", experiment["config"]]
    for key, value in merged_overrides(experiment, variant).items():
        args += [f"--{key}", _arg_value(value)]
    args += [
        "--seed_everything", str(seed),
        "--trainer.logger.init_args.save_dir", os.path.join(log_root, experiment["name"]),
        "--trainer.logger.init_args.name", variant,
        "--trainer.logger.init_args.version", f"seed{seed}",
        "--trainer.enable_progress_bar", "false",
        *extra,
    ]
    return args


# --- running ----------------------------------------------------------------------------------------------
def train_one(args: list[str], folder: str) -> dict:
    """One ``spikegrad fit`` in this process; writes ``study_run.json`` (status, wall time) into its folder.

    A run stopped by the NaN/Inf guard (exit code 1) is recorded as ``failed`` (diverged) and the study goes
    on; an invalid setting (exit code 2) stops the study. Checkpoints are deleted after the run.
    """
    from spikegrad.cli import main as spikegrad_main
    from spikegrad.trust import TRUSTED_MODULES_ENV

    trusted = [m for m in os.environ.get(TRUSTED_MODULES_ENV, "").split(",") if m]
    if "studies.reproduce_small" not in trusted:  # the study's probe callbacks: studies.reproduce_small.<Class>
        os.environ[TRUSTED_MODULES_ENV] = ",".join([*trusted, "studies.reproduce_small"])
    shutil.rmtree(folder, ignore_errors=True)
    status, code = "ok", 0
    start = time.perf_counter()
    try:
        spikegrad_main(args)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
        if code == 2:
            raise RuntimeError(f"invalid study settings: spikegrad {' '.join(args)}") from None
        status = "ok" if code == 0 else "failed"
    wall = time.perf_counter() - start
    shutil.rmtree(os.path.join(folder, "checkpoints"), ignore_errors=True)
    record = {"status": status, "exit_code": code, "wall_s": wall, "args": args}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, RUN_FILE), "w") as f:
        json.dump(record, f, indent=1)
    return record


def experiment_runs(spec: dict, seeds: list[int], only: list[str] | None = None) -> list[tuple[dict, str, int]]:
    """``(experiment, variant, seed)`` in run order: per experiment, for each seed every variant in turn."""
    runs = []
    for experiment in spec["experiments"]:
        if only and experiment["name"] not in only:
            continue
        for seed in seeds:
            for variant in experiment["variants"]:
                runs.append((experiment, variant, seed))
    return runs


def run_study(spec: dict, seeds: list[int], log_root: str, only: list[str] | None = None, force: bool = False,
              extra_args: Iterable[str] = ()) -> dict:
    """Trains every missing run; returns ``{experiment: seconds spent training it in this call}``."""
    runs = experiment_runs(spec, seeds, only)
    spent: dict[str, float] = {}
    for i, (experiment, variant, seed) in enumerate(runs, start=1):
        folder = run_dir(log_root, experiment["name"], variant, seed)
        done = os.path.join(folder, RUN_FILE)
        if os.path.isfile(done) and not force:
            continue
        record = train_one(cli_args(experiment, variant, seed, log_root, extra_args), folder)
        spent[experiment["name"]] = spent.get(experiment["name"], 0.0) + record["wall_s"]
        print(f"[{time.strftime('%H:%M:%S')}] {i}/{len(runs)} {experiment['name']}/{variant}/seed{seed}: "
              f"{record['status']} in {record['wall_s']:.1f} s", flush=True)
    return spent


# --- reading the runs back ----------------------------------------------------------------------------------
def _last(values: list[float]) -> float:
    return values[-1] if values else math.nan


def _layer_tags(run, prefix: str, suffix: str) -> list[str]:
    return [t for t in run.scalars if t.startswith(prefix) and t.endswith(suffix) and "/mean" not in t[len(prefix):]]


def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def run_metrics(folder: str, name: str) -> dict:
    """The numbers of one run: ``spikegrad report``'s summary row plus the study's own quantities."""
    from spikegrad.report import load_run, summary_row

    run = load_run(os.path.abspath(folder), name)
    row = summary_row(run, [])
    metrics = {k: row[k] for k in ("best_val_acc", "test_acc", "firing_rate", "grad_sparsity", "sec_per_epoch",
                                   "epochs")}
    metrics["grad_sparsity_h"] = run.last_epoch_mean("grad_sparsity_h/mean")
    metrics["test_acc_uniform"] = _last(run.values("test/acc_uniform"))
    metrics["final_train_loss"] = _last(run.values("train/loss_epoch"))
    # Dspike: the cosine at the temperature each epoch trained with (the chosen candidate), and the last b
    cosines = {c: run.values(f"dspike/cosine/{c}") for c in ("b", "b-db", "b+db")}
    per_epoch = [max(v) for v in zip(*[c for c in cosines.values() if c], strict=False)] if cosines["b"] else []
    metrics["fdg_cosine_per_epoch"] = per_epoch
    metrics["fdg_cosine"] = _mean(per_epoch)
    metrics["fdg_cosine_current"] = _mean(cosines["b"])
    metrics["dspike_b_per_epoch"] = run.values("dspike/b")
    metrics["dspike_b"] = _last(run.values("dspike/b"))
    # TWO: the per-step weights after the last update
    two = sorted((t for t in run.scalars if t.startswith("method/two_weights/t")),
                 key=lambda t: int(t.rsplit("t", 1)[1]))
    metrics["two_weights"] = [_last(run.values(t)) for t in two]
    # PSG: each layer's last surrogate parameter
    metrics["psg_alpha"] = {t.split("/", 2)[2]: _last(run.values(t)) for t in run.scalars if t.startswith("psg/alpha/")}
    metrics["psg_shape"] = {t.split("/", 2)[2]: _last(run.values(t)) for t in run.scalars if t.startswith("psg/shape/")}
    # potential statistics, last epoch, mean over the spiking layers
    for stat in ("frac_below_0", "frac_above_2theta", "frac_in_window", "std_over_theta", "mean_over_theta"):
        metrics[f"potential_{stat}"] = _mean(run.last_epoch_mean(t) for t in _layer_tags(run, "potential/", stat))
    record_file = os.path.join(folder, RUN_FILE)
    record = json.load(open(record_file)) if os.path.isfile(record_file) else {}
    metrics["status"] = record.get("status", "unknown")
    metrics["wall_s"] = record.get("wall_s", math.nan)
    return metrics


def collect(spec: dict, experiment: dict, seeds: list[int]) -> dict[str, dict[int, dict]]:
    """``{variant: {seed: metrics}}`` of the runs that exist."""
    found: dict[str, dict[int, dict]] = {}
    for variant in experiment["variants"]:
        for seed in seeds:
            folder = run_dir(spec["log_root"], experiment["name"], variant, seed)
            if os.path.isfile(os.path.join(folder, RUN_FILE)):
                found.setdefault(variant, {})[seed] = run_metrics(folder, f"{variant}/seed{seed}")
    return found


SCALARS = ("test_acc", "best_val_acc", "test_acc_uniform", "final_train_loss", "firing_rate", "grad_sparsity",
           "grad_sparsity_h", "sec_per_epoch", "wall_s", "fdg_cosine", "fdg_cosine_current", "dspike_b",
           "potential_frac_below_0",
           "potential_frac_above_2theta", "potential_frac_in_window", "potential_std_over_theta",
           "potential_mean_over_theta")


def _stats(values: list[float]) -> tuple[float, float, int]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, 0
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def summarise(runs: dict[str, dict[int, dict]], reference: str | None = None) -> dict[str, dict]:
    """Per variant: ``(mean, std, n)`` of every scalar over seeds (NaN values, e.g. the missing test accuracy of
    a run stopped by the NaN guard, are left out; ``failed`` counts such runs). With ``reference``,
    ``delta_test_acc`` is the mean ± std over seeds of (variant − reference) for the same seed."""
    summary: dict[str, dict] = {}
    for variant, by_seed in runs.items():
        entry = {key: _stats([m[key] for m in by_seed.values()]) for key in SCALARS}
        entry["runs"] = len(by_seed)
        entry["failed"] = sum(m["status"] != "ok" for m in by_seed.values())
        if reference and reference in runs and variant != reference:
            ref = runs[reference]
            diffs = [m["test_acc"] - ref[s]["test_acc"] for s, m in by_seed.items() if s in ref]
            entry["delta_test_acc"] = _stats(diffs)
        summary[variant] = entry
    return summary


# --- formatting -------------------------------------------------------------------------------------------
def pm(stat: tuple[float, float, int], scale: float = 1.0, digits: int = 1, signed: bool = False) -> str:
    mean, std, n = stat
    if n == 0 or math.isnan(mean):
        return "–"
    sign = "+" if signed else ""
    return f"{mean * scale:{sign}.{digits}f} ± {std * scale:.{digits}f}"


def paired(stat: tuple[float, float, int]) -> str:
    """Paired difference in pp with its t statistic ``mean / (std / √n)`` (|t| > 2.8: p < 0.05 at n = 5)."""
    mean, std, n = stat
    text = pm(stat, 100, 2, True)
    if n > 1 and std > 0 and not math.isnan(mean):
        text += f" (t {mean / (std / math.sqrt(n)):+.1f})"
    return text


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _has(summary: dict, key: str) -> bool:
    return any(entry[key][2] > 0 for entry in summary.values())


def generic_table(summary: dict, reference: str | None) -> str:
    """Variant rows: accuracy (%), paired difference to the reference, and the analysis columns that exist."""
    columns: list[tuple[str, str, float, int, bool]] = [
        ("test acc (%)", "test_acc", 100, 2, False),
    ]
    if reference:
        columns.append((f"Δ test vs {reference} (pp, paired t)", "delta_test_acc", 100, 2, True))
    columns.append(("best val acc (%)", "best_val_acc", 100, 2, False))
    optional = [
        ("test acc, uniform weights (%)", "test_acc_uniform", 100, 2, False),
        ("firing rate", "firing_rate", 1, 3, False),
        ("zeros of ∂s/∂h", "grad_sparsity", 1, 3, False),
        ("zeros of ∂L/∂h", "grad_sparsity_h", 1, 3, False),
        ("FDG cosine at current b", "fdg_cosine_current", 1, 3, False),
        ("FDG cosine at trained b", "fdg_cosine", 1, 3, False),
        ("final b", "dspike_b", 1, 2, False),
        ("P(h/θ < 0)", "potential_frac_below_0", 1, 3, False),
        ("P(h/θ > 2)", "potential_frac_above_2theta", 1, 4, False),
        ("P(\\|h−θ\\| ≤ w)", "potential_frac_in_window", 1, 3, False),
        ("std(h/θ)", "potential_std_over_theta", 1, 3, False),
    ]
    columns += [c for c in optional if _has(summary, c[1])]
    columns.append(("s / epoch", "sec_per_epoch", 1, 2, False))
    header = ["variant", "runs", *(c[0] for c in columns)]
    rows = []
    for variant, entry in summary.items():
        runs = f"{entry['runs']}" + (f" ({entry['failed']} diverged)" if entry["failed"] else "")
        cells = []
        for _, key, scale, digits, signed in columns:
            if key == "delta_test_acc":
                cells.append(paired(entry[key]) if key in entry else "ref" if variant == reference else "–")
            else:
                cells.append(pm(entry[key], scale, digits, signed) if key in entry else "–")
        rows.append([f"`{variant}`", runs, *cells])
    return markdown_table(header, rows)


def _pair_key(variant: str) -> tuple[str, str]:
    """``lr0.3_detached`` -> ``("0.3", "detached")``."""
    match = re.fullmatch(r"lr([0-9.e-]+)_(detached|kept)", variant)
    if not match:
        raise ValueError(f"reset sweep variant names must look like lr<value>_<detached|kept>, got {variant!r}")
    return match.group(1), match.group(2)


def pair_table(runs: dict[str, dict[int, dict]]) -> tuple[str, dict]:
    """Rows per learning rate: both settings' test accuracy, paired difference, final training loss, time."""
    lrs: dict[str, dict[str, str]] = {}
    for variant in runs:
        lr, setting = _pair_key(variant)
        lrs.setdefault(lr, {})[setting] = variant
    summary = summarise(runs)
    rows = []
    time_ratios = []
    for lr in sorted(lrs, key=float):
        det, kept = lrs[lr].get("detached"), lrs[lr].get("kept")
        if not det or not kept:
            continue
        diffs = [m["test_acc"] - runs[det][s]["test_acc"] for s, m in runs[kept].items() if s in runs[det]]
        ratio = [m["sec_per_epoch"] / runs[det][s]["sec_per_epoch"] for s, m in runs[kept].items()
                 if s in runs[det]]
        time_ratios += ratio
        failed = [summary[v]["failed"] for v in (det, kept)]
        rows.append([
            lr, pm(summary[det]["test_acc"], 100, 1), pm(summary[kept]["test_acc"], 100, 1),
            paired(_stats(diffs)),
            pm(summary[det]["final_train_loss"], 1, 3), pm(summary[kept]["final_train_loss"], 1, 3),
            f"{failed[0]} / {failed[1]}",
            pm(summary[det]["sec_per_epoch"], 1, 2), pm(summary[kept]["sec_per_epoch"], 1, 2),
        ])
    header = ["lr", "test acc, detached (%)", "test acc, kept (%)", "Δ kept − detached (pp, paired t)",
              "final train loss, detached", "final train loss, kept", "diverged (det. / kept)",
              "s / epoch, detached", "s / epoch, kept"]
    extra = {"time_ratio": _stats(time_ratios), "lrs": lrs, "summary": summary}
    return markdown_table(header, rows), extra


# --- plots --------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(experiment: dict, summary: dict, path: str) -> None:
    """Test accuracy and zero fraction of ∂s/∂h against the swept setting (MSG p)."""
    plt = _pyplot()
    key = experiment["x"]
    xs, acc, acc_err, sp, sp_err = [], [], [], [], []
    for variant, entry in summary.items():
        xs.append(float(experiment["variants"][variant][key]))
        acc.append(entry["test_acc"][0] * 100)
        acc_err.append(entry["test_acc"][1] * 100)
        sp.append(entry["grad_sparsity"][0])
        sp_err.append(entry["grad_sparsity"][1])
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.errorbar(xs, acc, yerr=acc_err, marker="o", capsize=3)
    a.set_xlabel("drop probability p")
    a.set_ylabel("test accuracy (%)")
    a.set_title("Accuracy (mean ± std over seeds)")
    b.errorbar(xs, sp, yerr=sp_err, marker="o", capsize=3, label="measured")
    if xs and xs[0] == 0 and not math.isnan(sp[0]):
        grid = [i / 20 for i in range(21)]
        b.plot(grid, [1 - (1 - p) * (1 - sp[0]) for p in grid], "--", color="grey",
               label="1 − (1−p)·(1 − zeros at p=0)")
    b.set_xlabel("drop probability p")
    b.set_ylabel("zero fraction of ∂s/∂h")
    b.set_title("Surrogate-gradient sparsity (last epoch)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(summary: dict, path: str, title: str) -> None:
    plt = _pyplot()
    names = list(summary)
    means = [summary[n]["test_acc"][0] * 100 for n in names]
    errs = [summary[n]["test_acc"][1] * 100 for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(names, means, yerr=errs, capsize=4, color="tab:blue", alpha=0.8)
    finite = [m for m in means if not math.isnan(m)]
    if finite:
        low = min(m - e for m, e in zip(means, errs, strict=True) if not math.isnan(m))
        ax.set_ylim(max(0.0, low - 2), min(100.0, max(finite) + max(errs) + 1))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pairs(extra: dict, path: str, title: str) -> None:
    """Test accuracy and final training loss against the learning rate, reset gradient detached vs kept."""
    plt = _pyplot()
    summary, lrs = extra["summary"], extra["lrs"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for setting, marker in (("detached", "o"), ("kept", "s")):
        xs = sorted((lr for lr in lrs if setting in lrs[lr]), key=float)
        entries = [summary[lrs[lr][setting]] for lr in xs]
        label = f"reset gradient {setting}"
        a.errorbar([float(x) for x in xs], [e["test_acc"][0] * 100 for e in entries],
                   yerr=[e["test_acc"][1] * 100 for e in entries], marker=marker, capsize=3, label=label)
        b.errorbar([float(x) for x in xs], [e["final_train_loss"][0] for e in entries],
                   yerr=[e["final_train_loss"][1] for e in entries], marker=marker, capsize=3, label=label)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (SGD, momentum 0.9)")
        ax.legend(fontsize=8)
    a.set_ylabel("test accuracy (%)")
    b.set_ylabel("final training loss")
    b.set_yscale("log")
    a.set_title(title)
    b.set_title("Training loss of the last epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_curve(curves: list[list[float]]) -> tuple[list[float], list[float]]:
    length = min((len(c) for c in curves), default=0)
    means, stds = [], []
    for i in range(length):
        m, s, _ = _stats([c[i] for c in curves])
        means.append(m)
        stds.append(s)
    return means, stds


def plot_dspike(runs: dict[str, dict[int, dict]], path: str) -> None:
    """FDG cosine per epoch per variant, and the searched temperature per epoch."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for variant, by_seed in runs.items():
        mean, std = _mean_curve([m["fdg_cosine_per_epoch"] for m in by_seed.values()])
        epochs = list(range(len(mean)))
        a.errorbar(epochs, mean, yerr=std, marker="o", capsize=2, label=variant)
        b_mean, b_std = _mean_curve([m["dspike_b_per_epoch"] for m in by_seed.values()])
        if b_mean:
            b.errorbar(list(range(len(b_mean))), b_mean, yerr=b_std, marker="o", capsize=2, label=variant)
    a.set_xlabel("epoch")
    a.set_ylabel("cos(FDG, surrogate gradient)")
    a.set_title("FDG cosine at the trained b (first layer)")
    a.legend(fontsize=8)
    b.set_xlabel("epoch")
    b.set_ylabel("temperature b")
    b.set_title("Dspike temperature per epoch")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _psg_shapes(experiment: dict, variant: str) -> list[str]:
    for callback in merged_overrides(experiment, variant).get("trainer.callbacks") or []:
        if callback.get("class_path", "").endswith("ParametricSurrogate"):
            return list((callback.get("init_args") or {}).get("shapes") or [])
    return []


def _shape_name(shapes: list[str], index: float | None) -> str:
    if index is None or math.isnan(index) or not 0 <= int(index) < len(shapes):
        return ""
    return shapes[int(index)]


def plot_potential(summary: dict, path: str) -> None:
    plt = _pyplot()
    stats = [("potential_frac_below_0", "P(h/θ < 0)"), ("potential_frac_above_2theta", "P(h/θ > 2)"),
             ("potential_frac_in_window", "P(|h−θ| ≤ w)")]
    names = list(summary)
    fig, axes = plt.subplots(1, len(stats) + 1, figsize=(12, 3.2))
    for ax, (key, label) in zip(axes, stats, strict=False):
        ax.bar(names, [summary[n][key][0] for n in names], yerr=[summary[n][key][1] for n in names], capsize=3)
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    acc = axes[-1]
    means = [summary[n]["test_acc"][0] * 100 for n in names]
    errs = [summary[n]["test_acc"][1] * 100 for n in names]
    acc.bar(names, means, yerr=errs, capsize=3, color="tab:green")
    finite = [m for m in means if not math.isnan(m)]
    if finite:
        acc.set_ylim(max(0.0, min(finite) - 3), min(100.0, max(finite) + 2))
    acc.set_title("test accuracy (%)")
    acc.tick_params(axis="x", rotation=30)
    fig.suptitle("Pre-spike potential h/θ, last epoch, mean over spiking layers", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- reset-gradient time cost, measured directly ---------------------------------------------------------------
def reset_timing(shape=(20, 64, 2048), repeats: int = 30) -> dict:
    """Median seconds of one LIF forward + backward (hard reset, atan) with the reset gradient detached vs kept;
    the two settings alternate, so that load changes hit both alike."""
    from spikegrad.neurons import LIF

    layers = {d: LIF(detach_reset=d) for d in (True, False)}  # ATan, the default surrogate
    x = torch.randn(*shape) * 0.8 + 0.6
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats + 3):
        for d, lif in layers.items():
            xi = x.clone().requires_grad_(True)
            start = time.perf_counter()
            lif(xi).sum().backward()
            if i >= 3:  # warm-up
                times[d].append(time.perf_counter() - start)
    det, kept = statistics.median(times[True]), statistics.median(times[False])
    return {"shape": list(shape), "detached_ms": det * 1e3, "kept_ms": kept * 1e3, "ratio": kept / det}


# --- outputs --------------------------------------------------------------------------------------------------
def spikegrad_report(spec: dict, experiment: dict, figures: str) -> list[str]:
    """``spikegrad report`` of the experiment's runs; its PNGs are copied to ``<figures>/<experiment>/``."""
    from spikegrad.report import build_report

    folder = os.path.join(spec["log_root"], experiment["name"])
    runs = [os.path.join(folder, v) for v in experiment["variants"] if os.path.isdir(os.path.join(folder, v))]
    if not runs:
        return []
    out = os.path.join(folder, "report")
    build_report(runs, out)
    target = os.path.join(figures, experiment["name"])
    os.makedirs(target, exist_ok=True)
    copied = []
    for name in sorted(os.listdir(out)):
        if name.endswith(".png"):
            shutil.copyfile(os.path.join(out, name), os.path.join(target, name))
            copied.append(os.path.join(experiment["name"], name))
    return copied


def experiment_block(spec: dict, experiment: dict, seeds: list[int], figures: str, doc_dir: str) -> str:
    """The generated markdown of one experiment: settings, table, plots."""
    runs = collect(spec, experiment, seeds)
    if not runs:
        return "_No runs yet._"
    name = experiment["name"]
    rel = os.path.relpath(figures, doc_dir)
    lines = [f"Config `{experiment['config']}` with:", "", "```yaml",
             yaml.safe_dump(experiment.get("overrides") or {}, sort_keys=False, width=110).strip(), "```", ""]
    n_seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    lines.append(f"Seeds {', '.join(map(str, n_seeds))}; mean ± standard deviation over seeds; accuracies in %. "
                 "Test accuracy is that of the checkpoint with the best validation accuracy.")
    lines.append("")
    plot = os.path.join(figures, f"{name}.png")
    if "pair" in experiment:
        table, extra = pair_table(runs)
        lines += [table, ""]
        ratio = extra["time_ratio"]
        lines.append(f"Time per epoch, kept / detached, paired by seed and learning rate: "
                     f"{pm(ratio, 1, 3)} (whole training epoch incl. validation, on a shared machine).")
        plot_pairs(extra, plot, experiment["title"].split(",")[-1].strip())
    else:
        summary = summarise(runs, experiment.get("reference"))
        lines += [generic_table(summary, experiment.get("reference")), ""]
        if "x" in experiment:
            plot_sweep(experiment, summary, plot)
        elif name == "dspike":
            plot_dspike(runs, plot)
            searched = [v for v in runs if v.startswith("searched")]
            for variant in searched:
                paths = [" → ".join(f"{b:g}" for b in m["dspike_b_per_epoch"]) for m in runs[variant].values()]
                lines.append(f"`{variant}` temperature per epoch, by seed: " + "; ".join(paths) + ".")
                lines.append("")
        elif name == "psg_pda":
            plot_potential(summary, plot)
            for variant, by_seed in runs.items():
                shapes = _psg_shapes(experiment, variant)
                finals = []
                for seed, m in sorted(by_seed.items()):
                    if m["psg_alpha"]:
                        layers = ", ".join(f"`{layer}` {_shape_name(shapes, m['psg_shape'].get(layer))} {alpha:.3g}"
                                           for layer, alpha in m["psg_alpha"].items())
                        finals.append(f"seed {seed}: {layers}")
                if finals:
                    lines.append(f"`{variant}`, each layer's surrogate after the last calibration: "
                                 + "; ".join(finals) + ".")
                    lines.append("")
        else:
            plot_bars(summary, plot, experiment["title"].split(" on ")[-1])
            for variant, by_seed in runs.items():
                weights = [m["two_weights"] for m in by_seed.values() if m["two_weights"]]
                if weights:
                    steps = zip(*weights, strict=False)
                    text = ", ".join(f"{pm(_stats(list(w)), 1, 3)}" for w in steps)
                    lines.append(f"`{variant}`: TWO weights f_1..f_T after training (mean ± std over seeds): {text}.")
                    lines.append("")
    lines.append(f"![{experiment['title']}]({rel}/{name}.png)")
    lines.append("")
    copied = spikegrad_report(spec, experiment, figures)
    if copied:
        links = ", ".join(f"[{os.path.splitext(os.path.basename(p))[0]}]({rel}/{p})" for p in copied)
        lines.append(f"Per-run plots of `spikegrad report` (every seed one curve/bar): {links}. Full per-run table: "
                     f"`spikegrad report {spec['log_root']}/{name} --out DIR` after the study.")
    return "\n".join(lines)


BEGIN = "<!-- BEGIN generated:{} -->"
END = "<!-- END generated:{} -->"


def replace_block(text: str, name: str, content: str) -> str:
    begin, end = BEGIN.format(name), END.format(name)
    block = f"{begin}\n{content}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    return text.rstrip("\n") + "\n\n" + block + "\n"


def skeleton(spec: dict) -> str:
    lines = ["# CPU-scale reproduction study", ""]
    lines += [BEGIN.format("header"), END.format("header"), ""]
    for experiment in spec["experiments"]:
        lines += [f"## {experiment['title']}", "", f"**Claim.** {experiment.get('claim', '')}", "",
                  BEGIN.format(experiment["name"]), END.format(experiment["name"]), ""]
    return "\n".join(lines)


def header_block(spec: dict, seeds: list[int], study: dict) -> str:
    timing = study.get("timing") or {}
    lines = [
        "Reproduce with `make reproduce-small` "
        f"(= `python -m studies.reproduce_small --spec {DEFAULT_SPEC}`), on CPU, in one process: every run is "
        "a `spikegrad fit` through `spikegrad.cli.main`, logged to "
        f"`{spec['log_root']}/<experiment>/<variant>/seed<k>`; tables and plots are then rebuilt from those "
        "TensorBoard runs (`--report-only` rebuilds them without training).",
        "",
        f"Last full run: {study.get('finished', '?')}, {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
        f"{study.get('runs', '?')} runs, wall time **{study.get('wall_min', float('nan')):.1f} min** "
        f"(training {study.get('train_min', float('nan')):.1f} min) on {study.get('machine', '?')}, "
        f"torch {study.get('torch', '?')}, {spec.get('threads', 1)} torch thread(s).",
    ]
    if study.get("per_experiment_min"):
        lines.append("")
        lines.append("Training time per experiment (min): " + ", ".join(
            f"`{k}` {v:.1f}" for k, v in study["per_experiment_min"].items()) + ".")
    if timing:
        lines += ["", f"Direct timing of one LIF layer forward + backward (hard reset, atan, input "
                  f"{'×'.join(map(str, timing['shape']))}, median of interleaved repeats): reset gradient "
                  f"detached {timing['detached_ms']:.2f} ms, kept {timing['kept_ms']:.2f} ms "
                  f"(kept / detached = {timing['ratio']:.3f})."]
    return "\n".join(lines)


def write_header(spec: dict, seeds: list[int], study: dict) -> str:
    """Only the document's header block (command, wall time)."""
    doc = spec["doc"]
    text = open(doc).read() if os.path.isfile(doc) else skeleton(spec)
    with open(doc, "w") as f:
        f.write(replace_block(text, "header", header_block(spec, seeds, study)))
    return doc


def write_outputs(spec: dict, seeds: list[int], study: dict, only: list[str] | None = None) -> str:
    """Tables, plots and the document (only its generated blocks are replaced when it exists)."""
    doc = spec["doc"]
    figures = spec["figures"]
    os.makedirs(figures, exist_ok=True)
    text = open(doc).read() if os.path.isfile(doc) else skeleton(spec)
    text = replace_block(text, "header", header_block(spec, seeds, study))
    for experiment in spec["experiments"]:
        if only and experiment["name"] not in only:
            continue
        content = experiment_block(spec, experiment, seeds, figures, os.path.dirname(doc) or ".")
        text = replace_block(text, experiment["name"], content)
    os.makedirs(os.path.dirname(doc) or ".", exist_ok=True)
    with open(doc, "w") as f:
        f.write(text)
    return doc


# --- command ----------------------------------------------------------------------------------------------------
def _quiet() -> None:
    """Keep the log readable: Lightning's per-run banners and known warnings off."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="CPU-scale reproduction study (docs/reproduction_small.md).")
    parser.add_argument("--spec", default=DEFAULT_SPEC)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the spec's seeds")
    parser.add_argument("--only", nargs="+", default=None, metavar="EXPERIMENT", help="only these experiments")
    parser.add_argument("--force", action="store_true", help="train again runs that already finished")
    parser.add_argument("--report-only", action="store_true", help="no training: tables, plots, document")
    parser.add_argument("--log-root", default=None, help="override the spec's log_root")
    parser.add_argument("--doc", default=None, help="override the spec's doc")
    parser.add_argument("--figures", default=None, help="override the spec's figures folder")
    parser.add_argument("--threads", type=int, default=None, help="override the spec's torch threads")
    parser.add_argument("extra", nargs="*", help="extra `spikegrad fit` arguments for every run (after --)")
    options = parser.parse_args(argv)

    spec = load_spec(options.spec)
    for key in ("log_root", "doc", "figures"):
        if getattr(options, key) is not None:
            spec[key] = getattr(options, key)
    seeds = options.seeds or spec["seeds"]
    torch.set_num_threads(options.threads or spec.get("threads", 1))
    _quiet()
    os.makedirs(spec["log_root"], exist_ok=True)
    study_file = os.path.join(spec["log_root"], STUDY_FILE)
    study = json.load(open(study_file)) if os.path.isfile(study_file) else {}

    if not options.report_only:
        start = time.perf_counter()
        spent = run_study(spec, seeds, spec["log_root"], options.only, options.force, options.extra)
        timing = reset_timing()
        report_start = time.perf_counter()
        write_outputs(spec, seeds, study, options.only)
        report_s = time.perf_counter() - report_start
        if spent:  # something was trained: this call is the study's record
            study = {
                "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "runs": len(experiment_runs(spec, seeds, options.only)),
                "wall_min": (time.perf_counter() - start) / 60,
                "train_min": sum(spent.values()) / 60,
                "report_min": report_s / 60,
                "per_experiment_min": {k: v / 60 for k, v in spent.items()},
                "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.processor() or 'cpu'})",
                "torch": torch.__version__,
                "seeds": seeds,
                "timing": timing,
                "argv": sys.argv,
            }
            with open(study_file, "w") as f:
                json.dump(study, f, indent=1)
        doc = write_header(spec, seeds, study)
    else:
        doc = write_outputs(spec, seeds, study, options.only)
    print(f"Study written to {doc}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
