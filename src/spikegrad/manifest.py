"""The run manifest: what produced a run, written as ``manifest.json`` beside its TensorBoard events.

Recorded: Python, torch, CUDA/cuDNN, lightning, torchmetrics, tonic and spikegrad versions; the git commit
and whether the working tree had uncommitted changes (``SPIKEGRAD_GIT_COMMIT`` when there is no ``.git``,
as in the Docker image); the full command line and working directory; the hardware (host, CPU, GPUs) and the
process layout (devices, nodes, world size, strategy); the seed, ``deterministic``, the checkpoint a run
resumed from and the checkpoint whose weights a new run started from (``--ckpt_settings given``). A resumed
run that writes into the same folder keeps the first manifest and adds ``manifest.resume-<n>.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

MANIFEST_NAME = "manifest.json"
PACKAGES = ("torch", "lightning", "torchmetrics", "tonic", "torchvision", "jsonargparse", "numpy", "spikegrad")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(path: str | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding ``path`` (default: this package).

    Read-only: ``git --no-optional-locks`` keeps ``git status`` from refreshing the index, which would take
    ``.git/index.lock`` and rewrite ``.git/index`` in the user's source checkout.
    """
    path = path or os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=path, capture_output=True, text=True, timeout=10,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": os.environ.get("SPIKEGRAD_GIT_COMMIT") or None, "dirty": None, "source": "environment"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": bool(status.strip()) if status is not None else None, "source": "git"}


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["gpus"].append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    return info


def collect_manifest(
    trainer: L.Trainer | None = None,
    argv: list[str] | None = None,
    log_dir: str | None = None,
    weights_from: str | None = None,
) -> dict[str, Any]:
    """Everything the manifest records, as a JSON-serialisable dict (collective-free: safe on process 0 alone)."""
    manifest: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
        "executable": sys.executable,
        "cwd": os.getcwd(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "cuda": {
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        },
        "git": git_state(),
        "hardware": hardware(),
        "seed": int(os.environ["PL_GLOBAL_SEED"]) if "PL_GLOBAL_SEED" in os.environ else None,
        "seed_workers": os.environ.get("PL_SEED_WORKERS") == "1",
    }
    if trainer is not None:
        manifest["trainer"] = {
            "stage": str(trainer.state.fn.value) if trainer.state.fn is not None else None,
            "accelerator": type(trainer.accelerator).__name__,
            "strategy": type(trainer.strategy).__name__,
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "resumed_from": str(trainer.ckpt_path) if trainer.ckpt_path else None,
            "weights_from": weights_from,
            "log_dir": log_dir,
        }
    return manifest


def write_manifest(log_dir: str, manifest: dict[str, Any]) -> str:
    """Writes ``manifest.json`` (or ``manifest.resume-<n>.json`` when one exists) in ``log_dir``; returns the path."""
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, MANIFEST_NAME)
    n = 0
    while os.path.exists(path):
        n += 1
        path = os.path.join(log_dir, f"manifest.resume-{n}.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2, default=str)
        f.write("\n")
    return path


class RunManifest(Callback):
    """Writes the run manifest into the logger's folder once per run, from process 0 only.

    Args:
        argv: the command line to record (default ``sys.argv``).
        weights_from: the checkpoint whose weights (only) the model started from, if any.
    """

    def __init__(self, argv: list[str] | None = None, weights_from: str | None = None) -> None:
        self.argv = argv
        self.weights_from = weights_from
        self.path: str | None = None

    def _write(self, trainer: L.Trainer) -> None:
        if self.path is not None or trainer.logger is None:
            return
        log_dir = trainer.log_dir  # a collective call under DDP: every process must make it
        if log_dir is None:
            return
        if trainer.is_global_zero:
            self.path = write_manifest(log_dir, collect_manifest(trainer, self.argv, log_dir, self.weights_from))
        else:
            self.path = ""

    def add(self, key: str, value: Any) -> None:
        """Adds ``key`` to the manifest this run wrote (a decision made during the run, e.g. the neuron backend)."""
        if not self.path:
            return
        with open(self.path) as f:
            manifest = json.load(f)
        manifest[key] = value
        with open(self.path, "w") as f:
            json.dump(manifest, f, indent=2, default=str)
            f.write("\n")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)  # after the checkpoint to resume from is known

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            self._write(trainer)
