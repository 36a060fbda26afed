"""Each surrogate's g(x) is the derivative of its smooth primitive, with the documented shape."""

import math

import pytest
import torch

from spikegrad import surrogates

ALL = list(surrogates.SURROGATES)


def _points(surrogate: surrogates.Surrogate) -> torch.Tensor:
    """Points spread over (-3, 3) away from the kinks at the edges of a compact support."""
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    w = surrogate.support()
    if math.isfinite(w):
        x = x[(x.abs() - w).abs() > 1e-3]
    return x


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("alpha", [None, 0.7, 2.5])
def test_grad_is_derivative_of_primitive(name, alpha):
    surrogate = surrogates.get(name, alpha=alpha)
    x = _points(surrogate).requires_grad_()
    (derivative,) = torch.autograd.grad(surrogate.primitive(x).sum(), x)
    torch.testing.assert_close(surrogate.grad(x.detach()), derivative, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_primitive_is_a_step_from_zero_to_one(name):
    surrogate = surrogates.get(name)
    ends = surrogate.primitive(torch.tensor([-1e4, 1e4], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([0.0, 1.0], dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_grad_integrates_to_one(name):
    surrogate = surrogates.get(name)
    x = torch.linspace(-200, 200, 2_000_001, dtype=torch.float64)
    area = torch.trapezoid(surrogate.grad(x), x)
    assert area.item() == pytest.approx(1.0, abs=2e-3)


def test_shapes_match_design_formulas():
    x = torch.tensor([-0.6, -0.2, 0.0, 0.3, 0.5], dtype=torch.float64)
    rect = surrogates.get("rectangle", alpha=1.0).grad(x)
    torch.testing.assert_close(rect, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    tri = surrogates.get("triangle", alpha=2.0).grad(x)
    torch.testing.assert_close(tri, torch.clamp(2.0 - 4.0 * x.abs(), min=0))
    sig = surrogates.get("sigmoid", alpha=4.0).grad(x)
    torch.testing.assert_close(sig, 4 * torch.sigmoid(4 * x) * (1 - torch.sigmoid(4 * x)))
    atan = surrogates.get("atan", alpha=2.0).grad(x)
    torch.testing.assert_close(atan, 2.0 / (2 * (1 + (math.pi / 2 * 2.0 * x) ** 2)))
    ds = surrogates.get("dspike", alpha=3.0, width=1.0).grad(x)
    expected = 3.0 * (1 - torch.tanh(3.0 * x) ** 2) / (2 * math.tanh(1.5)) * (x.abs() <= 0.5)
    torch.testing.assert_close(ds, expected)


def test_dspike_limits():
    x = torch.linspace(-0.45, 0.45, 11, dtype=torch.float64)
    flat = surrogates.get("dspike", alpha=1e-4).grad(x)
    torch.testing.assert_close(flat, torch.ones_like(x), rtol=1e-6, atol=1e-6)  # straight-through on the window
    sharp = surrogates.get("dspike", alpha=40.0).grad(torch.tensor([0.0, 0.3], dtype=torch.float64))
    assert sharp[0] > 19 and sharp[1] < 1e-8  # approaches the Dirac delta


def test_grad_inplace_overwrites_only_its_argument():
    x = torch.randn(100)
    keep = x.clone()
    surrogates.get("atan").grad(x)
    assert torch.equal(x, keep)


def test_unknown_name_is_a_one_line_error_listing_the_choices():
    with pytest.raises(ValueError) as err:
        surrogates.get("relu")
    message = str(err.value)
    assert "\n" not in message and "'relu'" in message
    for name in ALL:
        assert name in message


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": -1}, {"mask_p": 1.0}, {"mask_p": -0.1}, {"beta": 1}])
def test_bad_parameters_are_one_line_errors(bad):
    with pytest.raises(ValueError) as err:
        surrogates.get("sigmoid", **bad)
    assert "\n" not in str(err.value)


def test_config_round_trip():
    s = surrogates.get("dspike", alpha=2.0, width=0.5, mask_p=0.3, mask_rescale=True)
    config = s.config()
    rebuilt = surrogates.get(config.pop("name"), **config)
    assert rebuilt.config() == s.config()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scaled_grad_and_zero_at_infinity(name, dtype):
    """``grad_(x, s) = s·g(x)`` (MSG's rescale, folded into each shape) and ``g(+∞) = 0`` exactly (MSG's drop)."""
    surrogate = surrogates.get(name, alpha=1.3)
    x = torch.cat([torch.linspace(-2, 2, 401, dtype=dtype), torch.tensor([math.inf], dtype=dtype)])
    plain = surrogate.grad(x)
    scaled = surrogate.grad_(x.clone(), 1 / 0.35)
    torch.testing.assert_close(scaled, plain / 0.35)
    assert plain[-1].item() == 0.0 and scaled[-1].item() == 0.0
