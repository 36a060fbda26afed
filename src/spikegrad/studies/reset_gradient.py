"""Reset-gradient study: is training more robust to the learning rate when the reset's gradient is kept?

Claim (Yang, "Temporal surrogate back-propagation for spiking neural networks", arXiv 2011.09964): keeping the
gradient of the reset (``detach_reset: false``; hard reset ``∂v/∂h = (1 - s) - h·g(h - θ)`` instead of
``1 - s``) makes training more robust to the learning rate on a toy task, changes little on CIFAR-10, and
costs compute. The toy task is :class:`spikegrad.data.SpikePatternDataModule`.

Sweep: :func:`run_sweep` trains the configuration of ``configs/papers/reset_gradient_toy.yaml`` for every
learning rate × ``detach_reset ∈ {true, false}`` × seed and records the final training loss, test accuracy
and seconds per epoch. Usage::

    python -m spikegrad.studies.reset_gradient --config configs/papers/reset_gradient_toy.yaml \
        --lrs 0.03 0.1 0.3 1 3 --seeds 0 1 2 --out logs/reset_gradient_sweep.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import torch

from spikegrad.data.base import SpikeDataModule

__all__ = ["run_sweep"]


def train_once(config: str, lr: float, detach_reset: bool, seed: int, max_epochs: int | None = None) -> dict:
    """One run of ``config`` with the given learning rate, reset gradient setting and seed: its numbers."""
    from spikegrad.cli import SpikegradCLI
    from spikegrad.module import SpikingClassifier

    with tempfile.TemporaryDirectory() as root:
        args = ["--config", config, "--seed_everything", str(seed), "--model.optimizer.init_args.lr", str(lr),
                "--model.neuron.detach_reset", str(detach_reset).lower(), "--trainer.logger", "false",
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                "--trainer.default_root_dir", root]
        if max_epochs is not None:
            args += ["--trainer.max_epochs", str(max_epochs)]
        cli = SpikegradCLI(SpikingClassifier, SpikeDataModule, subclass_mode_data=True, run=False, args=args,
                           parser_kwargs={"parser_mode": "omegaconf+"}, save_config_callback=None)
        start = time.perf_counter()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        seconds = time.perf_counter() - start
        train_loss = float(cli.trainer.callback_metrics.get("train/loss_epoch", float("nan")))
        test = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
        epochs = max(cli.trainer.current_epoch, 1)
    return {"lr": lr, "detach_reset": detach_reset, "seed": seed, "train_loss": train_loss,
            "test_acc": float(test["test/acc"]), "seconds_per_epoch": seconds / epochs}


def run_sweep(config: str, lrs: list[float], seeds: list[int], max_epochs: int | None = None) -> list[dict]:
    """Every learning rate × ``detach_reset ∈ {true, false}`` × seed (runs interleaved, so load hits both alike)."""
    runs = [(lr, seed, detach) for lr in lrs for seed in seeds for detach in (True, False)]
    return [train_once(config, lr, detach, seed, max_epochs) for lr, seed, detach in runs]


def summary_table(rows: list[dict]) -> str:
    """Markdown: per learning rate, mean test accuracy (min–max over seeds) and final train loss, both settings."""
    def cell(group: list[dict]) -> str:
        accs = [r["test_acc"] for r in group]
        losses = [r["train_loss"] for r in group]
        loss = statistics.mean(losses) if all(math.isfinite(v) for v in losses) else float("nan")
        return f"{statistics.mean(accs):.3f} ({min(accs):.3f}–{max(accs):.3f}), loss {loss:.3f}"

    lines = ["| lr | reset gradient detached (detach_reset: true) | reset gradient kept (detach_reset: false) |",
             "|---|---|---|"]
    for lr in sorted({r["lr"] for r in rows}):
        by = {d: [r for r in rows if r["lr"] == lr and r["detach_reset"] == d] for d in (True, False)}
        lines.append(f"| {lr:g} | {cell(by[True])} | {cell(by[False])} |")
    times = {
        d: statistics.median(r["seconds_per_epoch"] for r in rows if r["detach_reset"] == d) for d in (True, False)
    }
    lines.append("")
    lines.append(f"Median seconds per training epoch: detached {times[True]:.3f}, kept {times[False]:.3f} "
                 f"({times[False] / times[True] - 1:+.0%}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Learning-rate sweep with and without the reset gradient.")
    parser.add_argument("--config", default="configs/papers/reset_gradient_toy.yaml")
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0, 3.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max_epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the task's tensors are tiny)")
    parser.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run_sweep(args.config, args.lrs, args.seeds, args.max_epochs)
    text = summary_table(rows)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
