"""Aggregation of runs over seeds: per group mean ± std, paired differences to a reference, Holm correction.

Used by ``spikegrad sweep`` (a group is a variant of the sweep) and by ``spikegrad report`` when it is given
several seeds of the same settings (a group is every setting except ``seed_everything``).

Statistics (per metric, over the seeds of a group):

* mean ``x̄ = Σ x_i / n`` and sample standard deviation ``s = sqrt(Σ (x_i - x̄)² / (n - 1))``;
* paired difference to the reference group, paired by seed (same seed: same initialisation, data order and
  split): ``d_i = x_i - r_i``, its mean ``d̄``, std ``s_d`` and Student's paired t statistic
  ``t = d̄ / (s_d / sqrt(n))`` with ``n - 1`` degrees of freedom; the two-sided p-value is
  ``scipy.stats.ttest_rel`` (Student 1908);
* the p-values of all variants against the reference are corrected for multiple comparisons with Holm's
  step-down method (Holm 1979): with the m p-values sorted ``p_(1) ≤ … ≤ p_(m)``,
  ``p̃_(i) = max_{j ≤ i} min(1, (m - j + 1) · p_(j))``.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scipy import stats

__all__ = [
    "METRICS",
    "GroupStats",
    "Paired",
    "aggregate",
    "holm",
    "run_metrics",
    "summary_figure",
    "write_summary",
]

# name -> (how it is computed from a run, label in tables and figures)
METRICS = {
    "test_acc": "test accuracy (last test/acc)",
    "best_val_acc": "best validation accuracy (max val/acc)",
    "final_val_acc": "validation accuracy of the last epoch",
    "final_train_loss": "training loss of the last epoch (train/loss)",
    "firing_rate": "firing rate (spikes per neuron per step, last epoch)",
    "grad_sparsity": "zero fraction of ∂s/∂h (last epoch)",
    "energy_uJ": "SNN energy per sample in µJ (last epoch)",
    "sec_per_epoch": "seconds per training epoch (validation included)",
    "epochs": "epochs trained",
}
ANALYSIS_METRICS = ("firing_rate", "grad_sparsity", "sec_per_epoch")


def _last(values: list[float]) -> float:
    return values[-1] if values else math.nan


def run_metrics(run) -> dict[str, float]:
    """The :data:`METRICS` of one :class:`spikegrad.report.Run` (``nan`` where the run did not log the tag)."""
    val = run.values("val/acc")
    train_loss = run.values("train/loss_epoch") or run.values("train/loss")
    return {
        "test_acc": _last(run.values("test/acc")),
        "best_val_acc": max(val) if val else math.nan,
        "final_val_acc": _last(val),
        "final_train_loss": _last(train_loss),
        "firing_rate": run.last_epoch_mean("firing_rate/mean"),
        "grad_sparsity": run.last_epoch_mean("grad_sparsity/mean"),
        "energy_uJ": run.last_epoch_mean("energy/snn_uJ"),
        "sec_per_epoch": run.seconds_per_epoch(),
        "epochs": float(len(run.epoch_ends())),
    }


@dataclass
class Paired:
    """Paired difference ``group - reference`` over the common seeds."""

    n: int
    mean: float
    std: float
    t: float
    p: float
    p_holm: float = math.nan


@dataclass
class GroupStats:
    """One group's seeds, per-metric mean and std, and the paired difference of each metric to the reference."""

    name: str
    seeds: list[int]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    paired: dict[str, Paired] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.seeds)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = _finite(values)
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def _paired(values: Mapping[int, float], reference: Mapping[int, float]) -> Paired | None:
    seeds = sorted(s for s in set(values) & set(reference)
                   if math.isfinite(values[s]) and math.isfinite(reference[s]))
    if not seeds:
        return None
    diffs = [values[s] - reference[s] for s in seeds]
    mean, std = statistics.fmean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else math.nan
    if len(diffs) < 2 or std == 0:
        return Paired(len(diffs), mean, std, math.nan, math.nan)
    result = stats.ttest_rel([values[s] for s in seeds], [reference[s] for s in seeds])
    return Paired(len(diffs), mean, std, float(result.statistic), float(result.pvalue))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (``nan`` stays ``nan`` and is not counted in m)."""
    order = sorted((p, i) for i, p in enumerate(p_values) if math.isfinite(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def aggregate(records: Sequence[Mapping], reference: str | None, metrics: Sequence[str]) -> list[GroupStats]:
    """``records``: one per run, ``{"group": name, "seed": int, <metric>: value, ...}``; groups in first-seen
    order, the reference first. Paired differences (and Holm-corrected p-values over the groups, per metric)
    against ``reference`` (default: the first group)."""
    by_group: dict[str, dict[int, Mapping]] = {}
    for record in records:
        by_group.setdefault(str(record["group"]), {})[int(record["seed"])] = record
    if not by_group:
        return []
    reference = reference if reference in by_group else next(iter(by_group))
    names = [reference, *[name for name in by_group if name != reference]]
    groups = []
    for name in names:
        runs = by_group[name]
        group = GroupStats(name, sorted(runs))
        for metric in metrics:
            group.mean[metric], group.std[metric] = _mean_std([runs[s].get(metric, math.nan) for s in group.seeds])
            if name != reference:
                paired = _paired({s: runs[s].get(metric, math.nan) for s in runs},
                                 {s: by_group[reference][s].get(metric, math.nan) for s in by_group[reference]})
                if paired is not None:
                    group.paired[metric] = paired
        groups.append(group)
    for metric in metrics:
        compared = [g for g in groups if metric in g.paired]
        for group, p in zip(compared, holm([g.paired[metric].p for g in compared]), strict=True):
            group.paired[metric].p_holm = p
    return groups


def _number(value: float, digits: int = 4) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _pm(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{_number(mean)} ± {_number(std)}" if math.isfinite(std) else f"{_number(mean)} (n = 1)"


def summary_table(groups: Sequence[GroupStats], metrics: Sequence[str], objective: str) -> str:
    """Markdown table: variant, n, seeds, mean ± std per metric, paired Δ of the objective with t and Holm p."""
    reference = groups[0].name
    header = ["variant", "n", *metrics, f"Δ {objective} vs {reference} (paired, mean ± std)", "t", "p (Holm)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for group in groups:
        cells = [f"`{group.name}`", str(group.n), *[_pm(group.mean[m], group.std[m]) for m in metrics]]
        paired = group.paired.get(objective)
        if group.name == reference:
            cells += ["reference", "", ""]
        elif paired is None:
            cells += ["– (no common seeds)", "", ""]
        else:
            spread = f" ± {_number(paired.std)}" if math.isfinite(paired.std) else ""
            cells += [f"{_number(paired.mean)}{spread} (n = {paired.n})", _number(paired.t, 3),
                      _number(paired.p_holm, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: str, groups: Sequence[GroupStats], metrics: Sequence[str]) -> None:
    """One row per group: n, seeds, ``<metric>_mean``, ``<metric>_std`` and the paired columns per metric."""
    columns = ["variant", "n", "seeds"]
    for metric in metrics:
        columns += [f"{metric}_mean", f"{metric}_std", f"{metric}_diff_mean", f"{metric}_diff_std",
                    f"{metric}_t", f"{metric}_p", f"{metric}_p_holm"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for group in groups:
            row = {"variant": group.name, "n": group.n, "seeds": " ".join(map(str, group.seeds))}
            for metric in metrics:
                row[f"{metric}_mean"], row[f"{metric}_std"] = group.mean[metric], group.std[metric]
                paired = group.paired.get(metric)
                if paired is not None:
                    row.update({f"{metric}_diff_mean": paired.mean, f"{metric}_diff_std": paired.std,
                                f"{metric}_t": paired.t, f"{metric}_p": paired.p, f"{metric}_p_holm": paired.p_holm})
            writer.writerow(row)


def summary_figure(groups: Sequence[GroupStats], metrics: Sequence[str]):
    """Small multiples, one panel per metric: a dot per variant at its mean with a ±1 std bar, variants on the
    y axis (labelled with their n, readable for tens of variants), each x axis zoomed to the data."""
    from matplotlib.figure import Figure

    shown = [m for m in metrics if any(math.isfinite(g.mean[m]) for g in groups)]
    height = max(2.2, 1.2 + 0.28 * len(groups))
    fig = Figure(figsize=(3.2 * max(1, len(shown)) + 1.8, height), layout="constrained")
    axes = fig.subplots(1, max(1, len(shown)), sharey=True, squeeze=False)[0]
    labels = [f"{g.name} (n={g.n})" for g in groups]
    ys = list(range(len(groups)))[::-1]  # the reference on top
    for ax, metric in zip(axes, shown, strict=False):
        means = [g.mean[metric] for g in groups]
        errors = [g.std[metric] if math.isfinite(g.std[metric]) else 0.0 for g in groups]
        ax.errorbar(means, ys, xerr=errors, fmt="o", ms=4, capsize=3, color="tab:blue")
        if math.isfinite(means[0]):
            ax.axvline(means[0], color="0.6", lw=0.8, ls="--")
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(ys, labels)
    axes[0].set_ylim(-0.7, len(groups) - 0.3)
    fig.suptitle("mean ± std over seeds (dashed: reference)", fontsize=9)
    return fig


def write_summary(out_dir: str, title: str, groups: Sequence[GroupStats], metrics: Sequence[str], objective: str,
                  notes: Sequence[str] = ()) -> str:
    """``summary.md``, ``summary.csv`` and ``summary.png`` in ``out_dir``; returns the markdown path."""
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "summary.csv"), groups, metrics)
    summary_figure(groups, metrics).savefig(os.path.join(out_dir, "summary.png"), dpi=120)
    lines = [
        f"# {title}",
        "",
        *notes,
        "",
        summary_table(groups, metrics, objective),
        "",
        f"Mean ± sample standard deviation over seeds; n = number of seeds. Δ: difference to `{groups[0].name}` "
        "paired by seed; t: paired Student t statistic; p (Holm): two-sided p-value of the paired t test, "
        "Holm-corrected over the variants.",
        "",
        "Metrics: " + "; ".join(f"`{m}` = {METRICS.get(m, m)}" for m in metrics) + ".",
        "",
        "![summary](summary.png)",
        "",
    ]
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


SEED_SETTING = "seed_everything"


def seed_records(runs: Sequence, setting_keys: Sequence[str]) -> list[dict] | None:
    """Records for :func:`aggregate` from runs that differ in their seed: a run's group is the values of every
    other differing setting. ``None`` when no two runs share all settings but the seed."""
    if SEED_SETTING not in setting_keys:
        return None
    keys = [key for key in setting_keys if key != SEED_SETTING]
    records = []
    for run in runs:
        label = ", ".join(f"{key}={run.settings.get(key, '-')}" for key in keys) or "all runs"
        try:
            seed = int(run.settings.get(SEED_SETTING, "0"))
        except ValueError:
            return None
        records.append({"group": label, "seed": seed, **run_metrics(run)})
    labels = [record["group"] for record in records]
    if len(set(labels)) == len(labels) or len({(r["group"], r["seed"]) for r in records}) != len(records):
        return None
    return records


def over_seeds_section(runs: Sequence, setting_keys: Sequence[str], out_dir: str) -> list[str]:
    """``spikegrad report`` of several seeds per setting: the markdown lines of the table over seeds (mean ± std,
    paired differences to the first group), with ``over_seeds.csv`` and ``over_seeds.png`` written to
    ``out_dir``; no lines when the runs are not several seeds of the same settings."""
    records = seed_records(runs, setting_keys)
    if not records:
        return []
    metrics = ["best_val_acc", "test_acc", *ANALYSIS_METRICS]
    groups = aggregate(records, None, metrics)
    write_csv(os.path.join(out_dir, "over_seeds.csv"), groups, metrics)
    summary_figure(groups, metrics).savefig(os.path.join(out_dir, "over_seeds.png"), dpi=120)
    return [
        "## Over seeds",
        "",
        "Runs grouped by every differing setting except `seed_everything`: mean ± std over the seeds, and the "
        f"difference to `{groups[0].name}` paired by seed (t: paired t statistic; p: Holm-corrected).",
        "",
        summary_table(groups, metrics, "best_val_acc"),
        "",
        "![over seeds](over_seeds.png)",
        "",
    ]
