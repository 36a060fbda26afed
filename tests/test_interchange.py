"""NIR export and import within spikegrad: the discretisation, the graph of each building block, exact round
trips, one-line refusals, ``spikegrad export`` and testing an imported graph with ``spikegrad test``."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch

from _peers import agreement, digits_test_set, run_ours
from _tiny_run import run_main, tiny_config
from spikegrad.errors import UsageError
from spikegrad.interchange import NIRBackbone, export_backbone
from spikegrad.interchange.command import classifier_from_checkpoint
from spikegrad.interchange.discretisation import neuron_node, neuron_steps
from spikegrad.models import SpikingConvNet, SpikingMLP, SpikingResNet, SpikingVGG
from spikegrad.models.norm import norm_factory
from spikegrad.models.sew_resnet import SEWBasicBlock
from spikegrad.neurons import IF, LIF, PLIF
from spikegrad.surrogates import ATan, Triangle

SHAPE = (1, 8, 8)


def _random_bn_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Batch norms with non-trivial running estimates and affine parameters, so that folding them matters."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            module.running_mean.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.5)
            if module.affine:
                module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.data.copy_(torch.rand(size, generator=generator) * 0.5)
    return model.eval()


def _reimport(backbone, tmp_path, surrogate=None, **export_options) -> NIRBackbone:
    path = str(tmp_path / "model.nir")
    nir.write(path, export_backbone(backbone, SHAPE, **export_options).graph)
    return NIRBackbone(SHAPE, 10, lambda: LIF(surrogate or ATan()), path).eval()


def _inputs(steps: int = 4) -> torch.Tensor:
    images, _ = digits_test_set()
    return images[:120].unsqueeze(0).expand(steps, -1, -1, -1, -1)


# --- the discretisation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("neuron", "node_type", "tau_nir", "r"),
    [
        (LIF(tau=2.0), nir.LIF, 2e-4, 1.0),  # charge form: R = 1
        (LIF(tau=3.0), nir.LIF, 3e-4, 1.0),
        (LIF(tau=2.0, decay_input=False), nir.LIF, 2e-4, 2.0),  # leak form: R = τ
        (IF(), nir.IF, None, 1e4),  # IF: R = 1/dt
    ],
)
def test_each_neuron_maps_to_the_nir_neuron_of_the_forward_euler_step(neuron, node_type, tau_nir, r):
    decay, input_scale = neuron.coefficients()
    tau = getattr(neuron, "tau", math.inf)
    node = neuron_node(tau, input_scale, 1.5, (3,))
    assert isinstance(node, node_type)
    np.testing.assert_allclose(node.r, r, rtol=1e-15)
    np.testing.assert_array_equal(node.v_threshold, 1.5)
    np.testing.assert_array_equal(node.v_reset, 0.0)
    if tau_nir is not None:
        np.testing.assert_allclose(node.tau, tau_nir, rtol=1e-15)
        np.testing.assert_array_equal(node.v_leak, 0.0)
    # forward Euler of the NIR equation at dt = 1e-4 is our step, and the inverse gives our numbers back exactly
    steps = neuron_steps(node, "n")
    assert (steps.decay, steps.input_scale, steps.v_threshold) == (decay, input_scale, 1.5)
    if tau_nir is not None:
        dt = 1e-4
        assert math.isclose(1 - dt / float(node.tau[0]), decay, rel_tol=1e-12)
        assert math.isclose(float(node.r[0]) * dt / float(node.tau[0]), input_scale, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v_leak": np.full(3, 0.1)}, "v_leak must be 0"),
        ({"v_reset": np.full(3, -1.0)}, "v_reset must be 0"),
        ({"tau": np.array([2e-4, 3e-4, 2e-4])}, "tau differs between neurons"),
        ({"tau": np.full(3, 5e-5)}, "shorter than the step dt"),
    ],
)
def test_a_nir_neuron_our_layers_cannot_run_is_refused_with_one_line(change, message):
    params = {"tau": np.full(3, 2e-4), "r": np.ones(3), "v_leak": np.zeros(3), "v_threshold": np.ones(3),
              "v_reset": np.zeros(3), **change}
    with pytest.raises(UsageError, match=message) as caught:
        neuron_steps(nir.LIF(**params), "lif1")
    assert "\n" not in str(caught.value) and "'lif1'" in str(caught.value)


# --- spikegrad -> NIR -> spikegrad ------------------------------------------------------------------------------------
def test_mlp_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = SpikingMLP(SHAPE, 10, lambda: LIF(Triangle(), tau=3.0), hidden=(48, 24), batch_norm=False).eval()
    back = _reimport(model, tmp_path, surrogate=Triangle())
    ours, theirs = run_ours(model, _inputs()), run_ours(back, _inputs())
    assert torch.equal(ours.outputs, theirs.outputs)
    assert all(torch.equal(ours.spikes[name], theirs.spikes[name]) for name in ours.spikes)
    assert sum(float(s.sum()) for s in ours.spikes.values()) > 0  # the comparison saw spikes
    # same parameters: weights bit for bit, LIF(τ = 3) with its surrogate
    assert torch.equal(model[1][0].weight, back.layers["1_0"][0].weight)
    lif = back.layers["2"]
    assert isinstance(lif, LIF) and lif.tau == 3.0 and lif.decay_input and isinstance(lif.surrogate, Triangle)


@pytest.mark.parametrize("pool", ["avg", "sum"])
def test_convnet_with_batch_norm_exports_the_folded_network_exactly(tmp_path, pool):
    torch.manual_seed(0)
    model = _random_bn_statistics(SpikingConvNet(SHAPE, 10, lambda: LIF(), channels=(8, 16), hidden=32))
    graph = export_backbone(model, SHAPE, pool=pool).graph
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert "BatchNorm" not in str(kinds) and {"Conv2d", "LIF", "Flatten", "Affine"} <= kinds
    assert ("SumPool2d" if pool == "sum" else "AvgPool2d") in kinds
    back = _reimport(model, tmp_path, pool=pool)
    ours, theirs = run_ours(model, _inputs()), run_ours(back, _inputs())
    # folding changes the rounding of the pre-activations only; on these inputs not one spike flips
    measured = agreement(ours, theirs)
    assert measured.equal_spikes == 1.0 and measured.equal_predictions == 1.0
    assert measured.max_output_diff < 1e-5
    # and the file is a fixed point: exporting the imported network again gives the same graph
    again = export_backbone(back, SHAPE).graph
    assert set(again.nodes) == set(graph.nodes) and sorted(again.edges) == sorted(graph.edges)
    for name, node in graph.nodes.items():
        assert type(again.nodes[name]) is type(node)
        for field in ("weight", "bias", "tau", "r", "v_threshold", "kernel_size", "stride"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(again.nodes[name], field), getattr(node, field))


def test_residual_blocks_become_skip_edges(tmp_path):
    torch.manual_seed(0)
    model = _random_bn_statistics(SpikingResNet(SHAPE, 10, lambda: LIF(), blocks=(1, 1), widths=(8, 16),
                                                stem_channels=8, norm="tdbn"))
    graph = export_backbone(model, SHAPE).graph
    fan_in = {target: [s for s, t in graph.edges if t == target] for _, target in graph.edges}
    # identity shortcut: the block's input spikes go straight into its last LIF next to the conv branch
    assert sorted(fan_in["1_0_spike"]) == ["0_2", "1_0_conv2_0_0"]
    # projection shortcut: a 1x1 conv (its BN folded) as the second input
    assert sorted(fan_in["2_0_spike"]) == ["2_0_conv2_0_0", "2_0_shortcut_0_0"]
    assert list(graph.nodes["3_0"].kernel_size) == [4, 4]  # the global average pool of a 4x4 map
    measured = agreement(run_ours(model, _inputs()), run_ours(_reimport(model, tmp_path), _inputs()))
    assert measured.equal_spikes > 0.9999 and measured.equal_predictions == 1.0


def test_plif_and_a_learned_threshold_are_exported_with_their_learned_values(tmp_path):
    torch.manual_seed(0)

    def plif():
        layer = PLIF(init_tau=2.0, learn_threshold=True)
        layer.w.data.fill_(-0.3)
        layer.v_threshold.data.fill_(0.8)
        return layer

    model = SpikingMLP(SHAPE, 10, plif, hidden=(32,), batch_norm=False).eval()
    node = export_backbone(model, SHAPE).graph.nodes["2"]
    tau = 1 / torch.sigmoid(torch.tensor(-0.3)).item()
    np.testing.assert_allclose(node.tau, tau * 1e-4, rtol=1e-6)
    np.testing.assert_allclose(node.r, 1.0)
    np.testing.assert_allclose(node.v_threshold, 0.8, rtol=1e-7)
    measured = agreement(run_ours(model, _inputs()), run_ours(_reimport(model, tmp_path), _inputs()))
    assert measured.equal_spikes == 1.0


def test_a_nir_lif_with_another_resistance_scales_the_threshold(tmp_path):
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([4])}),
        nir.Affine(weight=np.eye(4, dtype=np.float32), bias=np.zeros(4, dtype=np.float32)),
        nir.LIF(tau=np.full(4, 4e-4), r=np.full(4, 2.0), v_leak=np.zeros(4), v_threshold=np.ones(4)),
    )
    path = str(tmp_path / "r2.nir")
    nir.write(path, graph)
    backbone = NIRBackbone((4,), 4, LIF, path)
    layer = [m for m in backbone.modules() if isinstance(m, LIF)][0]
    # λ = 1 - dt/τ = 0.75, κ = R·dt/τ = 0.5: the leak form h = 0.75·v + x at the threshold θ/κ = 2
    assert (layer.tau, layer.decay_input, layer.v_threshold) == (4.0, False, 2.0)
    spikes = backbone(torch.tensor([0.9, 2.1, 0.0, 5.0]).expand(2, 1, 4))
    # in NIR's units: step 1, h = 0.5·x fires for x >= 2; step 2, h = 0.75·0.45 + 0.45 = 0.7875 < 1 for x = 0.9
    assert spikes[:, 0].tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]


# --- refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SpikingMLP(SHAPE, 10, lambda: LIF(reset="soft"), hidden=(8,)), "reset 'soft'"),
        (lambda: SpikingVGG(SHAPE, 10, LIF, layers=(8, "P"), pool="max"), "MaxPool2d has no NIR node"),
        (lambda: torch.nn.Sequential(SEWBasicBlock(1, 8, 1, norm_factory("tbn"), LIF, connect="AND")),
         "operation mul in 0"),
    ],
)
def test_what_nir_cannot_express_is_refused_with_one_line(build, message):
    with pytest.raises(UsageError, match=message) as caught:
        export_backbone(build(), SHAPE)
    assert "\n" not in str(caught.value)


def test_a_batch_norm_without_running_statistics_is_refused():
    model = SpikingConvNet(SHAPE, 10, LIF, channels=(4,))
    model[0][1].track_running_stats = False
    model[0][1].running_mean = model[0][1].running_var = None
    with pytest.raises(UsageError, match="no running statistics"):
        export_backbone(model, SHAPE)


# --- the commands ---------------------------------------------------------------------------------------------------
def test_spikegrad_export_writes_a_file_nir_reads_and_spikegrad_test_scores_it_the_same(tmp_path, digits_checkpoints,
                                                                                       capsys):
    ckpt = digits_checkpoints["convnet"]
    out = tmp_path / "convnet.nir"
    run_main(["export", "--ckpt_path", ckpt, "--out", str(out)], tmp_path)
    printed = capsys.readouterr().out
    assert "not exported, training only" in printed and f"wrote {out}" in printed
    graph = nir.read(str(out))
    assert graph.metadata["dt"] == 1e-4 and graph.metadata["time_steps"] == 4
    assert graph.metadata["decoder"] == "MeanDecoder"
    # the classifier of the checkpoint and the imported graph agree on every test image
    classifier = classifier_from_checkpoint(ckpt)
    images, labels = digits_test_set()
    inputs = classifier.encode(images)
    imported = NIRBackbone(SHAPE, 10, LIF, str(out)).eval()
    measured = agreement(run_ours(classifier.backbone, inputs), run_ours(imported, inputs))
    assert measured.equal_spikes == 1.0 and measured.equal_predictions == 1.0
    # `spikegrad test` with the graph as the backbone gives the checkpoint's test accuracy
    config = tiny_config(tmp_path, name="imported", limit_test_batches=None)
    run_main(["test", "--config", config, "--model.time_steps", "4", "--model.backbone", "NIRBackbone",
              "--model.backbone.path", str(out)], tmp_path)
    expected = float((classifier(images).mean(0).argmax(-1) == labels).float().mean())
    assert _last_test_accuracy(tmp_path) == pytest.approx(expected, abs=1e-6)
    assert expected > 0.5  # a trained model


def _last_test_accuracy(folder) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted((folder / "logs" / "imported").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    events = EventAccumulator(str(runs[-1]))
    events.Reload()
    return events.Scalars("test/acc")[-1].value


def test_spikegrad_export_errors_are_one_line(tmp_path, digits_checkpoints, capsys):
    for args, message in (
        (["--ckpt_path", str(tmp_path / "none.ckpt"), "--out", "m.nir"], "no such checkpoint file"),
        (["--ckpt_path", digits_checkpoints["mlp"], "--out", "nowhere/m.nir"], "does not exist"),
        (["--ckpt_path", digits_checkpoints["mlp"], "--out", "m.nir", "--dt", "0"], "dt must be > 0"),
    ):
        with pytest.raises(SystemExit) as stopped:
            run_main(["export", *args], tmp_path)
        error = capsys.readouterr().err
        assert stopped.value.code == 2 and message in error and error.count("\n") == 1
        assert error.startswith("spikegrad export: error: ")
