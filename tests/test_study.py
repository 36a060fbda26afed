"""Smoke test of the CPU-scale reproduction study's runner (studies/reproduce_small.py): one variant, one seed,
one short epoch, in this process; then the tables, plots and document built from its TensorBoard run."""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from studies import reproduce_small as study  # noqa: E402


def tiny_spec(tmp_path) -> dict:
    return {
        "seeds": [0],
        "threads": 1,
        "log_root": str(tmp_path / "logs"),
        "figures": str(tmp_path / "docs" / "figures"),
        "doc": str(tmp_path / "docs" / "study.md"),
        "experiments": [
            {
                "name": "msg_p_sweep",
                "title": "MSG drop probability",
                "claim": "sparser surrogate gradients",
                "config": os.path.join(ROOT, "studies", "configs", "digits_convnet.yaml"),
                "overrides": {
                    "model.backbone.init_args": {"channels": [4], "hidden": 16},
                    "model.surrogate": {"class_path": "Triangle", "init_args": {"alpha": 2.0, "mask_p": 0.0}},
                    "trainer.callbacks": [
                        {"class_path": "spikegrad.callbacks.GradientSparsityMonitor",
                         "init_args": {"every_n_steps": 1}},
                    ],
                    "trainer.max_epochs": 1,
                    "trainer.limit_train_batches": 3,
                    "trainer.limit_val_batches": 1,
                    "trainer.limit_test_batches": 1,
                    "trainer.log_every_n_steps": 1,
                },
                "reference": "p0.5",
                "x": "model.surrogate.mask_p",
                "variants": {"p0.5": {"model.surrogate.mask_p": 0.5}},
            }
        ],
    }


def test_study_runs_reads_back_and_writes_the_document(tmp_path, one_thread):
    spec = tiny_spec(tmp_path)
    spent = study.run_study(spec, [0], spec["log_root"])
    assert set(spent) == {"msg_p_sweep"}
    folder = study.run_dir(spec["log_root"], "msg_p_sweep", "p0.5", 0)
    record = json.load(open(os.path.join(folder, study.RUN_FILE)))
    assert record["status"] == "ok" and record["wall_s"] > 0
    assert not os.path.exists(os.path.join(folder, "checkpoints"))  # removed after the run
    assert study.run_study(spec, [0], spec["log_root"]) == {}  # finished runs are not trained again

    runs = study.collect(spec, spec["experiments"][0], [0])
    metrics = runs["p0.5"][0]
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["grad_sparsity"] >= 0.4  # half of the surrogate derivatives are masked

    doc = study.write_outputs(spec, [0], {})
    text = open(doc).read()
    assert "| `p0.5` | 1 |" in text
    assert os.path.isfile(os.path.join(spec["figures"], "msg_p_sweep.png"))
    assert os.path.isfile(os.path.join(spec["figures"], "msg_p_sweep", "grad_sparsity.png"))  # spikegrad report

    # regenerating replaces the generated blocks only: text written between them stays
    with open(doc, "w") as f:
        f.write(text.replace("**Claim.**", "Hand-written reading.\n\n**Claim.**"))
    study.write_outputs(spec, [0], {})
    again = open(doc).read()
    assert "Hand-written reading." in again and again.count("| `p0.5` | 1 |") == 1


def test_variant_overrides_append_with_plus():
    experiment = {
        "overrides": {"trainer.callbacks": [{"class_path": "A"}], "model.loss": "ce"},
        "variants": {"v": {"trainer.callbacks+": [{"class_path": "B"}], "model.loss": "tet"}},
    }
    merged = study.merged_overrides(experiment, "v")
    assert [c["class_path"] for c in merged["trainer.callbacks"]] == ["A", "B"]
    assert merged["model.loss"] == "tet"
    assert experiment["overrides"]["trainer.callbacks"] == [{"class_path": "A"}]  # the spec is not modified
    args = study.cli_args({"name": "e", "config": "c.yaml", **experiment}, "v", 3, "logs/x")
    assert args[:3] == ["fit", "--config", "c.yaml"]
    assert args[args.index("--seed_everything") + 1] == "3"
    assert args[args.index("--trainer.logger.init_args.version") + 1] == "seed3"


def test_fixed_temperature_probe_keeps_b():
    from spikegrad.callbacks import FixedTemperatureProbe

    probe = FixedTemperatureProbe(b0=2.0)
    probe.b = 2.0
    assert probe.candidates() == {"b": 2.0}
