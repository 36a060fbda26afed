"""A real short fit on the bundled digits: the classifier learns and logs what the README promises."""

import functools
import glob
import json
import os

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spikegrad.data import DigitsDataModule
from spikegrad.models import SpikingConvNet
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import LIF
from spikegrad.surrogates import Rectangle, Sigmoid


def _fit(tmp_path, **model_kwargs):
    L.seed_everything(0, workers=True)
    data = DigitsDataModule(batch_size=64)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingConvNet, channels=[16, 32], hidden=64),
        time_steps=4,
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
        **model_kwargs,
    )
    logger = L.pytorch.loggers.TensorBoardLogger(str(tmp_path), name="run")
    trainer = L.Trainer(
        max_epochs=4, logger=logger, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, deterministic=True,
    )
    trainer.fit(model, datamodule=data)
    result = trainer.test(model, datamodule=data, verbose=False)[0]
    return trainer, model, result


def test_digits_fit_learns_and_logs(tmp_path):
    trainer, model, result = _fit(tmp_path)
    assert result["test/acc"] > 0.93
    events = glob.glob(os.path.join(trainer.log_dir, "events.out.tfevents.*"))
    tags, best = set(), []
    for path in events:
        acc = EventAccumulator(path)
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
        best += acc.Scalars("val/acc_best") if "val/acc_best" in acc.Tags()["scalars"] else []
    assert {"train/loss_step", "val/acc", "val/acc_best", "test/acc"} <= tags
    # val/acc_best, a metric of the HPARAMS table: the best validation accuracy so far, never decreasing
    values = [e.value for e in sorted(best, key=lambda e: e.step)]
    assert values == sorted(values) and values[-1] == pytest.approx(model.best_val_acc) and values[-1] > 0.9
    with open(os.path.join(trainer.log_dir, "data_split.json")) as f:
        split = json.load(f)
    assert [len(split[k]) for k in ("train", "val", "test")] == [1258, 180, 359]
    assert not set(split["test"]) & set(split["train"])


@pytest.mark.parametrize("surrogate", [Rectangle, Sigmoid])
def test_method_hyperparameters_reach_every_layer(tmp_path, surrogate):
    model = SpikingClassifier(
        neuron=functools.partial(LIF, tau=3.0, v_threshold=0.5, reset="soft", detach_reset=False),
        surrogate=surrogate(alpha=1.5),
        time_steps=4,
    )
    layers = model.spiking_layers()
    assert len(layers) == 2
    for lif in layers.values():
        assert (lif.tau, lif.v_threshold, lif.reset, lif.detach_reset) == (3.0, 0.5, "soft", False)
        assert type(lif.surrogate) is surrogate and lif.surrogate.alpha == 1.5
    # every layer owns its surrogate (per-layer parameters can differ)
    a, b = layers.values()
    assert a.surrogate is not b.surrogate


def test_accuracy_is_the_fraction_of_correct_samples():
    model = SpikingClassifier(num_classes=3, time_steps=4)
    metric = model.metrics["test_acc"]
    # 4 samples of class 0 all right, 1 sample of class 1 wrong: 4/5 correct (a macro average would say 1/2)
    logits = torch.tensor([[5.0, 0, 0]] * 4 + [[5.0, 0, 0]])
    target = torch.tensor([0, 0, 0, 0, 1])
    assert metric(logits, target).item() == pytest.approx(0.8)


def test_split_is_seeded():
    a, b, c = DigitsDataModule(split_seed=1), DigitsDataModule(split_seed=1), DigitsDataModule(split_seed=2)
    assert torch.equal(a.split["test"], b.split["test"])
    assert not torch.equal(a.split["test"], c.split["test"])


@pytest.mark.parametrize(
    "kwargs,needle",
    [({"encoding": "rate"}, "encoding"), ({"time_steps": 0}, "time_steps"), ({}, "model.time_steps must be set"),
     ({"encoding": "sequence", "time_steps": 4, "data_time_steps": 6}, "differs from the data's time_steps 6"),
     ({"backbone": torch.nn.Identity, "time_steps": 4}, "model.backbone must build a spikegrad.models.Backbone")],
)
def test_bad_module_settings_are_one_line_errors(kwargs, needle):
    with pytest.raises(ValueError) as err:
        SpikingClassifier(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_sequence_data_brings_its_time_steps():
    model = SpikingClassifier(encoding="sequence", data_time_steps=6, input_shape=(2, 4, 4))
    assert model.time_steps == 6
    same = SpikingClassifier(encoding="sequence", time_steps=6, data_time_steps=6, input_shape=(2, 4, 4))
    assert same.time_steps == 6
    assert SpikingClassifier(time_steps=3, data_time_steps=None).time_steps == 3  # static data: the model's T
