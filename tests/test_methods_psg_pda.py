"""PSG look-ahead calibration and the PDA potential regulariser (both reconstructions, see docs/methods.md)."""

import copy
import functools

import lightning as L
import pytest
import torch

from spikegrad.callbacks import ParametricSurrogate
from spikegrad.callbacks.methods.psg import lookahead_loss, surrogate_with
from spikegrad.models import SpikingMLP
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import LIF
from spikegrad.regularizers import PDASettings, potential_window_penalty
from spikegrad.surrogates import ATan, Triangle

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest on shared cores


def _tiny(**kwargs):
    torch.manual_seed(0)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingMLP, hidden=[16, 16]), input_shape=(1, 4, 4), num_classes=3, time_steps=3,
        **kwargs,
    )
    x = torch.randn(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2
    y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(2))
    return model, (x[:16], y[:16]), (x[16:], y[16:])


def test_lookahead_picks_the_candidate_with_the_lowest_loss_after_the_virtual_step():
    model, batch_a, batch_b = _tiny()
    psg = ParametricSurrogate(kappa=2.0, shapes=[ATan(), Triangle()])
    twin = copy.deepcopy(model)
    state = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    chosen = psg.calibrate(model, lambda: model.task_loss(batch_a), lambda: model.task_loss(batch_b), 0.05)
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in model.state_dict().items():  # parameters and BN statistics unchanged
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[name]), name
    # independent evaluation, layer by layer in forward order, with the earlier layers' choices applied
    for layer, lif in twin.spiking_layers().items():
        losses = {}
        for shape, alpha in [(ATan(), lif.surrogate.alpha), (ATan(), lif.surrogate.alpha / 2),
                             (ATan(), lif.surrogate.alpha * 2), (Triangle(), 1.0)]:
            probe = copy.deepcopy(twin)
            probe_lif = dict(probe.spiking_layers())[layer]
            probe_lif.surrogate = surrogate_with(probe_lif.surrogate, shape, alpha)
            params = [p for p in probe.parameters()]
            torch.manual_seed(0)
            grads = torch.autograd.grad(probe.task_loss(batch_a), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p -= 0.05 * g / g.square().mean().sqrt()
                torch.manual_seed(1)
                losses[(type(shape).__name__, alpha)] = float(probe.task_loss(batch_b))
        best = min(losses, key=losses.get)
        assert chosen[layer][0] == best[0] and chosen[layer][1] == pytest.approx(best[1])
        assert sorted(psg.last_losses[layer].values()) == pytest.approx(sorted(losses.values()), rel=1e-5)
        lif.surrogate = surrogate_with(lif.surrogate, {"ATan": ATan(), "Triangle": Triangle()}[best[0]], best[1])
    # the constructed case is not degenerate: the candidates' look-ahead losses differ
    assert len({round(v, 6) for v in psg.last_losses["backbone.2"].values()}) > 1


def test_lookahead_restores_parameters_exactly():
    model, batch_a, batch_b = _tiny()
    before = [p.detach().clone() for p in model.parameters()]
    loss = lookahead_loss(model, lambda: model.task_loss(batch_a), lambda: model.task_loss(batch_b), 0.1)
    assert loss > 0
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_psg_callback_logs_each_layers_trajectory(tmp_path):
    from spikegrad.data import DigitsDataModule

    L.seed_everything(0)
    model = SpikingClassifier(backbone=functools.partial(SpikingMLP, hidden=[32]), time_steps=2,
                              optimizer=functools.partial(torch.optim.Adam, lr=3e-3))
    psg = ParametricSurrogate(every_n_epochs=1)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", callbacks=[psg], limit_train_batches=2,
                        limit_val_batches=1)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    assert len(psg.history) == 2
    alpha = model.spiking_layers()["backbone.2"].surrogate.alpha
    assert float(trainer.callback_metrics["psg/alpha/fc1.lif"]) == pytest.approx(alpha)


def test_psg_settings_are_validated():
    with pytest.raises(ValueError, match="shapes must be surrogates"):
        ParametricSurrogate(shapes=["box"])
    with pytest.raises(ValueError, match="kappa"):
        ParametricSurrogate(kappa=1.0)


def test_pda_penalty_by_hand():
    h = torch.tensor([-1.0, 0.5, 1.0, 3.0, 5.0])  # θ = 2: u = [-0.5, 0.25, 0.5, 1.5, 2.5], window [0, 1]
    value = potential_window_penalty([(h, 2.0)], lo=0.0, hi=1.0)
    assert float(value) == pytest.approx((0.25 + 0 + 0 + 0.25 + 2.25) / 5)
    with pytest.raises(ValueError, match="pda window"):
        PDASettings(weight=1.0, lo=2.0, hi=1.0)


def test_pda_gradient_moves_potentials_into_the_window():
    lo, hi = 0.0, 2.0
    # one step (T = 1): the descent direction of every potential points into the window, zero inside it
    lif = LIF(ATan(), tau=2.0, v_threshold=1.0)
    lif.keep_potential = True
    x = torch.linspace(-6, 10, 101).unsqueeze(0).requires_grad_()
    lif(x)
    u = lif.potential.detach()
    (grad,) = torch.autograd.grad(potential_window_penalty([(lif.potential, 1.0)], lo, hi), x)
    assert torch.all(-grad[u < lo] > 0) and torch.all(-grad[u > hi] < 0)
    assert torch.all(grad[(u >= lo) & (u <= hi)] == 0)
    # through time (T = 4, gradient through the fused backward): gradient descent empties the outside
    torch.manual_seed(0)
    x = (torch.randn(4, 256) * 3).requires_grad_()

    def penalty_and_outside():
        lif(x)
        h = lif.potential
        return potential_window_penalty([(h, 1.0)], lo, hi), float((torch.relu(lo - h) + torch.relu(h - hi)).max())

    start_penalty, start_outside = penalty_and_outside()
    for _ in range(40):
        penalty, _ = penalty_and_outside()
        (grad,) = torch.autograd.grad(penalty, x)
        with torch.no_grad():
            x -= 500.0 * grad
    end_penalty, end_outside = penalty_and_outside()
    assert float(end_penalty) < 0.05 * float(start_penalty)
    assert end_outside < 0.3 * start_outside  # the farthest excursion outside [lo, hi] shrinks


def test_pda_in_the_module_adds_and_logs_the_term(tmp_path):
    from spikegrad.data import DigitsDataModule

    L.seed_everything(0)
    model = SpikingClassifier(backbone=functools.partial(SpikingMLP, hidden=[32]), time_steps=2,
                              pda={"weight": 0.5, "lo": 0.0, "hi": 1.5})
    assert all(lif.keep_potential for lif in model.spiking_layers().values())
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    metrics = trainer.callback_metrics
    assert float(metrics["train/pda_epoch"]) > 0
    assert {"pda/fc1.lif/mean", "pda/fc1.lif/std", "pda/fc1.lif/below", "pda/fc1.lif/above"} <= set(metrics)
    # the term in the loss is λ times the window penalty of this forward's potentials
    x, y = next(iter(trainer.datamodule.train_dataloader()))
    task = model.task_loss((x, y))
    kept = [(lif.potential, lif.v_threshold) for lif in model.spiking_layers().values()]
    expected = 0.5 * potential_window_penalty(kept, 0.0, 1.5)
    assert float(model.pda_term()) == pytest.approx(float(expected))
    assert task.requires_grad and expected.requires_grad
