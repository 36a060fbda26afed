"""Reset-gradient study: is training more robust to the learning rate when the reset's gradient is kept?

Claim (Yang, "Temporal surrogate back-propagation for spiking neural networks", arXiv 2011.09964): keeping the
gradient of the reset (``detach_reset: false``; hard reset ``∂v/∂h = (1 - s) - h·g(h - θ)`` instead of
``1 - s``) makes training more robust to the learning rate on a toy task, changes little on CIFAR-10, and
costs compute.

Toy task (ours, defined here): **spike-timing patterns**. Each of ``num_classes`` classes has a template in
which every one of ``channels`` input channels fires exactly ``spikes_per_channel`` times at class-specific
random steps of ``T``. All classes therefore have the same spike count on every channel: the class is in the
timing alone, so the network has to use its membrane dynamics (coincidences within the leak's memory), and
the gradient flows through many resets. A sample is its class template with each spike moved by a random
jitter of at most ``jitter`` steps (clipped to the window), deleted with probability ``drop``, and
``noise`` extra spikes per channel on average at uniform random steps.

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
from torch.utils.data import TensorDataset

from spikegrad.data.base import SpikeDataModule

__all__ = ["SpikePatternDataModule", "spike_pattern_templates", "sample_spike_patterns", "run_sweep"]


def spike_pattern_templates(num_classes: int, channels: int, time_steps: int, spikes_per_channel: int,
                            generator: torch.Generator) -> torch.Tensor:
    """Templates ``[K, T, C]`` of 0/1: each channel fires exactly ``spikes_per_channel`` times per class."""
    if not 1 <= spikes_per_channel <= time_steps:
        raise ValueError(f"spikes_per_channel must be in [1, time_steps={time_steps}], got {spikes_per_channel}")
    scores = torch.rand(num_classes, channels, time_steps, generator=generator)
    steps = scores.argsort(-1)[..., :spikes_per_channel]  # distinct random steps per class and channel
    templates = torch.zeros(num_classes, channels, time_steps)
    templates.scatter_(-1, steps, 1.0)
    return templates.transpose(1, 2).contiguous()


def sample_spike_patterns(templates: torch.Tensor, labels: torch.Tensor, jitter: int, drop: float, noise: float,
                          generator: torch.Generator) -> torch.Tensor:
    """Noisy samples ``[N, T, C]`` of the templates: jitter each spike, drop some, add noise spikes."""
    base = templates[labels]  # [N, T, C]
    n, T, C = base.shape
    idx_n, idx_t, idx_c = base.nonzero(as_tuple=True)
    shift = torch.randint(-jitter, jitter + 1, idx_t.shape, generator=generator) if jitter else 0
    kept = torch.rand(idx_t.shape, generator=generator) >= drop
    out = torch.zeros_like(base)
    out[idx_n[kept], (idx_t + shift).clamp(0, T - 1)[kept], idx_c[kept]] = 1.0
    extra = torch.rand(n, T, C, generator=generator) < noise / T
    return out.maximum(extra.float())


class SpikePatternDataModule(SpikeDataModule):
    """The spike-timing pattern toy task (see the module docstring): samples ``[B, T, C]``, ``encoding: sequence``.

    Args:
        num_classes: number of classes K.
        channels: input channels C.
        time_steps: T.
        spikes_per_channel: spikes of every channel in every template.
        jitter: maximum shift of a spike, in steps.
        drop: probability that a template spike is deleted.
        noise: mean number of extra spikes per channel and sample.
        train_size, val_size, test_size: samples per split (balanced in expectation).
        seed: seed of the templates and samples (the task is the same for every run with the same seed).
    """

    encoding = "sequence"

    def __init__(
        self,
        num_classes: int = 8,
        channels: int = 40,
        time_steps: int = 20,
        spikes_per_channel: int = 2,
        jitter: int = 1,
        drop: float = 0.2,
        noise: float = 0.5,
        train_size: int = 1024,
        val_size: int = 256,
        test_size: int = 512,
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if num_classes < 2 or channels < 1 or time_steps < 1:
            raise ValueError("spike patterns need num_classes >= 2, channels >= 1 and time_steps >= 1")
        if not (0 <= drop < 1 and noise >= 0 and jitter >= 0):
            raise ValueError(f"spike patterns need 0 <= drop < 1, noise >= 0, jitter >= 0; got {drop}, {noise}, "
                             f"{jitter}")
        self.num_classes = num_classes
        self.input_shape = (channels,)
        self.time_steps = time_steps
        self.options = dict(spikes_per_channel=spikes_per_channel, jitter=jitter, drop=drop, noise=noise)
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.seed = seed
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        generator = torch.Generator().manual_seed(self.seed)
        templates = spike_pattern_templates(
            self.num_classes, self.input_shape[0], self.time_steps, self.options["spikes_per_channel"], generator
        )
        splits = {}
        for name, size in self.sizes.items():
            labels = torch.randint(0, self.num_classes, (size,), generator=generator)
            x = sample_spike_patterns(templates, labels, self.options["jitter"], self.options["drop"],
                                      self.options["noise"], generator)
            splits[name] = TensorDataset(x, labels)
        self.train_set, self.val_set, self.test_set = splits["train"], splits["val"], splits["test"]


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
