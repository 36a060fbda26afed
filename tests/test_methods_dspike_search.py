"""Dspike temperature search (Li et al., NeurIPS 2021, Algorithm 1): FDG, the choice of b, and no side effects."""

import copy
import functools

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from spikegrad.callbacks import DspikeTemperatureSearch, FixedTemperatureProbe
from spikegrad.callbacks.methods.dspike_search import finite_difference_gradient, set_temperature, surrogate_gradient
from spikegrad.models import SpikingMLP
from spikegrad.module import SpikingClassifier
from spikegrad.surrogates import ATan, DSpike

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest on shared cores


def _tiny(surrogate=DSpike, dropout=0.0, **surrogate_args):
    torch.manual_seed(0)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingMLP, hidden=[16, 16], dropout=dropout), input_shape=(1, 4, 4),
        num_classes=3, time_steps=3, surrogate=surrogate(alpha=3.0, **surrogate_args),
    )
    x = torch.randn(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2
    y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(2))
    return model, (x, y)


def test_fdg_equals_an_independent_finite_difference():
    model, batch = _tiny()
    weight = model.backbone[1][0].weight  # first Linear
    coords = torch.tensor([0, 5, 17, 40, 63])
    eps = 0.05
    before = weight.detach().clone()
    fdg = finite_difference_gradient(lambda: model.task_loss(batch), weight, coords, eps)
    assert torch.equal(weight, before)  # restored exactly
    for j, i in enumerate(coords.tolist()):
        losses = []
        for sign in (1, -1):
            twin = copy.deepcopy(model)
            with torch.no_grad():
                twin.backbone[1][0].weight.view(-1)[i] += sign * eps
                losses.append(float(twin.task_loss(batch)))
        assert float(fdg[j]) == pytest.approx((losses[0] - losses[1]) / (2 * eps), rel=1e-6, abs=1e-9)
    assert fdg.abs().sum() > 0  # the true spiking forward does change on this scale


def test_search_keeps_the_candidate_with_the_highest_cosine_similarity():
    model, batch = _tiny()
    search = DspikeTemperatureSearch(delta_b=1.0, epsilon=0.05, num_coordinates=32, seed=3)
    for step in range(2):
        b = search.b if search.b is not None else 3.0
        twin = copy.deepcopy(model)
        new_b = search.search(model, lambda: model.task_loss(batch), search_index=step)
        # independent evaluation of the three candidates, same coordinates and seed
        weight = twin.backbone[1][0].weight
        coords = torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(3 + step))[:32]
        torch.manual_seed(3 + step)
        fdg = finite_difference_gradient(lambda m=twin: m.task_loss(batch), weight, coords, 0.05)
        cosines = {}
        for candidate in (b - 1.0, b, b + 1.0):
            set_temperature(twin, candidate)
            sg = surrogate_gradient(lambda m=twin: m.task_loss(batch), weight, coords)
            cosines[candidate] = float(F.cosine_similarity(fdg, sg, dim=0))
        best = max(cosines, key=cosines.get)
        assert new_b == pytest.approx(best)
        assert sorted(search.last_similarities.values()) == pytest.approx(sorted(cosines.values()), rel=1e-6)
        assert all(lif.surrogate.alpha == new_b for lif in model.spiking_layers().values())
        assert cosines[new_b] >= cosines[b]  # b moves toward the higher similarity (or stays)
    assert len(search.history) == 2


def test_search_leaves_bn_statistics_rng_gradients_and_weights_untouched():
    model, batch = _tiny(dropout=0.2, mask_p=0.5)
    model.train()
    model.task_loss(batch).backward()  # some existing gradients and BN statistics
    state = copy.deepcopy(model.state_dict())
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    search = DspikeTemperatureSearch(num_coordinates=16)
    search.search(model, lambda: model.task_loss(batch))
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in model.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[name]), name
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, grads[name]), name
    assert model.training
    # MSG settings survive the search (only b changes)
    assert all(lif.surrogate.mask_p == 0.5 for lif in model.spiking_layers().values())


def test_callback_in_a_fit_logs_b_and_similarities(tmp_path):
    from spikegrad.data import DigitsDataModule

    L.seed_everything(0)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingMLP, hidden=[32]), time_steps=2,
        surrogate=DSpike(alpha=2.0), optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
    )
    search = DspikeTemperatureSearch(b0=4.0, num_coordinates=8, every_n_epochs=2)
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", callbacks=[search], limit_train_batches=3,
                        limit_val_batches=1)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    assert len(search.history) == 2  # epochs 0 and 2
    assert search.history[0]["temperature"] in (3.5, 4.0, 4.5)  # started from b0 = 4
    assert {"dspike/b", "dspike/cosine/b", "dspike/cosine/b-db", "dspike/cosine/b+db"} <= set(trainer.callback_metrics)
    assert search.b == model.spiking_layers()["backbone.2"].surrogate.alpha
    assert float(trainer.callback_metrics["dspike/b"]) == pytest.approx(search.b)


def test_search_needs_dspike_everywhere():
    model, batch = _tiny(surrogate=ATan)
    with pytest.raises(ValueError, match="needs surrogate DSpike in every layer"):
        DspikeTemperatureSearch().search(model, lambda: model.task_loss(batch))


def test_fixed_temperature_probe_measures_b_and_keeps_it():
    model, batch = _tiny()
    probe = FixedTemperatureProbe(num_coordinates=16)
    assert probe.search(model, lambda: model.task_loss(batch)) == 3.0
    assert list(probe.last_similarities) == ["b"] and -1 <= probe.last_similarities["b"] <= 1
    assert all(layer.surrogate.alpha == 3.0 for layer in model.spiking_layers().values())
