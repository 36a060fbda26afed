"""Every quick method variant in configs/ablations trains on the bundled digits, through the CLI as users run it."""

import glob
import os

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spikegrad.cli import main

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ABLATIONS = sorted(glob.glob(os.path.join(CONFIGS, "ablations", "*.yaml")))


def test_every_method_has_a_quick_variant():
    names = {os.path.basename(p)[:-5] for p in ABLATIONS}
    assert {"msg", "two", "tet", "reset_gradient", "dspike_search", "psg", "pda", "plif", "if_threshold"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("config", ABLATIONS, ids=lambda p: os.path.basename(p)[:-5])
def test_ablation_variant_reaches_95_percent(config, tmp_path, capsys, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", config, "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false", "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")])
    out = capsys.readouterr().out
    assert "test/acc = " in out, out[-2000:]
    accuracy = float(out.split("test/acc = ")[1].split(",")[0])
    assert accuracy >= 0.95, f"{os.path.basename(config)}: test accuracy {accuracy:.4f}"
    name = os.path.basename(config)[:-5]
    if name in ("plif", "if_threshold"):  # the learned quantity moved, was logged per layer, and is checkpointed
        _assert_learned_per_layer(tmp_path / "logs", "tau" if name == "plif" else "v_threshold")


def _assert_learned_per_layer(logs, quantity: str) -> None:
    (run,) = glob.glob(os.path.join(str(logs), "*", "version_0"))
    events = EventAccumulator(run)
    events.Reload()
    neuron = "plif" if quantity == "tau" else "if"  # the layer is named by structure: fc1.plif, fc1.if
    values = [e.value for e in events.Scalars(f"neuron/fc1.{neuron}/{quantity}")]
    assert len(values) == 8 and values[-1] != pytest.approx(values[0], abs=1e-3)  # one per epoch, and it learned
    state = torch.load(os.path.join(run, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=True)
    parameter = {"tau": "backbone.2.w", "v_threshold": "backbone.2.v_threshold"}[quantity]
    stored = state["state_dict"][parameter]
    learned = float(1 / torch.sigmoid(stored)) if quantity == "tau" else float(stored)
    assert learned == pytest.approx(values[state["epoch"]], rel=1e-5)  # the value logged at that epoch's end


PAPERS = ["msg_two_cifar10_cifarnet_t4", "dspike_cifar10dvs_resnet18_t10", "psg_pda_cifar10", "reset_gradient_toy"]


@pytest.mark.parametrize("name", PAPERS)
def test_paper_config_parses(name, capsys):
    config = os.path.join(CONFIGS, "papers", f"{name}.yaml")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", config, "--print_config"])
    assert done.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    model = resolved["model"]
    if name.startswith("msg"):
        assert model["surrogate"]["init_args"]["mask_p"] == 0.5
        assert model["decoder"]["class_path"] == "spikegrad.decoding.TemporallyWeightedDecoder"
        assert model["decoder"]["init_args"] == {"start": 5, "beta": 0.3} and model["time_steps"] == 4
    if name.startswith("dspike"):
        assert model["surrogate"]["class_path"] == "spikegrad.surrogates.DSpike"
        assert model["backbone"]["class_path"] == "spikegrad.models.ResNet18"
        assert resolved["data"]["init_args"]["time_steps"] == 10 and model["time_steps"] is None  # T is the data's
    if name.startswith("psg"):
        assert model["pda"]["weight"] > 0 and model["neuron"]["init_args"]["learn_threshold"] is True
        psg = [c for c in resolved["trainer"]["callbacks"] if "ParametricSurrogate" in c["class_path"]]
        assert [s["class_path"] for s in psg[0]["init_args"]["shapes"]] == [
            f"spikegrad.surrogates.{name}" for name in ("Rectangle", "Triangle", "Sigmoid", "ATan")]
