"""LIF forward+backward over ``[T, B, N]``: spikegrad vs SpikingJelly vs snnTorch vs an elementwise floor.

All candidates run the same maths (leak form ``h = 0.5·v + x``, i.e. τ = 2 without input decay; hard reset to 0
with a detached reset; θ = 1; ATan surrogate α = 2) on the same tensor in one process; repetitions are
interleaved in a shuffled order and the table reports medians. Before timing, the script checks that every
library gives the same spikes and input gradients as spikegrad.

* ``spikegrad <backend>``: the layer :class:`spikegrad.neurons.LIF` (``backend`` eager / compile; the compile
  layer writes only the spikes and recomputes ``h`` in backward);
* ``spikegrad <backend> MSG p=0.5``: the same with the masked surrogate gradient (fresh Bernoulli mask every
  backward);
* ``SpikingJelly LIFNode``: ``neuron.LIFNode(step_mode="m")``, whose multi-step op on CPU is its torch backend
  (its cupy/triton backends run only on CUDA; with ``--device cuda`` they are picked automatically);
* ``snnTorch Leaky``: ``snn.Leaky(beta=0.5, reset_mechanism="zero")`` stepped over T in Python (its reset is
  delayed by one step, which is the same recursion ``h[t] = β·(1 - s[t-1])·h[t-1] + x[t]``);
* ``floor: sigmoid``: one ``torch.sigmoid`` forward+backward on the same tensor — two reads and one write
  forward, three tensors backward: the memory traffic any elementwise neuron must at least pay.

Run: ``.venv/bin/python benchmarks/bench_neuron.py`` (``--help`` for sizes, threads and candidates).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import check_same, fwd_bwd, interleaved, iqr_ms, machine, median_ms, table  # noqa: E402
from spikegrad.neurons import LIF  # noqa: E402
from spikegrad.surrogates import ATan  # noqa: E402

TAU, THRESHOLD, ALPHA = 2.0, 1.0, 2.0


def ours(backend: str, mask_p: float = 0.0):
    return LIF(
        ATan(alpha=ALPHA, mask_p=mask_p), tau=TAU, v_threshold=THRESHOLD, reset="hard", detach_reset=True,
        decay_input=False, backend=backend,
    )


def spikingjelly():
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(
        tau=TAU, decay_input=False, v_threshold=THRESHOLD, v_reset=0.0,
        surrogate_function=surrogate.ATan(alpha=ALPHA), detach_reset=True, step_mode="m",
    )

    def run(x):
        node.reset()
        return node(x)

    return run


def snntorch():
    import snntorch as snn
    from snntorch import surrogate

    leaky = snn.Leaky(
        beta=1.0 - 1.0 / TAU, threshold=THRESHOLD, spike_grad=surrogate.atan(alpha=ALPHA), reset_mechanism="zero",
    )

    def run(x):
        mem = leaky.reset_mem()
        out = []
        for t in range(x.shape[0]):
            spk, mem = leaky(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run


def sigmoid_floor():
    return torch.sigmoid


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--neurons", type=int, default=16384, help="N, neurons per sample")
    p.add_argument("--reps", type=int, default=21)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backends", nargs="+", default=["eager", "compile"], help="spikegrad backends to time")
    p.add_argument("--no-libraries", action="store_true", help="skip SpikingJelly and snnTorch")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    out = [f"Machine: {machine()}", f"Shape [T, {args.batch}, {args.neurons}] float32 on {args.device}, "
           f"{args.reps} interleaved repetitions, medians in ms (interquartile range in brackets)", ""]
    rows = []
    for T in args.T:
        x = (torch.randn(T, args.batch, args.neurons, device=args.device) * 1.5 + 0.5).requires_grad_()
        grad = torch.randn_like(x)
        fns = {f"spikegrad {b}": ours(b) for b in args.backends}
        fns.update({f"spikegrad {b} MSG p=0.5": ours(b, mask_p=0.5) for b in args.backends})
        if not args.no_libraries:
            fns["SpikingJelly LIFNode"] = spikingjelly()
            fns["snnTorch Leaky"] = snntorch()
        small = x.detach()[:, :4, :1024].clone().requires_grad_()  # float ties at θ are improbable here
        check_same({k: v for k, v in fns.items() if "MSG" not in k}, small, grad[:, :4, :1024],
                   f"spikegrad {args.backends[0]}")
        fns["floor: sigmoid"] = sigmoid_floor()
        times = interleaved({k: fwd_bwd(fn, x, grad) for k, fn in fns.items()}, args.reps, device=args.device)
        best = min(median_ms(times[f"spikegrad {b}"]) for b in args.backends)
        floor = median_ms(times["floor: sigmoid"])
        for name, ts in times.items():
            m = median_ms(ts)
            rows.append([T, name, f"{m:.2f} [{iqr_ms(ts):.2f}]", m / best, m / floor])
    out.append(table(["T", "candidate", "fwd+bwd ms", "× best spikegrad", "× floor"], rows))
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
