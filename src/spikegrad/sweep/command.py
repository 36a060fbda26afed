"""``spikegrad sweep SPEC.yaml [--storage URL] [--workers N] [--summary]``: many runs of one config as an Optuna study.

1. the spec is read and every variant's settings are parsed by the fit parser (an unknown key or value, an
   empty grid, an unknown metric or an unreachable storage: one line, exit code 2, nothing trained);
2. the study is created (or loaded: a second command on the same storage joins it, a rerun continues it) and the
   grid's variant × seed trials are queued once;
3. ``--workers N`` processes on this machine (each with ``cores // N`` torch threads) take trials from the queue
   until it is empty (``--workers 1``: this process); other machines join with the same command and
   ``--storage`` (docs/sweeps.md);
4. the summary is written to ``<log_root>/<sweep>/summary/`` (``--summary``: only that, from what is finished).

Exit code 0 when every trial completed, 1 when some failed (their reasons are in the summary).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from typing import NoReturn

import yaml

from spikegrad.errors import RUN_FAILED_EXIT_CODE, USAGE_EXIT_CODE, UsageError, report
from spikegrad.sweep.spec import SweepSpec, load_spec
from spikegrad.sweep.storage import default_url, open_storage
from spikegrad.sweep.trial_args import check_settings, fit_args
from spikegrad.sweep.worker import WorkerInterrupted

__all__ = ["main"]

PROG = "spikegrad sweep"


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (usage: {' '.join(self.format_usage().split()[1:])})\n")
        sys.exit(USAGE_EXIT_CODE)


def _sample_point(space: dict[str, dict]) -> dict:
    """A point of the search space (lower bounds, first choices) for the settings check."""
    return {key: dist["choices"][0] if dist["type"] == "categorical" else
            (int(dist["low"]) if dist["type"] == "int" else float(dist["low"])) for key, dist in space.items()}


def check_spec_settings(spec: SweepSpec) -> None:
    """Every variant's (or the search space's) settings through the fit parser, before anything is trained."""
    if spec.search is not None:
        checks = {"search.space": {**spec.overrides, **_sample_point(spec.search.space)}}
    else:
        checks = {f"variants.{name}": {**spec.overrides, **settings} for name, settings in spec.variants.items()}
    for label, settings in checks.items():
        args = fit_args(spec.config, settings, spec.seeds[0], spec.log_root, spec.name, "check")
        check_settings(f"sweep spec {spec.path}: {label}", args)
    if spec.search is not None and spec.search.pruner != "none":
        import contextlib
        import io

        from spikegrad.cli import main as fit_main

        out = io.StringIO()
        with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(io.StringIO()):
            fit_main([*fit_args(spec.config, checks["search.space"], spec.seeds[0], spec.log_root, spec.name,
                                "check"), "--print_config"])
        trainer = (yaml.safe_load(out.getvalue()) or {}).get("trainer") or {}
        if str(trainer.get("devices", 1)) not in ("1", "[0]") or int(trainer.get("num_nodes") or 1) != 1:
            raise UsageError(
                f"sweep spec {spec.path}: search.pruner {spec.search.pruner} needs one process per trial, the "
                f"config has trainer.devices {trainer.get('devices')!r}, num_nodes {trainer.get('num_nodes')!r}; "
                "valid: trainer.devices 1 and num_nodes 1 (in overrides), or search.pruner none"
            )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_workers(spec_path: str, url: str, workers: int, threads: int) -> list[int]:
    """``workers`` worker processes; returns their exit codes."""
    command = [sys.executable, "-m", "spikegrad.sweep.worker", spec_path, "--storage", url, "--threads", str(threads)]
    processes = [subprocess.Popen(command) for _ in range(workers)]

    def forward(signum, frame) -> None:  # SIGTERM (e.g. a cancelled job): every worker stops its trial too
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:  # Ctrl-C reached the workers as well (same process group)
        for process in processes:
            process.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if 128 + signal.SIGTERM in codes:
        raise WorkerInterrupted(signal.SIGTERM)
    return codes


def main(args: list[str] | None = None) -> None:
    parser = _OneLineParser(
        prog=PROG,
        description="Train the variants × seeds of a sweep spec (or an Optuna search) as ordinary spikegrad fit "
        "runs, with their study in an Optuna storage; then write the summary (docs/sweeps.md).",
    )
    parser.add_argument("spec", metavar="SPEC.yaml", help="the sweep spec")
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="SQLAlchemy database URL of the study (default: sqlite:///<log_root>/<name>/optuna.db)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine")
    parser.add_argument("--summary", action="store_true", help="only write the summary of what is finished")
    options = parser.parse_args(args)
    if options.workers < 1:
        parser.error(f"--workers {options.workers}; valid values: a positive integer")
    try:
        spec = load_spec(options.spec)
        url = options.storage or default_url(spec.folder)
        storage = open_storage(url, spec.heartbeat_interval, spec.grace_period, spec.max_retries)
        if options.summary:
            sys.exit(_summary_only(spec, storage, url))
        check_spec_settings(spec)
        from spikegrad.sweep.worker import prepare_study, run_worker

        study, created = prepare_study(spec, storage)
        print(f"[sweep {spec.name}] study in {url} ({'created' if created else 'joined'}), "
              f"{options.workers} worker(s)", flush=True)
        threads = max(1, _cores() // options.workers)
        if options.workers == 1:
            run_worker(spec, url, threads)
        else:
            codes = _start_workers(options.spec, url, options.workers, threads)
            if any(code != 0 for code in codes):
                print(f"[sweep {spec.name}] worker exit codes: {codes}", flush=True)
        sys.exit(_finish(spec, study))
    except UsageError as error:
        sys.exit(report(error, prog=PROG))
    except (WorkerInterrupted, KeyboardInterrupt) as stop:  # Ctrl-C or SIGTERM: the running trials are retried
        signum = getattr(stop, "signum", signal.SIGINT)
        sys.stderr.write(f"{PROG}: stopped by {signal.Signals(signum).name}; run the same command again to "
                         "continue (interrupted trials are retried from their last.ckpt)\n")
        sys.exit(128 + signum)


def _summary_only(spec: SweepSpec, storage, url: str) -> int:
    import optuna

    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        raise UsageError(f"--summary: no study {spec.name!r} in {url}; valid: a sweep that has run") from None
    return _finish(spec, study)


def _finish(spec: SweepSpec, study) -> int:
    """Writes the summary and prints the counts; 1 when a trial failed, else 0."""
    from spikegrad.sweep.summary import trial_records, write_sweep_summary

    records, others = trial_records(study)
    path = write_sweep_summary(spec, study)
    print(f"[sweep {spec.name}] {len(records)} trial(s) complete, {len(others)} not"
          + (f"; summary: {path}" if path else ""), flush=True)
    for line in others:
        print(line, flush=True)
    return RUN_FAILED_EXIT_CODE if any(": FAIL" in line for line in others) else 0
