"""``backend: auto`` (the rule of spikegrad.kernels.choice, never a timing) and the surrogate's α as a kernel argument
(searches that change α do not recompile)."""

import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
import yaml

from _tiny_run import run_dir, run_main, tiny_config
from spikegrad.callbacks.run.neuron_backend import choose_backend, planned_batches
from spikegrad.kernels import compiled
from spikegrad.kernels.choice import Costs, compile_pays, kernel_setting
from spikegrad.neurons import IF, LIF, PLIF
from spikegrad.neurons.reference import reference_forward
from spikegrad.surrogates import ATan, DSpike, Rectangle, Sigmoid, Triangle

SHAPES = [ATan(alpha=1.7), Sigmoid(alpha=3.0), Triangle(alpha=1.3), Rectangle(alpha=0.8), DSpike(alpha=2.5, width=1.1)]


@pytest.mark.parametrize("surrogate", SHAPES, ids=lambda s: type(s).__name__)
def test_kernel_grad_is_grad_with_alpha_as_float_or_tensor(surrogate):
    x = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64)
    want = surrogate.grad(x)
    assert surrogate.alpha_is_argument
    torch.testing.assert_close(surrogate.kernel_grad(x, surrogate.alpha), want, rtol=1e-12, atol=1e-12)
    alpha = torch.tensor(surrogate.alpha, dtype=torch.float64)
    torch.testing.assert_close(surrogate.kernel_grad(x, alpha), want, rtol=1e-12, atol=1e-12)


def _unique_graphs() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["stats"].values()) if "stats" in counters else 0


def test_changing_alpha_reuses_the_compiled_kernel_and_reads_the_new_alpha():
    """As a Dspike/PSG search does every epoch: a new α, no new kernel and no recompilation, and the gradient of
    the step-by-step reference at the new α."""
    layer = LIF(DSpike(alpha=3.0), tau=1.8, v_threshold=0.8, reset="soft", detach_reset=False,
                backend="compile").double()
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(4, 3, 9, generator=g, dtype=torch.float64) * 1.5 + 0.7).requires_grad_()
    grad_s = torch.randn(x.shape, generator=g, dtype=x.dtype)
    torch.autograd.grad(layer(x), x, grad_s)  # compiles forward and backward once
    kernels, graphs = len(compiled._CACHE), _unique_graphs()
    for alpha in (2.0, 4.5, 0.7):
        layer.surrogate = layer.surrogate.replace(alpha=alpha)
        (gx,) = torch.autograd.grad(layer(x), x, grad_s)
        (gx_ref,) = torch.autograd.grad(reference_forward(layer, x)[0], x, grad_s)
        torch.testing.assert_close(gx, gx_ref, rtol=1e-9, atol=1e-12)
    assert len(compiled._CACHE) == kernels
    assert _unique_graphs() == graphs


def test_compile_pays_is_the_stated_inequality():
    costs = Costs(saving_per_element=1e-9, saving_per_layer_step=1e-5, compile_per_setting=10.0, source="test")
    # 1000 steps × (1e6 elements × 1e-9 + 10 layer-steps × 1e-5) = 1000 × 0.0011 = 1.1 s
    assert compile_pays(1000, 10**6, 10, 1, Costs(1e-9, 1e-5, 1.0, "t"))
    assert not compile_pays(1000, 10**6, 10, 1, costs)
    assert compile_pays(10_000, 10**6, 10, 1, costs)  # 11 s > 10 s
    assert not compile_pays(10_000, 10**6, 10, 2, costs)  # two settings: 20 s
    assert compile_pays(math.inf, 1, 0, 3, costs)


def _ran(*layers):
    for layer in layers:
        layer(torch.rand(3, 4, 10))
    return list(layers)


def test_kernel_setting_counts_what_compiles_its_own_kernels():
    a, b = LIF(ATan(alpha=2.0)), LIF(ATan(alpha=5.0))  # α is a kernel argument: one setting
    assert kernel_setting(a) == kernel_setting(b)
    assert kernel_setting(a) != kernel_setting(LIF(ATan(), reset="soft"))
    assert kernel_setting(a) != kernel_setting(LIF(ATan(mask_p=0.5)))
    assert kernel_setting(a) != kernel_setting(IF(ATan()))
    p1, p2 = PLIF(ATan(), init_tau=2.0), PLIF(ATan(), init_tau=3.0)  # learned τ: a tensor argument
    assert kernel_setting(p1) == kernel_setting(p2)


def _never_probed(device_type):
    raise AssertionError("the probe must not run when the run is too short")


def test_short_runs_stay_eager_without_probing_and_long_ones_compile_when_it_works():
    costs = Costs(1e-9, 0.0, 10.0, "test")
    layers = _ran(LIF(ATan()), LIF(ATan()))  # 2 × 120 elements per batch, one setting
    backend, reason = choose_backend(layers, 100, "cpu", probe=_never_probed, costs=costs)
    assert backend == "eager" and "too short" in reason and "240 neuron elements" in reason
    # 10 s / (240 × 1e-9 s) ≈ 4.2e7 batches repay the compilation
    assert choose_backend(layers, 4e7, "cpu", probe=_never_probed, costs=costs)[0] == "eager"
    backend, reason = choose_backend(layers, 5e7, "cpu", probe=lambda d: (True, ""), costs=costs)
    assert backend == "compile" and reason.startswith("compile:")
    backend, reason = choose_backend(layers, 5e7, "cpu", probe=lambda d: (False, "no C++ compiler"), costs=costs)
    assert (backend, reason) == ("eager", "eager: no C++ compiler")
    assert choose_backend([], 5e7, "cpu", probe=_never_probed, costs=costs)[0] == "eager"
    assert choose_backend(layers, 5e7, "xpu", probe=_never_probed)[0] == "eager"  # no costs known


def test_planned_batches_follow_epochs_steps_and_resume():
    trainer = SimpleNamespace(num_training_batches=20, max_steps=-1, global_step=0, accumulate_grad_batches=1,
                              max_epochs=50, current_epoch=0)
    assert planned_batches(trainer, 1) == 999
    trainer.current_epoch = 40  # resumed at epoch 40
    assert planned_batches(trainer, 1) == 199
    trainer.max_steps, trainer.global_step = 250, 200
    assert planned_batches(trainer, 1) == 50
    trainer.max_steps, trainer.max_epochs = -1, -1
    assert planned_batches(trainer, 1) == math.inf


def test_auto_layers_run_eager_until_chosen():
    layer = LIF(ATan())
    assert layer.backend == "auto" and layer.kernel_backend == "eager"
    layer.chosen_backend = "compile"
    assert layer.kernel_backend == "compile" and "backend='auto' -> compile" in repr(layer)
    assert LIF(ATan(), backend="eager").kernel_backend == "eager"


def test_a_run_records_its_choice_in_manifest_and_hparams(tmp_path):
    """The tiny run is far too short to repay compilation: ``auto`` stays eager, and says so."""
    run_main(["fit", "--config", tiny_config(tmp_path)], tmp_path)
    folder = run_dir(tmp_path)
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["neuron_backend"]["choice"] == "eager"
    assert "too short" in manifest["neuron_backend"]["reason"]
    with open(os.path.join(folder, "hparams.yaml")) as f:
        assert yaml.safe_load(f)["neuron_backend"] == "eager"


def test_auto_compiles_under_searches_recording_and_resume(tmp_path, monkeypatch):
    """With compilation free (patched costs) ``auto`` compiles; TWO, the Dspike temperature search, PSG and MSG
    (α changing every epoch) and gradient-sparsity recording run on the compiled kernels, and resuming for two
    more epochs compiles nothing new: α is a kernel argument, not a kernel constant."""
    from spikegrad.kernels import choice

    monkeypatch.setitem(choice.COSTS, "cpu", Costs(1.0, 0.0, 0.0, "test: compilation is free"))
    monitor = {"class_path": "spikegrad.callbacks.GradientSparsityMonitor", "init_args": {"every_n_steps": 2}}
    config = tiny_config(tmp_path, methods=True, callbacks=[monitor], max_epochs=2)
    run_main(["fit", "--config", config], tmp_path)
    with open(os.path.join(run_dir(tmp_path), "manifest.json")) as f:
        assert json.load(f)["neuron_backend"]["choice"] == "compile"
    kernels, graphs = len(compiled._CACHE), _unique_graphs()
    checkpoint = os.path.join(run_dir(tmp_path), "checkpoints", "last.ckpt")
    alphas_before = {k: v for k, v in torch.load(checkpoint, weights_only=False)["state_dict"].items()
                     if k.endswith("_extra_state")}
    run_main(["fit", "--config", tiny_config(tmp_path, methods=True, callbacks=[monitor], max_epochs=4),
              "--ckpt_path", "last"], tmp_path)
    alphas_after = {k: v for k, v in torch.load(checkpoint, weights_only=False)["state_dict"].items()
                    if k.endswith("_extra_state")}
    assert alphas_after != alphas_before  # the searches changed α in epochs 3 and 4
    assert len(compiled._CACHE) == kernels and _unique_graphs() == graphs
