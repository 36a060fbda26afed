"""Every neuron setting the configs can select, forward + backward: eager, compile, SpikingJelly and the floor.

One row per setting. The base row is the quickstart's neuron (LIF τ = 2 in the charge form ``h = v + (x - v)/τ``,
θ = 1, hard reset with a detached reset, ATan α = 2); every other row changes one thing: the leak form
(``decay_input: false``), soft reset, a kept reset gradient (hard and soft), each other surrogate shape (default
α), MSG p = 0.5, PLIF (learnable τ, both charge forms), a learnable threshold, and IF. Columns:

* ``eager`` / ``compile``: the layer (:mod:`spikegrad.neurons`) with that backend; the input gradient and the
  gradients of learnable parameters are computed, as in training;
* ``SpikingJelly``: ``LIFNode`` / ``ParametricLIFNode`` / ``IFNode`` (``step_mode="m"``, its torch backend on CPU)
  with the same maths; for the surrogates SpikingJelly does not have with the same formula (rectangle, triangle,
  Dspike) and for MSG its node is given the spikegrad surrogate as its ``surrogate_function`` (a small autograd
  function); there is no learnable threshold in SpikingJelly (``n/a``);
* ``floor``: one ``torch.sigmoid`` forward + backward on the same tensor, the memory traffic any elementwise
  neuron must at least pay (the same for every row of a shape).

All candidates of a shape run in one process, repeated in a freshly shuffled order each round (medians). Before
timing, each row checks that SpikingJelly gives spikegrad's spikes and input gradient (relative 1e-4), and that
both backends agree. Ratios: ``compile / floor``, ``eager / floor``, ``SpikingJelly / eager`` (speed-up of the
default over SpikingJelly) and ``SpikingJelly / compile``.

Run: ``.venv/bin/python benchmarks/bench_neuron_matrix.py`` (``--help``: shapes, rows, repetitions).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import check_same, fwd_bwd, interleaved, machine, median_ms, table  # noqa: E402
from spikegrad.neurons import IF, LIF, PLIF  # noqa: E402
from spikegrad.surrogates import ATan, DSpike, Rectangle, Sigmoid, Surrogate, Triangle  # noqa: E402

BASE = dict(neuron="LIF", tau=2.0, decay_input=True, reset="hard", detach_reset=True, surrogate="ATan",
            mask_p=0.0, learn_threshold=False)
SHAPES = {"small": (4, 32, 4096), "large": (8, 64, 32768)}
SURROGATES = {"ATan": ATan, "Sigmoid": Sigmoid, "Triangle": Triangle, "Rectangle": Rectangle, "DSpike": DSpike}
# SpikingJelly's own surrogate classes with exactly the spikegrad formula at the same α
SJ_OWN = {"ATan": "ATan", "Sigmoid": "Sigmoid"}

ROWS = {
    "LIF charge form (base)": {},
    "LIF leak form": dict(decay_input=False),
    "soft reset": dict(reset="soft"),
    "hard reset, kept gradient": dict(detach_reset=False),
    "soft reset, kept gradient": dict(reset="soft", detach_reset=False),
    "Sigmoid": dict(surrogate="Sigmoid"),
    "Triangle": dict(surrogate="Triangle"),
    "Rectangle": dict(surrogate="Rectangle"),
    "DSpike": dict(surrogate="DSpike"),
    "MSG p=0.5": dict(mask_p=0.5),
    "PLIF charge form": dict(neuron="PLIF"),
    "PLIF leak form": dict(neuron="PLIF", decay_input=False),
    "learnable threshold": dict(learn_threshold=True),
    "IF": dict(neuron="IF"),
}


def setting(row: str) -> dict:
    return {**BASE, **ROWS[row]}


def surrogate_of(s: dict) -> Surrogate:
    return SURROGATES[s["surrogate"]](mask_p=s["mask_p"])


def spikegrad_layer(s: dict, backend: str) -> torch.nn.Module:
    options = dict(v_threshold=1.0, reset=s["reset"], detach_reset=s["detach_reset"],
                   learn_threshold=s["learn_threshold"], backend=backend)
    if s["neuron"] == "IF":
        return IF(surrogate_of(s), **options)
    if s["neuron"] == "PLIF":
        return PLIF(surrogate_of(s), init_tau=s["tau"], decay_input=s["decay_input"], **options)
    return LIF(surrogate_of(s), tau=s["tau"], decay_input=s["decay_input"], **options)


class _SpikeWith(torch.autograd.Function):
    """``H(x)`` with the spikegrad surrogate's (masked) derivative, for SpikingJelly's ``surrogate_function``."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x, 0.0), None


def spikingjelly_layer(s: dict):
    """SpikingJelly's node with the same maths, or ``None`` where it has none (learnable threshold)."""
    if s["learn_threshold"]:
        return None
    from spikingjelly.activation_based import neuron, surrogate

    ours = surrogate_of(s)
    if s["surrogate"] in SJ_OWN and not ours.masked:
        fn = getattr(surrogate, SJ_OWN[s["surrogate"]])(alpha=ours.alpha)
    else:
        def fn(x, _ours=ours):
            return _SpikeWith.apply(x, _ours)
    common = dict(v_threshold=1.0, v_reset=0.0 if s["reset"] == "hard" else None, surrogate_function=fn,
                  detach_reset=s["detach_reset"], step_mode="m")
    if s["neuron"] == "IF":
        node = neuron.IFNode(**common)
    elif s["neuron"] == "PLIF":
        node = neuron.ParametricLIFNode(init_tau=s["tau"], decay_input=s["decay_input"], **common)
    else:
        node = neuron.LIFNode(tau=s["tau"], decay_input=s["decay_input"], **common)

    def run(x):
        node.reset()
        return node(x)

    run.node = node
    return run


def run_shape(shape: tuple[int, int, int], rows: list[str], reps: int, libraries: bool,
              device: str = "cpu") -> list[list]:
    T, B, N = shape
    torch.manual_seed(0)
    x = (torch.randn(T, B, N, device=device) * 1.5 + 0.5).requires_grad_()
    grad = torch.randn_like(x)
    candidates, names = {}, {}
    for row in rows:
        s = setting(row)
        fns = {b: spikegrad_layer(s, b).to(device) for b in ("eager", "compile")}
        sj = spikingjelly_layer(s) if libraries else None
        if sj is not None:
            sj.node.to(device)
        if sj is not None:
            fns["SpikingJelly"] = sj
        small = x.detach()[:, :4, :1024].clone().requires_grad_()
        if s["mask_p"] == 0.0:
            check_same(fns, small, grad[:, :4, :1024], "eager", label=f"{row}: ")
        for name, fn in fns.items():
            candidates[(row, name)] = fwd_bwd(fn, x, grad)
            names[(row, name)] = name
    candidates[("floor", "floor")] = fwd_bwd(torch.sigmoid, x, grad)
    times = interleaved(candidates, reps, device=device)
    floor = median_ms(times[("floor", "floor")])
    out = []
    for row in rows:
        med = {name: median_ms(times[(r, name)]) for (r, name) in times if r == row}
        eager, comp, sj = med["eager"], med["compile"], med.get("SpikingJelly")
        out.append([
            f"{T}×{B}×{N}", row, f"{eager:.1f}", f"{comp:.1f}", "n/a" if sj is None else f"{sj:.1f}",
            f"{floor:.1f}", comp / floor, eager / floor, "n/a" if sj is None else f"{sj / eager:.2f}",
            "n/a" if sj is None else f"{sj / comp:.2f}",
        ])
    return out


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                   help="rows to run (default all): " + "; ".join(ROWS))
    p.add_argument("--large-rows", nargs="+", default=None, choices=list(ROWS), metavar="ROW",
                   help="a subset of rows for the large shape (default: the same as --rows)")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-libraries", action="store_true", help="skip SpikingJelly")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = [f"Machine: {machine()}",
             f"float32 on {args.device}, {args.reps} interleaved repetitions, medians of forward + backward in ms", ""]
    rows = []
    for name in args.shapes:
        chosen = args.large_rows if (name == "large" and args.large_rows) else args.rows
        rows += run_shape(SHAPES[name], chosen, args.reps, not args.no_libraries, args.device)
    header = ["T×B×N", "setting", "eager ms", "compile ms", "SpikingJelly ms", "floor ms", "compile × floor",
              "eager × floor", "eager × SJ speed", "compile × SJ speed"]
    lines.append(table(header, rows))
    for shape in {r[0] for r in rows}:
        mine = [r for r in rows if r[0] == shape]
        worst_c = max(mine, key=lambda r: r[6])
        worst_e = max(mine, key=lambda r: r[7])
        sj_rows = [r for r in mine if r[8] != "n/a"]
        worst_sj = min(sj_rows, key=lambda r: float(r[8])) if sj_rows else None
        lines.append(f"\n{shape}: worst compile row {worst_c[1]!r} {worst_c[6]:.2f}× floor; worst eager row "
                     f"{worst_e[1]!r} {worst_e[7]:.2f}× floor"
                     + (f"; slowest eager vs SpikingJelly {worst_sj[1]!r} {worst_sj[8]}×" if worst_sj else ""))
    lines.append(f"load average at the end: {', '.join(f'{v:.2f}' for v in __import__('os').getloadavg())}")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
