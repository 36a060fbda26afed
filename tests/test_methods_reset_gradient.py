"""The reset-gradient toy task: the class is in the spike timing only, and the DataModule is deterministic."""

import pytest
import torch

from spikegrad.data.spike_patterns import SpikePatternDataModule, sample_spike_patterns, spike_pattern_templates

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest on shared cores


def test_templates_have_equal_counts_per_channel_and_differ_in_timing():
    templates = spike_pattern_templates(5, 12, 20, 3, torch.Generator().manual_seed(0))
    assert templates.shape == (5, 20, 12)
    assert torch.all(templates.sum(1) == 3)  # every class, every channel: exactly 3 spikes
    assert len({tuple(t.flatten().tolist()) for t in templates}) == 5


def test_samples_follow_their_template():
    g = torch.Generator().manual_seed(0)
    templates = spike_pattern_templates(4, 30, 16, 2, g)
    labels = torch.tensor([0, 1, 2, 3] * 50)
    clean = sample_spike_patterns(templates, labels, jitter=0, drop=0.0, noise=0.0, generator=g)
    assert torch.equal(clean, templates[labels])
    noisy = sample_spike_patterns(templates, labels, jitter=1, drop=0.2, noise=0.5, generator=g)
    assert set(noisy.unique().tolist()) <= {0.0, 1.0}
    # nearest template (by overlap after a one-step tolerance) recovers the label for most samples
    tolerant = torch.nn.functional.max_pool1d(templates.transpose(1, 2), 3, 1, 1).transpose(1, 2)
    overlap = torch.einsum("ntc,ktc->nk", noisy, tolerant)
    assert (overlap.argmax(1) == labels).float().mean() > 0.9


def test_datamodule_is_seeded_sequence_data():
    a, b = SpikePatternDataModule(train_size=64, val_size=16, test_size=16), SpikePatternDataModule(
        train_size=64, val_size=16, test_size=16)
    a.setup(), b.setup()
    x, y = a.train_set.tensors
    assert x.shape == (64, 20, 40) and a.encoding == "sequence" and a.input_shape == (40,)
    assert torch.equal(x, b.train_set.tensors[0]) and torch.equal(y, b.train_set.tensors[1])
