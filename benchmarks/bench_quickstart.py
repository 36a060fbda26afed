"""Time per epoch of the quickstart (``configs/quickstart.yaml``, digits, conv net, T = 4) per neuron backend.

Each run is ``spikegrad fit --config configs/quickstart.yaml --model.neuron.backend=<backend>`` in a subprocess
with :class:`epoch_timer.EpochTimer` added, which prints the wall time of every epoch (training + validation).
The first epoch (data set-up, and for ``compile`` the kernel compilation) is reported on its own; the time per
epoch is the median over the later epochs of all runs. Runs of the backends are interleaved. ``auto`` (the
default) shows what it chose (its one line in the log). The last columns extrapolate whole runs from these two
numbers: ``first + (E - 1)·per epoch`` for the quickstart's E = 15 epochs and for E = 50.

Run: ``.venv/bin/python benchmarks/bench_quickstart.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run_fit(backend: str, epochs: int, threads: int, logdir: str) -> tuple[list[float], str]:
    """Epoch times (s) of one quickstart run, and what ``auto`` chose (``""`` for the other backends)."""
    exe = Path(sys.executable).with_name("spikegrad")
    cmd = [
        str(exe), "fit", "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false", "--test_after_fit=false",
        f"--model.neuron.backend={backend}", f"--trainer.logger.init_args.save_dir={logdir}",
        "--trainer.callbacks+=epoch_timer.EpochTimer",
    ]
    path = os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])
    # the timer callback lives here, outside the modules a config may name by default (spikegrad.trust)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path,
           "SPIKEGRAD_TRUSTED_MODULES": "epoch_timer"}
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=logdir, env=env)
    chosen = [line.split("neuron backend auto -> ", 1)[1].split(":")[0]
              for line in (done.stdout + done.stderr).splitlines() if "neuron backend auto -> " in line]
    epochs = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("EPOCH_SECONDS")]
    return epochs, (chosen[0] if chosen else "")


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["auto", "eager", "compile"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    first = {b: [] for b in args.backends}
    later = {b: [] for b in args.backends}
    chosen = {b: b for b in args.backends}
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.reps):
            for b in args.backends:
                epochs, choice = run_fit(b, args.epochs, args.threads, logdir)
                if choice:
                    chosen[b] = f"{b} (chose {choice})"
                first[b].append(epochs[0])
                later[b] += epochs[1:]
    rows = []
    for b in args.backends:
        per_epoch, start = statistics.median(later[b]), statistics.median(first[b])
        rows.append([chosen[b], f"{per_epoch:.2f}", f"{start:.1f}", f"{start + 14 * per_epoch:.0f}",
                     f"{start + 49 * per_epoch:.0f}"])
    text = "\n".join([
        f"Machine: {machine()} (subprocesses with OMP_NUM_THREADS={args.threads})",
        f"Quickstart, {args.reps} interleaved runs of {args.epochs} epochs per backend", "",
        table(["backend", "s / epoch (median of epochs 2+)", "first epoch s", "15 epochs s (extrapolated)",
               "50 epochs s (extrapolated)"], rows),
    ])
    print(text)
    return text


if __name__ == "__main__":
    main()
