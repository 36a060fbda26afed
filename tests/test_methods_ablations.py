"""Every quick method variant in configs/ablations trains on the bundled digits, through the CLI as users run it."""

import glob
import os

import pytest
import yaml

from spikegrad.cli import main

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ABLATIONS = sorted(glob.glob(os.path.join(CONFIGS, "ablations", "*.yaml")))


def test_every_method_has_a_quick_variant():
    names = {os.path.basename(p)[:-5] for p in ABLATIONS}
    assert {"msg", "two", "tet", "reset_gradient", "dspike_search", "psg", "pda"} <= names


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
        assert model["surrogate"]["mask_p"] == 0.5 and model["decoding"] == "two"
        assert model["decoding_args"] == {"start": 5, "beta": 0.3} and model["time_steps"] == 4
    if name.startswith("dspike"):
        assert model["surrogate"]["name"] == "dspike" and model["backbone"] == "resnet18"
        assert resolved["data"]["init_args"]["time_steps"] == 10
    if name.startswith("psg"):
        assert model["pda"]["weight"] > 0
        assert any("ParametricSurrogate" in c["class_path"] for c in resolved["trainer"]["callbacks"])
