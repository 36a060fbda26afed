"""The ``spikegrad`` console script, run as a user runs it."""

import os
import subprocess
import sys

import yaml

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
    assert config["model"]["surrogate"]["name"] == "atan"
    assert config["data"]["class_path"] == "spikegrad.data.DigitsDataModule"


def test_help_lists_the_method_settings(tmp_path):
    proc = _run(["test", "--help"], cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ("--model.surrogate.name", "--model.neuron.detach_reset", "--data", "--ckpt_path"):
        assert flag in proc.stdout
