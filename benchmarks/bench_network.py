"""Training step of a spiking VGG-style net (T = 4, batch 32, 32×32×3): spikegrad vs SpikingJelly layers.

Both nets are the same: blocks ``Conv3x3 -> BN -> LIF`` with widths ``64-P-128-P-256-256-P-256-P`` (P = 2×2
average pooling), then ``Linear(256·2·2 -> 10)``; LIF τ = 2 in both charge forms (``--forms``: ``charge``,
``decay_input: true``, and ``leak``, ``decay_input: false``), θ = 1,
hard reset with a detached reset, ATan α = 2, BN statistics over T×B, mean-over-time logits, cross-entropy,
SGD step. Candidates:

* ``spikegrad <backend>``: :class:`spikegrad.models.layers.TimeDistributed` + :class:`spikegrad.neurons.LIF`;
* ``spikegrad <backend> channels-last``: the same with inputs and weights in ``torch.channels_last``;
* ``SpikingJelly``: ``layer.Conv2d/BatchNorm2d/AvgPool2d/Flatten/Linear(step_mode="m")`` + ``neuron.LIFNode``
  (``functional.reset_net`` after every step).

Times are medians over interleaved repetitions (one process). Memory, per candidate:
``saved MB`` = bytes autograd keeps for backward in one step (exact, from saved-tensor hooks), and
``peak MB`` = peak growth of the resident set during one training step (after a warm-up step), measured in a
fresh subprocess whose allocator returns every freed buffer to the system (Linux only).

Run: ``.venv/bin/python benchmarks/bench_network.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, iqr_ms, machine, median_ms, table  # noqa: E402
from spikegrad.models.layers import Flatten, TimeDistributed  # noqa: E402
from spikegrad.neurons import LIF  # noqa: E402
from spikegrad.surrogates import ATan  # noqa: E402

PLAN = (64, "P", 128, "P", 256, 256, "P", 256, "P")
TAU, THRESHOLD, ALPHA = 2.0, 1.0, 2.0


def spikegrad_net(backend: str, decay_input: bool = True, num_classes: int = 10) -> nn.Module:
    layers, c, size = [], 3, 32
    for item in PLAN:
        if item == "P":
            layers.append(TimeDistributed(nn.AvgPool2d(2)))
            size //= 2
        else:
            layers += [
                TimeDistributed(nn.Conv2d(c, item, 3, padding=1, bias=False), nn.BatchNorm2d(item)),
                LIF(ATan(alpha=ALPHA), tau=TAU, v_threshold=THRESHOLD, reset="hard", detach_reset=True,
                    decay_input=decay_input, backend=backend),
            ]
            c = item
    layers += [Flatten(), TimeDistributed(nn.Linear(c * size * size, num_classes))]
    return nn.Sequential(*layers)


def spikingjelly_net(decay_input: bool = True, num_classes: int = 10) -> nn.Module:
    from spikingjelly.activation_based import layer, neuron, surrogate

    layers, c, size = [], 3, 32
    for item in PLAN:
        if item == "P":
            layers.append(layer.AvgPool2d(2, step_mode="m"))
            size //= 2
        else:
            layers += [
                layer.Conv2d(c, item, 3, padding=1, bias=False, step_mode="m"),
                layer.BatchNorm2d(item, step_mode="m"),
                neuron.LIFNode(tau=TAU, decay_input=decay_input, v_threshold=THRESHOLD, v_reset=0.0,
                               surrogate_function=surrogate.ATan(alpha=ALPHA), detach_reset=True, step_mode="m"),
            ]
            c = item
    layers += [layer.Flatten(step_mode="m"), layer.Linear(c * size * size, num_classes, step_mode="m")]
    return nn.Sequential(*layers)


FORMS = {"charge": True, "leak": False}  # decay_input of the LIF: h = v + (x - v)/τ, or h = (1 - 1/τ)·v + x


def build(name: str) -> tuple[nn.Module, bool, bool]:
    """(net, channels_last, reset_after_step) for a candidate name, ``"<candidate> [<form>]"``."""
    name, _, form = name.partition(" [")
    decay_input = FORMS[form.rstrip("]") or "charge"]
    if name == "SpikingJelly":
        return spikingjelly_net(decay_input), False, True
    backend = name.split()[1]
    return spikegrad_net(backend, decay_input), name.endswith("channels-last"), False


def make_step(name: str, T: int, batch: int, seed: int = 0):
    torch.manual_seed(seed)
    net, channels_last, reset = build(name)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    image = torch.randn(batch, 3, 32, 32) * 1.5 + 0.5
    x = image.unsqueeze(0).repeat(T, 1, 1, 1, 1)  # direct encoding [T, B, C, H, W]
    if channels_last:
        x = x.flatten(0, 1).contiguous(memory_format=fmt).unflatten(0, (T, batch))
    y = torch.randint(0, 10, (batch,))
    reset_net = None
    if reset:
        from spikingjelly.activation_based import functional

        reset_net = functional.reset_net

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net(x).mean(0), y)
        loss.backward()
        opt.step()
        if reset_net is not None:
            reset_net(net)
        return loss

    return step


def saved_bytes(step) -> int:
    """Bytes of the tensors autograd saves for backward during one step (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type != "meta":
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_child(name: str, T: int, batch: int, threads: int) -> None:
    """Subprocess entry: print the peak resident-set growth (MB) during one training step after a warm-up step.

    The parent starts it with ``MALLOC_MMAP_THRESHOLD_=65536`` so that every tensor buffer is its own mapping,
    returned to the system when freed: the resident set then follows the live tensors. The high-water mark
    is reset through ``/proc/self/clear_refs`` before the measured step.
    """
    torch.set_num_threads(threads)
    step = make_step(name, T, batch)
    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kb("VmRSS")
    step()
    print(json.dumps({"peak_mb": (_status_kb("VmHWM") - base) / 1024}))


def peak_mb(name: str, T: int, batch: int, threads: int) -> float:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, __file__, "--peak-child", name, "--T", str(T), "--batch", str(batch),
         "--threads", str(threads)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--candidates", nargs="+", default=[
        "spikegrad eager", "spikegrad eager channels-last", "spikegrad compile", "spikegrad compile channels-last",
        "SpikingJelly"])
    p.add_argument("--forms", nargs="+", default=list(FORMS), choices=list(FORMS),
                   help="LIF charge forms: charge (decay_input true, the configs' default) and leak (false)")
    p.add_argument("--peak-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peak_child:
        peak_child(args.peak_child, args.T, args.batch, args.threads)
        return ""
    torch.set_num_threads(args.threads)
    names = [f"{name} [{form}]" for form in args.forms for name in args.candidates]
    steps = {name: make_step(name, args.T, args.batch) for name in names}
    saved = {name: saved_bytes(step) / 2**20 for name, step in steps.items()}
    times = interleaved(steps, args.reps, warmup=2)
    peaks = {name: peak_mb(name, args.T, args.batch, args.threads) for name in names}
    rows = []
    for name, ts in times.items():
        form = name.partition(" [")[2]
        ref = f"SpikingJelly [{form}" if f"SpikingJelly [{form}" in times else names[0]
        m = median_ms(ts)
        rows.append([name, f"{m:.0f} [{iqr_ms(ts):.0f}]", median_ms(times[ref]) / m, f"{saved[name]:.0f}",
                     saved[name] / saved[ref], f"{peaks[name]:.0f}", peaks[name] / peaks[ref]])
    text = "\n".join([
        f"Machine: {machine()}",
        f"Training step, T={args.T}, batch {args.batch}, 32×32×3, {args.reps} interleaved repetitions "
        f"(medians, interquartile range in brackets)", "",
        table(["candidate [charge form]", "step ms", "throughput × SpikingJelly", "saved MB", "saved × SpikingJelly",
               "peak MB", "peak × SpikingJelly"], rows),
    ])
    print(text)
    return text


if __name__ == "__main__":
    main()
