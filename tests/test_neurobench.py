"""NeuroBench's metrics of a trained conv net next to our monitors' on the same batches: equal where the
definitions are (activation sparsity, the ACs of spike-fed layers, footprint), accounted for layer by layer where
they differ (docs/analysis.md)."""

from __future__ import annotations

import pytest

from _peers import digits_test_set
from spikegrad.interchange import neurobench
from spikegrad.interchange.command import classifier_from_checkpoint


@pytest.fixture(scope="module")
def measured(digits_checkpoints):
    classifier = classifier_from_checkpoint(digits_checkpoints["convnet"])
    images, labels = digits_test_set()
    batches = [(images[i:i + 128], labels[i:i + 128]) for i in range(0, len(labels), 128)]  # 128, 128, 103
    return {
        "theirs": neurobench.neurobench_figures(classifier, batches),
        "ours": neurobench.spikegrad_figures(classifier, batches),
        "layers": neurobench.per_layer(classifier, batches),
        "rows": neurobench.compare(classifier, batches),
        "classifier": classifier,
    }


def test_activation_sparsity_is_one_minus_our_mean_firing_rate(measured):
    theirs, ours = measured["theirs"], measured["ours"]
    assert 0.5 < theirs["ActivationSparsity"] < 1.0
    assert theirs["ActivationSparsity"] == pytest.approx(1.0 - ours["firing_rate/mean"], abs=1e-12)


def test_their_effective_acs_are_our_sops_of_the_spike_fed_layers(measured):
    layers = {name: row for name, *row in measured["layers"]}
    spike_fed = [name for name, (kind, *_) in layers.items() if kind.startswith("0/1 spikes")]
    # the conv net: hidden Linear and head Linear read spikes; the second conv reads average-pooled spikes
    assert spike_fed == ["fc1", "fc2"]
    ours = sum(measured["ours"][f"energy/sops/{name}"] for name in spike_fed)
    assert measured["theirs"]["SynapticOperations/Effective_ACs"] == pytest.approx(ours, rel=1e-9)


def test_the_per_layer_counts_add_up_to_their_totals_and_ours(measured):
    rows, theirs, ours = measured["layers"], measured["theirs"], measured["ours"]
    effective = theirs["SynapticOperations/Effective_ACs"] + theirs["SynapticOperations/Effective_MACs"]
    assert sum(r[2] for r in rows) == pytest.approx(effective, rel=1e-9)
    assert sum(r[3] for r in rows) == pytest.approx(theirs["SynapticOperations/Dense"], rel=1e-9)
    assert sum(r[4] for r in rows if "ours: SOP" in r[1]) == pytest.approx(ours["energy/sops"], rel=1e-9)
    assert sum(r[4] for r in rows if "ours: MAC" in r[1]) == pytest.approx(ours["energy/snn_macs"], rel=1e-9)
    # the encoder-fed conv: they count it at each of T steps without the padding, we once with it
    first = rows[0]
    conv = measured["classifier"].backbone[0][0]
    valid_taps = 22 * 22 * conv.out_channels  # 3x3 taps inside an 8x8 image, padding 1: 22 per row and column
    assert first[3] == 4 * valid_taps and first[4] == 8 * 8 * 9 * conv.out_channels


def test_the_table_and_the_command(measured, digits_checkpoints, capsys):
    rows = {name: (theirs, ours) for name, theirs, ours, _ in measured["rows"]}
    assert rows["footprint (bytes)"][0] == rows["footprint (bytes)"][1]
    assert rows["parameters"][0] == rows["parameters"][1]
    neurobench.main(["--ckpt_path", digits_checkpoints["convnet"], "--limit_batches", "1"])
    printed = capsys.readouterr().out
    assert "| activation sparsity |" in printed and "| fc1 | 0/1 spikes: AC / ours: SOP |" in printed
