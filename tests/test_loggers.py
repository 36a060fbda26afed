"""Analysis and report with the other Lightning loggers: CSVLogger and MLflowLogger on a real local file store."""

import csv
import glob
import os

from _tiny_run import run_main, tiny_config
from spikegrad.report import build_report, find_runs, load_run

MONITORS = [{"class_path": f"spikegrad.callbacks.{name}", "init_args": {"every_n_steps": 2, **extra}}
            for name, extra in (("FiringRateMonitor", {"figure_every_n_epochs": 1}), ("GradientSparsityMonitor", {}),
                                ("PotentialMonitor", {"figure_every_n_epochs": 3}))]


def fit_with_logger(folder, logger: dict) -> str:
    import yaml

    path = tiny_config(folder, callbacks=MONITORS)
    with open(path) as f:
        config = yaml.safe_load(f)
    config["trainer"]["logger"] = logger
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    run_main(["fit", "--config", path], folder)
    return path


def test_csv_logger_gets_scalars_figures_and_a_report(tmp_path, capsys):
    fit_with_logger(tmp_path, {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(tmp_path / "csv"), "name": "tiny"}})
    out = capsys.readouterr().out
    run = str(tmp_path / "csv" / "tiny" / "version_0")
    assert f"CSV logs: {run}/metrics.csv" in out and "TensorBoard" not in out.split("CSV logs:")[0][-200:]
    with open(os.path.join(run, "metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rates = [float(r["firing_rate/fc1.lif"]) for r in rows if r.get("firing_rate/fc1.lif")]
    assert len(rates) == 6 and all(0 < r < 1 for r in rates)  # steps 0, 2, ..., 10
    assert len(glob.glob(os.path.join(run, "figures", "firing_rate", "layers", "step_*.png"))) == 3
    assert len(glob.glob(os.path.join(run, "figures", "potential", "distribution", "fc1.lif", "*.png"))) == 1
    loaded = load_run(run, "csv")
    val = [float(r["val/acc"]) for r in rows if r.get("val/acc")]
    assert loaded.values("val/acc") == val and len(val) == 3
    assert loaded.settings["model.optimizer.init_args.lr"] == "0.003"
    markdown = build_report([run], str(tmp_path / "report"))
    assert f"| {max(val):.4g} |" in open(markdown).read()


def test_mlflow_logger_on_a_local_file_store(tmp_path, capsys, monkeypatch):
    import mlflow  # noqa: F401  (the dev extra installs mlflow-skinny; a missing install fails here)

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    store = tmp_path / "mlruns"
    fit_with_logger(tmp_path, {"class_path": "lightning.pytorch.loggers.MLFlowLogger",
                               "init_args": {"tracking_uri": f"file:{store}", "experiment_name": "tiny"}})
    out = capsys.readouterr().out
    assert f"in file:{store}" in out and f"mlflow ui --backend-store-uri file:{store}" in out
    (run,) = find_runs([str(store)])
    params = {os.path.basename(p): open(p).read() for p in glob.glob(os.path.join(run, "params", "*"))}
    assert params["optimizer.lr"] == "0.003" and params["surrogate"] == "ATan" and params["batch_size"] == "32"
    assert len(glob.glob(os.path.join(run, "artifacts", "firing_rate", "layers", "step_*.png"))) == 3
    loaded = load_run(run, "mlflow")
    assert len(loaded.values("val/acc")) == 3 and len(loaded.values("firing_rate/fc1.lif")) == 6
    assert loaded.seconds_per_epoch() > 0
    markdown = build_report([str(store)], str(tmp_path / "report"))
    assert f"| {max(loaded.values('val/acc')):.4g} |" in open(markdown).read()
