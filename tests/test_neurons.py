"""The fused multi-step LIF equals autograd through the step-by-step reference, for every option."""

import itertools

import pytest
import torch

from spikegrad import surrogates
from spikegrad.neurons import LIF, lif_multistep
from spikegrad.reference import lif_reference

OPTIONS = list(
    itertools.product(("hard", "soft"), (True, False), (True, False), list(surrogates.SURROGATES))
)


def _input(T=6, shape=(3, 7), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, *shape, generator=g, dtype=dtype) * 1.5 + 0.9).requires_grad_()


def _run(fn, x, surrogate, grad_s, grad_h, **kw):
    spikes, h = fn(x, surrogate, **kw)
    loss = (spikes * grad_s).sum() + (h * grad_h).sum()
    (grad_x,) = torch.autograd.grad(loss, x)
    return spikes.detach(), h.detach(), grad_x


@pytest.mark.parametrize("reset,detach_reset,decay_input,name", OPTIONS)
def test_fused_equals_reference(reset, detach_reset, decay_input, name):
    surrogate = surrogates.get(name, width=0.8) if name == "dspike" else surrogates.get(name)
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


@pytest.mark.parametrize("reset,detach_reset,decay_input,name", OPTIONS[:: len(surrogates.SURROGATES)])
def test_spike_gradient_only(reset, detach_reset, decay_input, name):
    """Losses that read only the spikes (the usual case) also match, including T = 1."""
    surrogate = surrogates.get("triangle", alpha=0.7)
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
    surrogate = surrogates.get("sigmoid")

    def potentials(inp):
        return lif_multistep(inp, surrogate, 2.0, 1.0, reset, True, decay_input)[1]

    h = potentials(x).detach()
    assert (h - 1.0).abs().min() > 1e-4  # no element sits on the threshold, so finite differences are valid
    assert torch.autograd.gradcheck(potentials, (x,), eps=1e-6, atol=1e-8)


def test_reset_gradient_term_matches_design_formulas():
    """One neuron, two steps: the reset's gradient is (1 - s) - h·g (hard) and 1 - θ·g (soft)."""
    surrogate = surrogates.get("rectangle", alpha=2.0)  # g = 1/2 on |h - θ| <= 1
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
    hard, h = lif_multistep(x, surrogates.get("atan"), 2.0, 1.0, "hard", True, True)
    # h: 1.0 (fires, H(0)=1) -> v=0; 1.0 -> fires; 0.0; 2.0 -> fires
    assert hard.flatten().tolist() == [1.0, 1.0, 0.0, 1.0]
    assert h.flatten().tolist() == [1.0, 1.0, 0.0, 2.0]
    soft, h = lif_multistep(torch.tensor([3.0, 0.0, 0.0]).view(3, 1), surrogates.get("atan"), 2.0, 1.0, "soft")
    # h1 = 1.5 -> s, v = 0.5; h2 = 0.25; h3 = 0.125
    assert soft.flatten().tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(h.flatten(), torch.tensor([1.5, 0.25, 0.125]))
    leak, h = lif_multistep(torch.tensor([0.6, 0.6]).view(2, 1), surrogates.get("atan"), 2.0, 1.0, decay_input=False)
    torch.testing.assert_close(h.flatten(), torch.tensor([0.6, 0.9]))  # h = 0.5·v + x
    assert leak.sum() == 0


def test_state_starts_from_zero_on_every_call():
    lif = LIF()
    x = torch.rand(4, 2, 10) * 3
    assert torch.equal(lif(x), lif(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_shapes(dtype):
    lif = LIF(surrogate="triangle")
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


def test_recording_switches():
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


def test_surrogate_is_in_the_state_dict():
    lif = LIF(surrogate="dspike", v_threshold=0.5)
    assert lif.surrogate.width == 0.5
    lif.surrogate.alpha = 4.25
    fresh = LIF(surrogate="atan")
    fresh.load_state_dict(lif.state_dict())
    assert fresh.surrogate.name == "dspike" and fresh.surrogate.alpha == 4.25 and fresh.surrogate.width == 0.5


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"reset": "zero"}, "reset"),
        ({"v_threshold": 0.0}, "v_threshold"),
        ({"tau": 1.0}, "tau"),
        ({"tau": 0.5, "decay_input": False}, "tau"),
        ({"surrogate": "relu"}, "surrogate"),
    ],
)
def test_invalid_settings_are_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError) as err:
        LIF(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("reset,detach_reset,decay_input,name", OPTIONS[::3])
def test_cuda_matches_cpu(reset, detach_reset, decay_input, name):
    surrogate = surrogates.get(name)
    kw = dict(tau=2.0, v_threshold=1.0, reset=reset, detach_reset=detach_reset, decay_input=decay_input)
    x = _input(shape=(64, 33))
    s_cpu, h_cpu = lif_multistep(x, surrogate, **kw)
    (g_cpu,) = torch.autograd.grad(s_cpu.sum(), x)
    xc = x.detach().cuda().requires_grad_()
    s_gpu, h_gpu = lif_multistep(xc, surrogate, **kw)
    (g_gpu,) = torch.autograd.grad(s_gpu.sum(), xc)
    assert torch.equal(s_gpu.cpu(), s_cpu)
    torch.testing.assert_close(g_gpu.cpu(), g_cpu, rtol=1e-6, atol=1e-9)
