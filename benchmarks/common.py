"""Shared helpers of the benchmarks: interleaved timing with medians, machine description, markdown tables."""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable

import torch


def machine() -> str:
    """One line describing the machine, the threads torch uses and the load at the start."""
    cpu = platform.processor() or "cpu"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads "
        f"(capability {torch.backends.cpu.get_cpu_capability()}), {dev}, python {platform.python_version()}, "
        f"load average at start {load:.2f}"
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(
    candidates: dict[str, Callable[[], object]], reps: int, warmup: int = 2, device: str = "cpu", seed: int = 0
) -> dict[str, list[float]]:
    """Run every candidate ``warmup`` times, then ``reps`` rounds; in each round every candidate runs once, in a
    freshly shuffled order, so that load changes on a shared machine hit all candidates alike. Seconds per call."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    order = list(candidates)
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(reps):
        rng.shuffle(order)
        for name in order:
            gc.collect()
            _sync(device)
            start = time.perf_counter()
            candidates[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def iqr_ms(values: list[float]) -> float:
    """Interquartile range in milliseconds (spread of the repetitions)."""
    if len(values) < 4:
        return float("nan")
    q = statistics.quantiles(values, n=4)
    return 1e3 * (q[2] - q[0])


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fwd_bwd(fn: Callable, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    """One timed step: ``fn(x)`` forward and its backward with ``grad``."""

    def step():
        x.grad = None
        fn(x).backward(grad)

    return step


def check_same(fns: dict, x: torch.Tensor, grad: torch.Tensor, base: str, label: str = "") -> None:
    """Spikes equal and input gradients within 1e-4 (relative) of candidate ``base``'s, for every candidate
    (each run after ``torch.manual_seed(0)``); otherwise exits with one line starting with ``label``."""
    results = {}
    for name, fn in fns.items():
        x.grad = None
        torch.manual_seed(0)
        spikes = fn(x)
        spikes.backward(grad)
        results[name] = (spikes.detach().clone(), x.grad.clone())
    s0, g0 = results[base]
    for name, (spikes, g) in results.items():
        if not torch.equal(spikes, s0):
            share = (spikes != s0).float().mean()
            raise SystemExit(f"{label}{name}: spikes differ from {base} on {share:.2%} of entries")
        err = ((g - g0).norm() / g0.norm()).item()
        if err > 1e-4:
            raise SystemExit(f"{label}{name}: input gradient differs from {base} (relative error {err:.2e})")
    x.grad = None
