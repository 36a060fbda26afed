"""Errors a user can cause: one line naming the setting and the valid values, exit code 2, before any work;
a NaN/Inf loss stops the run with a clear message and keeps the last good checkpoint."""

from __future__ import annotations

import os

import lightning  # noqa: F401  (imported at collection: its log handler then writes to pytest's session stream)
import pytest
import torch
import yaml

from _tiny_run import load_checkpoint, run_cli, run_dir, run_main, tiny_config

INVALID_SETTINGS = [
    (["--model.neuron.tau", "1.0"], "neuron tau must be > 1"),
    (["--model.neuron.tau", "0.5", "--model.neuron.decay_input", "false"], "neuron tau must be >= 1"),
    (["--model.neuron.v_threshold", "0"], "neuron v_threshold must be > 0"),
    (["--model.surrogate.mask_p", "1.0"], "mask_p must be in [0, 1)"),
    (["--model.surrogate.mask_p", "-0.1"], "mask_p must be in [0, 1)"),
    (["--model.time_steps", "0"], "time_steps must be >= 1"),
    (["--model.time_steps", "null"], "model.time_steps must be set for direct input (the number of steps T)"),
    (["--model.surrogate", "nosuch"], "model.surrogate: unknown class 'nosuch'; valid choices: ATan, DSpike, "),
    (["--model.surrogate", "spikegrad.neurons.LIF"], "model.surrogate: spikegrad.neurons.LIF is not a Surrogate; "
     "valid choices: ATan, DSpike"),
    (["--model.backbone", "nosuch"], "model.backbone: unknown class 'nosuch'; valid choices: CIFARNet, ResNet18"),
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
    (["--model.neuron.backend", "triton"], "neuron backend must be one of eager, compile; got 'triton'"),
    (["--model.nosuch", "1"], "--model.nosuch"),
    (["--trainer.max_epochs", "many"], "trainer.max_epochs"),
    (["--ckpt_path", "missing.ckpt"], "ckpt_path: no such checkpoint file 'missing.ckpt'; valid values"),
    (["--ckpt_path", "last"], "ckpt_path last: no last.ckpt or interrupted.ckpt"),
    (["--trainer.sync_batchnorm", "true"], "trainer.sync_batchnorm true needs GPUs"),
]


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


@pytest.mark.parametrize(("args", "message"), INVALID_SETTINGS, ids=[" ".join(a) for a, _ in INVALID_SETTINGS])
def test_invalid_setting_is_one_line_before_any_work(tmp_path, capsys, args, message):
    config = tiny_config(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config, *args], cwd=tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = _error_lines(err)
    assert len(lines) == 1 and message in lines[0], err[-2000:]
    assert lines[0].startswith("spikegrad")
    assert not os.path.exists(tmp_path / "logs")  # nothing started: no run folder


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


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    poison = {"class_path": "_probes.PoisonWeights", "init_args": {"epoch": 1}}
    config = tiny_config(tmp_path, max_epochs=2, callbacks=[poison])
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config], cwd=tmp_path)
    assert exit_info.value.code == 1
    checkpoints = os.path.join(run_dir(tmp_path), "checkpoints")
    lines = _error_lines(capsys.readouterr().err)
    assert lines == [
        "spikegrad: error: training loss is nan at epoch 1, global step 4; stopped before this update "
        f"(last good checkpoint: {os.path.join(checkpoints, 'last.ckpt')}); lower model.optimizer.init_args.lr "
        "or check the data and model settings"
    ]
    last = load_checkpoint(os.path.join(checkpoints, "last.ckpt"))
    assert last["epoch"] == 0 and last["global_step"] == 4
    tensors = [v for v in last["state_dict"].values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    assert tensors and all(torch.isfinite(v).all() for v in tensors)
    assert sorted(os.listdir(checkpoints))[-1] == "last.ckpt" and len(os.listdir(checkpoints)) == 2  # no new file
