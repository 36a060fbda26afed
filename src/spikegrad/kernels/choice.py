"""``backend: auto``: the compiled kernels when ``torch.compile`` works here and the run repays the compilation.

The rule, decided once per run after the first training batch (when the layers' sizes are known,
:class:`spikegrad.callbacks.run.neuron_backend.NeuronBackendChoice`)::

    compile  iff  steps · (E·s_elem + L·T·s_launch)  >  K · c_compile   and   torch.compile works here

with ``steps`` the training batches still planned, ``E`` the neuron elements one training batch runs through its
spiking layers (Σ ``T·B·N`` over the layers, counted on the first batch), ``L·T`` layers times time steps (the
per-step launches the fused kernels save), ``K`` the distinct neuron settings among the layers (each compiles
its own forward and backward kernel) and the costs per device type in :data:`COSTS` (measured on the machine
named there, see docs/benchmarks.md). Otherwise ``eager``. "Works here" is a probe: a small fused kernel is
compiled and run once per process and device type, and compared with eager (:func:`compile_works`); it runs
only when the first inequality holds, so short runs never pay for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["COSTS", "Costs", "compile_pays", "compile_works", "kernel_setting"]


@dataclass(frozen=True)
class Costs:
    """What compiling saves and costs on one device type (seconds)."""

    saving_per_element: float  # forward + backward, per neuron element (T·B·N), compile vs eager
    saving_per_layer_step: float  # forward + backward, per layer and time step (launches eager makes, fused don't)
    compile_per_setting: float  # compiling one neuron setting's forward and backward kernels
    source: str  # where the numbers come from


COSTS = {
    # `benchmarks/bench_neuron_matrix.py`, base row at T=8, B=64, N=32768, 2 threads: eager - compile ≈ 4.5 ns
    # per element; compile time of one setting (forward + backward, warm inductor cache 7-10 s, cold 20-30 s)
    "cpu": Costs(4.5e-9, 0.0, 20.0, "measured on a 2-core AMD EPYC guest, docs/benchmarks.md"),
    # not measured (no GPU was available): eager's per-step launches (about 4 per layer and step, ~10 µs each)
    # and 4 of its 9 passes over memory at ~3 TB/s
    "cuda": Costs(5e-12, 4e-5, 30.0, "estimated, not measured"),
}


def compile_pays(steps: float, elements: int, layer_steps: int, settings: int, costs: Costs) -> bool:
    """``steps·(elements·s_elem + layer_steps·s_launch) > settings·c_compile`` (see the module docstring)."""
    saving = steps * (elements * costs.saving_per_element + layer_steps * costs.saving_per_layer_step)
    return saving > settings * costs.compile_per_setting


def kernel_setting(layer) -> tuple:
    """What makes a layer compile kernels of its own: the neuron class, fixed coefficients (learned ones are
    tensor arguments), reset, reset gradient, surrogate shape and masking (α is a tensor argument)."""
    decay, input_scale = layer.coefficients()
    fixed = tuple(None if isinstance(v, torch.Tensor) else float(v)
                  for v in (decay, input_scale, layer.v_threshold))
    surrogate = layer.surrogate.init_args()
    if layer.surrogate.alpha_is_argument:
        surrogate.pop("alpha")
    return (type(layer).__name__, fixed, layer.reset, layer.detach_reset, type(layer.surrogate).__name__,
            repr(sorted(surrogate.items())))


@functools.cache
def compile_works(device_type: str) -> tuple[bool, str]:
    """``(True, "")`` when a small compiled kernel builds, runs and equals eager on ``device_type``, else
    ``(False, why)`` (one line). Cached: once per process and device type."""
    def probe(x: torch.Tensor) -> torch.Tensor:
        h = x * 0.5
        return torch.stack([(h >= 1.0).to(x.dtype), h * (h < 1.0).to(x.dtype)])

    try:
        x = torch.linspace(-2.0, 4.0, 64, device=device_type)
        got = torch.compile(probe, fullgraph=True)(x)
        if not torch.equal(got, probe(x)):
            return False, "the compiled probe kernel gave other values than eager"
        return True, ""
    except Exception as error:  # any failure of the compiler toolchain means: not here
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return False, f"torch.compile does not work here ({type(error).__name__}: {first[:200]})"
