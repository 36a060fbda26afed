"""A sweep worker: takes queued trials from the study one at a time and runs each as an ordinary ``spikegrad fit``.

Grid mode: the process that creates the study queues every variant × seed once (:func:`prepare_study`); workers
claim a queued trial atomically (its state WAITING → RUNNING in one database update; a claim another worker won
is skipped), so every trial runs exactly once however many workers there are, on however many machines.
Search mode: a worker asks the sampler for a new trial while fewer than ``n_trials`` are done or running.

A trial's run sends heartbeats; a worker that dies (SIGKILL, a lost node) stops them, and the next worker start
marks the trial failed and queues it again (:mod:`spikegrad.sweep.storage`). The retry trains in the same run
folder and resumes from its ``last.ckpt`` when the killed run wrote one. A run that fails (an exception, a
NaN loss, an invalid setting) is recorded FAIL with its one-line reason, and the worker goes on.

``python -m spikegrad.sweep.worker SPEC --storage URL [--threads N]``: what ``spikegrad sweep --workers N``
starts N times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import warnings

from spikegrad.aggregate import run_metrics
from spikegrad.errors import UsageError, report
from spikegrad.resume import newest_checkpoint
from spikegrad.sweep.spec import SweepSpec, load_spec
from spikegrad.sweep.storage import open_storage
from spikegrad.sweep.trial_args import fit_args, run_folder

__all__ = ["prepare_study", "run_worker"]

ENQUEUED_ATTR = "spikegrad_enqueued"
GRID_ATTR = "spikegrad_grid_hash"
WAIT_FOR_QUEUE_S = 300


def _sampler(spec: SweepSpec):
    import optuna

    if spec.search is None:
        return optuna.samplers.RandomSampler(seed=0)  # grid trials have fixed parameters: nothing is sampled
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=None),
        "random": lambda: optuna.samplers.RandomSampler(),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(),
        "qmc": lambda: optuna.samplers.QMCSampler(),
    }[spec.search.sampler]()


def _pruner(spec: SweepSpec):
    import optuna

    name = spec.search.pruner if spec.search else "none"
    return {
        "none": optuna.pruners.NopPruner,
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "percentile": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=3, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }[name]()


def prepare_study(spec: SweepSpec, storage) -> tuple[object, bool]:
    """Creates the study and queues the grid (only the creating process queues), or loads it and waits until
    its creator has queued everything. Returns ``(study, created)``. A study made from another grid is refused."""
    import optuna

    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, direction=spec.direction,
                                    sampler=_sampler(spec), pruner=_pruner(spec))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=_sampler(spec), pruner=_pruner(spec))
        created = False
    if created:
        with warnings.catch_warnings():  # experimental in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([spec.objective])  # the name optuna-dashboard shows for the objective
        study.set_user_attr(GRID_ATTR, spec.grid_hash())
        study.set_user_attr("objective", spec.objective)
        study.set_user_attr("spec", os.path.abspath(spec.path))
        study.set_user_attr("reference", spec.reference)
        for point in spec.points():
            study.enqueue_trial({"variant": point.variant, "seed": point.seed},
                                user_attrs={"variant": point.variant, "seed": point.seed, "key": point.key})
        study.set_user_attr(ENQUEUED_ATTR, len(spec.points()))
        return study, True
    if study.user_attrs.get(GRID_ATTR) not in (None, spec.grid_hash()):
        raise UsageError(
            f"study {spec.name!r} in this storage was created from other settings (config, overrides, variants, "
            f"seeds or search differ); valid: the same spec, another name:, or another --storage"
        )
    deadline = time.monotonic() + WAIT_FOR_QUEUE_S
    while ENQUEUED_ATTR not in study.user_attrs:
        if time.monotonic() > deadline:
            raise UsageError(
                f"study {spec.name!r} exists but its trials were never all queued (the process that created it "
                f"stopped while queueing); valid: delete the study (optuna delete-study) and run again"
            )
        time.sleep(1.0)
    return study, False


def _claim_waiting(study) -> int | None:
    """The id of a queued trial this process moved WAITING → RUNNING, or ``None`` when the queue is empty.

    The same atomic update as Optuna's ``Study.ask`` (optuna 5.1, ``Study._pop_waiting_trial_id``; pinned
    below 5.2 in pyproject.toml for that reason), without ``ask``'s fallback of creating a fresh trial when
    another worker took the last queued one.
    """
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return frozen._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Records the trial's heartbeat now and every ``interval`` seconds until stopped (a daemon thread)."""

    def __init__(self, storage, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self):
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join()


class WorkerInterrupted(Exception):
    """Ctrl-C or SIGTERM during a trial: the worker stops and leaves the trial RUNNING, so that its heartbeats
    stop and the next worker retries it from its ``last.ckpt`` (instead of recording it as a failed run)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_SIGNALLED: dict = {"signum": None}


def _note_signal(signum, frame) -> None:
    """SIGINT/SIGTERM handler of a worker: remembers the signal; SIGINT still interrupts (KeyboardInterrupt), and
    Lightning's own SIGTERM handler (which calls this one) stops fit."""
    _SIGNALLED["signum"] = signum
    if signum == signal.SIGINT:
        raise KeyboardInterrupt


class _LastLine:
    """A stderr that passes everything through and keeps the last non-empty line (the one-line error)."""

    def __init__(self, stream) -> None:
        self.stream, self.last = stream, ""

    def write(self, text: str) -> int:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            self.last = lines[-1]
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _fit(args: list[str]) -> str | None:
    """Runs ``spikegrad ARGS`` in this process; ``None`` when it finished, else the one-line reason."""
    from spikegrad.cli import main

    tee = _LastLine(sys.stderr)
    old, sys.stderr = sys.stderr, tee
    old_argv, sys.argv = sys.argv, sys.argv[:1]  # the trial's arguments are ARGS, not this process's command line
    try:
        main(args)
    except SystemExit as stop:
        if _SIGNALLED["signum"] is not None:
            raise WorkerInterrupted(_SIGNALLED["signum"]) from None
        if stop.code in (0, None):
            return None
        return tee.last.removeprefix("spikegrad: error: ") or f"exit code {stop.code}"
    except KeyboardInterrupt:
        raise WorkerInterrupted(signal.SIGINT) from None
    except Exception as error:  # a bug or a crash inside training: recorded, the sweep goes on
        text = str(error).strip().splitlines()
        return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
    finally:
        sys.stderr, sys.argv = old, old_argv
    if _SIGNALLED["signum"] is not None:
        raise WorkerInterrupted(_SIGNALLED["signum"])
    return None


def _suggest(trial, space: dict[str, dict]) -> dict:
    values = {}
    for key, dist in space.items():
        if dist["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, dist["choices"])
        elif dist["type"] == "int":
            values[key] = trial.suggest_int(key, int(dist["low"]), int(dist["high"]), step=int(dist.get("step", 1)),
                                            log=bool(dist.get("log", False)))
        else:
            values[key] = trial.suggest_float(key, float(dist["low"]), float(dist["high"]), step=dist.get("step"),
                                              log=bool(dist.get("log", False)))
    return values


def _run_trial(spec: SweepSpec, study, trial) -> tuple[str, float]:
    """Trains one claimed trial and tells the study its outcome; returns the state's name and the seconds spent
    in ``spikegrad fit``."""
    from optuna.trial import TrialState

    from spikegrad.report import load_run
    from spikegrad.sweep import pruning

    attrs = trial.user_attrs
    if spec.search is None:
        variant = attrs["variant"]
        seed = int(attrs["seed"])
        trial.suggest_categorical("variant", list(spec.variants))
        trial.suggest_categorical("seed", spec.seeds)
        settings = {**spec.overrides, **spec.variants[variant]}
    else:
        variant = attrs.get("variant") or f"trial_{trial.number:04d}"
        seed = int(attrs.get("seed", spec.seeds[0]))
        settings = {**spec.overrides, **_suggest(trial, spec.search.space)}
    folder = run_folder(spec.log_root, spec.name, variant, seed)
    trial.set_user_attr("variant", variant)
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("run_dir", os.path.abspath(folder))
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    # a retry of a killed or interrupted run continues from its newest last.ckpt or interrupted.ckpt
    last = newest_checkpoint([os.path.join(folder, "checkpoints")]) if os.path.isdir(folder) else None
    extra: list[str] = []
    if last is not None:
        extra += ["--ckpt_path", last]
        trial.set_user_attr("resumed_from", os.path.abspath(last))
    elif os.path.isdir(folder):  # a run that stopped before its first checkpoint: start it again
        shutil.rmtree(folder)
    if spec.search is not None and spec.search.pruner != "none":
        callback = {"class_path": "spikegrad.sweep.pruning.TrialPruning", "init_args": {"monitor": spec.search.monitor}}
        extra += ["--trainer.callbacks+", json.dumps(callback)]
    args = fit_args(spec.config, settings, seed, spec.log_root, spec.name, variant, tuple(extra))
    trial.set_user_attr("command", "spikegrad " + " ".join(args))
    print(f"[sweep {spec.name}] trial {trial.number}: {variant} seed {seed} -> {folder}", flush=True)
    pruning.ACTIVE.update(trial=trial, pruned_at=None)
    start = time.perf_counter()
    try:
        reason = _fit(args)
    finally:
        pruning.ACTIVE.update(trial=None)
    fit_s = time.perf_counter() - start
    trial.set_user_attr("fit_s", fit_s)
    if reason is not None:
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        print(f"[sweep {spec.name}] trial {trial.number} FAILED: {reason}", flush=True)
        return "FAIL", fit_s
    metrics = run_metrics(load_run(folder, variant))
    trial.set_user_attr("metrics", {k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
    if pruning.ACTIVE["pruned_at"] is not None:
        study.tell(trial, state=TrialState.PRUNED)
        return "PRUNED", fit_s
    value = metrics[spec.objective]
    if not math.isfinite(value):
        reason = f"objective {spec.objective} was not logged by the run (its value is {value})"
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
        return "FAIL", fit_s
    study.tell(trial, value)
    return "COMPLETE", fit_s


def _search_budget_left(spec: SweepSpec, study) -> bool:
    """Fewer than ``n_trials`` trials finished or running (a stale trial that was queued again counts once)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and t.number not in retried)]
    return len(counted) < spec.search.n_trials


def run_worker(spec: SweepSpec, storage_url: str, threads: int | None = None) -> dict[str, int]:
    """Runs trials until none is left; returns how many ended in each state."""
    import optuna
    import torch
    from optuna.trial import TrialState

    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _note_signal)
    storage = open_storage(storage_url, spec.heartbeat_interval, spec.grace_period, spec.max_retries)
    study, _ = prepare_study(spec, storage)
    counts: dict[str, int] = {}
    while True:
        if _SIGNALLED["signum"] is not None:  # stopped between trials
            raise WorkerInterrupted(_SIGNALLED["signum"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # trials of dead workers: failed, and queued again
        claimed = time.perf_counter()
        trial_id = _claim_waiting(study)
        if trial_id is not None:
            trial = optuna.Trial(study, trial_id)
        elif spec.search is not None and _search_budget_left(spec, study):
            trial = study.ask()
        elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # others' trials still run: wait, since one whose worker died is queued again once it is stale
            time.sleep(spec.heartbeat_interval)
            continue
        else:
            break
        try:
            with _Heartbeat(storage, trial._trial_id, spec.heartbeat_interval):
                state, fit_s = _run_trial(spec, study, trial)
        except WorkerInterrupted:
            print(f"[sweep {spec.name}] trial {trial.number} interrupted: left RUNNING without heartbeats; a worker "
                  f"retries it from its last.ckpt {spec.grace_period} s from now (run the same command again)",
                  flush=True)
            raise
        total = time.perf_counter() - claimed
        print(f"[sweep {spec.name}] trial {trial.number} {state}: {total:.2f} s, of which fit {fit_s:.2f} s and "
              f"storage and bookkeeping {total - fit_s:.2f} s", flush=True)
        counts[state] = counts.get(state, 0) + 1
    return counts


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikegrad.sweep.worker")
    parser.add_argument("spec")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--threads", type=int, default=None)
    options = parser.parse_args(args)
    try:
        run_worker(load_spec(options.spec), options.storage, options.threads)
    except UsageError as error:
        sys.exit(report(error, prog="spikegrad sweep worker"))
    except WorkerInterrupted as stop:
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
