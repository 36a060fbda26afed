"""Reproducibility: same seed, same run; exact resume after a real kill; Ctrl-C leaves a resumable checkpoint;
the run manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from _tiny_run import load_checkpoint, run_dir, run_main, start_cli, tiny_config

pytestmark = pytest.mark.slow
# the best checkpoint by "epoch", mode min: only epoch 0 is ever a new best, every later epoch is non-improving
NON_IMPROVING = ["--checkpoint.monitor", "epoch", "--checkpoint.mode", "min", "--checkpoint.filename", "best-{epoch}"]


def _block_at(folder, epoch, batch) -> dict:
    return {"class_path": "_probes.BlockAt",
            "init_args": {"epoch": epoch, "batch": batch, "marker": os.path.join(str(folder), "blocked")}}


def _wait_for(path: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Waits until the run reaches its blocking batch; the limit is generous (a real hang never gets there)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before blocking:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run did not reach the blocking batch in time")
        time.sleep(0.2)


def _scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, list[tuple[int, float]]] = {}
    for name in sorted(os.listdir(log_dir)):
        if name.startswith("events.out.tfevents"):
            acc = EventAccumulator(os.path.join(log_dir, name))
            acc.Reload()
            for tag in acc.Tags()["scalars"]:
                values.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return values


def _method_state(ckpt: dict) -> dict:
    """What the training methods keep: TWO weights, every LIF's surrogate config, the methods' callback states."""
    state = ckpt["state_dict"]
    callbacks = {k: v for k, v in ckpt["callbacks"].items() if "Dspike" in k or "ParametricSurrogate" in k}
    return {
        "two_weights": [v.tolist() for k, v in state.items() if k.startswith("decoder.") and k.endswith("weights")],
        "surrogates": {k: v["surrogate"] for k, v in state.items() if k.endswith("_extra_state")},
        "callbacks": callbacks,
    }


def _assert_same_training_state(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"] and a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["state_dict"][key]), key
        else:
            assert value == b["state_dict"][key], key
    states_a, states_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert states_a.keys() == states_b.keys()
    for sa, sb in zip(states_a.values(), states_b.values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert _method_state(a) == _method_state(b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    config = tiny_config(folder, methods=True, max_epochs=3, callbacks=[_block_at(folder, None, 0)])
    run_main(["fit", "-c", config, *NON_IMPROVING], cwd=folder)
    return folder


def test_same_seed_gives_identical_weights_and_metrics(uninterrupted, tmp_path):
    config = tiny_config(tmp_path, methods=True, max_epochs=3, callbacks=[_block_at(tmp_path, None, 0)])
    run_main(["fit", "-c", config, *NON_IMPROVING], cwd=tmp_path)
    first = load_checkpoint(os.path.join(run_dir(uninterrupted), "checkpoints", "last.ckpt"))
    second = load_checkpoint(os.path.join(run_dir(tmp_path), "checkpoints", "last.ckpt"))
    _assert_same_training_state(first, second)
    metrics_first, metrics_second = _scalars(run_dir(uninterrupted)), _scalars(run_dir(tmp_path))
    assert "val/acc" in metrics_first and "train/loss_step" in metrics_first
    assert metrics_first == metrics_second


def test_killed_run_resumed_from_last_checkpoint_ends_like_an_uninterrupted_one(uninterrupted, tmp_path):
    # a real process, killed with SIGKILL in the middle of epoch 2, after the non-improving epoch 1
    config = tiny_config(tmp_path, methods=True, max_epochs=3, callbacks=[_block_at(tmp_path, 2, 2)])
    proc = start_cli(["fit", "-c", config, *NON_IMPROVING], cwd=tmp_path)
    _wait_for(os.path.join(tmp_path, "blocked"), proc)
    proc.kill()
    proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    checkpoints = os.path.join(run_dir(tmp_path), "checkpoints")
    assert sorted(os.listdir(checkpoints)) == ["best-0.ckpt", "last.ckpt"]  # epoch 1 was no new best ...
    last = os.path.join(checkpoints, "last.ckpt")
    assert load_checkpoint(last)["epoch"] == 1 and load_checkpoint(last)["global_step"] == 8  # ... and is kept

    config = tiny_config(tmp_path, methods=True, max_epochs=3, callbacks=[_block_at(tmp_path, None, 0)])
    run_main(["fit", "-c", config, *NON_IMPROVING, "--ckpt_path", "last"], cwd=tmp_path)
    assert not os.path.exists(run_dir(tmp_path, version=1))  # continued in the same run folder

    resumed = load_checkpoint(last)
    reference = load_checkpoint(os.path.join(run_dir(uninterrupted), "checkpoints", "last.ckpt"))
    assert resumed["epoch"] == 2 and resumed["global_step"] == 12  # only epoch 2 was trained again
    _assert_same_training_state(reference, resumed)
    # the methods were active and their state moved: TWO weights adapted, searches ran every epoch
    method_state = _method_state(resumed)
    assert method_state["two_weights"][0] != [1.0, 1.0, 1.0]  # updated from epoch 1 on
    assert all(len(state["history"]) == 3 for state in method_state["callbacks"].values())
    assert len(method_state["callbacks"]) == 2 and len(method_state["surrogates"]) >= 1
    manifest = json.load(open(os.path.join(run_dir(tmp_path), "manifest.resume-1.json")))
    assert manifest["trainer"]["resumed_from"] == last


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path):
    config = tiny_config(tmp_path, max_epochs=2, callbacks=[_block_at(tmp_path, 1, 2)])
    proc = start_cli(["fit", "-c", config], cwd=tmp_path)
    _wait_for(os.path.join(tmp_path, "blocked"), proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=600)  # a hang guard: minutes, since a loaded machine is slow
    assert proc.returncode == 1, output[-3000:]
    interrupted = os.path.join(run_dir(tmp_path), "checkpoints", "interrupted.ckpt")
    assert f"Interrupted: saved {interrupted}" in output
    state = load_checkpoint(interrupted)
    assert state["epoch"] == 1 and state["global_step"] == 6  # 4 batches of epoch 0, 2 of epoch 1

    config = tiny_config(tmp_path, max_epochs=2)
    run_main(["fit", "-c", config, "--ckpt_path", "last"], cwd=tmp_path)
    manifest = json.load(open(os.path.join(run_dir(tmp_path), "manifest.resume-1.json")))
    assert manifest["trainer"]["resumed_from"] == interrupted
    final = load_checkpoint(os.path.join(run_dir(tmp_path), "checkpoints", "last.ckpt"))
    assert final["epoch"] == 1 and final["global_step"] == 8
    assert not os.path.exists(interrupted)  # consumed: removed when the resumed run finished


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(tmp_path, capsys):
    sigterm = {"class_path": "_probes.SignalSelf", "init_args": {"epoch": 1, "batch": 1}}
    config = tiny_config(tmp_path, max_epochs=2, callbacks=[sigterm])
    with pytest.raises(SystemExit) as exit_info:
        run_main(["fit", "-c", config], cwd=tmp_path)
    assert exit_info.value.code == 128 + signal.SIGTERM  # not 0: the run did not finish
    interrupted = os.path.join(run_dir(tmp_path), "checkpoints", "interrupted.ckpt")
    assert f"Interrupted: saved {interrupted}" in capsys.readouterr().out
    assert load_checkpoint(interrupted)["epoch"] == 1


def test_manifest_records_versions_commit_command_hardware_and_seed(uninterrupted, repo_root):
    manifest = json.load(open(os.path.join(run_dir(uninterrupted), "manifest.json")))
    assert manifest["python"].count(".") == 2
    assert manifest["packages"]["torch"] == torch.__version__.split("+")[0]
    for package in ("lightning", "tonic", "torchmetrics", "spikegrad"):
        assert manifest["packages"][package]
    assert "torch_cuda" in manifest["cuda"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True, text=True)
    if head.returncode == 0:
        assert manifest["git"]["commit"] == head.stdout.strip()
        assert isinstance(manifest["git"]["dirty"], bool)
    assert manifest["command"][:3] == ["spikegrad", "fit", "-c"]
    assert manifest["hardware"]["cpu_count"] >= 1 and manifest["hardware"]["hostname"]
    assert manifest["seed"] == 0
    assert manifest["trainer"]["deterministic"] is True
    assert manifest["trainer"]["world_size"] == 1 and manifest["trainer"]["resumed_from"] is None
