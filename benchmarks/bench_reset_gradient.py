"""Cost of the reset gradient (temporal surrogate BP, Yang 2020): fused LIF backward with ``detach_reset`` false
against true, for the hard and the soft reset (atan α = 2, τ = 2, θ = 1, masking off). Interleaved timing as in
benchmarks/common.py; prints a Markdown table::

    python benchmarks/bench_reset_gradient.py [--device cpu|cuda] [--reps 21] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_msg import SHAPES  # noqa: E402
from common import interleaved, iqr_ms, machine, median_ms, table  # noqa: E402
from spikegrad.neurons import lif_multistep  # noqa: E402
from spikegrad.surrogates import ATan  # noqa: E402


def backward_call(shape, reset: str, detach_reset: bool, device: str):
    """A closure running one backward of the fused LIF on a fixed graph."""
    torch.manual_seed(0)
    x = (torch.randn(shape, device=device) * 0.8 + 0.6).requires_grad_()
    spikes, _ = lif_multistep(x, ATan(alpha=2.0), 2.0, 1.0, reset, detach_reset)
    grad_out = torch.randn_like(spikes)
    return lambda: torch.autograd.grad(spikes, x, grad_out, retain_graph=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine(), "\n")
    rows = []
    for label, shape in SHAPES.items():
        for reset in ("hard", "soft"):
            calls = {kept: backward_call(shape, reset, not kept, args.device) for kept in (False, True)}
            times = interleaved(calls, args.reps, device=args.device)
            detached, kept = median_ms(times[False]), median_ms(times[True])
            rows.append([label, reset, f"{detached:.2f} ± {iqr_ms(times[False]) / 2:.2f}",
                         f"{kept:.2f} ± {iqr_ms(times[True]) / 2:.2f}", f"{kept / detached - 1:+.0%}"])
    print(f"Fused LIF backward, median ms ± half IQR over {args.reps} interleaved repetitions, {args.device}:\n")
    print(table(["shape", "reset", "detached (ms)", "kept (ms)", "cost of the term"], rows))


if __name__ == "__main__":
    main()
