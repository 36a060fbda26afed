"""Errors a user can cause: one line naming the setting (or the file) and the valid values, exit code 2, before any
run folder exists; a config may only name trusted modules; a failed run keeps its traceback in ``error.log``."""

from __future__ import annotations

import glob
import os

import lightning  # noqa: F401  (imported at collection: its log handler then writes to pytest's session stream)
import pytest
import torch
import yaml

from _tiny_run import TRUSTED_MODULES_ENV, TRUSTED_TEST_MODULES, run_cli, run_main, tiny_config

# an accelerator this machine does not have: gpu on a CPU machine, mps on a Linux GPU machine
MISSING_ACCELERATOR = ("gpu", "no CUDA GPU is visible") if not torch.cuda.is_available() else (
    "mps", "no Apple MPS device")


def _fabricate(folder) -> None:
    """The bad inputs of the table, in real formats: config files, checkpoints, a file where a folder belongs."""
    files = {
        "bad.yaml": "model:\n  time_steps: [3\n",
        "empty.yaml": "",
        "list.yaml": "- model\n- data\n",
        "interp.yaml": "model:\n  time_steps: ${nosuch.key}\n",
        "afile": "not a folder\n",
        "empty.ckpt": "",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "random.ckpt").write_bytes(bytes(range(256)) * 4)
    checkpoint = {"state_dict": {"w": torch.ones(64, 64)}, "epoch": 0, "global_step": 4}
    torch.save(checkpoint, folder / "whole.ckpt")
    data = (folder / "whole.ckpt").read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    torch.save(torch.ones(3), folder / "tensor.ckpt")
    torch.save({"state_dict": {}, "note": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)},
               folder / "foreign.ckpt")
    settings = {"model": {"backbone": "mlp", "time_steps": 5}, "data": {"class_path": "spikegrad.data.DigitsDataModule",
                                                                       "init_args": {"batch_size": 32}}}
    torch.save({"state_dict": {}, "spikegrad_settings": settings}, folder / "other_settings.ckpt")


def _corrupt_last(folder) -> None:
    """An earlier run whose newest resumable checkpoint (what ``--ckpt_path last`` picks) is truncated."""
    checkpoints = folder / "logs" / "tiny" / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes((folder / "truncated.ckpt").read_bytes())


def _unwritable(folder) -> str:
    """A logs folder that cannot be written: a read-only folder, or for root (who may write anywhere) sysfs."""
    if os.geteuid() == 0:
        return "/sys/spikegrad-test-logs"
    locked = folder / "locked"
    locked.mkdir(mode=0o555)
    return str(locked / "logs")


# (command-line settings, expected fragment of the one error line); {dir} is the test's folder. Model keys are the
# ones of today's SpikingClassifier: adapting a row to another model config is a change of that row only.
INVALID_SETTINGS = [
    # model
    (["--model.neuron.tau", "1.0"], "neuron tau must be > 1"),
    (["--model.neuron.tau", "0.5", "--model.neuron.decay_input", "false"], "neuron tau must be >= 1"),
    (["--model.neuron.v_threshold", "0"], "neuron v_threshold must be > 0"),
    (["--model.surrogate.mask_p", "1.0"], "mask_p must be in [0, 1)"),
    (["--model.surrogate.mask_p", "-0.1"], "mask_p must be in [0, 1)"),
    (["--model.surrogate", "Triangle", "--model.surrogate.alpha", "1e20"],
     "surrogate Triangle: alpha must be in [0.01, 100]"),
    (["--model.time_steps", "0"], "time_steps must be >= 1"),
    (["--model.time_steps", "null"], "model.time_steps must be set for direct input (the number of steps T)"),
    (["--model.surrogate", "nosuch"], "model.surrogate: unknown class 'nosuch'; valid choices: ATan, DSpike, "),
    (["--model.surrogate", "spikegrad.neurons.LIF"], "model.surrogate: spikegrad.neurons.LIF is not a Surrogate; "
     "valid choices: ATan, DSpike"),
    (["--model.backbone", "nosuch"], "model.backbone: unknown class 'nosuch'; valid choices: CIFARConvNet, "
     "NIRBackbone, ResNet18"),
    (["--model.neuron", "LIFF"], "model.neuron: unknown class 'LIFF'; valid choices: IF, LIF, PLIF (or the import "
     "path of a SpikingNeuron subclass)"),
    (["--model.decoder", "nosuch"], "model.decoder: unknown class 'nosuch'; valid choices: LastStepDecoder, "
     "MeanDecoder, TemporallyWeightedDecoder"),
    (["--model.loss", "nosuch"], "model.loss: unknown class 'nosuch'; valid choices: CrossEntropyLoss, "
     "TemporalEfficientTrainingLoss"),
    (["--model.neuron.taux", "3"], "model.neuron: LIF has no option 'taux'; valid options: tau, decay_input, "
     "v_threshold, reset, detach_reset, learn_threshold, backend"),
    (["--model.backbone.depth", "3"], "model.backbone: SpikingMLP has no option 'depth'; valid options: hidden, "
     "batch_norm, dropout"),
    (["--model.surrogate.beta", "1"], "model.surrogate: ATan has no option 'beta'; valid options: alpha, mask_p, "
     "mask_rescale, mask_fill"),
    (["--model.neuron.reset", "zero"], "neuron reset must be one of hard, soft; got 'zero'"),
    (["--model.neuron.backend", "triton"], "neuron backend must be one of auto, eager, compile; got 'triton'"),
    (["--model.nosuch", "1"], "--model.nosuch"),
    # optimizer
    (["--model.optimizer.init_args.lr", "-1"], "model.optimizer: Invalid learning rate: -1.0"),
    # trainer
    (["--trainer.max_epochs", "many"], "trainer.max_epochs: expected int or null, got 'many'"),
    (["--trainer.max_epochs", "-5"], "trainer.max_epochs: must be a non-negative integer or -1"),
    (["--trainer.accelerator", MISSING_ACCELERATOR[0]], MISSING_ACCELERATOR[1]),
    (["--trainer.sync_batchnorm", "true"], "trainer.sync_batchnorm true needs GPUs"),
    # data
    (["--data.init_args.batch_size", "0"], "batch_size must be >= 1, got 0"),
    (["--data.init_args.num_workers", "-1"], "num_workers must be >= 0, got -1"),
    (["--data", "spikegrad.data.MNISTDataModule", "--data.data_dir", "{dir}/afile"],
     "data.init_args.data_dir '{dir}/afile' is a file"),
    # config files
    (["-c", "{dir}/interp.yaml"], "model.time_steps: Interpolation key 'nosuch.key' not found"),
    (["-c", "{dir}/bad.yaml"], "config file {dir}/bad.yaml: not valid YAML at line 3"),
    (["-c", "{dir}/empty.yaml"], "config file {dir}/empty.yaml is empty"),
    (["-c", "{dir}/list.yaml"], "config file {dir}/list.yaml: expected a mapping of settings"),
    (["-c", "{dir}/missing.yaml"], "File does not exist: '{dir}/missing.yaml'"),
    # output folders
    (["--trainer.logger.init_args.save_dir", "{dir}/afile/logs"],
     "trainer.logger.init_args.save_dir '{dir}/afile/logs': {dir}/afile is a file, not a folder"),
    (["--trainer.logger.init_args.save_dir", "{unwritable}"], "is not writable"),
    (["--checkpoint.dirpath", "{dir}/afile/checkpoints"], "checkpoint.dirpath '{dir}/afile/checkpoints'"),
    # checkpoints
    (["--checkpoint.save_last", "true"], "checkpoint.save_last: last.ckpt is written at the end of every epoch"),
    (["--checkpoint.every_n_epochs", "-1"], "checkpoint: Invalid value for every_n_epochs=-1"),
    (["--finite_check.every_n_steps", "0"], "finite_check.every_n_steps must be >= 1, got 0"),
    (["--ckpt_path", "missing.ckpt"], "ckpt_path: no such checkpoint file 'missing.ckpt'; valid values"),
    (["--ckpt_path", "last"], "ckpt_path last: no earlier run in {dir}/logs/tiny/*/checkpoints (no last.ckpt"),
    (["--ckpt_path", "best"], "ckpt_path best: no earlier run in"),
    (["--ckpt_path", "{dir}/empty.ckpt"], "ckpt_path {dir}/empty.ckpt: the file is empty (0 bytes)"),
    (["--ckpt_path", "{dir}/random.ckpt"], "ckpt_path {dir}/random.ckpt: cannot be read"),
    (["--ckpt_path", "{dir}/truncated.ckpt"], "ckpt_path {dir}/truncated.ckpt: cannot be read, the file is truncated"),
    (["--ckpt_path", "{dir}/tensor.ckpt"], "ckpt_path {dir}/tensor.ckpt: not a Lightning checkpoint"),
    (["--ckpt_path", "{dir}/foreign.ckpt"], "holds a Python object of type torch.optim.sgd.SGD"),
    (["--ckpt_path", "last", "--corrupt-last"],
     "ckpt_path {dir}/logs/tiny/version_0/checkpoints/last.ckpt: cannot be read, the file is truncated"),
    (["--ckpt_path", "{dir}/other_settings.ckpt"],
     "the given settings differ from the checkpoint's: model.time_steps (checkpoint: 5, given: 3)"),
    (["--ckpt_settings", "nosuch"], "ckpt_settings"),
    # trusted modules
    (["--model.optimizer.class_path", "os.system", "--model.optimizer.init_args.command", "touch {dir}/ran"],
     "model.optimizer: class_path 'os.system' is not in a trusted module (torch, lightning, torchmetrics, spikegrad"),
    (["--model.optimizer.class_path", "torch.os.system"], "class_path 'torch.os.system' (that is 'posix.system')"),
    (["--trainer.callbacks+=_probes.BlockAt", "--untrusted-probes"],
     "class_path '_probes.BlockAt' is not in a trusted module"),
    (["--trusted=not a module"], "SPIKEGRAD_TRUSTED_MODULES: 'not a module' is not a module prefix"),
]


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


def _run_folders(folder) -> list[str]:
    return glob.glob(os.path.join(str(folder), "**", "version_*"), recursive=True)


@pytest.mark.parametrize(("args", "message"), INVALID_SETTINGS, ids=[" ".join(a) for a, _ in INVALID_SETTINGS])
def test_invalid_setting_is_one_line_before_any_run_folder(tmp_path, capsys, monkeypatch, args, message):
    _fabricate(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TRUSTED_MODULES_ENV, TRUSTED_TEST_MODULES)
    fill = {"dir": str(tmp_path), "unwritable": _unwritable(tmp_path) if "{unwritable}" in args else ""}
    args = [a.format(**fill) for a in args]
    if "--corrupt-last" in args:
        args.remove("--corrupt-last")
        _corrupt_last(tmp_path)
    if "--untrusted-probes" in args:
        args.remove("--untrusted-probes")
        monkeypatch.delenv(TRUSTED_MODULES_ENV)
    for arg in [a for a in args if a.startswith("--trusted=")]:
        args.remove(arg)
        monkeypatch.setenv(TRUSTED_MODULES_ENV, arg.split("=", 1)[1])
    before = _run_folders(tmp_path)
    from spikegrad.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", tiny_config(tmp_path), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "weights_only" not in err
    lines = _error_lines(err)
    assert len(lines) == 1 and message.format(**fill) in lines[0], err[-2000:]
    assert lines[0].startswith("spikegrad")
    assert _run_folders(tmp_path) == before  # nothing started: no run folder
    assert not os.path.exists(tmp_path / "ran")  # the refused class_path was never called


def test_unknown_key_in_a_config_file_is_one_line(tmp_path, capsys):
    config = tiny_config(tmp_path)
    with open(config) as f:
        settings = yaml.safe_load(f)
    settings["model"]["neuron"] = {"class_path": "LIF", "init_args": {"taux": 2.0}}
    with open(config, "w") as f:
        yaml.safe_dump(settings, f)
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config], cwd=tmp_path)
    assert exit_info.value.code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "taux" in lines[0] and "--help" in lines[0]


def test_the_console_shows_one_line_and_no_traceback(tmp_path):
    proc = run_cli(["fit", "-c", tiny_config(tmp_path), "--model.surrogate.mask_p", "1.5"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert _error_lines(proc.stderr) == ["spikegrad: error: surrogate mask_p must be in [0, 1), got 1.5"]


def test_trusted_modules_come_from_the_environment_only(tmp_path, monkeypatch):
    from spikegrad.trust import TRUSTED_MODULES, trusted_modules

    monkeypatch.setenv(TRUSTED_MODULES_ENV, " mylab.callbacks, torchvision ,")
    assert trusted_modules() == [*TRUSTED_MODULES, "mylab.callbacks", "torchvision"]
    assert TRUSTED_MODULES == ("torch", "lightning", "torchmetrics", "spikegrad")
    # a module trusted in one command is not trusted in the next one that does not list it
    probe = {"class_path": "_probes.PoisonWeights", "init_args": {"epoch": 5}}
    config = tiny_config(tmp_path, max_epochs=1, callbacks=[probe])
    run_main(["fit", "-c", config], cwd=tmp_path)  # trusts _probes
    monkeypatch.delenv(TRUSTED_MODULES_ENV)
    from spikegrad.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", config])
    assert exit_info.value.code == 2
