"""The random number generators' state in every checkpoint, so that a resumed run draws what the original would."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def random_states() -> dict[str, Any]:
    """The global generators' states as plain values (lists, ints, tensors), so that a checkpoint holding them
    loads with ``torch.load(weights_only=True)``."""
    version, python_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(python_state), gauss],
    }


def set_random_states(state: dict[str, Any]) -> None:
    """Puts back what :func:`random_states` returned; the CUDA states only where CUDA is available."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state.get("torch.cuda"):
        torch.cuda.set_rng_state_all(state["torch.cuda"])
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))


class RandomStateCheckpoint(Callback):
    """Saves the torch / numpy / Python (and CUDA) generator states with each checkpoint and restores them.

    Lightning restores weights, optimizer, schedulers, loops and callback states, but not the global random
    generators: after a resume the shuffling of the next epoch, the masks of masked surrogate gradients and
    dropout would differ from the uninterrupted run. The states are put back when the checkpoint is loaded;
    until the first training batches are drawn nothing else consumes them (Lightning runs the sanity check
    with isolated generators), so a run resumed from an end-of-epoch ``last.ckpt`` ends with the same weights
    as an uninterrupted one (on CPU with ``trainer.deterministic``; CUDA kernels may still differ). Under DDP
    every process gets the state of process 0, which equals its own: Lightning seeds all processes with the
    same seed and they draw the same number of values.
    """

    def state_dict(self) -> dict[str, Any]:
        return random_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_random_states(state_dict)
