"""Data parallelism through Lightning's own DDP strategy, with 2 CPU processes (the same code path as GPUs/nodes)."""

from __future__ import annotations

import glob
import json
import os

import pytest

from _tiny_run import run_cli, run_dir, tiny_config

pytestmark = pytest.mark.slow


def test_two_process_ddp_fit_gives_global_metrics_and_writes_once(tmp_path):
    probe = {"class_path": "_probes.MetricsDump", "init_args": {"folder": str(tmp_path / "ranks")}}
    monitor = {"class_path": "spikegrad.callbacks.FiringRateMonitor",
               "init_args": {"every_n_steps": 1, "figure_every_n_epochs": 0}}
    config = tiny_config(tmp_path, max_epochs=1, limit_train_batches=3, limit_test_batches=1.0,
                         callbacks=[probe, monitor])
    proc = run_cli(["fit", "-c", config, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                    "--test_after_fit", "true"], cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    ranks = [json.load(open(tmp_path / "ranks" / f"rank{r}.json")) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["global_rank"] for r in ranks] == [0, 1]
    # each process tested half of the test set; the logged metrics are the global ones, equal on both
    assert ranks[0]["metrics"]["test/acc"] == ranks[1]["metrics"]["test/acc"]
    assert ranks[0]["metrics"]["test/loss"] == pytest.approx(ranks[1]["metrics"]["test/loss"], abs=1e-6)
    single = _single_process_test_accuracy(glob.glob(str(tmp_path / "logs/tiny/version_0/checkpoints/epoch*.ckpt"))[0])
    assert abs(ranks[0]["metrics"]["test/acc"] - single) <= 1 / 359 + 1e-6  # DistributedSampler pads 359 to 360

    # logs, manifest, checkpoints and printed results: once
    assert os.listdir(tmp_path / "logs" / "tiny") == ["version_0"]
    folder = run_dir(tmp_path)
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    assert manifest["trainer"]["world_size"] == 2 and manifest["trainer"]["strategy"] == "DDPStrategy"
    assert not glob.glob(os.path.join(folder, "manifest.resume-*.json"))
    assert sorted(os.path.basename(p)[:5] for p in glob.glob(os.path.join(folder, "checkpoints", "*"))) == [
        "epoch", "last."]
    assert proc.stdout.count("Test results") == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in glob.glob(os.path.join(folder, "events.out.tfevents*")):
        accumulator = EventAccumulator(events)
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"val/acc", "test/acc", "firing_rate/mean"} <= tags  # the analysis callback reduced and logged


def _single_process_test_accuracy(checkpoint: str) -> float:
    import lightning as L

    from spikegrad.data import DigitsDataModule
    from spikegrad.module import SpikingClassifier

    model = SpikingClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    return trainer.test(model, datamodule=DigitsDataModule(batch_size=32), verbose=False)[0]["test/acc"]
