"""Our discrete-time neurons as NIR's continuous-time ones, and back: the discretisation, written down.

NIR (Pedersen et al., "Neuromorphic intermediate representation: a unified instruction set for interoperable
brain-inspired computing", Nature Communications 15, 2024) describes neurons by differential equations::

    LIF:  τ·dv/dt = (v_leak - v) + R·I          IF:  dv/dt = R·I
    spike when v > v_threshold, then v <- v_reset

Forward Euler with step ``dt`` turns the LIF into ``v[t] = (1 - dt/τ)·v[t-1] + (dt/τ)·R·I[t]`` and the IF into
``v[t] = v[t-1] + dt·R·I[t]``. Our family's charge (:mod:`spikegrad.neurons.base`) is ``h[t] = λ·v[t-1] + κ·x[t]``
per step, so with ``v_leak = 0`` and ``v_reset = 0`` (hard reset to 0)::

    λ = 1 - dt/τ_NIR,   κ = R·dt/τ_NIR          (LIF)      λ = 1,  κ = R·dt      (IF)
    τ_NIR = dt·τ,  R = κ·τ                      with τ = 1/(1 - λ), our time constant in steps

which gives, for our neurons (``τ`` in steps):

* LIF charge form ``h = v + (x - v)/τ`` (``decay_input: true``, ``κ = 1/τ``): ``τ_NIR = τ·dt``, ``R = 1``;
* LIF leak form ``h = (1 - 1/τ)·v + x`` (``decay_input: false``, ``κ = 1``): ``τ_NIR = τ·dt``, ``R = τ``;
* PLIF: as the LIF, with its learned ``τ = 1/sigmoid(w)``;
* IF (``λ = κ = 1``): NIR ``IF`` with ``R = 1/dt``.

``dt`` is a unit, not a setting of the model: our neurons know only steps. We write files with
:data:`DEFAULT_DT` = 1e-4 s, the time step that snnTorch's importer assumes (its ``import_from_nir`` reads a LIF
as ``beta = 1 - dt/τ``, with ``dt = 1e-4`` fixed), so that it runs the file at our step; the value is stored in the
graph's metadata (``dt``), and Norse takes it as ``from_nir(graph, dt=1e-4)``.

Two differences remain that no parameter expresses: NIR fires at ``v > v_threshold``, we at ``h >= v_threshold``
(they differ only when a potential equals the threshold exactly), and NIR has no subtractive ("soft") reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np

from spikegrad.errors import UsageError

__all__ = ["DEFAULT_DT", "NeuronSteps", "neuron_node", "neuron_steps"]

DEFAULT_DT = 1e-4
"""Seconds per step in the files we write (snnTorch's fixed ``dt``)."""
SIGNIFICANT_DIGITS = 12
"""``τ_NIR/dt`` is rounded to this many significant digits: ``(τ·dt)/dt`` is not always ``τ`` in binary floating
point (``3·1e-4/1e-4 = 3.0000000000000004``); any τ given with fewer digits comes back exactly, and a learned
float32 τ (7 digits) is unchanged."""


FLOAT32_TOLERANCE = 1e-6
"""Relative tolerance for recognising our neuron forms in a file (a few float32 roundings)."""


def _steps(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def neuron_node(tau: float, input_scale: float, v_threshold: float, shape: tuple[int, ...],
                dt: float = DEFAULT_DT) -> nir.NIRNode:
    """The NIR node of a layer with time constant ``tau`` in steps (``λ = 1 - 1/τ``; ``inf`` for no leak), input
    scale ``κ``, threshold θ and hard reset to 0: a ``LIF`` with ``τ_NIR = τ·dt`` and ``R = κ·τ``, or for
    ``τ = inf`` an ``IF`` with ``R = κ/dt``. ``R`` is rounded like τ, so that the charge form's ``(1/τ)·τ`` is 1."""
    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    if math.isinf(tau):
        return nir.IF(r=full(_steps(input_scale / dt)), v_threshold=full(v_threshold), v_reset=full(0.0))
    if not tau >= 1:
        raise UsageError(f"neuron tau {tau!r} steps is below 1 (decay outside [0, 1)); NIR's LIF has no such neuron")
    return nir.LIF(tau=full(tau * dt), r=full(_steps(input_scale * tau)), v_leak=full(0.0),
                   v_threshold=full(v_threshold), v_reset=full(0.0))


@dataclass(frozen=True)
class NeuronSteps:
    """A NIR neuron at step ``dt``: ``h = decay·v + input_scale·x``, fire at ``v_threshold``, reset to 0.

    ``tau`` is the time constant in steps (``inf`` for an IF); ``charge_form``/``leak_form`` say whether it is our
    LIF with ``decay_input`` true/false (``κ = 1/τ`` or ``κ = 1``), ``integrate`` whether it is our IF. They compare
    to within :data:`FLOAT32_TOLERANCE`: files written from float32 parameters (snnTorch's ``R = τ/dt``) carry their
    rounding.
    """

    decay: float
    input_scale: float
    v_threshold: float
    tau: float

    @property
    def integrate(self) -> bool:
        return self.decay == 1.0 and math.isclose(self.input_scale, 1.0, rel_tol=FLOAT32_TOLERANCE)

    @property
    def charge_form(self) -> bool:
        return self.tau > 1 and math.isclose(self.input_scale, 1.0 / self.tau, rel_tol=FLOAT32_TOLERANCE)

    @property
    def leak_form(self) -> bool:
        return math.isfinite(self.tau) and math.isclose(self.input_scale, 1.0, rel_tol=FLOAT32_TOLERANCE)


def _uniform(name: str, node_name: str, values) -> float:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise UsageError(f"NIR node {node_name!r}: {name} is empty")
    first = float(array.flat[0])
    if not np.all(array == first):
        raise UsageError(
            f"NIR node {node_name!r}: {name} differs between neurons (from {array.min():g} to {array.max():g}); "
            f"spikegrad's layers have one {name} per layer"
        )
    return first


def neuron_steps(node: nir.NIRNode, node_name: str, dt: float = DEFAULT_DT) -> NeuronSteps:
    """The per-step neuron of a NIR ``LIF`` or ``IF`` node at step ``dt`` (the inverse of :func:`neuron_node`);
    a one-line :class:`UsageError` for what our neurons cannot run (per-neuron parameters, ``v_leak`` or
    ``v_reset`` other than 0, ``τ < dt``)."""
    theta = _uniform("v_threshold", node_name, node.v_threshold)
    if not theta > 0:
        raise UsageError(f"NIR node {node_name!r}: v_threshold {theta:g} must be > 0")
    if _uniform("v_reset", node_name, node.v_reset) != 0.0:
        raise UsageError(f"NIR node {node_name!r}: v_reset must be 0 (spikegrad's hard reset is to 0)")
    r = _uniform("r", node_name, node.r)
    if isinstance(node, nir.IF):
        return NeuronSteps(1.0, r * dt, theta, math.inf)
    if _uniform("v_leak", node_name, node.v_leak) != 0.0:
        raise UsageError(f"NIR node {node_name!r}: v_leak must be 0 (spikegrad's neurons leak towards 0)")
    tau_nir = _uniform("tau", node_name, node.tau)
    if not tau_nir >= dt:
        raise UsageError(
            f"NIR node {node_name!r}: tau {tau_nir:g} s is shorter than the step dt {dt:g} s (forward Euler would "
            f"overshoot); give the file's step as dt"
        )
    tau = _steps(tau_nir / dt)
    return NeuronSteps(1.0 - 1.0 / tau, r / tau, theta, tau)
