"""Surrogate gradients for the Heaviside spike function.

The forward pass of every spiking neuron is the step ``s = H(x)`` with ``x = h - θ`` and ``H(0) = 1``.
The backward pass replaces the Dirac delta ``H'(x)`` by a surrogate derivative ``g(x)``. Each class below
gives ``g`` (:meth:`Surrogate.grad`) and the smooth step whose derivative it is (:meth:`Surrogate.primitive`),
so that tests can check one against the other.

Every surrogate has one shape parameter, called ``alpha`` everywhere in spikegrad so that parameter searches
(Dspike temperature search, parametric surrogate gradients) can treat all shapes alike:

============  ===================================================  ===============  =====================
name          g(x)                                                 alpha means      default
============  ===================================================  ===============  =====================
rectangle     ``(1/a)·1[|x| <= a/2]``                               width ``a``       1.0
triangle      ``max(0, α - α²|x|)``                                 slope ``α``       1.0
sigmoid       ``α·σ(αx)·(1 - σ(αx))``                               steepness ``α``   4.0
atan          ``α / (2·(1 + (π/2·α·x)²))``                          steepness ``α``   2.0
dspike        ``b·(1 - tanh²(b·x/w)) / (2·w·tanh(b/2))``, |x|<=w/2   temperature ``b`` 3.0
============  ===================================================  ===============  =====================

Sources: rectangle/triangle/sigmoid/atan as in SpikingJelly and the MSG paper (Li et al., Neural Networks
2024, triangle with α = 2); Dspike from Li et al., "Differentiable Spike", NeurIPS 2021, where the forward
function on ``z = h/θ ∈ [0, 1]`` is ``[tanh(b(z - ½)) + tanh(b/2)] / [2 tanh(b/2)]``; recentred on the
threshold its derivative w.r.t. ``x = h - θ`` is the formula above with window width ``w = θ``.

Masked surrogate gradients (MSG, Li et al. 2024) are settings of a surrogate (``mask_p``, ``mask_rescale``,
``mask_fill``) and are applied by the neuron's fused backward, see :mod:`spikegrad.neurons`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

__all__ = [
    "Surrogate",
    "Rectangle",
    "Triangle",
    "Sigmoid",
    "ATan",
    "DSpike",
    "SURROGATES",
    "get",
]


class Surrogate:
    """Base class: a surrogate derivative ``g(x)`` with shape parameter ``alpha`` and MSG masking settings.

    Args:
        alpha: the shape parameter (see the module table); ``None`` takes the shape's default.
        mask_p: masked surrogate gradient drop probability ``p`` in ``[0, 1)``; ``0`` switches masking off.
            Each backward draws ``m ~ Bernoulli(1 - p)`` per neuron, per time step and per layer and uses
            ``g̃ = g ⊙ m`` (Li et al., "Masked surrogate gradients", Neural Networks 2024).
        mask_rescale: divide the kept entries by ``1 - p`` so that ``E[g̃] = g`` (not done in the MSG code).
        mask_fill: the derivative used for masked entries (the MSG code's substitute); ``0`` drops them.
    """

    name: ClassVar[str] = ""
    default_alpha: ClassVar[float] = 1.0
    # alpha values whose backward stays finite in float16: the derivative's peak and every factor the backward
    # multiplies by (1/a, α, α², b/w, ...) stay below 1e4 (float16's largest value is 65504)
    alpha_range: ClassVar[tuple[float, float]] = (1e-4, 1e4)

    def __init__(
        self,
        alpha: float | None = None,
        mask_p: float = 0.0,
        mask_rescale: bool = False,
        mask_fill: float = 0.0,
    ) -> None:
        self.alpha = float(self.default_alpha if alpha is None else alpha)
        low, high = self.alpha_range
        if not low <= self.alpha <= high:
            raise ValueError(
                f"surrogate {self.name!r}: alpha must be in [{low:g}, {high:g}] (outside it the backward overflows "
                f"or vanishes in float16), got {alpha!r}"
            )
        if not 0.0 <= float(mask_p) < 1.0:
            raise ValueError(f"surrogate mask_p must be in [0, 1), got {mask_p!r}")
        self.mask_p = float(mask_p)
        self.mask_rescale = bool(mask_rescale)
        self.mask_fill = float(mask_fill)

    # --- the maths -------------------------------------------------------------------------------
    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """``scale·g(x)``, computed in place in ``x`` (the neuron's backward owns that buffer) and returned.

        ``g(+∞)`` must be exactly 0: the neuron's backward marks the entries that MSG drops with ``x = +∞``.
        ``scale`` (> 0) is MSG's rescale ``1/(1 - p)``, folded into the last operation of each shape.
        """
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``g(x)`` as a new tensor."""
        return self.grad_(x.clone())

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """A smooth step ``S`` with ``S' = g``, ``S(-∞) = 0``, ``S(∞) = 1`` (for tests and plots)."""
        raise NotImplementedError

    def support(self) -> float:
        """Half-width of the window where ``g(x) != 0`` (``inf`` for shapes with full support)."""
        return math.inf

    # --- configuration ---------------------------------------------------------------------------
    def config(self) -> dict:
        """Everything needed to rebuild this surrogate with :func:`get` (stored in checkpoints)."""
        return {
            "name": self.name,
            "alpha": self.alpha,
            "mask_p": self.mask_p,
            "mask_rescale": self.mask_rescale,
            "mask_fill": self.mask_fill,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Rectangle(Surrogate):
    """``g(x) = (1/a)·1[|x| <= a/2]``; primitive ``clamp(x/a + 1/2, 0, 1)``."""

    name = "rectangle"
    default_alpha = 1.0

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        return x.abs_().le_(a / 2).mul_(scale / a)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return (x / self.alpha + 0.5).clamp(0.0, 1.0)

    def support(self) -> float:
        return self.alpha / 2


class Triangle(Surrogate):
    """``g(x) = max(0, α - α²|x|)``; primitive ``clamp(1/2 + αx - α²x|x|/2, 0, 1)`` for ``|x| <= 1/α``.

    TET's ``(1/γ²)·max(0, γ - |x|)`` is ``α = 1/γ``; the MSG code uses ``α = 2``.
    """

    name = "triangle"
    default_alpha = 1.0
    alpha_range = (1e-2, 1e2)  # the backward multiplies by α²

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        # s·(α - α²|x|) as one fused op (0-d tensor minus scaled tensor), then the clamp: three passes.
        return torch.sub(x.new_full((), a * scale), x.abs_(), alpha=a * a * scale, out=x).clamp_(min=0.0)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        inside = 0.5 + a * x - 0.5 * a * a * x * x.abs()
        return torch.where(x.abs() <= 1.0 / a, inside, (x > 0).to(x.dtype))

    def support(self) -> float:
        return 1.0 / self.alpha


class Sigmoid(Surrogate):
    """``g(x) = α·σ(αx)·(1 - σ(αx))``; primitive ``σ(αx)``."""

    name = "sigmoid"
    default_alpha = 4.0

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        sig = x.mul_(a).sigmoid_()
        # σ - σ² in one fused multiply-add, in place.
        return torch.addcmul(sig, sig, sig, value=-1.0, out=sig).mul_(a * scale)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * x)


class ATan(Surrogate):
    """``g(x) = α / (2·(1 + (π/2·α·x)²))``; primitive ``arctan(π/2·α·x)/π + 1/2``."""

    name = "atan"
    default_alpha = 2.0

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        # Written as 1 / (k + k·c²·x²) with k = 2/(α·scale), c = π/2·α: one fused multiply-add and a reciprocal.
        k, c = 2.0 / (a * scale), math.pi / 2 * a
        return torch.addcmul(x.new_full((), k), x, x, value=k * c * c, out=x).reciprocal_()

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


class DSpike(Surrogate):
    """Dspike (Li et al., NeurIPS 2021) recentred on the threshold, temperature ``b = alpha``.

    ``g(x) = b·(1 - tanh²(b·x/w)) / (2·w·tanh(b/2))`` for ``|x| <= w/2``, else 0, which integrates to 1.
    Primitive ``clamp(tanh(b·x/w) / (2·tanh(b/2)) + 1/2, 0, 1)``. ``b -> 0`` is the straight-through
    estimator on the window, ``b -> ∞`` the step. The window width ``w`` is the neuron's threshold θ:
    :class:`spikegrad.neurons.LIF` sets it when it builds the surrogate from a name.
    """

    name = "dspike"
    default_alpha = 3.0
    alpha_range = (1e-4, 1e3)  # peak b/(2w·tanh(b/2)) ≈ b/(2w) for a threshold w down to 0.1

    def __init__(self, alpha: float | None = None, width: float = 1.0, **mask) -> None:
        super().__init__(alpha, **mask)
        if not width > 0:
            raise ValueError(f"surrogate 'dspike': width must be > 0, got {width!r}")
        self.width = float(width)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        b, w = self.alpha, self.width
        inside = x.abs().le_(w / 2)  # 0/1 as floats: float masks are much faster than boolean ones on CPU
        k = scale * b / (2 * w * math.tanh(b / 2))
        t = x.mul_(b / w).tanh_()
        # k·(1 - tanh²) as one fused multiply-add, in place.
        return torch.addcmul(t.new_full((), k), t, t, value=-k, out=t).mul_(inside)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        b, w = self.alpha, self.width
        return (torch.tanh(b * x / w) / (2 * math.tanh(b / 2)) + 0.5).clamp(0.0, 1.0)

    def support(self) -> float:
        return self.width / 2

    def config(self) -> dict:
        return {**super().config(), "width": self.width}


SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (Rectangle, Triangle, Sigmoid, ATan, DSpike)
}


def get(name: str | Surrogate, **params) -> Surrogate:
    """Build a surrogate from its name, e.g. ``get("triangle", alpha=2.0, mask_p=0.5)``.

    A :class:`Surrogate` instance is returned as it is. An unknown name raises a one-line ``ValueError``
    that lists the valid names.
    """
    if isinstance(name, Surrogate):
        if params:
            raise ValueError("surrogate parameters can only be given together with a surrogate name")
        return name
    cls = SURROGATES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown surrogate {name!r}; valid choices: {', '.join(SURROGATES)}")
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"surrogate {cls.name!r}: {err}") from None
