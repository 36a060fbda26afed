"""The random number generators' state in every checkpoint, so that a resumed run draws what the original would."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback


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
        state = _collect_rng_states(include_cuda=torch.cuda.is_available())
        if "numpy" in state:  # plain lists, so that checkpoints load with torch.load(weights_only=True)
            name, keys, pos, has_gauss, cached = state["numpy"]
            state["numpy"] = [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
        state["python"] = [state["python"][0], list(state["python"][1]), state["python"][2]]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        if not torch.cuda.is_available() or not state.get("torch.cuda"):
            state.pop("torch.cuda", None)
        if "numpy" in state:
            import numpy as np

            name, keys, pos, has_gauss, cached = state["numpy"]
            state["numpy"] = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
        _set_rng_states(state)
