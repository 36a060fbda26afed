"""The surrogate shapes: rectangle, triangle, sigmoid, arctan and Dspike (docs/design.md, "Surrogate gradients").

With ``x = h - θ``:

==============  ===================================================  ===============  =======
class           g(x)                                                 alpha means      default
==============  ===================================================  ===============  =======
``Rectangle``   ``(1/a)·1[|x| <= a/2]``                               width ``a``       1.0
``Triangle``    ``max(0, α - α²|x|)``                                 slope ``α``       1.0
``Sigmoid``     ``α·σ(αx)·(1 - σ(αx))``                               steepness ``α``   4.0
``ATan``        ``α / (2·(1 + (π/2·α·x)²))``                          steepness ``α``   2.0
``DSpike``      ``b·(1 - tanh²(b·x/w)) / (2·w·tanh(b/2))``, |x|<=w/2   temperature ``b`` 3.0
==============  ===================================================  ===============  =======

Sources: rectangle/triangle/sigmoid/atan as in SpikingJelly (each integrates to 1). The triangle is the MSG
code's ``PiecewiseLinearGrad`` / ``MixedPLGrad`` (Brain-Cog-Lab/msg, surrogate.py:173-175 and 338-340, used with
α = 2) exactly. The MSG code's ``AtanGrad`` (surrogate.py:258-260) is ``α / (1 + (π/2·α·x)²)``, twice ``ATan`` at
the same α (it integrates to 2): the same width needs the same α, and the code's gradient is ours times 2 (no
single α of ours gives both its width and its height). Dspike from Li et al., "Differentiable Spike", NeurIPS
2021, where the forward function on ``z = h/θ ∈ [0, 1]`` is ``[tanh(b(z - ½)) + tanh(b/2)] / [2 tanh(b/2)]``;
recentred on the threshold its derivative w.r.t. ``x = h - θ`` is the formula above with window width ``w = θ``.

Every shape takes the masking options of MSG (``mask_p``, ``mask_rescale``, ``mask_fill``) through
:class:`spikegrad.surrogates.base.Surrogate`. In configs::

    model:
      surrogate:
        class_path: Triangle            # or spikegrad.surrogates.Triangle, or a class of your own module
        init_args: {alpha: 2.0, mask_p: 0.5}
"""

from __future__ import annotations

import math

import torch

from spikegrad.surrogates.base import Surrogate

__all__ = ["ATan", "DSpike", "Rectangle", "Sigmoid", "Triangle"]


class Rectangle(Surrogate):
    """``g(x) = (1/a)·1[|x| <= a/2]``; primitive ``clamp(x/a + 1/2, 0, 1)``.

    Args:
        alpha: the width ``a`` of the window, > 0.
    """

    def __init__(self, alpha: float = 1.0, **masking) -> None:
        super().__init__(alpha, **masking)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        return x.abs_().le_(a / 2).mul_(scale / a)

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        return (x.abs() <= alpha / 2).to(x.dtype) / alpha

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return (x / self.alpha + 0.5).clamp(0.0, 1.0)

    def support(self) -> float:
        return self.alpha / 2


class Triangle(Surrogate):
    """``g(x) = max(0, α - α²|x|)``; primitive ``clamp(1/2 + αx - α²x|x|/2, 0, 1)`` for ``|x| <= 1/α``.

    TET's ``(1/γ²)·max(0, γ - |x|)`` is ``α = 1/γ``; the MSG code uses ``α = 2``.

    Args:
        alpha: the slope ``α`` > 0 (the window is ``|x| <= 1/α``).
    """

    alpha_range = (1e-2, 1e2)  # the backward multiplies by α²

    def __init__(self, alpha: float = 1.0, **masking) -> None:
        super().__init__(alpha, **masking)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        # s·(α - α²|x|) as one fused op (0-d tensor minus scaled tensor), then the clamp: three passes.
        return torch.sub(x.new_full((), a * scale), x.abs_(), alpha=a * a * scale, out=x).clamp_(min=0.0)

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        return (alpha - alpha * alpha * x.abs()).clamp(min=0.0)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        inside = 0.5 + a * x - 0.5 * a * a * x * x.abs()
        return torch.where(x.abs() <= 1.0 / a, inside, (x > 0).to(x.dtype))

    def support(self) -> float:
        return 1.0 / self.alpha


class Sigmoid(Surrogate):
    """``g(x) = α·σ(αx)·(1 - σ(αx))``; primitive ``σ(αx)``.

    Args:
        alpha: the steepness ``α`` > 0 (larger: closer to the step).
    """

    def __init__(self, alpha: float = 4.0, **masking) -> None:
        super().__init__(alpha, **masking)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        sig = x.mul_(a).sigmoid_()
        # σ - σ² in one fused multiply-add, in place.
        return torch.addcmul(sig, sig, sig, value=-1.0, out=sig).mul_(a * scale)

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(alpha * x)
        return alpha * (sig - sig * sig)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * x)


class ATan(Surrogate):
    """``g(x) = α / (2·(1 + (π/2·α·x)²))``; primitive ``arctan(π/2·α·x)/π + 1/2``.

    Args:
        alpha: the steepness ``α`` > 0 (larger: closer to the step).
    """

    def __init__(self, alpha: float = 2.0, **masking) -> None:
        super().__init__(alpha, **masking)

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        a = self.alpha
        # Written as 1 / (k + k·c²·x²) with k = 2/(α·scale), c = π/2·α: one fused multiply-add and a reciprocal.
        k, c = 2.0 / (a * scale), math.pi / 2 * a
        return torch.addcmul(x.new_full((), k), x, x, value=k * c * c, out=x).reciprocal_()

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        k = 2.0 / alpha
        c = math.pi / 2 * alpha
        return 1.0 / (k + (k * c * c) * (x * x))

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


class DSpike(Surrogate):
    """Dspike (Li et al., NeurIPS 2021) recentred on the threshold, temperature ``b = alpha``.

    ``g(x) = b·(1 - tanh²(b·x/w)) / (2·w·tanh(b/2))`` for ``|x| <= w/2``, else 0, which integrates to 1.
    Primitive ``clamp(tanh(b·x/w) / (2·tanh(b/2)) + 1/2, 0, 1)``. ``b -> 0`` is the straight-through
    estimator on the window, ``b -> ∞`` the step.

    Args:
        alpha: the temperature ``b`` > 0 (larger: closer to the step).
        width: the window width ``w``; ``None`` (default) takes the threshold θ of the neuron that owns the
            surrogate (the paper's window ``h/θ ∈ [0, 1]``; its initial value when the threshold is learned).
    """

    alpha_range = (1e-4, 1e3)  # peak b/(2w·tanh(b/2)) ≈ b/(2w) for a threshold w down to 0.1

    def __init__(self, alpha: float = 3.0, width: float | None = None, **masking) -> None:
        super().__init__(alpha, **masking)
        if width is not None and not width > 0:
            raise ValueError(f"surrogate DSpike: width must be > 0, got {width!r}")
        self.width = None if width is None else float(width)

    def bind_threshold(self, v_threshold: float) -> None:
        if self.width is None:
            self.width = float(v_threshold)

    def _width(self) -> float:
        return 1.0 if self.width is None else self.width

    def grad_(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        b, w = self.alpha, self._width()
        inside = x.abs().le_(w / 2)  # 0/1 as floats: float masks are much faster than boolean ones on CPU
        k = scale * b / (2 * w * math.tanh(b / 2))
        t = x.mul_(b / w).tanh_()
        # k·(1 - tanh²) as one fused multiply-add, in place.
        return torch.addcmul(t.new_full((), k), t, t, value=-k, out=t).mul_(inside)

    def kernel_grad(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        """``g(x)`` written with ``1 - tanh²(z) = 4e/(1 + e)²``, ``e = exp(-2|z|)``, ``z = b·x/w`` (exact).

        One ``exp`` and a division per element instead of a ``tanh``, which is dearer in the vectorised CPU code
        the compiler emits, and no cancellation where ``tanh`` is near 1: in float32 within 1e-6 relative of the
        float64 value for ``b <= 6`` (the ``1 - tanh²`` form drifts to 1e-5 at ``b = 6``, 5e-4 at ``b = 10``)."""
        b, w = alpha, self._width()
        half = torch.tanh(b / 2) if isinstance(b, torch.Tensor) else math.tanh(b / 2)
        k4 = 2 * b / (w * half)  # 4·k, k = b / (2w·tanh(b/2)); per call, not per element (scalar code)
        ax = x.abs()
        e = torch.exp(ax * (-2 * b / w))
        d = 1.0 + e
        return k4 * e / (d * d) * (ax <= w / 2).to(x.dtype)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        b, w = self.alpha, self._width()
        return (torch.tanh(b * x / w) / (2 * math.tanh(b / 2)) + 0.5).clamp(0.0, 1.0)

    def support(self) -> float:
        return self._width() / 2
