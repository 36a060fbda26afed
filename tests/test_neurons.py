"""The fused multi-step neurons equal autograd through the step-by-step references, for every option, with the
eager kernels (tests/test_kernels.py does the same for the compiled ones): spikes, potentials, and the gradients
of the input and of every learnable parameter (LIF, IF, learnable threshold; PLIF in tests/test_neuron_plif.py)."""

import itertools

import pytest
import torch

from spikegrad.kernels import fused_multistep
from spikegrad.neurons import IF, LIF, PLIF, SpikingNeuron, lif_multistep, spiking_layers
from spikegrad.neurons.reference import lif_reference, neuron_reference, reference_forward
from spikegrad.surrogates import ATan, DSpike, Rectangle, Sigmoid, Triangle

SHAPES = [Rectangle, Triangle, Sigmoid, ATan, DSpike]
OPTIONS = list(itertools.product(("hard", "soft"), (True, False), (True, False), SHAPES))


def _input(T=6, shape=(3, 7), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, *shape, generator=g, dtype=dtype) * 1.5 + 0.9).requires_grad_()


def _run(fn, x, surrogate, grad_s, grad_h, **kw):
    spikes, h = fn(x, surrogate, **kw)
    loss = (spikes * grad_s).sum() + (h * grad_h).sum()
    (grad_x,) = torch.autograd.grad(loss, x)
    return spikes.detach(), h.detach(), grad_x


def _option_id(value):
    return value.__name__ if isinstance(value, type) else str(value)


@pytest.mark.parametrize("reset,detach_reset,decay_input,shape", OPTIONS, ids=_option_id)
def test_fused_equals_reference(reset, detach_reset, decay_input, shape):
    surrogate = shape(width=0.8) if shape is DSpike else shape()
    kw = dict(tau=1.8, v_threshold=0.8, reset=reset, detach_reset=detach_reset, decay_input=decay_input)
    x = _input()
    g = torch.Generator().manual_seed(1)
    grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
    grad_h = torch.randn(x.shape, generator=g, dtype=x.dtype) * 0.1
    s1, h1, gx1 = _run(lif_multistep, x, surrogate, grad_s, grad_h, **kw)
    s2, h2, gx2 = _run(lif_reference, x, surrogate, grad_s, grad_h, **kw)
    assert s1.sum() > 0 and (s1 == 0).sum() > 0  # the test input fires some neurons, not all
    assert torch.equal(s1, s2)
    torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx1, gx2, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("reset,detach_reset,decay_input,shape", OPTIONS[:: len(SHAPES)], ids=_option_id)
def test_spike_gradient_only(reset, detach_reset, decay_input, shape):
    """Losses that read only the spikes (the usual case) also match, including T = 1."""
    surrogate = Triangle(alpha=0.7)
    for T in (1, 5):
        x = _input(T=T, seed=T)
        kw = dict(tau=2.0, v_threshold=1.0, reset=reset, detach_reset=detach_reset, decay_input=decay_input)
        s1, _ = lif_multistep(x, surrogate, **kw)
        (gx1,) = torch.autograd.grad(s1.sum(), x)
        s2, _ = lif_reference(x, surrogate, **kw)
        (gx2,) = torch.autograd.grad(s2.sum(), x)
        torch.testing.assert_close(gx1, gx2, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_gradcheck_potential_path(reset, decay_input):
    """With the reset detached, h is piecewise linear in x: its gradient is exact and gradcheck applies."""
    x = _input(T=4, shape=(5,), seed=3)
    surrogate = Sigmoid()

    def potentials(inp):
        return lif_multistep(inp, surrogate, 2.0, 1.0, reset, True, decay_input)[1]

    h = potentials(x).detach()
    assert (h - 1.0).abs().min() > 1e-4  # no element sits on the threshold, so finite differences are valid
    assert torch.autograd.gradcheck(potentials, (x,), eps=1e-6, atol=1e-8)


def test_reset_gradient_term_matches_design_formulas():
    """One neuron, two steps: the reset's gradient is (1 - s) - h·g (hard) and 1 - θ·g (soft)."""
    surrogate = Rectangle(alpha=2.0)  # g = 1/2 on |h - θ| <= 1
    x = torch.tensor([[1.6], [0.4]], dtype=torch.float64, requires_grad=True)
    tau, theta = 2.0, 1.0  # h1 = 0.8: no spike, inside the surrogate window, so the kept term differs
    for reset, keep in itertools.product(("hard", "soft"), (False, True)):
        spikes, h = lif_multistep(x, surrogate, tau, theta, reset, not keep, True)
        (grad,) = torch.autograd.grad(spikes[1].sum(), x)
        h1 = h[0].item()
        s1 = float(h1 >= theta)
        g1 = 0.5 if abs(h1 - theta) <= 1 else 0.0
        dv_dh = (1 - s1) if reset == "hard" else 1.0
        if keep:
            dv_dh = (1 - s1) - h1 * g1 if reset == "hard" else 1 - theta * g1
        g2 = 0.5 if abs(h[1].item() - theta) <= 1 else 0.0
        expected_x1 = g2 * (1 - 1 / tau) * dv_dh * (1 / tau)
        assert grad[0].item() == pytest.approx(expected_x1, rel=1e-12)
        assert grad[1].item() == pytest.approx(g2 / tau, rel=1e-12)


def test_forward_dynamics_by_hand():
    """Charge, fire at h >= θ (H(0) = 1), hard and soft reset, step by step."""
    x = torch.tensor([2.0, 2.0, 0.0, 4.0]).view(4, 1)
    hard, h = lif_multistep(x, ATan(), 2.0, 1.0, "hard", True, True)
    # h: 1.0 (fires, H(0)=1) -> v=0; 1.0 -> fires; 0.0; 2.0 -> fires
    assert hard.flatten().tolist() == [1.0, 1.0, 0.0, 1.0]
    assert h.flatten().tolist() == [1.0, 1.0, 0.0, 2.0]
    soft, h = lif_multistep(torch.tensor([3.0, 0.0, 0.0]).view(3, 1), ATan(), 2.0, 1.0, "soft")
    # h1 = 1.5 -> s, v = 0.5; h2 = 0.25; h3 = 0.125
    assert soft.flatten().tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(h.flatten(), torch.tensor([1.5, 0.25, 0.125]))
    leak, h = lif_multistep(torch.tensor([0.6, 0.6]).view(2, 1), ATan(), 2.0, 1.0, decay_input=False)
    torch.testing.assert_close(h.flatten(), torch.tensor([0.6, 0.9]))  # h = 0.5·v + x
    assert leak.sum() == 0


def test_state_starts_from_zero_on_every_call():
    lif = LIF()
    x = torch.rand(4, 2, 10) * 3
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_shapes(dtype):
    lif = LIF(Triangle())
    x = torch.randn(3, 2, 4, 5, 5, dtype=dtype, requires_grad=True)
    out = lif(x)
    assert out.dtype == dtype and out.shape == x.shape
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_autocast_bf16_integrates_in_float32():
    x = torch.randn(4, 8, 16) * 2
    lif = LIF()
    expected = lif(x.to(torch.bfloat16).float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = x.to(torch.bfloat16).requires_grad_()
        out = lif(xb)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), expected)
    out.float().sum().backward()
    assert xb.grad.dtype == torch.bfloat16


def test_recording_switches():  # the compiled backward's statistics: tests/test_kernels.py
    lif = LIF()
    x = (torch.randn(3, 4, 6) * 2).requires_grad_()
    lif(x).sum().backward()
    assert lif.recorded == {} and lif.backward_stats == {} and lif.potential is None
    lif.record = True
    lif.keep_potential = True
    lif(x).sum().backward()
    assert set(lif.recorded) == {"spikes", "potential"}
    assert set(lif.backward_stats) == {"surrogate_zero_fraction", "grad_h_zero_fraction"}
    assert lif.potential is not None and lif.potential.requires_grad


def test_recording_requests_are_counted_and_restore_the_layers_own_setting():
    lif = LIF()
    lif.record = True
    lif.request_recording("a")
    lif.request_recording("b")
    lif.release_recording("a")
    assert lif.record
    lif.release_recording("b")
    assert lif.record  # it was on before anyone asked
    other = LIF()
    other.request_recording("a")
    other.request_recording("a")  # the same owner twice is one request
    other(torch.ones(2, 1, 3))
    assert other.record and other.recorded
    other.release_recording("a")
    assert other.record is False and other.recorded == {}


def test_suspended_recording_records_nothing_and_restores_what_was_there():
    lif = LIF()
    lif.request_recording("monitor")
    lif.keep_potential = True
    x = torch.randn(3, 2, 5) * 2
    lif(x)
    recorded, potential = lif.recorded, lif.potential
    with lif.suspend_recording():
        assert not lif.record
        lif(x + 1.0)
        assert lif.potential is None
    assert lif.recorded is recorded and lif.potential is potential


def test_surrogate_is_in_the_state_dict():
    lif = LIF(DSpike(), v_threshold=0.5)
    assert lif.surrogate.width == 0.5
    lif.surrogate.alpha = 4.25
    fresh = LIF(ATan())
    fresh.load_state_dict(lif.state_dict())
    assert isinstance(fresh.surrogate, DSpike) and fresh.surrogate.alpha == 4.25 and fresh.surrogate.width == 0.5


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"reset": "zero"}, "reset"),
        ({"v_threshold": 0.0}, "v_threshold"),
        ({"tau": 1.0}, "tau"),
        ({"tau": 0.5, "decay_input": False}, "tau"),
        ({"backend": "triton"}, "backend"),
    ],
)
def test_invalid_settings_are_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError) as err:
        LIF(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(TypeError, match="must be a spikegrad.surrogates.Surrogate"):
        LIF(surrogate="atan")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("reset,detach_reset,decay_input,shape", OPTIONS[::3], ids=_option_id)
def test_cuda_matches_cpu(reset, detach_reset, decay_input, shape):
    surrogate = shape()
    kw = dict(tau=2.0, v_threshold=1.0, reset=reset, detach_reset=detach_reset, decay_input=decay_input)
    x = _input(shape=(64, 33))
    s_cpu, h_cpu = lif_multistep(x, surrogate, **kw)
    (g_cpu,) = torch.autograd.grad(s_cpu.sum(), x)
    xc = x.detach().cuda().requires_grad_()
    s_gpu, h_gpu = lif_multistep(xc, surrogate, **kw)
    (g_gpu,) = torch.autograd.grad(s_gpu.sum(), xc)
    assert torch.equal(s_gpu.cpu(), s_cpu)
    torch.testing.assert_close(g_gpu.cpu(), g_cpu, rtol=1e-6, atol=1e-9)


# --- the family: IF, LIF, learnable threshold; gradients of the parameters --------------------------------------
# The check below is shared: a neuron's own test file runs it with its options (tests/test_neuron_plif.py).
OPTIONS_OF_THE_BASE = list(itertools.product(("hard", "soft"), (True, False), (False, True)))  # reset, detach, θ


def layer_and_reference_grads(layer: SpikingNeuron, x, grad_s, grad_h):
    """Spikes, potentials and the gradients of x and of every parameter, fused and step by step."""
    layer.keep_potential = True
    params = list(layer.parameters())
    spikes = layer(x)
    fused = torch.autograd.grad((spikes * grad_s).sum() + (layer.potential * grad_h).sum(), [x, *params])
    s_ref, h_ref = reference_forward(layer, x)
    reference = torch.autograd.grad((s_ref * grad_s).sum() + (h_ref * grad_h).sum(), [x, *params])
    return (spikes, layer.potential.detach(), fused), (s_ref, h_ref.detach(), reference)


def family_input(seed=0, T=6, shape=(3, 7)):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, *shape, generator=g, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    return x, torch.randn(x.shape, generator=g, dtype=x.dtype), torch.randn(x.shape, generator=g, dtype=x.dtype) * 0.1


def check_equals_reference(layer: SpikingNeuron, parameters: int, rtol=1e-9, seed=0, T=6) -> None:
    """The layer (float64) against :func:`reference_forward`: spikes, potentials, and the gradients of the input and
    of its ``parameters`` learnable parameters, which must all receive one."""
    x, grad_s, grad_h = family_input(seed=seed, T=T)
    (s, h, fused), (s_ref, h_ref, reference) = layer_and_reference_grads(layer.double(), x, grad_s, grad_h)
    assert s.sum() > 0 and (s == 0).sum() > 0  # the input fires some neurons, not all
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(h, h_ref, rtol=1e-9, atol=1e-12)
    assert len(fused) == 1 + parameters
    for got, want in zip(fused, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=rtol, atol=1e-10)
    assert all(g.abs().sum() > 0 for g in fused[1:])  # the parameters do receive a gradient


@pytest.mark.parametrize("reset,detach_reset,learn_threshold", OPTIONS_OF_THE_BASE, ids=_option_id)
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_equals_reference_with_parameter_gradients(reset, detach_reset, learn_threshold, decay_input):
    layer = LIF(Triangle(alpha=0.7), tau=1.8, v_threshold=0.8, reset=reset, detach_reset=detach_reset,
                decay_input=decay_input, learn_threshold=learn_threshold)
    check_equals_reference(layer, parameters=int(learn_threshold))


@pytest.mark.parametrize("reset,detach_reset,learn_threshold", OPTIONS_OF_THE_BASE, ids=_option_id)
def test_if_equals_reference_with_parameter_gradients(reset, detach_reset, learn_threshold):
    layer = IF(DSpike(), v_threshold=0.8, reset=reset, detach_reset=detach_reset, learn_threshold=learn_threshold)
    check_equals_reference(layer, parameters=int(learn_threshold))


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_gradcheck_of_the_learnable_settings(reset, decay_input):
    """With the reset detached, h is piecewise linear in x, λ, κ and (soft reset) θ: gradcheck applies to all four.

    λ, κ and θ enter as 0-d tensors, as PLIF and a learnable threshold give them to the kernels.
    """
    x = family_input(seed=4, T=5, shape=(6,))[0]
    surrogate = Sigmoid()
    decay = torch.tensor(0.45, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(0.55 if decay_input else 1.0, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)

    def potentials(inp, lam, kappa, th):
        return fused_multistep(inp, surrogate, lam, kappa, th, reset == "hard", True)[1]

    h = potentials(x, decay, scale, theta).detach()
    assert (h - 1.0).abs().min() > 1e-4  # no element sits on the threshold, so finite differences are valid
    assert torch.autograd.gradcheck(potentials, (x, decay, scale, theta), eps=1e-6, atol=1e-8)


def test_parameter_gradients_match_design_formulas_by_hand():
    """One neuron, two steps, loss = s[2] + c·h[2]: ∂L/∂λ, ∂L/∂κ and ∂L/∂θ written out (docs/design.md)."""
    surrogate = Rectangle(alpha=2.0)  # g = 1/2 on |h - θ| <= 1
    c = 0.3
    for reset, keep in itertools.product(("hard", "soft"), (False, True)):
        lam, kappa, theta = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, 0.5, 1.0))
        x = torch.tensor([[2.4], [0.8]], dtype=torch.float64)  # h1 = 1.2: fires, inside the window
        spikes, h = fused_multistep(x, surrogate, lam, kappa, theta, reset == "hard", not keep)
        grads = torch.autograd.grad(spikes[1].sum() + c * h[1].sum(), [lam, kappa, theta])
        h1, s1, g1 = 1.2, 1.0, 0.5
        v1 = h1 * (1 - s1) if reset == "hard" else h1 - 1.0 * s1
        h2 = 0.5 * v1 + 0.5 * 0.8
        g2 = 0.5 if abs(h2 - 1.0) <= 1 else 0.0
        a2 = g2 + c  # ∂L/∂h[2]
        if reset == "hard":
            dv_dh = (1 - s1) - (h1 * g1 if keep else 0.0)
            dv_dtheta = h1 * g1 if keep else 0.0
        else:
            dv_dh = 1 - (1.0 * g1 if keep else 0.0)
            dv_dtheta = -s1 + (1.0 * g1 if keep else 0.0)
        a1 = 0.5 * dv_dh * a2
        assert grads[0].item() == pytest.approx(a2 * v1, rel=1e-12, abs=1e-15)  # Σ a[t+1]·v[t]
        assert grads[1].item() == pytest.approx(a1 * 2.4 + a2 * 0.8, rel=1e-12)  # Σ a[t]·x[t]
        assert grads[2].item() == pytest.approx(-g2 + 0.5 * a2 * dv_dtheta, rel=1e-12, abs=1e-15)


def test_neuron_reference_is_the_lif_reference():
    x = family_input(seed=5)[0]
    for decay_input in (True, False):
        a = lif_reference(x, ATan(), 1.8, 0.8, "soft", False, decay_input)
        b = neuron_reference(x, ATan(), 1 - 1 / 1.8, 1 / 1.8 if decay_input else 1.0, 0.8, "soft", False)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_if_integrates_without_leak():
    layer = IF(ATan(), v_threshold=1.0, reset="soft")
    spikes = layer(torch.tensor([0.4, 0.4, 0.4, 0.0]).view(4, 1))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]  # 0.4, 0.8, 1.2 -> fire, keep 0.2


def test_learned_threshold_is_a_parameter_and_logged_value():
    layer = LIF(v_threshold=0.7, learn_threshold=True)
    assert isinstance(layer.v_threshold, torch.nn.Parameter) and dict(layer.named_parameters()) == {
        "v_threshold": layer.v_threshold}
    assert layer.learned_values() == {"v_threshold": pytest.approx(0.7)}
    assert LIF().learned_values() == {} and list(LIF().parameters()) == []
    with torch.no_grad():
        layer.v_threshold.fill_(0.5)
    fresh = LIF(learn_threshold=True)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.threshold_value() == 0.5


def test_spiking_layers_finds_every_neuron_of_the_family_in_order():
    net = torch.nn.Sequential(LIF(), torch.nn.Identity(), torch.nn.Sequential(PLIF(), IF()))
    assert [type(m).__name__ for m in spiking_layers(net).values()] == ["LIF", "PLIF", "IF"]
    assert list(spiking_layers(net)) == ["0", "2.0", "2.1"]
