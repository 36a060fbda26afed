"""Analysis callbacks after a short digits fit: TensorBoard's own reader finds every tag, and the logged numbers
equal independent computations (forward hooks, the step-by-step reference LIF, hand-counted MACs)."""

import functools
import io
import json
import math
import os

import lightning as L
import matplotlib.image
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spikegrad.callbacks import (
    EnergyMonitor,
    FiringRateMonitor,
    GradientSparsityMonitor,
    MethodStateMonitor,
    PotentialMonitor,
)
from spikegrad.callbacks.analysis.potential import surrogate_window
from spikegrad.data import DigitsDataModule
from spikegrad.layer_names import readable_layer_names
from spikegrad.models import SpikingConvNet, SpikingMLP
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import PLIF
from spikegrad.neurons.reference import lif_reference
from spikegrad.surrogates import ATan, Rectangle, Sigmoid, Triangle

EVERY = 2
CHANNELS, HIDDEN, T, BATCH = (4, 8), 16, 4, 32
SURROGATE = Rectangle(alpha=0.8)
BACKBONE = functools.partial(SpikingConvNet, channels=list(CHANNELS), hidden=HIDDEN)


def analysis_callbacks(every=EVERY):
    return [
        FiringRateMonitor(every_n_steps=every),
        GradientSparsityMonitor(every_n_steps=every),
        PotentialMonitor(every_n_steps=every),
        EnergyMonitor(every_n_steps=every),
        MethodStateMonitor(),
    ]


def fit(log_dir, callbacks, hooks=None, strategy="auto", devices=1):
    L.seed_everything(0, workers=True)
    model = SpikingClassifier(
        backbone=BACKBONE, time_steps=T, surrogate=SURROGATE, optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
    )
    if hooks is not None:
        hooks(model)
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=4, limit_val_batches=1, num_sanity_val_steps=0, accelerator="cpu",
        devices=devices, strategy=strategy, logger=L.pytorch.loggers.TensorBoardLogger(str(log_dir), name="run"),
        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=BATCH))
    return trainer, model


def read_events(log_dir):
    accumulator = EventAccumulator(log_dir, size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalar_at(events, tag):
    return {e.step: e.value for e in events.Scalars(tag)}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """One fit with every analysis callback; forward hooks keep each LIF's input and output on training steps."""
    seen: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}

    def hooks(model):
        def keep(name):
            def hook(module, args, output):
                if module.training and torch.is_grad_enabled():
                    step = model.trainer.global_step
                    seen.setdefault(step, {})[name] = (args[0].detach().clone(), output.detach().clone())
            return hook

        for name, lif in model.spiking_layers().items():
            lif.register_forward_hook(keep(name))

    trainer, model = fit(tmp_path_factory.mktemp("with_callbacks"), analysis_callbacks(), hooks)
    return trainer, model, read_events(trainer.log_dir), seen


def test_every_tag_is_logged_in_range(analysed):
    trainer, model, events, seen = analysed
    names = readable_layer_names(model)  # module path -> tag name
    sampled = [s for s in range(trainer.global_step) if s % EVERY == 0]
    assert list(names.values()) == ["conv1.lif", "conv2.lif", "fc1.lif"] and sampled == [0, 2, 4, 6]
    per_layer = ["firing_rate/{}", "grad_sparsity/{}", "grad_sparsity_h/{}", "potential/{}/frac_below_0",
                 "potential/{}/frac_in_window", "potential/{}/frac_above_2theta"]
    for path, name in names.items():
        for pattern in per_layer:
            values = scalar_at(events, pattern.format(name))
            assert sorted(values) == sampled and all(0.0 <= v <= 1.0 for v in values.values()), pattern
        assert all(0 < v < 1 for v in scalar_at(events, f"firing_rate/{name}").values())
        assert all(v > 0 for v in scalar_at(events, f"potential/{name}/std_over_theta").values())
        histogram = events.Histograms(f"potential/{name}")
        assert [h.step for h in histogram] == sampled
        entries = seen[0][path][1].numel()
        assert histogram[0].histogram_value.num == entries
        assert sum(histogram[0].histogram_value.bucket) == entries
    for tag in ("firing_rate/mean", "grad_sparsity/mean", "grad_sparsity_h/mean", "energy/sops", "energy/snn_uJ",
                "energy/snn_to_ann"):
        assert sorted(scalar_at(events, tag)) == sampled, tag
    assert all(0 < v < 1 for v in scalar_at(events, "energy/snn_to_ann").values())
    texts = events.Tensors("method/surrogate/text_summary")  # the layers' surrogates, once (they do not change)
    assert len(texts) == 1 and texts[0].tensor_proto.string_val[0].decode().count("Rectangle(alpha=0.8)") == 3
    tags = events.Tags()
    assert not {"energy/ann_uJ", "energy/ann_macs", "energy/snn_macs"} & set(tags["scalars"])  # constants: text
    assert [t for t in tags["images"] if t.startswith("potential/")] == [
        f"potential/distribution/{name}" for name in names.values()]  # one figure per layer, in depth order
    for tag in ("firing_rate/layers", *(f"potential/distribution/{name}" for name in names.values())):
        images = events.Images(tag)
        assert len(images) == 2  # one per epoch
        pixels = matplotlib.image.imread(io.BytesIO(images[-1].encoded_image_string), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels[..., :3].std() > 0.05


def test_firing_rate_equals_forward_hooks(analysed):
    trainer, model, events, seen = analysed
    for path, name in readable_layer_names(model).items():
        logged = scalar_at(events, f"firing_rate/{name}")
        for step, value in logged.items():
            spikes = seen[step][path][1]
            assert value == pytest.approx(spikes.mean().item(), rel=1e-6, abs=1e-7)
    for step, value in scalar_at(events, "firing_rate/mean").items():
        outputs = [out for _, out in seen[step].values()]
        expected = sum(o.sum().item() for o in outputs) / sum(o.numel() for o in outputs)
        assert value == pytest.approx(expected, rel=1e-6)


def test_rectangle_sparsity_and_potential_stats_equal_reference_potentials(analysed):
    trainer, model, events, seen = analysed
    a = SURROGATE.alpha
    names = readable_layer_names(model)
    for path, lif in model.spiking_layers().items():
        name = names[path]
        for step in scalar_at(events, f"grad_sparsity/{name}"):
            x = seen[step][path][0]
            _, h = lif_reference(x.double(), Rectangle(alpha=a), lif.tau, lif.v_threshold)
            outside = ((h - lif.v_threshold).abs() > a / 2).double().mean().item()
            assert scalar_at(events, f"grad_sparsity/{name}")[step] == pytest.approx(outside, abs=1e-6)
            # the window of a rectangle is |h - θ| <= a/2, the complement of its zero set
            assert scalar_at(events, f"potential/{name}/frac_in_window")[step] == pytest.approx(1 - outside, abs=1e-6)
            u = h / lif.v_threshold
            assert scalar_at(events, f"potential/{name}/frac_below_0")[step] == pytest.approx(
                (u < 0).double().mean().item(), abs=1e-6)
            assert scalar_at(events, f"potential/{name}/frac_above_2theta")[step] == pytest.approx(
                (u > 2).double().mean().item(), abs=1e-6)
            assert scalar_at(events, f"potential/{name}/mean_over_theta")[step] == pytest.approx(
                u.mean().item(), abs=1e-5)
            assert scalar_at(events, f"potential/{name}/std_over_theta")[step] == pytest.approx(
                u.std(unbiased=False).item(), rel=1e-4)
            # the gradient reaching h has at least the zeros that no later step can fill
            assert 0 < scalar_at(events, f"grad_sparsity_h/{name}")[step] <= 1


def test_energy_follows_the_counting_rule(analysed):
    trainer, model, events, seen = analysed
    conv1, conv2, fc, head = [m for m in model.backbone.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    # 8x8 input: conv1 (1->4, 8x8) -> LIF -> pool to 4x4 -> conv2 (4->8, 4x4) -> LIF -> fc (128->16) -> LIF -> head
    macs = {"conv1": 4 * 64 * 1 * 9, "conv2": 8 * 16 * 4 * 9, "fc": 8 * 16 * HIDDEN, "head": HIDDEN * 10}
    layers = list(model.spiking_layers())
    for step, sops in scalar_at(events, "energy/sops").items():
        rate = {name: seen[step][name][1].mean().item() for name in layers}
        expected_sops = T * (rate[layers[0]] * macs["conv2"] + rate[layers[1]] * macs["fc"]
                             + rate[layers[2]] * macs["head"])
        assert sops == pytest.approx(expected_sops, rel=1e-5)
        snn = (0.9 * expected_sops + 4.6 * macs["conv1"]) * 1e-6
        assert scalar_at(events, "energy/snn_uJ")[step] == pytest.approx(snn, rel=1e-5)
        assert scalar_at(events, "energy/snn_to_ann")[step] == pytest.approx(
            snn / (4.6 * sum(macs.values()) * 1e-6), rel=1e-5)
    # the numbers that do not change, once as a text table: encoder MACs (direct encoding: once per sample), the
    # ANN's MACs and energy
    texts = events.Tensors("energy/constants/text_summary")
    table = texts[0].tensor_proto.string_val[0].decode()
    assert len(texts) == 1
    assert f"| `energy/snn_macs` | {macs['conv1']:.6g} |" in table
    assert f"| `energy/ann_macs` | {sum(macs.values()):.6g} |" in table
    assert f"| `energy/ann_uJ` | {4.6 * sum(macs.values()) * 1e-6:.6g} |" in table
    assert {f"energy/sops/{n}" for n in ("conv2", "fc1", "fc2")} <= set(events.Tags()["scalars"])
    assert (conv1.in_channels, conv2.in_channels, fc.in_features, head.in_features) == (1, 4, 128, HIDDEN)


def test_callbacks_do_not_change_training(analysed, tmp_path):
    trainer, model, events, seen = analysed
    _, plain = fit(tmp_path, callbacks=[])
    trained, reference = model.state_dict(), plain.state_dict()
    L.seed_everything(0)
    untrained = SpikingClassifier(backbone=BACKBONE, time_steps=T)
    assert not torch.equal(untrained.state_dict()["backbone.0.0.weight"], trained["backbone.0.0.weight"])
    assert trained.keys() == reference.keys()
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(trained[key], value), key
    # the recording switches are back off and hold nothing
    for lif in model.spiking_layers().values():
        assert lif.record is False and lif.recorded == {}


def test_method_state_reads_two_weights_and_the_learned_neuron_values(tmp_path):
    model = SpikingClassifier(backbone=functools.partial(SpikingMLP, hidden=[8]), time_steps=3,
                              neuron=functools.partial(PLIF, init_tau=3.0, learn_threshold=True, v_threshold=0.6))
    model.decoder.register_buffer("weights", torch.tensor([0.5, 1.0, 1.5]))
    trainer = L.Trainer(logger=False)
    state = MethodStateMonitor().state(trainer, model)
    assert state["method/two_weights/t1"] == 0.5 and state["method/two_weights/t3"] == 1.5
    assert state["neuron/fc1.plif/tau"] == pytest.approx(3.0) and state["neuron/fc1.plif/v_threshold"] == (
        pytest.approx(0.6))
    assert set(state) == {"method/two_weights/t1", "method/two_weights/t2", "method/two_weights/t3",
                          "neuron/fc1.plif/tau", "neuron/fc1.plif/v_threshold"}  # nothing a callback logs


@pytest.mark.parametrize(
    "name,alpha,expected",
    [(Rectangle, 0.8, 0.4), (Triangle, 2.0, 0.5), (ATan, 2.0, 2 / (math.pi * 2.0)),
     (Sigmoid, 4.0, math.log(3 + 2 * math.sqrt(2)) / 4.0)],
)
def test_surrogate_window(name, alpha, expected):
    assert surrogate_window(name(alpha=alpha)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "make,needle",
    [(lambda: FiringRateMonitor(every_n_steps=0), "every_n_steps"),
     (lambda: PotentialMonitor(value_range=(1.5, 3.0)), "value_range"),
     (lambda: PotentialMonitor(bins=1), "bins"),
     (lambda: EnergyMonitor(e_ac_pj=0), "e_ac_pj")],
)
def test_bad_settings_are_one_line_errors(make, needle):
    with pytest.raises(ValueError) as err:
        make()
    assert needle in str(err.value) and "\n" not in str(err.value)


class RankSpikeCounts(L.Callback):
    """Writes each process's spike count and entry count of every spiking layer at the sampled step 0."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step != 1:  # the batch sampled at step 0 has just stepped
            return
        names = readable_layer_names(pl_module)
        counts = {names[path]: [lif.recorded["spikes"].sum().item(), lif.recorded["spikes"].numel()]
                  for path, lif in pl_module.spiking_layers().items()}
        with open(os.path.join(self.out_dir, f"rank{trainer.global_rank}.json"), "w") as f:
            json.dump(counts, f)


def test_ddp_statistics_are_global_and_logged_once(tmp_path):
    # the counter runs before the monitors' release (callbacks run in list order), while `recorded` is filled
    callbacks = [RankSpikeCounts(str(tmp_path)), *analysis_callbacks(every=100)]
    fit(tmp_path, callbacks, strategy="ddp_spawn", devices=2)
    ranks = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    events = read_events(str(tmp_path / "run" / "version_0"))
    for name in ranks[0]:
        expected = (ranks[0][name][0] + ranks[1][name][0]) / (ranks[0][name][1] + ranks[1][name][1])
        logged = events.Scalars(f"firing_rate/{name}")
        assert len(logged) == 1 and logged[0].value == pytest.approx(expected, rel=1e-6)
    assert ranks[0] != ranks[1]  # the processes saw different data
    assert len(events.Histograms(f"potential/{name}")) == 1
    assert events.Histograms(f"potential/{name}")[0].histogram_value.num == 2 * ranks[0][name][1]


def test_potential_figure_draws_the_pda_window_only_when_pda_is_on():
    import numpy as np

    from spikegrad.plotting import potential_figure

    edges, counts = np.linspace(-2, 4, 61), np.ones(60)
    off = potential_figure({"conv1.lif": (edges, counts)}, {"conv1.lif": 0.5}, "h/θ")
    on = potential_figure({"conv1.lif": (edges, counts)}, {"conv1.lif": 0.5}, "h/θ", (0.0, 2.0))

    def labels(figure):
        return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]

    assert labels(off) == ["surrogate window", "threshold θ"] and "PDA window" in labels(on)
    assert off.axes[0].get_title() == "conv1.lif"
    assert on.axes[0].get_title() == "conv1.lif  (33% in the PDA window [0, 2]θ)"  # 20 of 60 equal bins
