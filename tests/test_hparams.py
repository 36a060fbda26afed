"""HPARAMS compares runs by their settings; ``test`` of a run's checkpoint logs into that run."""

import glob
import os

import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from _tiny_run import run_dir, run_main, tiny_config
from spikegrad.hparams import HPARAM_METRICS, run_hparams

MONITORS = [{"class_path": f"spikegrad.callbacks.{name}", "init_args": {"every_n_steps": 2}}
            for name in ("FiringRateMonitor", "GradientSparsityMonitor")]


def hparams_sessions(run: str) -> list[tuple[dict, list[str]]]:
    """``(hparams, metric names)`` of every HPARAMS session written into the run's event files."""
    sessions, metrics = [], []
    for path in sorted(glob.glob(os.path.join(run, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "hparams":
                    continue
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("experiment"):
                    metrics = [m.name.tag for m in data.experiment.metric_infos]
                if data.HasField("session_start_info"):
                    params = {k: getattr(v, v.WhichOneof("kind")) for k, v in data.session_start_info.hparams.items()}
                    sessions.append((params, metrics))
    return sessions


def scalars(run: str) -> dict[str, list[float]]:
    events = EventAccumulator(run, size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hparams")
    config = tiny_config(folder, methods=["dspike"], callbacks=MONITORS)
    run_main(["fit", "--config", config, "--model.optimizer.init_args.lr", "0.01"], folder)
    return folder, run_dir(folder)


def test_the_table_holds_the_settings_that_change_results_and_no_internals(fitted):
    _, run = fitted
    (params, metrics), = hparams_sessions(run)
    assert metrics == list(HPARAM_METRICS)
    expected = {"optimizer": "Adam", "optimizer.lr": 0.01, "batch_size": 32, "max_epochs": 3, "seed": 0,
                "time_steps": 3, "neuron": "LIF", "surrogate": "DSpike", "surrogate.alpha": 3.0,
                "surrogate.mask_p": 0.0, "backbone": "SpikingMLP", "backbone.hidden": "[32]", "decoder": "MeanDecoder",
                "loss": "CrossEntropyLoss", "data": "DigitsDataModule", "dataset": "digits",
                "DspikeTemperatureSearch.b0": 3.0, "DspikeTemperatureSearch.num_coordinates": 8,
                "trainer.limit_train_batches": 4, "trainer.deterministic": True,
                "neuron.backend": "auto", "neuron_backend": "eager"}  # auto, and what it chose for this run
    assert {key: params.get(key) for key in expected} == expected
    assert {"neuron.tau", "neuron.v_threshold", "neuron.reset", "pda.weight"} <= set(params)  # every neuron option
    internal = [k for k in params if "sha1" in k or "instantiator" in k or "input_shape" in k or "Monitor" in k]
    assert internal == []  # and the analysis monitors, which do not change training, are not settings
    logged = scalars(run)
    assert "hp_metric" not in logged
    assert logged["val/acc_best"] == sorted(logged["val/acc_best"]) and len(logged["val/acc_best"]) == 3
    assert {"firing_rate/mean", "grad_sparsity/mean"} <= set(logged)


def test_test_of_a_checkpoint_logs_into_its_run_with_the_runs_config(fitted, recwarn, capsys):
    folder, run = fitted
    with open(os.path.join(run, "config.yaml")) as f:
        config_before = f.read()
    run_main(["test", "--ckpt_path", os.path.join(run, "checkpoints", "last.ckpt")], folder)
    out = capsys.readouterr().out
    assert sorted(os.listdir(os.path.dirname(run))) == ["version_0"]  # no version_1
    logged = scalars(run)
    assert len(logged["test/acc"]) == 1 and 0 < logged["test/acc"][0] <= 1  # beside the fit's curves
    assert "hp_metric" not in logged and "hp_metric" not in out and "test/acc" in out
    assert len(hparams_sessions(run)) == 1  # a test is no new trial
    with open(os.path.join(run, "config.yaml")) as f:
        assert f.read() == config_before
    assert not [w for w in recwarn if "dirpath" in str(w.message)]


def test_runs_without_a_training_epoch_are_no_trials(tmp_path):
    config = tiny_config(tmp_path, max_epochs=0)
    run_main(["fit", "--config", config], tmp_path)
    runs = glob.glob(os.path.join(tmp_path, "logs", "*", "*"))
    assert runs and all(hparams_sessions(run) == [] for run in runs)


def test_neuron_options_are_taken_generically():
    settings = {"model": {"neuron": {"class_path": "spikegrad.neurons.LIF",
                                     "init_args": {"tau": 2.0, "backend": "triton", "anything_new": 1}},
                          "input_shape": [1, 8, 8], "num_classes": 10, "encoding": "direct"},
                "trainer": {"max_epochs": 5, "callbacks": [
                    {"class_path": "spikegrad.callbacks.PotentialMonitor", "init_args": {"bins": 10}},
                    {"class_path": "spikegrad.callbacks.ParametricSurrogate", "init_args": {"kappa": 1.5}}]},
                "seed_everything": 3}
    flat = run_hparams(settings, time_steps=4)
    assert flat == {"seed": 3, "max_epochs": 5, "time_steps": 4, "neuron": "LIF", "neuron.tau": 2.0,
                    "neuron.backend": "triton", "neuron.anything_new": 1, "ParametricSurrogate": True,
                    "ParametricSurrogate.kappa": 1.5}


def test_custom_scalars_put_loss_and_accuracy_first_and_only_charts_with_data(fitted):
    from tensorboard.plugins.custom_scalar import layout_pb2

    _, run = fitted
    events = EventAccumulator(run, size_guidance={"tensors": 0})
    events.Reload()
    (config,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    assert [c.title for c in layout.category] == ["1 training", "2 spiking activity", "5 method state"]
    assert [chart.title for chart in layout.category[0].chart] == ["loss", "accuracy"]


def test_tensorboard_shows_learning_rate_surrogate_neuron_t_and_batch_size_first(fitted):
    """TensorBoard ticks five settings by default, those flagged as differing first: ours are flagged."""
    from spikegrad.hparams import SHOWN_FIRST

    _, run = fitted
    flagged = []
    for path in glob.glob(os.path.join(run, "events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/experiment":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    flagged = sorted(info.name for info in data.experiment.hparam_infos if info.differs)
    assert flagged == sorted(SHOWN_FIRST) == ["batch_size", "neuron", "optimizer.lr", "surrogate", "time_steps"]
