"""Behaviour of the eager fused LIF's fast paths: MSG masking, memory layouts, gradients."""

import pytest
import torch

from spikegrad.neurons import lif_multistep
from spikegrad.neurons.reference import lif_reference
from spikegrad.surrogates import ATan, Sigmoid, Surrogate, Triangle
from spikegrad.surrogates.masks import BernoulliMask


def _g(surrogate, x, **kw):
    """∂L/∂x for T = 1 and L = Σ spikes, i.e. κ·g̃(x - θ) (κ = 1 in the leak form)."""
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(lif_multistep(x, surrogate, tau=2.0, decay_input=False, **kw)[0].sum(), x)
    return grad


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_drops_fraction_p_and_keeps_exact_values(p):
    torch.manual_seed(0)
    x = torch.randn(1, 200_000, dtype=torch.float64)
    plain = _g(Sigmoid(), x)
    masked = _g(Sigmoid(mask_p=p), x)
    dropped = (masked == 0).double().mean().item()
    assert abs(dropped - p) < 0.005  # 6 standard deviations at most
    kept = masked != 0
    assert torch.equal(masked[kept], plain[kept])


def test_mask_is_fresh_on_every_backward_and_follows_the_seed():
    x = torch.randn(1, 10_000)
    surrogate = ATan(mask_p=0.5)
    torch.manual_seed(1)
    a = _g(surrogate, x)
    b = _g(surrogate, x)
    torch.manual_seed(1)
    c = _g(surrogate, x)
    assert not torch.equal(a == 0, b == 0)
    assert torch.equal(a, c)


def test_mask_rescale_and_fill():
    x = torch.randn(1, 50_000, dtype=torch.float64)
    plain = _g(Triangle(alpha=0.5), x)
    torch.manual_seed(2)
    filled = _g(Triangle(alpha=0.5, mask_p=0.3, mask_rescale=True, mask_fill=0.25), x)
    torch.manual_seed(2)
    zeroed = _g(Triangle(alpha=0.5, mask_p=0.3, mask_rescale=True), x)
    dropped = (zeroed == 0) & (plain != 0)
    kept = zeroed != 0
    torch.testing.assert_close(zeroed[kept], plain[kept] / 0.7, rtol=1e-12, atol=0.0)
    assert torch.equal(filled[dropped], torch.full_like(filled[dropped], 0.25))
    assert torch.equal(filled[kept], zeroed[kept])


class _FixedMask(Surrogate):
    """ATan times a given per-step mask; finds the step of each call by its input (reference runs per step)."""

    def __init__(self, mask, shifted_potentials):
        super().__init__()
        self.base = ATan()
        self.mask, self.shifted = mask, shifted_potentials

    def grad_(self, x):
        t = next(t for t in range(len(self.shifted)) if torch.allclose(x, self.shifted[t], rtol=1e-12, atol=1e-12))
        return self.base.grad_(x).mul_(self.mask[t])


def test_masked_surrogate_goes_through_the_time_recursion():
    """With MSG, the fused backward equals the step-by-step reference fed with the same mask."""
    torch.manual_seed(3)
    x = (torch.randn(6, 40, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    grad_s = torch.randn_like(x)
    kw = dict(tau=2.0, v_threshold=1.0, reset="hard", detach_reset=False, decay_input=True)
    masked = ATan(mask_p=0.5)
    torch.manual_seed(4)
    (gx,) = torch.autograd.grad(lif_multistep(x, masked, **kw)[0], x, grad_s)
    torch.manual_seed(4)  # the backward's only random draw is the mask's seed: replay it
    mask = BernoulliMask(x, 0.5).kept().to(x.dtype)
    assert 0.4 < (mask == 0).double().mean() < 0.6
    h_ref = lif_reference(x.detach(), ATan(), **kw)[1]
    fixed = _FixedMask(mask, h_ref - kw["v_threshold"])
    (gx_ref,) = torch.autograd.grad(lif_reference(x, fixed, **kw)[0], x, grad_s)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-6, atol=1e-12)


def test_channels_last_and_strided_inputs_match_contiguous():
    torch.manual_seed(5)
    T, B, C, H, W = 4, 3, 5, 6, 6
    base = torch.randn(T * B, C, H, W) * 1.5 + 0.9
    x_cl = base.contiguous(memory_format=torch.channels_last).unflatten(0, (T, B)).requires_grad_()
    x_c = base.unflatten(0, (T, B)).contiguous().requires_grad_()
    grad = torch.randn(T, B, C, H, W)
    surrogate = ATan()
    s_cl, _ = lif_multistep(x_cl, surrogate)
    s_c, _ = lif_multistep(x_c, surrogate)
    assert torch.equal(s_cl, s_c)
    (g_cl,) = torch.autograd.grad(s_cl, x_cl, grad)
    (g_c,) = torch.autograd.grad(s_c, x_c, grad)
    torch.testing.assert_close(g_cl, g_c, rtol=1e-6, atol=1e-7)


def test_expanded_incoming_gradient_and_zero_leak():
    """``sum().backward()`` gives a stride-0 gradient; τ = 1 in the leak form means no memory (λ = 0)."""
    x = (torch.randn(5, 7, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    surrogate = Triangle()
    for tau in (1.0, 3.0):
        kw = dict(tau=tau, v_threshold=1.0, reset="soft", detach_reset=False, decay_input=False)
        (g1,) = torch.autograd.grad(lif_multistep(x, surrogate, **kw)[0].sum(), x)
        (g2,) = torch.autograd.grad(lif_reference(x, surrogate, **kw)[0].sum(), x)
        torch.testing.assert_close(g1, g2, rtol=1e-6, atol=1e-12)
