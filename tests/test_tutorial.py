"""The tutorial (docs/tutorial.py, a jupytext percent script that opens as a notebook) runs and shows what it says."""

import os
import re
import subprocess
import sys

from _tiny_run import subprocess_env


def test_tutorial_runs_and_compares_surrogates(repo_root, tmp_path):
    script = os.path.join(repo_root, "docs", "tutorial.py")
    result = subprocess.run([sys.executable, script], cwd=str(tmp_path), env=subprocess_env(), capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    layers = re.findall(r"^(\S+)\s+firing rate (0\.\d+)", out, flags=re.M)
    assert [name for name, _ in layers] == ["conv1.lif", "conv2.lif", "fc1.lif"]
    assert all(0 < float(rate) < 1 for _, rate in layers)
    labels = r"ATan|Triangle|ATan \+ MSG \(p = 0\.5\)"
    accuracies = dict(re.findall(rf"^({labels})\s+test accuracy (0\.\d+)", out, flags=re.M))
    assert len(accuracies) == 3 and all(float(a) > 0.8 for a in accuracies.values()), out[-2000:]
    assert os.path.getsize(tmp_path / "tutorial_potential.png") > 10_000
    assert "litlogger" not in out + result.stderr
