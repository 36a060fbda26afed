"""Each surrogate's g(x) is the derivative of its smooth primitive, with the documented shape."""

import math

import pytest
import torch

from spikegrad.neurons import LIF
from spikegrad.surrogates import ATan, DSpike, Rectangle, Sigmoid, Surrogate, Triangle, surrogate_from_state

ALL = [Rectangle, Triangle, Sigmoid, ATan, DSpike]


def _points(surrogate: Surrogate) -> torch.Tensor:
    """Points spread over (-3, 3) away from the kinks at the edges of a compact support."""
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    w = surrogate.support()
    if math.isfinite(w):
        x = x[(x.abs() - w).abs() > 1e-3]
    return x


@pytest.mark.parametrize("shape", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("alpha", [None, 0.7, 2.5])
def test_grad_is_derivative_of_primitive(shape, alpha):
    surrogate = shape() if alpha is None else shape(alpha=alpha)
    x = _points(surrogate).requires_grad_()
    (derivative,) = torch.autograd.grad(surrogate.primitive(x).sum(), x)
    torch.testing.assert_close(surrogate.grad(x.detach()), derivative, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", ALL, ids=lambda c: c.__name__)
def test_primitive_is_a_step_from_zero_to_one(shape):
    surrogate = shape()
    ends = surrogate.primitive(torch.tensor([-1e4, 1e4], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize("shape", ALL, ids=lambda c: c.__name__)
def test_grad_integrates_to_one(shape):
    surrogate = shape()
    x = torch.linspace(-200, 200, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(surrogate.grad(x), x)
    assert area.item() == pytest.approx(1.0, abs=2e-3)


def test_shapes_match_design_formulas():
    x = torch.tensor([-0.6, -0.2, 0.0, 0.3, 0.5], dtype=torch.float64)
    rect = Rectangle(alpha=1.0).grad(x)
    torch.testing.assert_close(rect, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    tri = Triangle(alpha=2.0).grad(x)
    torch.testing.assert_close(tri, torch.clamp(2.0 - 4.0 * x.abs(), min=0))
    sig = Sigmoid(alpha=4.0).grad(x)
    torch.testing.assert_close(sig, 4 * torch.sigmoid(4 * x) * (1 - torch.sigmoid(4 * x)))
    atan = ATan(alpha=2.0).grad(x)
    torch.testing.assert_close(atan, 2.0 / (2 * (1 + (math.pi / 2 * 2.0 * x) ** 2)))
    ds = DSpike(alpha=3.0, width=1.0).grad(x)
    expected = 3.0 * (1 - torch.tanh(3.0 * x) ** 2) / (2 * math.tanh(1.5)) * (x.abs() <= 0.5)
    torch.testing.assert_close(ds, expected)


def test_dspike_limits():
    x = torch.linspace(-0.45, 0.45, 11, dtype=torch.float64)
    flat = DSpike(alpha=1e-4).grad(x)
    torch.testing.assert_close(flat, torch.ones_like(x), rtol=1e-6, atol=1e-6)  # straight-through on the window
    sharp = DSpike(alpha=40.0).grad(torch.tensor([0.0, 0.3], dtype=torch.float64))
    assert sharp[0] > 19 and sharp[1] < 1e-8  # approaches the Dirac delta


def test_grad_inplace_overwrites_only_its_argument():
    x = torch.randn(100)
    keep = x.clone()
    ATan().grad(x)
    assert torch.equal(x, keep)


def test_defaults_are_the_documented_ones():
    assert [shape().alpha for shape in ALL] == [1.0, 1.0, 4.0, 2.0, 3.0]
    assert ATan().mask_p == 0.0 and not ATan().masked


def test_dspike_window_is_the_owning_neurons_threshold():
    surrogate = DSpike(alpha=2.0)
    assert surrogate.width is None and surrogate.support() == 0.5  # alone: the window of θ = 1
    layer = LIF(surrogate, v_threshold=0.4)
    assert layer.surrogate.width == 0.4 and layer.surrogate.support() == pytest.approx(0.2)
    assert LIF(DSpike(width=0.8), v_threshold=0.4).surrogate.width == 0.8  # an explicit width is kept


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": -1}, {"mask_p": 1.0}, {"mask_p": -0.1}, {"width": 0}])
def test_bad_parameters_are_one_line_errors(bad):
    with pytest.raises(ValueError) as err:
        DSpike(**bad)
    assert "\n" not in str(err.value)


def test_state_round_trip():
    s = DSpike(alpha=2.0, width=0.5, mask_p=0.3, mask_rescale=True)
    state = s.state()
    assert state == {"class_path": "spikegrad.surrogates.shapes.DSpike",
                     "init_args": {"alpha": 2.0, "width": 0.5, "mask_p": 0.3, "mask_rescale": True, "mask_fill": 0.0}}
    rebuilt = surrogate_from_state(state)
    assert rebuilt == s and rebuilt is not s
    assert s.replace(alpha=4.0) == DSpike(alpha=4.0, width=0.5, mask_p=0.3, mask_rescale=True)
    with pytest.raises(ValueError, match="not a Surrogate subclass"):
        surrogate_from_state({"class_path": "spikegrad.neurons.LIF", "init_args": {}})


class _Quadratic(Surrogate):
    """A user's shape with an argument of its own: g(x) = k·max(0, 1 - x²)·3/4 (integrates to k)."""

    def __init__(self, alpha: float = 1.0, k: float = 1.0, **masking) -> None:
        super().__init__(alpha, **masking)
        self.k = k

    def grad_(self, x, scale=1.0):
        return x.square_().neg_().add_(1.0).clamp_(min=0.0).mul_(0.75 * self.k * scale)


def test_a_shape_of_ones_own_is_checkpointed_by_its_init_arguments():
    s = _Quadratic(k=0.5, mask_p=0.2)
    assert s.init_args() == {"alpha": 1.0, "k": 0.5, "mask_p": 0.2, "mask_rescale": False, "mask_fill": 0.0}
    assert surrogate_from_state(s.state()) == s


@pytest.mark.parametrize("shape", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scaled_grad_and_zero_at_infinity(shape, dtype):
    """``grad_(x, s) = s·g(x)`` (MSG's rescale, folded into each shape) and ``g(+∞) = 0`` exactly (MSG's drop)."""
    surrogate = shape(alpha=1.3)
    x = torch.cat([torch.linspace(-2, 2, 401, dtype=dtype), torch.tensor([math.inf], dtype=dtype)])
    plain = surrogate.grad(x)
    scaled = surrogate.grad_(x.clone(), 1 / 0.35)
    torch.testing.assert_close(scaled, plain / 0.35)
    assert plain[-1].item() == 0.0 and scaled[-1].item() == 0.0


def test_a_checkpoint_surrogate_is_imported_only_from_trusted_modules(monkeypatch):
    from spikegrad.surrogates import surrogate_from_state

    monkeypatch.delenv("SPIKEGRAD_TRUSTED_MODULES", raising=False)
    with pytest.raises(ValueError, match=r"^checkpoint surrogate: class_path 'antigravity.fly' is not in a trusted"):
        surrogate_from_state({"class_path": "antigravity.fly", "init_args": {}})  # never imported: never run
    rebuilt = surrogate_from_state({"class_path": "spikegrad.surrogates.ATan", "init_args": {"alpha": 3.0}})
    assert rebuilt.alpha == 3.0


@pytest.mark.parametrize("alpha", [0.5, 3.0, 6.0])
@pytest.mark.parametrize("width", [0.3, 1.0])
def test_dspike_kernel_grad_is_the_primitives_derivative_in_float64_and_float32(alpha, width):
    """The compiled kernels' form of Dspike (one ``exp`` instead of ``tanh``): the derivative of the primitive and
    the eager ``grad_`` in float64, and within 1e-6 relative of that derivative in float32, α as float or tensor."""
    surrogate = DSpike(alpha=alpha, width=width)
    x = (torch.linspace(-0.499, 0.499, 2001, dtype=torch.float64) * width).requires_grad_()
    (derivative,) = torch.autograd.grad(surrogate.primitive(x).sum(), x)
    x = x.detach()
    for a in (alpha, torch.tensor(alpha, dtype=torch.float64)):
        torch.testing.assert_close(surrogate.kernel_grad(x, a), derivative, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(surrogate.grad_(x.clone()), derivative, rtol=1e-12, atol=0.0)
    x32 = x.float()
    exact = surrogate.kernel_grad(x32.double(), alpha)  # float64 at the float32 points
    for a in (alpha, torch.tensor(alpha)):
        got = surrogate.kernel_grad(x32, a)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=0.0)
    outside = torch.tensor([-0.51 * width, 0.51 * width, math.inf])
    assert surrogate.kernel_grad(outside, torch.tensor(alpha)).tolist() == [0.0, 0.0, 0.0]
