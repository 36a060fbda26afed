"""``spikegrad report`` over two short quickstart runs that differ in one setting."""

import csv
import os
import time

import matplotlib.image
import pytest
import yaml

from spikegrad.cli import main as spikegrad_main
from spikegrad.report import Run, differing_settings, flatten

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quickstart(repo_root, log_dir, name, *overrides):
    spikegrad_main([
        "fit", "--config", os.path.join(repo_root, "configs", "quickstart.yaml"),
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(log_dir), "--trainer.logger.init_args.name", name,
        "--model.backbone.init_args", "{channels: [8, 16], hidden: 32}",
        "--checkpoint.dirpath", str(log_dir / name / "ckpt"), *overrides,
    ])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    _quickstart(REPO_ROOT, logs, "alpha2", "--model.surrogate.alpha", "2.0")
    _quickstart(REPO_ROOT, logs, "alpha4", "--model.surrogate.alpha", "4.0")
    return logs


def test_report_names_the_difference_and_writes_table_and_plots(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    spikegrad_main(["report", str(two_runs), "--out", str(out)])
    assert "report.md" in capsys.readouterr().out

    with open(out / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["run"] for row in rows] == ["alpha2/version_0", "alpha4/version_0"]
    # the only setting the runs differ in (the logger's own folders are not settings)
    assert [c for c in rows[0] if "." in c] == ["model.surrogate.init_args.alpha"]
    assert [row["model.surrogate.init_args.alpha"] for row in rows] == ["2.0", "4.0"]
    for row in rows:
        assert 0 < float(row["best_val_acc"]) <= 1 and 0 < float(row["test_acc"]) <= 1
        assert 0 < float(row["firing_rate"]) < 1
        assert float(row["grad_sparsity"]) == 0.0  # atan has full support and no mask
        assert float(row["energy_uJ"]) > 0 and 0 < float(row["snn_to_ann"]) < 1
        assert int(row["epochs"]) == 2 and float(row["sec_per_epoch"]) > 0

    markdown = (out / "report.md").read_text()
    assert "`model.surrogate.init_args.alpha`" in markdown and "| alpha4/version_0 | 4.0 |" in markdown
    for png in ("accuracy.png", "firing_rate.png", "grad_sparsity.png"):
        assert f"]({png})" in markdown
        pixels = matplotlib.image.imread(out / png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels[..., :3].std() > 0.05


def test_report_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        spikegrad_main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "does not exist" in message and "nowhere" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        spikegrad_main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    assert "no runs under" in capsys.readouterr().err


def test_differing_settings_compare_callbacks_by_class():
    def run(name, config):
        return Run(path=name, name=name, settings=flatten(config))

    base = {"model": {"surrogate": {"init_args": {"alpha": 2.0}}, "backbone": {"init_args": {"channels": [8, 16]}}}}
    a = run("a", {**base, "trainer": {"callbacks": {"Dspike": {"enabled": True, "b": 3.0}}}})
    b = run("b", {**base, "trainer": {"callbacks": {}}})
    c = run("c", {**base, "trainer": {"callbacks": {"Dspike": {"enabled": True, "b": 1.0}}}})
    assert a.settings["model.backbone.init_args.channels"] == "[8, 16]"
    # b lacks the callback: its arguments add nothing beyond "enabled"
    assert differing_settings([a, b]) == ["trainer.callbacks.Dspike.enabled"]
    assert differing_settings([a, b, c]) == ["trainer.callbacks.Dspike.b", "trainer.callbacks.Dspike.enabled"]
    assert differing_settings([a, a]) == []


def _fake_run(folder, settings, segments):
    """A run folder with ``config.yaml`` and one events file per (process) segment of epoch-end wall times."""
    from torch.utils.tensorboard import SummaryWriter

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        yaml.safe_dump(settings, f)
    step = 0
    for ends in segments:
        writer = SummaryWriter(folder)
        for wall in ends:
            step += 4
            writer.add_scalar("train/acc", 0.5, step, walltime=wall)
            writer.add_scalar("val/acc", 0.25 + step / 100, step, walltime=wall)
        writer.close()


def test_report_of_awkward_names_values_and_a_resumed_run(tmp_path, capsys):
    now = time.time()
    # a folder name with glob characters; a setting with a line break; a run stopped for 15 minutes and resumed
    _fake_run(str(tmp_path / "logs" / "a[1]" / "version_0"), {"model": {"note": "two\nlines"}},
              [[now + 10, now + 20, now + 30], [now + 930, now + 940]])
    _fake_run(str(tmp_path / "logs" / "b" / "version_0"), {"model": {"note": "one"}}, [[now + 5, now + 10]])
    out = tmp_path / "report"
    spikegrad_main(["report", str(tmp_path / "logs"), "--out", str(out)])
    with open(out / "report.csv") as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    resumed = rows["a[1]/version_0"]
    assert float(resumed["best_val_acc"]) == pytest.approx(0.45)  # read despite the brackets
    assert int(resumed["epochs"]) == 5 and float(resumed["sec_per_epoch"]) == pytest.approx(10, abs=0.01)
    assert float(rows["b/version_0"]["sec_per_epoch"]) == pytest.approx(5, abs=0.01)
    table = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 4 and "| a[1]/version_0 | two<br>lines |" in table[2]


@pytest.mark.parametrize(("content", "message"), [
    ("model: [1\n", "config.yaml is not valid YAML at line 2; fix or remove it"),
    ("- a\n- b\n", "config.yaml holds a list, not a mapping of settings"),
])
def test_report_of_a_bad_config_is_one_line(tmp_path, capsys, content, message):
    _fake_run(str(tmp_path / "run"), {}, [[time.time()]])
    (tmp_path / "run" / "config.yaml").write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        spikegrad_main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1]


def test_report_out_that_is_a_file_is_one_line(tmp_path, capsys):
    _fake_run(str(tmp_path / "run"), {}, [[time.time()]])
    (tmp_path / "afile").write_text("")
    for out, message in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "below", "cannot write the report")):
        with pytest.raises(SystemExit):
            spikegrad_main(["report", str(tmp_path / "run"), "--out", str(out)])
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
