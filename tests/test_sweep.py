"""``spikegrad sweep``: grid trials exactly once under concurrent workers (SQLite and a real PostgreSQL), a killed
worker's trial retried from its last.ckpt, failed trials recorded, bad specs refused, and the summary's numbers."""

from __future__ import annotations

import csv
import glob
import math
import os
import signal
import statistics
import subprocess
import time

import optuna
import pytest
import yaml

from _tiny_run import BIN, TESTS_DIR, run_cli, subprocess_env, tiny_config
from spikegrad.aggregate import aggregate, holm, summary_figure, write_summary
from spikegrad.cli import main as spikegrad_main
from spikegrad.sweep.command import check_spec_settings
from spikegrad.sweep.spec import load_spec

pytestmark = pytest.mark.slow


def write_spec(folder, name="tiny_sweep", variants=None, seeds=(0, 1), **extra) -> str:
    """A sweep of the tiny config: ``variants`` (default: ATan α 2 and 4) × ``seeds``, 2 epochs each."""
    config = tiny_config(folder, name="base", max_epochs=2)
    spec = {
        "name": name,
        "config": config,
        "log_root": os.path.join(str(folder), "logs"),
        "overrides": {"trainer.callbacks": [
            {"class_path": "spikegrad.callbacks.FiringRateMonitor",
             "init_args": {"every_n_steps": 2, "figure_every_n_epochs": 0}},
            {"class_path": "spikegrad.callbacks.GradientSparsityMonitor", "init_args": {"every_n_steps": 2}},
        ]},
        "seeds": list(seeds),
        "objective": "best_val_acc",
        "variants": variants or {"alpha2": {"model.surrogate.init_args.alpha": 2.0},
                                 "alpha4": {"model.surrogate.init_args.alpha": 4.0}},
        "heartbeat_interval": 1,
        "grace_period": 3,
        **extra,
    }
    path = os.path.join(str(folder), f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(spec, f)
    return path


def load_trials(url: str, name: str):
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def sqlite_url(folder, name="tiny_sweep") -> str:
    return f"sqlite:///{os.path.join(str(folder), 'logs', name, 'optuna.db')}"


def assert_grid_done_once(folder, url, name="tiny_sweep", keys=("alpha2", "alpha4"), seeds=(0, 1)):
    """Every variant × seed COMPLETE exactly once, with its own run folder holding an ordinary run."""
    trials = load_trials(url, name)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    done = sorted((t.user_attrs["variant"], t.user_attrs["seed"]) for t in complete)
    assert done == sorted((v, s) for v in keys for s in seeds)
    for trial in complete:
        run_dir = trial.user_attrs["run_dir"]
        assert run_dir == os.path.join(str(folder), "logs", name, trial.user_attrs["variant"],
                                       f"seed_{trial.user_attrs['seed']}")
        files = os.listdir(run_dir)
        assert {"config.yaml", "manifest.json"} <= set(files)
        assert any(f.startswith("events.out.tfevents.") for f in files)
        assert os.path.isfile(os.path.join(run_dir, "checkpoints", "last.ckpt"))
        with open(os.path.join(run_dir, "config.yaml")) as f:
            assert yaml.safe_load(f)["seed_everything"] == trial.user_attrs["seed"]
        metrics = trial.user_attrs["metrics"]
        assert trial.value == metrics["best_val_acc"] and 0 < trial.value <= 1
        assert 0 < metrics["firing_rate"] < 1 and metrics["epochs"] == 2
    folders = {os.path.join(v, s) for v in os.listdir(os.path.join(str(folder), "logs", name))
               if os.path.isdir(os.path.join(str(folder), "logs", name, v)) and v != "summary"
               for s in os.listdir(os.path.join(str(folder), "logs", name, v))}
    assert len(folders) == len(keys) * len(seeds)
    return complete


def assert_summary(folder, complete, name="tiny_sweep"):
    with open(os.path.join(str(folder), "logs", name, "summary", "summary.csv")) as f:
        rows = {row["variant"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["alpha2", "alpha4"]
    for variant, row in rows.items():
        values = [t.user_attrs["metrics"]["best_val_acc"] for t in complete if t.user_attrs["variant"] == variant]
        assert int(row["n"]) == 2
        assert float(row["best_val_acc_mean"]) == pytest.approx(statistics.fmean(values))
        assert float(row["best_val_acc_std"]) == pytest.approx(statistics.stdev(values))
    markdown = open(os.path.join(str(folder), "logs", name, "summary", "summary.md")).read()
    assert "| `alpha4` | 2 |" in markdown and " ± " in markdown and "reference" in markdown
    assert os.path.getsize(os.path.join(str(folder), "logs", name, "summary", "summary.png")) > 5000


def test_two_workers_on_sqlite_run_every_trial_exactly_once(tmp_path):
    spec = write_spec(tmp_path)
    result = run_cli(["sweep", spec, "--workers", "2"], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_trials(sqlite_url(tmp_path), "tiny_sweep")
    assert len(trials) == 4  # nothing queued twice, nothing retried
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers took trials
    complete = assert_grid_done_once(tmp_path, sqlite_url(tmp_path))
    assert_summary(tmp_path, complete)
    # spikegrad report over the sweep's runs: grouped by every setting but the seed, the same numbers
    spikegrad_main(["report", str(tmp_path / "logs" / "tiny_sweep"), "--out", str(tmp_path / "report")])
    with open(tmp_path / "report" / "over_seeds.csv") as f:
        groups = {row["variant"]: row for row in csv.DictReader(f)}
    with open(tmp_path / "logs" / "tiny_sweep" / "summary" / "summary.csv") as f:
        summary = {row["variant"]: row for row in csv.DictReader(f)}
    assert sorted(groups) == ["model.surrogate.init_args.alpha=2.0", "model.surrogate.init_args.alpha=4.0"]
    for alpha in ("2", "4"):
        row, expected = groups[f"model.surrogate.init_args.alpha={alpha}.0"], summary[f"alpha{alpha}"]
        assert row["n"] == "2"
        assert float(row["best_val_acc_mean"]) == pytest.approx(float(expected["best_val_acc_mean"]))
        assert float(row["best_val_acc_std"]) == pytest.approx(float(expected["best_val_acc_std"]))
    assert "## Over seeds" in (tmp_path / "report" / "report.md").read_text()
    # a rerun of the same command trains nothing and rewrites the summary
    again = run_cli(["sweep", spec, "--workers", "2"], cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and "4 trial(s) complete, 0 not" in again.stdout
    assert len(load_trials(sqlite_url(tmp_path), "tiny_sweep")) == 4


def test_two_workers_on_postgresql(tmp_path):
    pgserver = pytest.importorskip("pgserver", reason="pgserver is in the dev extra")
    try:
        server = pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="stop")
    except Exception as error:  # noqa: BLE001 - the one reason a real server cannot be had here
        pytest.skip(f"PostgreSQL server did not start: {str(error).splitlines()[0]}")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
        spec = write_spec(tmp_path)
        result = run_cli(["sweep", spec, "--workers", "2", "--storage", url], cwd=tmp_path, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert len(load_trials(url, "tiny_sweep")) == 4
        complete = assert_grid_done_once(tmp_path, url)
        assert_summary(tmp_path, complete)
    finally:
        server.cleanup()  # stop the server while its folder exists
    assert not os.path.exists(os.path.join(str(tmp_path), "logs", "tiny_sweep", "optuna.db"))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_worker_s_trial_is_retried_from_its_last_checkpoint(tmp_path, signum):
    """SIGKILL: the worker dies mid-trial. SIGTERM (a cancelled job): it stops fit, exits 143 and leaves the trial
    RUNNING rather than FAIL. Either way the same command again finishes the grid, nothing lost or run twice."""
    spec = write_spec(tmp_path)
    gate = os.path.join(str(tmp_path), "hold")
    with open(gate, "w"):
        pass  # while this file exists, alpha2 seed 1 waits at its second epoch (after its first checkpoint)
    with open(spec) as f:
        content = yaml.safe_load(f)
    hold = {"gate": gate, "run_part": os.path.join("alpha2", "seed_1")}
    content["overrides"]["trainer.callbacks"].append({"class_path": "_probes.HoldWhileGate", "init_args": hold})
    with open(spec, "w") as f:
        yaml.safe_dump(content, f)
    url = sqlite_url(tmp_path)
    worker = subprocess.Popen([BIN, "sweep", spec], cwd=str(tmp_path), env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stopped = None
    deadline = time.monotonic() + 600
    while stopped is None and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
        if not os.path.exists(gate + ".held"):
            continue
        for trial in load_trials(url, "tiny_sweep"):
            run_dir = trial.user_attrs.get("run_dir")
            if trial.state == optuna.trial.TrialState.RUNNING and run_dir \
                    and os.path.isfile(os.path.join(run_dir, "checkpoints", "last.ckpt")):
                os.kill(worker.pid, signum)  # mid-trial, after its first epoch's checkpoint
                stopped = trial
                break
    assert stopped is not None, "the worker finished or timed out before it could be stopped mid-trial"
    err = worker.communicate(timeout=300)[1]
    assert worker.returncode == -signal.SIGKILL if signum == signal.SIGKILL else worker.returncode == 143, err
    if signum == signal.SIGTERM:
        assert err.strip().splitlines()[-1].startswith("spikegrad sweep: stopped by SIGTERM; run the same command")
        states = {t.number: t.state for t in load_trials(url, "tiny_sweep")}
        assert states[stopped.number] == optuna.trial.TrialState.RUNNING  # not recorded as a failed run
    os.remove(gate)  # the rerun passes through
    result = run_cli(["sweep", spec], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_trials(url, "tiny_sweep")
    assert stopped.number >= 1 and stopped.user_attrs["run_dir"].endswith(os.path.join("alpha2", "seed_1"))
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [stopped.number]  # the stopped trial, marked failed by its heartbeat
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == stopped.number]
    assert len(retries) == 1 and retries[0].state == optuna.trial.TrialState.COMPLETE
    assert os.path.basename(retries[0].user_attrs["resumed_from"]) in ("last.ckpt", "interrupted.ckpt")
    assert retries[0].user_attrs["run_dir"] == stopped.user_attrs["run_dir"]
    assert len(trials) == 5  # 4 trials + 1 retry: none lost, none run twice
    assert_grid_done_once(tmp_path, url)


def test_a_failing_trial_is_recorded_and_the_others_go_on(tmp_path):
    # lr = 1e30 makes the loss non-finite: the NaN guard stops that run (exit code 1)
    spec = write_spec(tmp_path, variants={"ok": {}, "diverges": {"model.optimizer.init_args.lr": 1.0e30}},
                      seeds=[0])
    result = run_cli(["sweep", spec], cwd=tmp_path, timeout=600)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    trials = {t.user_attrs["variant"]: t for t in load_trials(sqlite_url(tmp_path), "tiny_sweep")}
    assert trials["ok"].state == optuna.trial.TrialState.COMPLETE
    assert trials["diverges"].state == optuna.trial.TrialState.FAIL
    reason = trials["diverges"].user_attrs["fail_reason"]
    assert "\n" not in reason and ("finite" in reason.lower() or "nan" in reason.lower()), reason
    summary_md = os.path.join(str(tmp_path), "logs", "tiny_sweep", "summary", "summary.md")
    assert f"diverges seed 0): FAIL: {reason}" in open(summary_md).read()
    # --summary: only the summary, rewritten from the study; nothing trains
    os.remove(summary_md)
    again = run_cli(["sweep", spec, "--summary"], cwd=tmp_path, timeout=300)
    assert again.returncode == 1 and "1 trial(s) complete, 1 not" in again.stdout, again.stdout + again.stderr
    assert f"diverges seed 0): FAIL: {reason}" in open(summary_md).read()
    assert len(load_trials(sqlite_url(tmp_path), "tiny_sweep")) == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"variants": {"a": {"model.surrogat.init_args.alpha": 2.0}}}, "variants.a:"),
        ({"variants": {}}, "the grid is empty"),
        ({"objective": "accuracy"}, "objective 'accuracy' is not a metric; valid values: test_acc"),
        ({"search": {"n_trials": 2, "space": {"x": {"type": "float", "low": 1, "high": 0}}}},
         "search replaces variants"),
        ({"sweeps": 3}, "unknown key 'sweeps'"),
    ],
)
def test_bad_specs_are_one_line_and_exit_2(tmp_path, capsys, change, expected):
    spec = write_spec(tmp_path)
    with open(spec) as f:
        content = {**yaml.safe_load(f), **change}
    with open(spec, "w") as f:
        yaml.safe_dump(content, f)
    with pytest.raises(SystemExit) as stop:
        spikegrad_main(["sweep", spec])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spikegrad sweep: error: ") and expected in err, err
    assert not os.path.exists(os.path.join(str(tmp_path), "logs", "tiny_sweep", "alpha2"))


def test_an_unreachable_storage_is_one_line_and_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path)
    with pytest.raises(SystemExit) as stop:
        spikegrad_main(["sweep", spec, "--storage", "postgresql+psycopg2://nobody@127.0.0.1:9/none"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open the database" in err, err


def test_paired_statistics_and_holm():
    records = [{"group": "ref", "seed": s, "acc": v} for s, v in enumerate([0.90, 0.92, 0.91])]
    records += [{"group": "b", "seed": s, "acc": v} for s, v in enumerate([0.93, 0.94, 0.95])]
    records += [{"group": "c", "seed": s, "acc": v} for s, v in enumerate([0.90, 0.93, 0.90])]
    groups = aggregate(records, "ref", ["acc"])
    assert [g.name for g in groups] == ["ref", "b", "c"]
    assert groups[1].mean["acc"] == pytest.approx(0.94) and groups[1].std["acc"] == pytest.approx(0.01)
    diffs = [0.03, 0.02, 0.04]
    t = statistics.fmean(diffs) / (statistics.stdev(diffs) / math.sqrt(3))
    assert groups[1].paired["acc"].t == pytest.approx(t)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    p_b, p_c = groups[1].paired["acc"].p, groups[2].paired["acc"].p
    assert groups[1].paired["acc"].p_holm == pytest.approx(min(1, 2 * min(p_b, p_c)) if p_b <= p_c
                                                           else max(min(1, 2 * p_c), p_b))


def search_spec(folder, pruner="median", **overrides) -> str:
    spec = write_spec(folder, name="search")
    with open(spec) as f:
        content = yaml.safe_load(f)
    del content["variants"]
    content["overrides"].update(overrides)
    content["search"] = {"n_trials": 3, "sampler": "random", "pruner": pruner, "space": {
        "model.optimizer.init_args.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
        "model.surrogate.init_args.alpha": {"type": "int", "low": 1, "high": 4},
        "model.backbone.init_args.hidden": {"type": "categorical", "choices": [[16], [32]]},
    }}
    with open(spec, "w") as f:
        yaml.safe_dump(content, f)
    return spec


def test_search_samples_the_space_and_feeds_the_pruner_every_epoch(tmp_path):
    spec = search_spec(tmp_path)
    result = run_cli(["sweep", spec], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = load_trials(sqlite_url(tmp_path, "search"), "search")
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for trial in trials:
        assert 1.0e-3 <= trial.params["model.optimizer.init_args.lr"] <= 1.0e-2
        assert trial.params["model.surrogate.init_args.alpha"] in (1, 2, 3, 4)
        assert trial.params["model.backbone.init_args.hidden"] in ([16], [32])
        # the pruner got val/acc after each of the 2 epochs, and the run used the sampled settings
        assert sorted(trial.intermediate_values) == [0, 1]
        assert trial.intermediate_values[1] == pytest.approx(trial.user_attrs["metrics"]["final_val_acc"])
        with open(os.path.join(trial.user_attrs["run_dir"], "config.yaml")) as f:
            config = yaml.safe_load(f)
        assert config["model"]["optimizer"]["init_args"]["lr"] == trial.params["model.optimizer.init_args.lr"]
        assert config["model"]["backbone"]["init_args"]["hidden"] == trial.params["model.backbone.init_args.hidden"]
        assert trial.user_attrs["run_dir"].endswith(os.path.join("search", f"trial_{trial.number:04d}", "seed_0"))


def test_search_with_a_pruner_refuses_ddp_trials(tmp_path, capsys):
    spec = search_spec(tmp_path, **{"trainer.devices": 2})
    with pytest.raises(SystemExit) as stop:
        spikegrad_main(["sweep", spec])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs one process per trial" in err and "search.pruner none" in err, err


REPO_SPECS = sorted(glob.glob(os.path.join(os.path.dirname(TESTS_DIR), "configs", "s*", "*.yaml")))


@pytest.mark.parametrize("path", REPO_SPECS, ids=os.path.basename)
def test_the_repository_s_sweep_specs_pass_the_checks(path, monkeypatch):
    """The example sweep and the reproduction studies: every variant parses as `spikegrad fit` settings."""
    monkeypatch.chdir(os.path.dirname(TESTS_DIR))
    spec = load_spec(os.path.relpath(path))
    check_spec_settings(spec)
    assert spec.points() and spec.reference in spec.variants


def test_summary_figure_of_twenty_variants(tmp_path):
    """Small multiples for 20 variants × 3 seeds: one row per variant labelled with its n, axes zoomed to the data."""
    records = [{"group": f"variant_{g:02d}", "seed": s, "test_acc": 0.9 + 0.001 * g + 0.002 * s,
                "firing_rate": 0.1 + 0.01 * g, "grad_sparsity": 0.5, "sec_per_epoch": 1.0 + s}
               for g in range(20) for s in range(3)]
    metrics = ["test_acc", "firing_rate", "grad_sparsity", "sec_per_epoch"]
    groups = aggregate(records, "variant_00", metrics)
    path = write_summary(str(tmp_path), "twenty", groups, metrics, "test_acc")
    figure = summary_figure(groups, metrics)
    axes = figure.axes
    assert len(axes) == 4 and figure.get_size_inches()[1] >= 0.28 * 20
    assert [label.get_text() for label in axes[0].get_yticklabels()][0] == "variant_00 (n=3)"
    low, high = axes[0].get_xlim()
    assert 0.89 < low and high < 0.93  # accuracy axis zoomed to the data, not [0, 1]
    text = open(path).read()
    assert text.count("| 3 |") == 20 and "reference" in text
