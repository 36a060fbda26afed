"""The spike-timing pattern toy task: the class is in the timing of the spikes alone.

Each of ``num_classes`` classes has a template in which every one of ``channels`` input channels fires exactly
``spikes_per_channel`` times at class-specific random steps of ``T``. All classes therefore have the same spike
count on every channel: the class is in the timing alone, so the network has to use its membrane dynamics
(coincidences within the leak's memory), and the gradient flows through many resets. A sample is its class
template with each spike moved by a random jitter of at most ``jitter`` steps (clipped to the window), deleted
with probability ``drop``, and ``noise`` extra spikes per channel on average at uniform random steps.

It is the toy task of the reset-gradient claim (Yang, "Temporal surrogate back-propagation for spiking neural
networks", arXiv 2011.09964; ``configs/papers/reset_gradient_toy.yaml``, docs/methods.md).
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from spikegrad.data.base import SpikeDataModule

__all__ = ["SpikePatternDataModule", "sample_spike_patterns", "spike_pattern_templates"]


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
