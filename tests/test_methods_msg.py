"""Masked surrogate gradients (MSG): the mask inside the fused LIF backward (docs/methods.md, Li et al. 2024), with
the C stream and with the torch stream of the same masks."""

import math

import pytest
import torch

from spikegrad.neurons import LIF, lif_multistep
from spikegrad.neurons.reference import lif_reference
from spikegrad.surrogates import ATan, Sigmoid, Triangle

N = 200_000

pytestmark = pytest.mark.usefixtures("one_thread", "mask_stream")  # one thread: tiny models; both mask streams


def _local_grad(surrogate, x):
    """T = 1, leak form: ∂L/∂x = ∂L/∂s·g̃(x - θ) with ∂L/∂s = 1, i.e. the masked surrogate derivative itself."""
    x = x.clone().requires_grad_()
    spikes, _ = lif_multistep(x, surrogate, tau=2.0, v_threshold=1.0, decay_input=False)
    (grad,) = torch.autograd.grad(spikes.sum(), x)
    return grad


def _inputs(n=N, seed=0):
    return (torch.randn(1, n, generator=torch.Generator().manual_seed(seed)) * 0.5 + 1.0).double()


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_zeroed_fraction_is_p(p):
    x = _inputs()
    grad = _local_grad(Sigmoid(alpha=4.0, mask_p=p), x)  # sigmoid: g > 0 everywhere
    fraction = float((grad == 0).double().mean())
    bound = 5 * math.sqrt(p * (1 - p) / N)
    assert abs(fraction - p) < bound
    # kept entries are exactly g (no rescale by default)
    unmasked = Sigmoid(alpha=4.0).grad(x - 1.0)
    kept = grad != 0
    assert torch.equal(grad[kept], unmasked[kept])


@pytest.mark.parametrize("reset,detach_reset", [("hard", False), ("soft", True), ("hard", True)])
def test_p_zero_is_bitwise_the_unmasked_gradient_and_draws_no_random_numbers(reset, detach_reset):
    torch.manual_seed(0)
    x = torch.randn(6, 8, 32) + 0.8
    grad_out = torch.randn(6, 8, 32)
    grads = []
    for params in ({}, {"mask_p": 0.0, "mask_rescale": True, "mask_fill": 0.3}):
        xi = x.clone().requires_grad_()
        spikes, h = lif_multistep(xi, Triangle(alpha=2.0, **params), 2.0, 0.5, reset, detach_reset)
        state = torch.get_rng_state()
        (g,) = torch.autograd.grad(spikes, xi, grad_out)
        assert torch.equal(torch.get_rng_state(), state)
        grads.append(g)
    assert torch.equal(grads[0], grads[1])
    # and it is the step-by-step autograd gradient
    xr = x.clone().requires_grad_()
    ref, _ = lif_reference(xr, Triangle(alpha=2.0), 2.0, 0.5, reset, detach_reset)
    (g_ref,) = torch.autograd.grad(ref, xr, grad_out)
    torch.testing.assert_close(grads[0], g_ref)


def test_same_seed_same_masks_and_fresh_masks_every_backward():
    x = _inputs(5000)
    surrogate = Sigmoid(mask_p=0.5)
    torch.manual_seed(7)
    first, second = _local_grad(surrogate, x), _local_grad(surrogate, x)
    torch.manual_seed(7)
    again = _local_grad(surrogate, x)
    assert torch.equal(first, again)
    assert not torch.equal(first != 0, second != 0)  # a new mask on every backward


def test_masks_are_independent_per_time_step():
    surrogate = Sigmoid(mask_p=0.5)
    x = torch.full((4, 20_000), 0.4, dtype=torch.float64, requires_grad=True)
    # tau = 1 in the leak form is a neuron without memory: ∂L/∂x[t] = ∂L/∂s[t]·g̃[t] for each step alone
    spikes, _ = lif_multistep(x, surrogate, tau=1.0, v_threshold=1.0, decay_input=False)
    (g,) = torch.autograd.grad(spikes.sum(), x)
    kept = (g != 0).double()
    assert torch.all((kept.mean(1) - 0.5).abs() < 0.02)
    both = float((kept[0] * kept[3]).mean())
    assert abs(both - 0.25) < 0.02  # independent draws: P(kept at t=1 and t=4) = (1-p)²


def test_rescale_keeps_the_expected_gradient():
    p = 0.6
    x = _inputs()
    masked = _local_grad(ATan(mask_p=p, mask_rescale=True), x)
    plain = ATan().grad(x - 1.0)
    kept = masked != 0
    torch.testing.assert_close(masked[kept], plain[kept] / (1 - p))
    # E[g̃] = g: the mean over many independent entries matches within a statistical bound
    ratio = masked / plain
    bound = 5 * math.sqrt(p / (1 - p) / N)  # std of a Bernoulli(1-p)/(1-p) variable, over N entries
    assert abs(float(ratio.mean()) - 1.0) < bound


def test_fill_substitutes_masked_entries():
    x = _inputs(20_000)
    grad = _local_grad(Triangle(alpha=1.0, mask_p=0.5, mask_fill=0.25), x)
    plain = Triangle(alpha=1.0).grad(x - 1.0)
    substituted = grad != plain
    assert abs(float(substituted.double().mean()) - 0.5) < 0.03
    assert torch.all(grad[substituted] == 0.25)


def test_recorded_zero_fraction_reports_the_mask():
    lif = LIF(Sigmoid(mask_p=0.3))
    lif.record = True
    x = torch.randn(4, 64, 256, requires_grad=True)
    lif(x).sum().backward()
    assert abs(float(lif.backward_stats["surrogate_zero_fraction"]) - 0.3) < 0.02
