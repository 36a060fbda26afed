"""Dspike in the compiled kernels: ``1 - tanh²(z)`` written with ``tanh`` against ``4e/(1 + e)²``, ``e = exp(-2|z|)``.

``g(x) = k·(1 - tanh²(b·x/w))`` on ``|x| <= w/2`` with ``k = b/(2w·tanh(b/2))`` (Li et al., "Differentiable Spike",
NeurIPS 2021). :meth:`spikegrad.surrogates.DSpike.kernel_grad` uses the ``exp`` form; the ``tanh`` form below is
the one it replaced. Both run through the same layer (LIF charge form τ = 2, θ = 1, hard detached reset,
``backend="compile"``), forward + backward, next to the base row (ATan) and the floor of
``bench_neuron_matrix.py`` (one ``sigmoid`` forward + backward), interleaved in one process (medians). Before timing
it checks that both forms give the same input gradient (relative 1e-6).

Run: ``.venv/bin/python benchmarks/bench_dspike_forms.py`` (``--help``: shape, threads, repetitions).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine, median_ms, table  # noqa: E402
from spikegrad.neurons import LIF  # noqa: E402
from spikegrad.surrogates import ATan, DSpike  # noqa: E402


class DSpikeTanh(DSpike):
    """Dspike with the kernel form ``k - k·tanh²(b·x/w)`` (one ``tanh`` per element)."""

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        b, w = alpha, self._width()
        half = torch.tanh(b / 2) if isinstance(b, torch.Tensor) else math.tanh(b / 2)
        k = b / (2 * w * half)
        t = torch.tanh(x * (b / w))
        return (k - k * (t * t)) * (x.abs() <= w / 2).to(x.dtype)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[8, 64, 32768], metavar=("T", "B", "N"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=21)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.randn(*args.shape) * 1.5 + 0.5).requires_grad_()
    grad = torch.randn_like(x)

    def step(fn):
        def run():
            x.grad = None
            fn(x).backward(grad)
        return run

    layers = {"DSpike, exp form (kernel_grad)": LIF(DSpike(), backend="compile"),
              "DSpike, tanh form": LIF(DSpikeTanh(), backend="compile"),
              "ATan (base row)": LIF(ATan(), backend="compile")}
    grads = {}
    for name, layer in layers.items():
        step(layer)()
        grads[name] = x.grad.clone()
    exp_form, tanh_form = grads["DSpike, exp form (kernel_grad)"], grads["DSpike, tanh form"]
    err = ((exp_form - tanh_form).norm() / tanh_form.norm()).item()
    if err > 1e-6:
        raise SystemExit(f"the two Dspike forms differ: relative error {err:.2e}")
    candidates = {name: step(layer) for name, layer in layers.items()}
    candidates["floor"] = step(torch.sigmoid)
    start = os.getloadavg()[0]
    times = interleaved(candidates, args.reps)
    floor = median_ms(times["floor"])
    ratio = median_ms(times["DSpike, exp form (kernel_grad)"]) / median_ms(times["DSpike, tanh form"])
    rows = [[name, f"{median_ms(t):.1f}", median_ms(t) / floor] for name, t in times.items()]
    lines = [f"Machine: {machine()}", f"T×B×N = {'×'.join(map(str, args.shape))}, float32, {args.reps} interleaved "
             f"repetitions, medians of forward + backward; input gradients of the two forms agree to {err:.1e}", "",
             table(["candidate", "ms", "× floor"], rows),
             f"\nexp form / tanh form: {ratio:.3f}",
             f"load average {start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
