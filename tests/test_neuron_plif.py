"""PLIF (Fang et al., ICCV 2021): its learnable τ = 1/sigmoid(w) gets the gradient of the step-by-step reference through
the fused backward, for every option, on both backends (the checks of tests/test_neurons.py with PLIF's options)."""

import math

import pytest
import torch

from spikegrad.kernels import fused_multistep
from spikegrad.neurons import PLIF
from spikegrad.surrogates import ATan, Sigmoid, Triangle
from test_neurons import OPTIONS_OF_THE_BASE, check_equals_reference, family_input


@pytest.mark.parametrize("reset,detach_reset,learn_threshold", OPTIONS_OF_THE_BASE, ids=str)
@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_equals_reference_with_the_gradient_of_w(reset, detach_reset, learn_threshold, decay_input):
    layer = PLIF(Triangle(alpha=0.7), init_tau=1.8, v_threshold=0.8, reset=reset, detach_reset=detach_reset,
                 decay_input=decay_input, learn_threshold=learn_threshold)
    check_equals_reference(layer, parameters=1 + learn_threshold)


# Compiled: every reset × reset-gradient setting (each a branch of ∂L/∂θ in the kernel) and both charge forms, τ and
# θ learned (tensor arguments of the kernels); each setting compiles one forward and one backward kernel (seconds).
COMPILED = [("hard", False, True), ("hard", True, False), ("soft", False, False), ("soft", True, True)]


@pytest.mark.parametrize("reset,detach_reset,decay_input", COMPILED, ids=str)
def test_compiled_plif_equals_reference_with_the_gradients_of_w_and_threshold(reset, detach_reset, decay_input):
    layer = PLIF(Sigmoid(), init_tau=1.8, v_threshold=0.8, reset=reset, detach_reset=detach_reset,
                 decay_input=decay_input, learn_threshold=True, backend="compile")
    check_equals_reference(layer, parameters=2, rtol=1e-7, seed=7, T=5)


@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_gradcheck_of_w_and_threshold(backend):
    """Soft reset, detached: h is piecewise linear in x and θ and smooth in w, so gradcheck applies."""
    layer = PLIF(Sigmoid(), init_tau=1.8, v_threshold=1.0, reset="soft", learn_threshold=True).double()
    x = family_input(seed=4, T=5, shape=(6,))[0]

    def potentials(inp, w, theta):  # the layer's forward with its parameters as inputs (gradcheck perturbs them)
        k = torch.sigmoid(w)
        return fused_multistep(inp, layer.surrogate, 1 - k, k, theta, False, True, backend=backend)[1]

    w = layer.w.detach().clone().requires_grad_()
    theta = layer.v_threshold.detach().clone().requires_grad_()
    assert (potentials(x, w, theta).detach() - 1.0).abs().min() > 1e-4  # finite differences cross no threshold
    assert torch.autograd.gradcheck(potentials, (x, w, theta), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("decay_input", [True, False])
def test_gradient_of_w_is_the_chain_rule_through_sigmoid(decay_input):
    """∂L/∂w = (∂L/∂κ·1[decay_input] - ∂L/∂λ)·k·(1 - k), with ∂L/∂λ and ∂L/∂κ from the fused backward."""
    layer = PLIF(ATan(), init_tau=3.0, decay_input=decay_input, reset="hard", detach_reset=False).double()
    x, grad_s, _ = family_input(seed=2)
    (grad_w,) = torch.autograd.grad((layer(x) * grad_s).sum(), layer.w)
    k = float(torch.sigmoid(layer.w))  # 1/3 up to the float32 rounding of w
    lam = torch.tensor(1 - k, dtype=torch.float64, requires_grad=True)
    kappa = torch.tensor(k if decay_input else 1.0, dtype=torch.float64, requires_grad=True)
    spikes, _ = fused_multistep(x, layer.surrogate, lam, kappa, 1.0, True, False)
    grad_lam, grad_kappa = torch.autograd.grad((spikes * grad_s).sum(), [lam, kappa])
    expected = ((grad_kappa if decay_input else 0.0) - grad_lam) * k * (1 - k)
    torch.testing.assert_close(grad_w, expected, rtol=1e-9, atol=1e-12)


def test_tau_is_initialised_and_stored_as_w():
    layer = PLIF(init_tau=2.0)
    assert float(layer.w) == 0.0 and layer.tau == pytest.approx(2.0)  # sigmoid(0) = 1/2
    layer = PLIF(init_tau=4.0, decay_input=False)
    assert layer.tau == pytest.approx(4.0) and float(layer.w) == pytest.approx(-math.log(3.0))
    decay, scale = layer.coefficients()
    assert float(decay) == pytest.approx(0.75) and scale == 1.0
    assert layer.learned_values() == {"tau": pytest.approx(4.0)}
    with torch.no_grad():
        layer.w.fill_(1.0)
    fresh = PLIF()
    fresh.load_state_dict(layer.state_dict())
    assert fresh.tau == pytest.approx(1 + math.exp(-1.0)) and "tau=" in repr(fresh)
    with pytest.raises(ValueError, match="neuron init_tau must be > 1"):
        PLIF(init_tau=1.0)


def test_training_moves_tau_towards_a_shorter_memory_when_only_the_present_matters():
    """A loss on each step's own input: a long memory only adds stale charge, so gradient descent lowers τ."""
    torch.manual_seed(0)
    layer = PLIF(Sigmoid(alpha=2.0), init_tau=4.0, reset="soft")
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.rand(8, 256, 16) * 2.5
    target = (x >= 1.5).float()  # fire exactly where the present input is large
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(layer(x), target).backward()
        optimizer.step()
    assert layer.tau < 3.0


def test_eager_and_compiled_plif_train_alike_in_float32():
    grads = {}
    for backend in ("eager", "compile"):
        torch.manual_seed(0)
        lin = torch.nn.Linear(12, 16)
        layer = PLIF(ATan(), learn_threshold=True, backend=backend)
        layer(lin(torch.randn(4, 8, 12)) * 2).sum().backward()
        grads[backend] = [p.grad for p in (*lin.parameters(), *layer.parameters())]
    for got, want in zip(grads["compile"], grads["eager"], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
