"""Nothing lost, nothing silently wrong: last.ckpt every epoch, NaN/Inf caught before any checkpoint holds it,
checkpoint settings never silently replace the given ones, max_epochs 0 reports no result, and the command
writes nowhere but its run folders and its cache folder."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time

import pytest
import torch
import yaml

from _tiny_run import BIN, load_checkpoint, run_dir, run_main, subprocess_env, tiny_config

pytestmark = pytest.mark.slow


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


def _checkpoints(folder) -> dict[str, dict]:
    return {os.path.basename(p): load_checkpoint(p) for p in glob.glob(os.path.join(folder, "*.ckpt"))}


def _finite(checkpoint: dict) -> bool:
    from spikegrad.callbacks.run.finite_loss import checkpoint_tensors, nonfinite_names

    return not nonfinite_names(checkpoint_tensors(checkpoint))


# --- last.ckpt ------------------------------------------------------------------------------------------------
def test_last_checkpoint_every_epoch_and_at_the_end_of_fit(tmp_path):
    # the best-checkpoint monitor "epoch" (mode min) makes every epoch after the first a non-improving one
    config = tiny_config(tmp_path, max_epochs=3)
    run_main(["fit", "-c", config, "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min",
              "--checkpoint.filename", "best-{epoch}"], cwd=tmp_path)
    saved = _checkpoints(os.path.join(run_dir(tmp_path), "checkpoints"))
    assert sorted(saved) == ["best-0.ckpt", "last.ckpt"]
    assert (saved["last.ckpt"]["epoch"], saved["last.ckpt"]["global_step"]) == (2, 12)  # the final weights

    # a fit that stops in the middle of an epoch (max_steps) still leaves its final state in last.ckpt,
    # in checkpoint.dirpath when that is set
    folder = tmp_path / "steps"
    folder.mkdir()
    run_main(["fit", "-c", tiny_config(folder, max_epochs=3), "--trainer.max_steps", "6",
              "--checkpoint.dirpath", str(folder / "ckpts")], cwd=folder)
    saved = _checkpoints(str(folder / "ckpts"))
    assert saved["last.ckpt"]["global_step"] == 6 and len(saved) == 2


# --- NaN / Inf ------------------------------------------------------------------------------------------------
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    poison = {"class_path": "_probes.PoisonWeights", "init_args": {"epoch": 1}}
    config = tiny_config(tmp_path, max_epochs=2, callbacks=[poison])
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config], cwd=tmp_path)
    assert exit_info.value.code == 1
    checkpoints = os.path.join(run_dir(tmp_path), "checkpoints")
    lines = _error_lines(capsys.readouterr().err)
    error_log = os.path.join(run_dir(tmp_path), "error.log")
    assert lines == [
        "spikegrad: error: training loss is nan at epoch 1, global step 4; stopped before this update "
        f"(last finite checkpoint: {os.path.join(checkpoints, 'last.ckpt')}); lower model.optimizer.init_args.lr "
        f"or check the data and model settings (traceback: {error_log})"
    ]
    assert "Traceback (most recent call last)" in open(error_log).read()  # the full traceback is in the run folder
    saved = _checkpoints(checkpoints)
    assert saved["last.ckpt"]["epoch"] == 0 and saved["last.ckpt"]["global_step"] == 4
    assert len(saved) == 2 and all(_finite(c) for c in saved.values())  # nothing written on this stop


def test_nan_weights_with_a_finite_loss_are_caught_by_the_periodic_check(tmp_path, capsys):
    # NaN in the first layer's weights: that layer stops spiking and the loss stays finite
    poison = {"class_path": "_probes.PoisonFirstLayer", "init_args": {"epoch": 1, "batch": 0}}
    config = tiny_config(tmp_path, max_epochs=3, callbacks=[poison])
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config, "--finite_check.every_n_steps", "2"], cwd=tmp_path)
    assert exit_info.value.code == 1
    checkpoints = os.path.join(run_dir(tmp_path), "checkpoints")
    (line,) = _error_lines(capsys.readouterr().err)
    assert "weights or optimizer state not finite (NaN/Inf in backbone." in line
    assert "at epoch 1, global step 6, found by the check every 2 steps" in line  # step 5 poisoned, 6 checked
    assert f"last finite checkpoint: {os.path.join(checkpoints, 'last.ckpt')})" in line
    saved = _checkpoints(checkpoints)
    assert saved["last.ckpt"]["global_step"] == 4 and all(_finite(c) for c in saved.values())


def test_no_checkpoint_holds_nan(tmp_path, capsys):
    # poisoned in the last batch of epoch 1, long before the periodic check: found before that epoch's saves
    poison = {"class_path": "_probes.PoisonFirstLayer", "init_args": {"epoch": 1, "batch": 3}}
    config = tiny_config(tmp_path, max_epochs=3, callbacks=[poison])
    with pytest.raises(SystemExit):
        run_main(["fit", "-c", config, "--finite_check.every_n_steps", "1000"], cwd=tmp_path)
    (line,) = _error_lines(capsys.readouterr().err)
    assert "found at the end of the epoch, before its checkpoints" in line
    saved = _checkpoints(os.path.join(run_dir(tmp_path), "checkpoints"))
    assert saved["last.ckpt"]["epoch"] == 0 and all(_finite(c) for c in saved.values())

    # and any other checkpoint (Ctrl-C's interrupted.ckpt, a user's callback) is checked right before it is written
    from spikegrad.callbacks.run.finite_loss import NonFiniteLossGuard, NonFiniteWeights

    class Trainer:
        world_size, current_epoch, global_step, is_global_zero, checkpoint_callbacks = 1, 0, 7, True, []

    state = {"state_dict": {"w": torch.ones(3)},
             "optimizer_states": [{"state": {0: {"exp_avg": torch.tensor([1.0, float("inf")])}}}]}
    with pytest.raises(NonFiniteWeights, match=r"NaN/Inf in optimizer 0 state 0.exp_avg.*not written"):
        NonFiniteLossGuard().on_save_checkpoint(Trainer(), None, state)


# --- max_epochs 0 ---------------------------------------------------------------------------------------------
def test_max_epochs_0_tests_nothing(tmp_path, capsys):
    config = tiny_config(tmp_path)
    run_main(["fit", "-c", config, "--trainer.max_epochs", "0", "--test_after_fit", "true"], cwd=tmp_path)
    out = capsys.readouterr().out
    assert "Test results" not in out
    assert "Not tested: no checkpoint was written (global step 0, trainer.max_epochs 0)" in out


# --- resuming with other settings -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished 2-epoch run of the tiny MLP (T = 3, atan alpha 2)."""
    folder = tmp_path_factory.mktemp("trained")
    run_main(["fit", "-c", tiny_config(folder, max_epochs=2)], cwd=folder)
    return folder


def _resume(folder, *args):
    return run_main(["fit", "-c", tiny_config(folder, max_epochs=3), "--ckpt_path", "last", *args], cwd=folder)


@pytest.mark.parametrize(("args", "listed"), [
    (["--model.backbone", "SpikingConvNet"],
     "model.backbone.class_path (checkpoint: spikegrad.models.SpikingMLP, given: spikegrad.models.SpikingConvNet)"),
    (["--model.surrogate.alpha", "5", "--model.time_steps", "5"],
     "model.surrogate.init_args.alpha (checkpoint: 2.0, given: 5.0), model.time_steps (checkpoint: 3, given: 5)"),
    (["--model.optimizer.init_args.lr", "0.1"], "model.optimizer.init_args.lr (checkpoint: 0.003, given: 0.1)"),
    (["--data.batch_size", "16"], "data.init_args.batch_size (checkpoint: 32, given: 16)"),
])
def test_resuming_with_other_settings_is_refused_with_the_differing_keys(trained, capsys, args, listed):
    with pytest.raises(SystemExit) as exit_info:
        _resume(trained, *args)
    assert exit_info.value.code == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert f"the given settings differ from the checkpoint's: {listed}; to continue with the checkpoint's " in line
    assert "--ckpt_settings checkpoint" in line and "--ckpt_settings given" in line
    assert sorted(os.listdir(trained / "logs" / "tiny")) == ["version_0"]


def test_ckpt_settings_checkpoint_continues_with_the_checkpoints_settings(trained, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    _resume(folder, "--model.surrogate.alpha", "5", "--model.time_steps", "5", "--data.num_workers", "0",
            "--ckpt_settings", "checkpoint")
    saved = yaml.safe_load(open(os.path.join(run_dir(folder), "config.yaml")))
    assert saved["model"]["surrogate"]["init_args"]["alpha"] == 2.0 and saved["model"]["time_steps"] == 3  # what ran
    last = load_checkpoint(os.path.join(run_dir(folder), "checkpoints", "last.ckpt"))
    assert last["hyper_parameters"]["time_steps"] == 3 and last["global_step"] == 12  # continued: 3 epochs


def test_ckpt_settings_given_fine_tunes_from_the_weights_in_a_new_run(trained, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    source = os.path.join(run_dir(folder), "checkpoints", "last.ckpt")
    start = {"class_path": "_probes.WeightsAtStart", "init_args": {"path": str(tmp_path / "start.pt")}}
    run_main(["fit", "-c", tiny_config(folder, max_epochs=1, callbacks=[start]), "--ckpt_path", "last",
              "--model.surrogate.alpha", "5", "--model.time_steps", "5", "--ckpt_settings", "given"], cwd=folder)
    new = run_dir(folder, version=1)
    last = load_checkpoint(os.path.join(new, "checkpoints", "last.ckpt"))
    hparams = last["hyper_parameters"]
    assert hparams["time_steps"] == 5 and hparams["surrogate"]["init_args"]["alpha"] == 5.0
    assert last["global_step"] == 4  # a new run: its own epoch and step count, a fresh optimizer
    initial = torch.load(tmp_path / "start.pt")
    weights = {k: v for k, v in load_checkpoint(source)["state_dict"].items() if isinstance(v, torch.Tensor)}
    assert weights.keys() == initial.keys()
    for key, value in weights.items():
        assert torch.equal(initial[key], value), key  # it started from the checkpoint's weights
    manifest = json.load(open(os.path.join(new, "manifest.json")))
    assert manifest["trainer"]["weights_from"] == source and manifest["trainer"]["resumed_from"] is None

    # weights that do not fit the given architecture: one line naming them
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", tiny_config(folder), "--ckpt_path", source, "--model.backbone.hidden",
                  "[16]", "--ckpt_settings", "given"], cwd=folder)
    assert exit_info.value.code == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert f"ckpt_path {source}: its weights do not fit the model of the given settings (other shape backbone." in line


def test_testing_a_checkpoint_takes_its_settings_unless_others_are_given(trained, capsys):
    # no model settings given: the checkpoint's are used (T = 3, atan 2) and the run is tested as trained
    source = os.path.join(run_dir(trained), "checkpoints", "last.ckpt")
    data = ["--data", "spikegrad.data.DigitsDataModule", "--trainer.logger", "false", "--trainer.accelerator", "cpu",
            "--trainer.limit_test_batches", "2", "--trainer.enable_progress_bar", "false"]
    run_main(["test", "--ckpt_path", source, *data], cwd=trained)
    with pytest.raises(SystemExit) as exit_info:  # an explicit T = 8 differs from the checkpoint's
        run_main(["test", "--ckpt_path", source, "--model.time_steps", "8", *data], cwd=trained)
    assert exit_info.value.code == 2
    assert "model.time_steps (checkpoint: 3, given: 8)" in _error_lines(capsys.readouterr().err)[0]
    # evaluating the weights at another T is a deliberate choice
    run_main(["test", "--ckpt_path", source, "--model.time_steps", "8", "--ckpt_settings", "given", *data],
             cwd=trained)


# --- writes outside logs/ and data/ ---------------------------------------------------------------------------
def test_a_run_writes_only_into_logs_and_the_cache_folder(tmp_path, repo_root):
    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for folder in (home, tmp, work):
        folder.mkdir()
    env = {key: value for key, value in subprocess_env().items()
           if not key.startswith(("XDG_", "MPLCONFIGDIR", "TORCHINDUCTOR", "TRITON", "SPIKEGRAD_CACHE"))}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    args = ["fit", "-c", os.path.join(repo_root, "configs", "quickstart.yaml"), "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches",
            "1", "--trainer.enable_progress_bar", "false", "--model.backbone.channels", "[4, 8]",
            "--model.backbone.hidden", "16"]
    proc = subprocess.run([BIN, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(view with: tensorboard --logdir logs)" in proc.stdout
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    outside = [p for p in written if not p.startswith(("work/logs/", "home/.cache/spikegrad/"))]
    assert outside == [], outside
    assert any(p.startswith("home/.cache/spikegrad/matplotlib/") for p in written)  # matplotlib's font list
    assert not os.listdir(tmp)


def test_the_manifest_reads_git_without_touching_the_index(tmp_path):
    from spikegrad.manifest import git_state

    repo = tmp_path / "checkout"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    later = time.time() + 5
    os.utime(repo / "a.py", (later, later))  # same content, new mtime: `git status` would refresh the index
    index = repo / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    state = git_state(str(repo))
    assert state["dirty"] is False and len(state["commit"]) == 40
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
