"""The ``compile`` backend (torch.compile-generated kernels) equals the eager path and the references."""

import pytest
import torch

from spikegrad.neurons import IF, LIF, lif_multistep
from spikegrad.neurons.reference import lif_reference
from spikegrad.surrogates import ATan, DSpike

# Two settings that together take every branch of the kernels (hard/soft, kept reset gradient, charge/leak
# form, a full-support and a windowed surrogate); each compiles one forward and one backward kernel.
SETTINGS = [
    dict(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False, decay_input=True, name="atan"),
    dict(tau=1.5, v_threshold=0.8, reset="soft", detach_reset=False, decay_input=False, name="dspike"),
]


def _grads(fn, x, surrogate, grad_s, grad_h, **kw):
    spikes, h = fn(x, surrogate, **kw)
    (gx,) = torch.autograd.grad((spikes * grad_s).sum() + (h * grad_h).sum(), x)
    return spikes.detach(), h.detach(), gx


def _surrogate(name, threshold, **params):
    return DSpike(width=threshold, **params) if name == "dspike" else ATan(**params)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s['reset']}-{s['name']}")
def test_compiled_equals_reference_float64(setting):
    kw = dict(setting)
    surrogate = _surrogate(kw.pop("name"), kw["v_threshold"])
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(5, 3, 7, generator=g, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
    grad_h = torch.randn(x.shape, generator=g, dtype=x.dtype) * 0.1
    s_ref, h_ref, gx_ref = _grads(lif_reference, x, surrogate, grad_s, grad_h, **kw)
    s_c, h_c, gx_c = _grads(lif_multistep, x, surrogate, grad_s, grad_h, backend="compile", **kw)
    assert s_ref.sum() > 0 and (s_ref == 0).sum() > 0
    assert torch.equal(s_c, s_ref)
    torch.testing.assert_close(h_c, h_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gx_c, gx_ref, rtol=1e-6, atol=1e-12)


def test_compiled_layer_recomputing_potentials_equals_reference_float64():
    """``LIF(backend="compile")`` saves only its input and recomputes ``h`` in backward: still exact."""
    kw = dict(SETTINGS[0])
    name = kw.pop("name")
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(5, 3, 7, generator=g, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
    layer = LIF(_surrogate(name, kw["v_threshold"]), **kw, backend="compile")
    spikes = layer(x)
    (gx,) = torch.autograd.grad(spikes, x, grad_s)
    s_ref, _ = lif_reference(x, _surrogate(name, kw["v_threshold"]), **kw)
    (gx_ref,) = torch.autograd.grad(s_ref, x, grad_s)
    assert layer.potential is None
    assert torch.equal(spikes, s_ref)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-6, atol=1e-12)


def test_compiled_masking_drops_about_p_and_keeps_the_rest_rescaled():
    p = 0.4
    plain = ATan()
    masked = ATan(mask_p=p, mask_rescale=True)
    x = torch.randn(1, 50_000, dtype=torch.float64, requires_grad=True)  # T = 1: ∂L/∂x = κ·g̃
    kw = dict(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False, decay_input=True, backend="compile")
    (g_plain,) = torch.autograd.grad(lif_multistep(x, plain, **kw)[0].sum(), x)
    (g1,) = torch.autograd.grad(lif_multistep(x, masked, **kw)[0].sum(), x)
    (g2,) = torch.autograd.grad(lif_multistep(x, masked, **kw)[0].sum(), x)
    dropped = (g1 == 0).double().mean().item()
    assert abs(dropped - p) < 0.01
    kept = g1 != 0
    torch.testing.assert_close(g1[kept], g_plain[kept] / (1 - p), rtol=1e-12, atol=0.0)
    assert not torch.equal(g1 == 0, g2 == 0)  # a fresh mask on every backward


@pytest.mark.parametrize("layer", [False, True], ids=["lif_multistep", "LIF-layer"])
def test_compiled_and_eager_drop_the_same_entries_for_one_seed(layer):
    """Both backends draw the MSG mask from the same stream: same seed, same gradient (rescale and fill too)."""
    masked = ATan(mask_p=0.5, mask_rescale=True, mask_fill=0.05)
    kw = dict(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False, decay_input=True)
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(5, 3, 40, generator=g, dtype=torch.float64) * 1.5 + 0.9).requires_grad_()
    grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
    grads = {}
    for backend in ("eager", "compile"):
        torch.manual_seed(9)
        if layer:
            spikes = LIF(masked, **kw, backend=backend)(x)
        else:
            spikes, _ = lif_multistep(x, masked, backend=backend, **kw)
        (grads[backend],) = torch.autograd.grad(spikes, x, grad_s)
    torch.testing.assert_close(grads["compile"], grads["eager"], rtol=1e-6, atol=1e-12)
    torch.manual_seed(10)
    (other,) = torch.autograd.grad(lif_multistep(x, masked, backend="compile", **kw)[0], x, grad_s)
    assert not torch.allclose(other, grads["eager"])  # another seed, another mask


def test_backend_is_a_setting_with_one_line_errors():
    layer = LIF(backend="compile")
    assert layer.backend == "compile" and "backend='compile'" in repr(layer)
    with pytest.raises(ValueError, match="backend must be one of auto, eager, compile"):
        LIF(backend="triton")
    with pytest.raises(ValueError, match="backend must be one of auto, eager, compile"):
        lif_multistep(torch.zeros(2, 3), ATan(), backend="fast")


def test_compiled_layer_trains_like_eager():
    """In float32 inside a small net, the compile backend gives the eager backend's spikes and gradients."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 16)
    x = torch.randn(4, 8, 12)
    grads, spikes = {}, {}
    for backend in ("eager", "compile"):
        lin.zero_grad()
        neuron = LIF(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False, backend=backend)
        spikes[backend] = neuron(lin(x) * 2)
        spikes[backend].sum().backward()
        grads[backend] = lin.weight.grad.clone()
    assert spikes["compile"].dtype == torch.float32
    assert torch.equal(spikes["compile"], spikes["eager"])
    torch.testing.assert_close(grads["compile"], grads["eager"], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s['reset']}-{s['name']}")
def test_compiled_cuda_equals_eager_cpu(setting):
    kw = dict(setting)
    surrogate = _surrogate(kw.pop("name"), kw["v_threshold"])
    x = torch.randn(6, 8, 300, dtype=torch.float64) * 1.5 + 0.9
    grad_s, grad_h = torch.randn_like(x), torch.randn_like(x) * 0.1
    s_cpu, h_cpu, gx_cpu = _grads(lif_multistep, x.clone().requires_grad_(), surrogate, grad_s, grad_h, **kw)
    xc = x.cuda().requires_grad_()
    s_gpu, h_gpu, gx_gpu = _grads(lif_multistep, xc, surrogate, grad_s.cuda(), grad_h.cuda(), backend="compile", **kw)
    assert torch.equal(s_gpu.cpu(), s_cpu)
    torch.testing.assert_close(gx_gpu.cpu(), gx_cpu, rtol=1e-6, atol=1e-12)


def test_compiled_keeps_channels_last_layout():
    torch.manual_seed(1)
    T, B, C, H, W = 4, 3, 5, 6, 6
    base = torch.randn(T * B, C, H, W) * 1.5 + 0.9
    x = base.contiguous(memory_format=torch.channels_last).unflatten(0, (T, B)).requires_grad_()
    neuron = LIF(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False, backend="compile")
    spikes = neuron(x)
    assert spikes.stride() == x.stride()
    (gx,) = torch.autograd.grad(spikes, x, torch.ones_like(spikes))
    assert gx.stride() == x.stride()
    eager = LIF(tau=1.8, v_threshold=0.8, reset="hard", detach_reset=False)
    x_ref = base.unflatten(0, (T, B)).clone().requires_grad_()
    s_ref = eager(x_ref)
    (g_ref,) = torch.autograd.grad(s_ref, x_ref, torch.ones_like(s_ref))
    assert torch.equal(spikes, s_ref)
    torch.testing.assert_close(gx, g_ref, rtol=1e-5, atol=1e-6)


# --- learnable settings, compiled (PLIF's own on every option: tests/test_neuron_plif.py) ---------------------
def test_compiled_recording_and_learned_threshold_agree_with_eager():
    """Recording runs the compiled backward (its zero counts are the eager ones); an IF with a learned θ (fixed λ,
    κ as kernel constants, θ a tensor argument) gets the eager gradients, MSG mask included (same seed)."""
    stats, grads = {}, {}
    for backend in ("eager", "compile"):
        layer = IF(ATan(mask_p=0.3), v_threshold=0.8, reset="soft", detach_reset=False, learn_threshold=True,
                   backend=backend).double()
        layer.record = True
        g = torch.Generator().manual_seed(3)
        x = (torch.randn(4, 8, 50, generator=g, dtype=torch.float64) * 0.5 + 0.3).requires_grad_()
        torch.manual_seed(3)
        (layer(x) * torch.randn(x.shape, generator=g, dtype=x.dtype)).sum().backward()
        stats[backend] = {k: float(v) for k, v in layer.backward_stats.items()}
        grads[backend] = (x.grad, layer.v_threshold.grad)
    assert stats["compile"] == pytest.approx(stats["eager"], abs=1e-7)
    assert 0.3 < stats["compile"]["surrogate_zero_fraction"] < 0.6
    for got, want in zip(grads["compile"], grads["eager"], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert grads["compile"][1].abs() > 0


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_eager_folding_input_scale_agrees_with_compiled_under_msg_rescale_and_fill(reset):
    """The eager backward carries κ·∂L/∂h (κ folded into g̃, the mask's fill and the kept reset's ∂v/∂h); the
    compiled one multiplies by κ per step. Same seed, same mask: the same input gradient, with ``h`` read too."""
    grads = {}
    for backend in ("eager", "compile"):
        layer = LIF(ATan(mask_p=0.4, mask_rescale=True, mask_fill=0.1), tau=1.7, v_threshold=0.8, reset=reset,
                    detach_reset=False, decay_input=True, backend=backend).double()
        layer.keep_potential = True
        g = torch.Generator().manual_seed(11)
        x = (torch.randn(5, 4, 33, generator=g, dtype=torch.float64) * 1.5 + 0.6).requires_grad_()
        grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
        grad_h = torch.randn(x.shape, generator=g, dtype=x.dtype) * 0.1
        torch.manual_seed(4)
        spikes = layer(x)
        (grads[backend],) = torch.autograd.grad((spikes * grad_s).sum() + (layer.potential * grad_h).sum(), x)
    torch.testing.assert_close(grads["compile"], grads["eager"], rtol=1e-9, atol=1e-12)
    assert grads["eager"].abs().sum() > 0
