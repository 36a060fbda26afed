"""Cost of masked surrogate gradients (MSG): the fused LIF backward with ``mask_p = 0.5`` against ``mask_p = 0``.

One backward through :func:`spikegrad.neurons.lif_multistep` (MSG neuron: τ = 2, θ = 0.5, hard reset with its
gradient kept, triangle α = 2) with the neuron backend ``--backend``, the forward graph kept and reused; the
variants run interleaved in shuffled order (benchmarks/common.py) so that load on a shared machine hits them
alike. Prints Markdown tables::

    python benchmarks/bench_msg.py [--device cpu|cuda] [--backend eager|compile] [--reps 21] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, iqr_ms, machine, median_ms, table  # noqa: E402
from spikegrad.neurons import lif_multistep  # noqa: E402
from spikegrad.surrogates import Triangle  # noqa: E402

SHAPES = {
    "conv T=4 B=32 64x16x16": (4, 32, 64, 16, 16),
    "conv T=10 B=16 128x16x16": (10, 16, 128, 16, 16),
    "fc T=4 B=128 1024": (4, 128, 1024),
}
VARIANTS = {
    "p=0 (off)": {"mask_p": 0.0},
    "p=0.5": {"mask_p": 0.5},
    "p=0.5 rescale": {"mask_p": 0.5, "mask_rescale": True},
    "p=0.5 fill=0.1": {"mask_p": 0.5, "mask_fill": 0.1},
}


def backward_call(shape, surrogate, device: str, backend: str = "eager"):
    """A closure running one backward of the fused LIF on a fixed graph."""
    torch.manual_seed(0)
    x = (torch.randn(shape, device=device) * 0.8 + 0.6).requires_grad_()
    spikes, _ = lif_multistep(x, surrogate, tau=2.0, v_threshold=0.5, reset="hard", detach_reset=False,
                              backend=backend)
    grad_out = torch.randn_like(spikes)
    return lambda: torch.autograd.grad(spikes, x, grad_out, retain_graph=True)


def training_step_call(mask_p: float, device: str, backend: str = "eager"):
    """A closure running forward + backward of the quickstart conv net (digits size, T = 4, batch 64)."""
    from functools import partial

    from spikegrad.models import SpikingConvNet
    from spikegrad.module import SpikingClassifier
    from spikegrad.neurons import LIF

    torch.manual_seed(0)
    model = SpikingClassifier(
        backbone=partial(SpikingConvNet, channels=[32, 64], hidden=128), time_steps=4,
        neuron=partial(LIF, v_threshold=0.5, detach_reset=False, backend=backend),
        surrogate=Triangle(alpha=2.0, mask_p=mask_p),
    ).to(device)
    x = torch.randn(64, 1, 8, 8, device=device)
    y = torch.randint(0, 10, (64,), device=device)

    def step():
        model.zero_grad(set_to_none=True)
        model.task_loss((x, y)).backward()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default="eager", choices=["eager", "compile"], help="neuron backend")
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine(), "\n")
    rows = []
    for label, shape in SHAPES.items():
        calls = {
            name: backward_call(shape, Triangle(alpha=2.0, **params), args.device, args.backend)
            for name, params in VARIANTS.items()
        }
        times = interleaved(calls, args.reps, device=args.device)
        base = median_ms(times["p=0 (off)"])
        cells = [f"{median_ms(t):.2f} ± {iqr_ms(t) / 2:.2f} ({median_ms(t) / base - 1:+.0%})" for t in times.values()]
        rows.append([label, *cells])
    print(f"Fused LIF backward ({args.backend}), median ms ± half IQR over {args.reps} interleaved repetitions, "
          f"{args.device}:\n")
    print(table(["shape", *VARIANTS], rows))
    steps = {p: training_step_call(p, args.device, args.backend) for p in (0.0, 0.5)}
    times = interleaved(steps, args.reps, device=args.device)
    base, masked = median_ms(times[0.0]), median_ms(times[0.5])
    print("\nWhole training step (forward + backward) of the quickstart conv net, T = 4, batch 64, digits:\n")
    print(table(["mask_p = 0 (ms)", "mask_p = 0.5 (ms)", "overhead"],
                [[f"{base:.2f} ± {iqr_ms(times[0.0]) / 2:.2f}", f"{masked:.2f} ± {iqr_ms(times[0.5]) / 2:.2f}",
                  f"{masked / base - 1:+.0%}"]]))


if __name__ == "__main__":
    main()
