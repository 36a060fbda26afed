"""Extra forward/backward passes for method callbacks (Dspike search, PSG) that leave training untouched.

:func:`isolated_probe` forks torch's random number generators (CPU and the module's CUDA devices), snapshots
every buffer of the module (BatchNorm running statistics and counters) and suspends the spiking layers'
recording and kept potentials; on exit the buffers, the RNG state and the layers' recorded tensors are restored.
Probes compute gradients with :func:`torch.autograd.grad`, which never touches ``param.grad``, and keep the
module's train/eval mode, so BatchNorm normalises with batch statistics exactly as in the training step.
:func:`seeded` makes every probe evaluation draw the same random numbers (dropout masks, MSG masks), so that
differences between evaluations come from the change being probed alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from spikegrad.neurons import spiking_layers

__all__ = ["isolated_probe", "seeded", "first_weight"]


def first_weight(module: nn.Module, name: str | None = None) -> tuple[str, nn.Parameter]:
    """The named parameter, or the first weight matrix/kernel (``ndim >= 2``) in registration order."""
    params = dict(module.named_parameters())
    if name is not None:
        if name not in params:
            raise ValueError(f"weight {name!r} is not a parameter of the model; valid choices: {', '.join(params)}")
        return name, params[name]
    for key, param in params.items():
        if param.ndim >= 2:
            return key, param
    raise ValueError("the model has no weight with ndim >= 2 to probe")


@contextmanager
def isolated_probe(module: nn.Module) -> Iterator[None]:
    """Context in which extra passes through ``module`` leave no trace (buffers, RNG, recording restored)."""
    buffers = [(b, b.detach().clone()) for b in module.buffers()]
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    try:
        with ExitStack() as stack:
            for layer in spiking_layers(module).values():
                stack.enter_context(layer.suspend_recording())
            with torch.random.fork_rng(devices=devices):
                yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)


def seeded(fn: Callable[[], torch.Tensor], seed: int) -> Callable[[], torch.Tensor]:
    """``fn`` that reseeds torch's RNGs with ``seed`` before each call (use inside :func:`isolated_probe`)."""

    def call() -> torch.Tensor:
        torch.manual_seed(seed)
        return fn()

    return call
