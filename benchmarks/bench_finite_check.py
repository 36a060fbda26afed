"""Cost of the finiteness check of weights and optimizer state (``finite_check``) on the quickstart model.

The quickstart's model (``configs/quickstart.yaml``: conv net 32-64, hidden 128, T = 4, AdamW) takes a few
training steps on digits-sized batches (64 × 1 × 8 × 8) so that the optimizer state exists, then the check
(:func:`spikegrad.callbacks.run.finite_loss.nonfinite_names` over parameters, buffers and optimizer state, what
:class:`~spikegrad.callbacks.run.finite_loss.NonFiniteLossGuard` runs) and one training step (forward, backward,
optimizer step) are timed interleaved. The overhead of a setting is the check's time per step it covers:
``every_n_steps`` steps, plus the one check at the end of each epoch (it covers the epoch's best and last
checkpoints), for an epoch of ``--steps_per_epoch`` steps (quickstart: 20). One torch thread by default: on a
shared machine two OpenMP threads wait for each other whenever another process holds a core.

Run: ``.venv/bin/python benchmarks/bench_finite_check.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from spikegrad.callbacks.run.finite_loss import nonfinite_names
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import NeuronSettings, SurrogateSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, iqr_ms, machine, median_ms, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps_per_epoch", type=int, default=20)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)

    model = SpikingClassifier(
        backbone="convnet", backbone_args={"channels": [32, 64], "hidden": 128}, time_steps=4,
        neuron=NeuronSettings(tau=2.0), surrogate=SurrogateSettings(name="atan", alpha=2.0),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))

    def step() -> None:
        optimizer.zero_grad()
        model.task_loss(batch).backward()
        optimizer.step()

    def check() -> None:
        tensors = list(model.state_dict().items())
        tensors += [(f"{i}.{k}", v) for i, state in enumerate(optimizer.state.values()) for k, v in state.items()]
        assert not nonfinite_names(tensors)

    for _ in range(3):
        step()
    count = sum(1 for v in model.state_dict().values() if torch.is_tensor(v)) + sum(
        len(s) for s in optimizer.state.values())
    times = interleaved({"check": check, "step": step}, reps=options.reps)
    check_ms, step_ms = median_ms(times["check"]), median_ms(times["step"])
    print(machine())
    print(f"{count} tensors checked; check {check_ms:.3f} ms (IQR {iqr_ms(times['check']):.3f}), "
          f"training step {step_ms:.2f} ms (IQR {iqr_ms(times['step']):.2f})\n")
    rows = []
    for every in (1, 10, 50):
        per_epoch = options.steps_per_epoch / every + 1
        overhead = 100 * per_epoch * check_ms / (options.steps_per_epoch * step_ms)
        rows.append([f"every_n_steps {every}", f"{per_epoch:.1f}", f"{overhead:.2f} %"])
    print(table(["setting", "checks per epoch", "overhead of the training time"], rows))


if __name__ == "__main__":
    main()
