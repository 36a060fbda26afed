"""TWO decoder (EMA of per-step training accuracy on the official schedule, checkpointed, used at test), losses."""

import functools
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from spikegrad.data import DigitsDataModule
from spikegrad.decoding import TemporallyWeightedDecoder
from spikegrad.losses import CrossEntropyLoss, TemporalEfficientTrainingLoss
from spikegrad.models import SpikingMLP
from spikegrad.module import SpikingClassifier

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest on shared cores


def _logits_with_accuracy(step_hits, num_classes=3):
    """Per-step logits ``[T, B, K]`` and targets: step t predicts the target exactly where step_hits[t] is True."""
    hits = torch.tensor(step_hits, dtype=torch.bool)  # [T, B]
    T, B = hits.shape
    target = torch.arange(B) % num_classes
    wrong = (target + 1) % num_classes
    predicted = torch.where(hits, target.expand(T, B), wrong.expand(T, B))
    return F.one_hot(predicted, num_classes).float() * 5.0, target


EPOCH_HITS = [  # per epoch, per batch: hits[t][b] of T = 3 steps and 4 samples
    [[[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]],
    [[[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]],
    [[[0, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]]],
    [[[1, 1, 1, 0], [0, 0, 1, 1], [1, 0, 1, 1]]],
    [[[0, 1, 1, 0], [1, 1, 0, 1], [1, 1, 1, 1]]],
]


def official_two_weights(epoch_hits, start: int, beta: float) -> list[torch.Tensor]:
    """The weights each epoch trains with, by the MSG code's loop (Brain-Cog-Lab/msg, main.py:116-123 and 169):
    ones while ``epoch <= start``, else ``att·(1 - β) + β·a/mean(a)`` with ``a`` the previous epoch's per-step
    training accuracy (the sample-weighted mean over its batches)."""
    weights, att, previous = [], None, None
    for epoch, batches in enumerate(epoch_hits):
        if epoch <= start:
            att = torch.ones(3, dtype=torch.float64)
        else:
            att = att * (1 - beta) + beta * previous / previous.mean()
        weights.append(att)
        hits = torch.tensor(batches, dtype=torch.float64)  # [batches, T, B]
        previous = hits.sum((0, 2)) / (hits.shape[0] * hits.shape[2])  # correct / samples of the epoch
    return weights


@pytest.mark.parametrize("start", [0, 1, 2, 5])
def test_two_weights_follow_the_official_schedule_exactly(start):
    decoder = TemporallyWeightedDecoder(time_steps=3, start=start, beta=0.3)
    expected = official_two_weights(EPOCH_HITS, start, 0.3)
    for epoch, batches in enumerate(EPOCH_HITS):
        decoder.on_train_epoch_start(epoch)
        torch.testing.assert_close(decoder.weights.double(), expected[epoch], rtol=1e-6, atol=1e-7)
        assert torch.equal(decoder.weights, torch.ones(3)) == (epoch <= start)  # uniform exactly up to `start`
        for hits in batches:
            decoder.observe(*_logits_with_accuracy(hits))


def test_two_first_update_is_after_epoch_start_and_uses_its_accuracies():
    decoder = TemporallyWeightedDecoder(time_steps=3, start=1, beta=0.3)
    for epoch in range(3):
        decoder.on_train_epoch_start(epoch)
        for hits in EPOCH_HITS[epoch]:
            decoder.observe(*_logits_with_accuracy(hits))
    # the update at the start of epoch 2 used epoch 1's accuracies, a = (5/8, 6/8, 7/8)
    a1 = torch.tensor([5 / 8, 6 / 8, 7 / 8])
    torch.testing.assert_close(decoder.weights, 0.7 + 0.3 * a1 / a1.mean())
    # the default start 5: six epochs (0-5) with uniform weights, the first update at the start of epoch 6
    default = TemporallyWeightedDecoder(time_steps=3)
    for epoch in range(7):
        default.on_train_epoch_start(epoch)
        assert torch.equal(default.weights, torch.ones(3)) == (epoch <= 5)
        default.observe(*_logits_with_accuracy([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]))


def test_two_forward_is_the_weighted_mean():
    decoder = TemporallyWeightedDecoder(3)
    decoder.weights.copy_(torch.tensor([0.5, 1.0, 2.0]))
    o = torch.randn(3, 5, 4)
    torch.testing.assert_close(decoder(o), (0.5 * o[0] + o[1] + 2.0 * o[2]) / 3)


def test_two_settings_are_validated():
    with pytest.raises(ValueError, match="decoder TemporallyWeightedDecoder: start must be >= 0"):
        TemporallyWeightedDecoder(4, start=-1)
    with pytest.raises(ValueError, match="beta"):
        TemporallyWeightedDecoder(4, beta=1.5)


def test_tet_equals_its_formula_by_hand():
    o = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]])  # T=2, B=1, K=2
    y = torch.tensor([0])
    lam, phi = 0.2, 1.0
    ce_1 = -math.log(math.exp(2) / (math.exp(2) + 1))
    ce_2 = -math.log(1 / (1 + math.e))
    mse = ((2 - 1) ** 2 + (0 - 1) ** 2 + (0 - 1) ** 2 + (1 - 1) ** 2) / 4
    expected = (1 - lam) * (ce_1 + ce_2) / 2 + lam * mse
    loss = TemporalEfficientTrainingLoss(lam=lam, phi=phi)(o, o.mean(0), y)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # defaults λ = 1e-3, φ = 1
    loss = TemporalEfficientTrainingLoss()(o, o.mean(0), y)
    assert float(loss) == pytest.approx(0.999 * (ce_1 + ce_2) / 2 + 1e-3 * mse, rel=1e-6)
    with pytest.raises(ValueError, match="loss TemporalEfficientTrainingLoss: lam must be in"):
        TemporalEfficientTrainingLoss(lam=2.0)


def test_cross_entropy_label_smoothing_by_hand():
    y, target = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    log_p = torch.log_softmax(y, -1)[0]
    eps = 0.1  # target (1 - eps) on the class plus eps / K on every class
    expected = -((1 - eps) * log_p[0] + eps / 3 * log_p.sum())
    assert float(CrossEntropyLoss(label_smoothing=eps)(y.unsqueeze(0), y, target)) == pytest.approx(float(expected))
    assert float(CrossEntropyLoss()(y.unsqueeze(0), y, target)) == pytest.approx(float(-log_p[0]))
    with pytest.raises(ValueError, match="loss CrossEntropyLoss: label_smoothing must be in"):
        CrossEntropyLoss(label_smoothing=1.0)


def _fit_two(tmp_path, epochs=3):
    L.seed_everything(0, workers=True)
    data = DigitsDataModule(batch_size=128)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingMLP, hidden=[64]), time_steps=3,
        decoder=functools.partial(TemporallyWeightedDecoder, start=0, beta=0.5),
        optimizer=functools.partial(torch.optim.Adam, lr=5e-3),
    )
    trainer = L.Trainer(
        max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, default_root_dir=str(tmp_path), enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=data)
    return trainer, model, data


def test_two_weights_survive_a_checkpoint_and_drive_test_predictions(tmp_path):
    trainer, model, data = _fit_two(tmp_path)
    weights = model.decoder.weights.clone()
    assert not torch.allclose(weights, torch.ones(3))  # start 0: updated at the starts of epochs 1 and 2
    assert "train/step_acc/t1" in trainer.callback_metrics
    path = tmp_path / "two.ckpt"
    trainer.save_checkpoint(path)
    restored = SpikingClassifier.load_from_checkpoint(path, weights_only=False)
    assert torch.equal(restored.decoder.weights, weights)
    # prediction uses the weights: make them select the last step only and compare with its argmax
    restored.eval()
    x, _ = next(iter(data.test_dataloader()))
    restored.decoder.weights.copy_(torch.tensor([0.0, 0.0, 3.0]))
    with torch.no_grad():
        per_step = restored(x)
        predicted = restored.predict_step((x,), 0)
    assert torch.equal(predicted, per_step[-1].argmax(-1))
    # the test logs both the TWO accuracy and the uniform-weights one
    restored.decoder.weights.copy_(weights)
    result = trainer.test(restored, datamodule=data, verbose=False)[0]
    assert {"test/acc", "test/acc_uniform"} <= set(result)
    assert result["test/acc"] > 0.5
