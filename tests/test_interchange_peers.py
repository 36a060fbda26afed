"""Our NIR files in snnTorch and Norse, and snnTorch's files in spikegrad: the same input, spikes and outputs
compared with ours (the numbers of docs/export.md)."""

from __future__ import annotations

import contextlib
import io

import nir
import pytest
import torch

from _peers import (
    accuracy,
    agreement,
    digits_test_set,
    norse_module,
    plif,
    random_mlp,
    run_ours,
    run_peer,
    snntorch_module,
)
from spikegrad.interchange import NIRBackbone, export_backbone
from spikegrad.interchange.command import classifier_from_checkpoint, export
from spikegrad.neurons import IF, LIF

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def test_set():
    return digits_test_set()


@pytest.mark.parametrize("model", ["mlp", "convnet"])
@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_a_trained_model_runs_in_the_peer_with_identical_spikes(tmp_path, digits_checkpoints, test_set, model, peer):
    """Hard-reset LIF in the charge form: snnTorch reads τ at its dt = 1e-4 s and scales the threshold by
    1/(R·dt/τ) = τ (exact for τ = 2), Norse integrates with the dt it is given; both are our step."""
    ckpt = digits_checkpoints[model]
    path = str(tmp_path / "model.nir")
    export(ckpt, path, pool="sum" if peer == "norse" else "avg")  # Norse 1.1 reads no AvgPool2d
    classifier = classifier_from_checkpoint(ckpt)
    images, labels = test_set
    inputs = classifier.encode(images)
    ours = run_ours(classifier.backbone, inputs)
    theirs = run_peer(snntorch_module(path) if peer == "snntorch" else norse_module(path), inputs)
    measured = agreement(ours, theirs)
    assert measured.equal_spikes == 1.0 and measured.spikes == sum(s.numel() for s in ours.spikes.values())
    assert torch.equal(theirs.outputs.reshape(ours.outputs.shape), ours.outputs)
    assert accuracy(theirs.outputs, labels) == accuracy(ours.outputs, labels) > 0.5


@pytest.mark.parametrize(
    ("neuron", "snntorch_equal", "norse_equal"),
    [
        (lambda: LIF(tau=3.0), 1.0, 1.0),
        (plif, 1.0, 1.0),
        (lambda: LIF(tau=2.0, decay_input=False), 1.0, None),  # Norse ignores R (it warns): see below
        (IF, None, 1.0),  # snnTorch's importer refuses R != 1 for an IF (and reads it as a leaky neuron)
    ],
)
def test_every_neuron_form_in_the_peers(tmp_path, test_set, neuron, snntorch_equal, norse_equal):
    model = random_mlp(neuron)
    path = str(tmp_path / "mlp.nir")
    nir.write(path, export_backbone(model, SHAPE).graph)
    inputs = test_set[0].unsqueeze(0).expand(6, -1, -1, -1, -1)
    ours = run_ours(model, inputs)
    assert sum(float(s.mean()) for s in ours.spikes.values()) > 0.1
    if snntorch_equal is None:
        with pytest.raises(AssertionError, match="r != 1 not supported"):
            snntorch_module(path)
    else:
        assert agreement(ours, run_peer(snntorch_module(path), inputs)).equal_spikes == snntorch_equal
    norse = run_peer(norse_module(path), inputs)
    if norse_equal is not None:
        assert agreement(ours, norse).equal_spikes == norse_equal
    else:  # Norse runs every LIF as the charge form (R = 1): it equals our LIF with decay_input true
        charge_form = random_mlp(lambda: LIF(tau=2.0))  # the same weights
        assert agreement(run_ours(charge_form, inputs), norse).equal_spikes == 1.0
        assert agreement(ours, norse).equal_spikes < 0.95


def test_norse_runs_a_residual_graph_wrong_and_snntorch_right(tmp_path, test_set):
    """Norse 1.1 loads with nirtorch's deprecated ``load``, whose executor orders a shortcut branch after the
    output node; snnTorch's loader (``nirtorch.nir_to_torch``) sums the skip edge like we do."""
    from spikegrad.models import SpikingResNet

    torch.manual_seed(0)
    model = SpikingResNet(SHAPE, 10, LIF, blocks=(1, 1), widths=(8, 16), stem_channels=8).eval()
    path = str(tmp_path / "resnet.nir")
    nir.write(path, export_backbone(model, SHAPE, pool="sum").graph)
    inputs = test_set[0][:50].unsqueeze(0).expand(4, -1, -1, -1, -1)
    ours = run_ours(model, inputs)
    assert agreement(ours, run_peer(snntorch_module(path), inputs)).equal_spikes == 1.0
    assert run_peer(norse_module(path), inputs).outputs.shape[-1] != 10


def test_a_graph_written_by_snntorch_runs_in_spikegrad(tmp_path, test_set):
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    def leaky(size, **options):  # per-neuron β and θ: with scalars snnTorch 1.0 writes 0-d shapes NIR's check refuses
        return snn.Leaky(beta=torch.full((size,), 0.8), threshold=torch.ones(size), init_hidden=True,
                         reset_mechanism="zero", **options)

    net = torch.nn.Sequential(torch.nn.Linear(64, 48), leaky(48), torch.nn.Linear(48, 10), leaky(10, output=True))
    for parameter in net.parameters():
        parameter.data *= 3
    with contextlib.redirect_stdout(io.StringIO()):
        graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])  # the sample's batch axis
    path = str(tmp_path / "snntorch.nir")
    nir.write(path, graph)
    backbone = NIRBackbone(SHAPE, 10, LIF, path).eval()  # no dt in the file: snnTorch's 1e-4 s
    lifs = [m for m in backbone.modules() if isinstance(m, LIF)]
    assert [(m.tau, m.decay_input) for m in lifs] == [(pytest.approx(5.0), False)] * 2  # β = 0.8 = 1 - 1/τ, leak
    images = test_set[0][:100]
    T = 5
    # snnTorch itself, step by step from zero state
    for module in net.modules():
        if isinstance(module, snn.SpikingNeuron):
            module.reset_mem()
    spikes, outputs = {}, []
    hooks = [net[i].register_forward_hook(lambda m, a, out, i=i: spikes.setdefault(i, []).append(
        out[0] if isinstance(out, tuple) else out)) for i in (1, 3)]
    with torch.no_grad():
        for _ in range(T):
            outputs.append(net(images.flatten(1))[0])
    for hook in hooks:
        hook.remove()
    ours = run_ours(backbone, images.unsqueeze(0).expand(T, -1, -1, -1, -1))
    ours_spikes = list(ours.spikes.values())
    assert len(ours_spikes) == 2
    for i, layer_spikes in zip((1, 3), ours_spikes, strict=True):
        assert torch.equal(torch.stack(spikes[i]), layer_spikes)
    assert torch.equal(torch.stack(outputs), ours.outputs)
    assert float(ours_spikes[0].mean()) > 0.05
