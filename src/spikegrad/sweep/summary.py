"""The summary of a sweep, from its study: per variant mean ± std over seeds, paired differences, figures.

Reads the finished trials' user attributes (variant, seed, metrics, run folder) written by
:mod:`spikegrad.sweep.worker`; the statistics are :mod:`spikegrad.aggregate`'s. Writes
``<log_root>/<sweep>/summary/summary.{md,csv,png}``.
"""

from __future__ import annotations

import math
import os

from spikegrad.aggregate import ANALYSIS_METRICS, aggregate, write_summary
from spikegrad.sweep.spec import SweepSpec

__all__ = ["trial_records", "write_sweep_summary"]


def trial_records(study) -> tuple[list[dict], list[str]]:
    """``(records, lines)``: one record per COMPLETE trial (``group``, ``seed``, metrics, ``trial``) and one line
    per trial that did not complete (state, variant, seed, reason)."""
    from optuna.trial import TrialState

    records, others = [], []
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state == TrialState.COMPLETE:
            metrics = {k: (math.nan if v is None else v) for k, v in (attrs.get("metrics") or {}).items()}
            records.append({"group": attrs["variant"], "seed": attrs["seed"], "trial": trial.number,
                            "params": trial.params, **metrics})
        elif trial.number not in retried:
            where = f"{attrs.get('variant', '?')} seed {attrs.get('seed', '?')}"
            reason = attrs.get("fail_reason") or ("" if trial.state != TrialState.FAIL else "worker stopped")
            others.append(f"- trial {trial.number} ({where}): {trial.state.name}{': ' + reason if reason else ''}")
    return records, others


def write_sweep_summary(spec: SweepSpec, study) -> str | None:
    """Writes the summary files; returns the markdown path (``None`` when no trial has completed yet)."""
    records, others = trial_records(study)
    if not records:
        return None
    metrics = list(dict.fromkeys([spec.objective, "test_acc", "best_val_acc", *ANALYSIS_METRICS]))
    if spec.search is not None:  # every trial its own variant, best first
        sign = -1 if spec.direction == "maximize" else 1
        records.sort(key=lambda r: sign * r.get(spec.objective, math.nan) if math.isfinite(
            r.get(spec.objective, math.nan)) else math.inf)
    reference = spec.reference if spec.search is None else records[0]["group"]
    groups = aggregate(records, reference, metrics)
    notes = [f"Sweep `{spec.name}` (spec `{spec.path}`, base config `{spec.config}`): {len(records)} completed "
             f"trial(s), objective `{spec.objective}` ({spec.direction}); "
             + (f"seeds {', '.join(map(str, spec.seeds))}." if spec.search is None else f"seed {spec.seeds[0]}.")]
    if spec.search is not None:
        notes.append("")
        notes.append(f"Search ({spec.search.sampler} sampler, {spec.search.pruner} pruner); parameters per trial:")
        notes.append("")
        notes += [f"- `{r['group']}` ({spec.objective} {r.get(spec.objective, math.nan):.4g}): "
                  + ", ".join(f"`{k}` = {v}" for k, v in r["params"].items()) for r in records]
    if others:
        notes += ["", "Trials that did not complete:", "", *others]
    return write_summary(os.path.join(spec.folder, "summary"), f"Sweep {spec.name}", groups, metrics,
                         spec.objective, notes)
