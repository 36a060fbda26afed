"""Time per epoch of the quickstart (``configs/quickstart.yaml``, digits, conv net, T = 4) per neuron backend.

Each run is ``spikegrad fit --config configs/quickstart.yaml --model.neuron.backend=<backend>`` in a subprocess
with :class:`epoch_timer.EpochTimer` added, which prints the wall time of every epoch (training + validation).
The first epoch (data set-up, and for ``compile`` the kernel compilation) is reported on its own; the time per
epoch is the median over the later epochs of all runs. Runs of the backends are interleaved.

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


def run_fit(backend: str, epochs: int, threads: int, logdir: str) -> list[float]:
    """Epoch times (s) of one quickstart run."""
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
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=logdir, env=env).stdout
    return [float(line.split()[1]) for line in out.splitlines() if line.startswith("EPOCH_SECONDS")]


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["eager", "compile"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    first = {b: [] for b in args.backends}
    later = {b: [] for b in args.backends}
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.reps):
            for b in args.backends:
                epochs = run_fit(b, args.epochs, args.threads, logdir)
                first[b].append(epochs[0])
                later[b] += epochs[1:]
    rows = [[b, f"{statistics.median(later[b]):.2f}", f"{statistics.median(first[b]):.1f}"] for b in args.backends]
    text = "\n".join([
        f"Machine: {machine()} (subprocesses with OMP_NUM_THREADS={args.threads})",
        f"Quickstart, {args.reps} interleaved runs of {args.epochs} epochs per backend", "",
        table(["backend", "s / epoch (median of epochs 2+)", "first epoch s"], rows),
    ])
    print(text)
    return text


if __name__ == "__main__":
    main()
