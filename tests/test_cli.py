"""The ``spikegrad`` console script, run as a user runs it."""

import os
import subprocess
import sys

import pytest
import yaml

from _tiny_run import load_checkpoint, run_dir, run_main, tiny_config

BIN = os.path.join(os.path.dirname(sys.executable), "spikegrad")


def _run(args, cwd, timeout=600):
    return subprocess.run([BIN, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_fit_prints_test_accuracy_and_log_folder(tmp_path, repo_root):
    config = os.path.join(repo_root, "configs", "quickstart.yaml")
    proc = _run(
        ["fit", "--config", config, "--trainer.max_epochs", "2", "--trainer.logger.init_args.save_dir",
         str(tmp_path / "logs"), "--trainer.enable_progress_bar", "false"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test/acc = " in proc.stdout
    acc = float(proc.stdout.split("test/acc = ")[1].split(",")[0])
    assert acc > 0.6  # two epochs; test_training checks the learning itself
    log_line = [line for line in proc.stdout.splitlines() if line.startswith("TensorBoard logs: ")][0]
    log_dir = log_line.split()[2]
    saved = yaml.safe_load(open(os.path.join(tmp_path, log_dir, "config.yaml")) if not os.path.isabs(log_dir)
                           else open(os.path.join(log_dir, "config.yaml")))
    # the saved config is the resolved one (omegaconf interpolation T_max: ${trainer.max_epochs})
    assert saved["model"]["lr_scheduler"]["init_args"]["T_max"] == 2


def test_print_config(repo_root, tmp_path):
    proc = _run(["fit", "--config", os.path.join(repo_root, "configs", "quickstart.yaml"), "--print_config"],
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load(proc.stdout)
    assert config["model"]["surrogate"] == {"class_path": "spikegrad.surrogates.ATan",
                                            "init_args": {"alpha": 2.0, "mask_p": 0.0, "mask_rescale": False,
                                                          "mask_fill": 0.0}}
    assert config["model"]["neuron"]["class_path"] == "spikegrad.LIF"
    assert config["data"]["class_path"] == "spikegrad.data.DigitsDataModule"


def test_help_lists_the_components_and_their_options(tmp_path, capsys):
    proc = _run(["test", "--help"], cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ("--model.neuron NEURON", "--model.surrogate SURROGATE", "--model.backbone BACKBONE",
                 "--model.decoder DECODER", "--model.loss LOSS", "--data", "--ckpt_path"):
        assert flag in proc.stdout
    for known in ("spikegrad.PLIF", "spikegrad.surrogates.DSpike", "spikegrad.models.ResNet19",
                  "spikegrad.decoding.TemporallyWeightedDecoder", "spikegrad.losses.TemporalEfficientTrainingLoss"):
        assert known in proc.stdout.replace("\n", "").replace(" ", "")
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "--model.neuron.help", "PLIF"], cwd=tmp_path)
    assert exit_info.value.code in (0, None)
    text = " ".join(capsys.readouterr().out.split())
    assert "--model.neuron.init_tau INIT_TAU τ at initialisation (> 1)" in text
    assert "--model.neuron.learn_threshold {true,false} make θ a parameter of the layer" in text


def _tiny_fit_args(tmp_path, *overrides):
    return ["fit", "-c", tiny_config(tmp_path), "--test_after_fit", "false", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "3", *overrides]


def test_a_surrogate_and_a_backbone_of_ones_own_train_by_class_path(tmp_path, monkeypatch):
    """Classes of a module outside spikegrad (tests/_user_components.py), named by class path: ``spikegrad fit``."""
    monkeypatch.setenv("SPIKEGRAD_TRUSTED_MODULES", "_user_components")
    run_main(_tiny_fit_args(
        tmp_path, "--model.surrogate", "_user_components.Gaussian", "--model.surrogate.alpha", "3.0",
        "--model.backbone", "_user_components.TwoLayerNet", "--model.backbone.width", "24",
    ), cwd=tmp_path)
    checkpoint = load_checkpoint(os.path.join(run_dir(tmp_path), "checkpoints", "last.ckpt"))
    state = checkpoint["state_dict"]
    assert state["backbone.0.1.weight"].shape == (24, 64)  # TwoLayerNet with width 24 on 8x8 digits
    assert state["backbone.1._extra_state"]["surrogate"] == {
        "class_path": "_user_components.Gaussian",
        "init_args": {"alpha": 3.0, "mask_p": 0.0, "mask_rescale": False, "mask_fill": 0.0}}
    assert checkpoint["hyper_parameters"]["backbone"]["class_path"] == "_user_components.TwoLayerNet"
    assert checkpoint["global_step"] == 3


def test_sequence_data_links_its_time_steps_into_the_model(tmp_path, capsys):
    data = ["--data", "spikegrad.data.SpikePatternDataModule", "--data.time_steps", "7", "--data.channels", "12",
            "--data.train_size", "64", "--data.val_size", "16", "--data.test_size", "16", "--data.batch_size", "16"]
    run_main(_tiny_fit_args(tmp_path, "--model.time_steps", "null", *data), cwd=tmp_path)
    checkpoint = load_checkpoint(os.path.join(run_dir(tmp_path), "checkpoints", "last.ckpt"))
    assert checkpoint["hyper_parameters"]["data_time_steps"] == checkpoint["hyper_parameters"]["time_steps"] == 7
    assert list(checkpoint["hyper_parameters"]["input_shape"]) == [12]
    with pytest.raises(SystemExit) as exit_info:
        run_main(_tiny_fit_args(tmp_path, "--model.time_steps", "5", *data), cwd=tmp_path)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "spikegrad: error: model.time_steps 5 differs from the data's time_steps 7 (sequence data brings its own T); "
        "valid values: 7, or leave model.time_steps unset")


def test_fit_help_describes_the_spiking_settings_in_plain_text():
    """--help: a one-line description and the valid choices of every spiking setting, without Sphinx markup."""
    import subprocess

    from _tiny_run import BIN, subprocess_env

    def help_of(*args):
        result = subprocess.run([BIN, "fit", *args], capture_output=True, text=True, env=subprocess_env(), timeout=300)
        assert result.returncode == 0, result.stderr
        return " ".join(result.stdout.split())  # unwrapped

    main = help_of("--help")
    assert "--model.neuron NEURON the spiking layers (a SpikingNeuron subclass: LIF, PLIF, IF, ...)" in main
    assert "known subclasses: spikegrad.IF, spikegrad.LIF, spikegrad.PLIF" in main
    assert "the surrogate gradient of the spike" in main and "spikegrad.surrogates.DSpike" in main
    lif = help_of("--model.neuron.help", "LIF")
    assert "--model.neuron.tau TAU membrane time constant τ (> 1 for the charge form" in lif
    assert "--model.neuron.reset RESET hard (to zero) or soft (subtract θ)" in lif
    atan = help_of("--model.surrogate.help", "ATan")
    assert "--model.surrogate.alpha ALPHA the steepness α > 0" in atan
    assert "drop probability p in [0, 1)" in atan
    for text in (main, lif, atan):
        assert not any(markup in text for markup in (":class:", ":mod:", ":data:", ":func:", "``")), text[:300]
