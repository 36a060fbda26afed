"""Helpers of the reliability tests: a tiny, fast config on the bundled digits and ways to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import yaml

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(sys.executable), "spikegrad")
TRUSTED_MODULES_ENV = "SPIKEGRAD_TRUSTED_MODULES"
TRUSTED_TEST_MODULES = "_probes"  # the test-only callbacks that configs name as class_path: _probes.<Class>


ALL_METHODS = ("two", "dspike", "psg", "msg")


def tiny_config(folder, name: str = "tiny", methods=False, callbacks: list | None = None, **trainer) -> str:
    """Writes a config of a few-second run (MLP, T = 3, a few batches per epoch); returns its path.

    ``methods=True`` (or a subset of :data:`ALL_METHODS`) switches on the training methods with state: TWO
    weights (from epoch 1), Dspike with its temperature search, PSG calibration and masked surrogate gradients
    (which draw random masks).
    """
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 3,
            "accelerator": "cpu",
            "devices": 1,
            "deterministic": True,
            "limit_train_batches": 4,
            "limit_val_batches": 2,
            "limit_test_batches": 2,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 2,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": list(callbacks or []),
            "logger": {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": os.path.join(str(folder), "logs"), "name": name},
            },
            **trainer,
        },
        "model": {
            "backbone": {"class_path": "SpikingMLP", "init_args": {"hidden": [32]}},
            "time_steps": 3,
            "surrogate": {"class_path": "ATan", "init_args": {"alpha": 2.0}},
            "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003}},
        },
        "data": {"class_path": "spikegrad.data.DigitsDataModule", "init_args": {"batch_size": 32}},
        "test_after_fit": False,
    }
    chosen = set(ALL_METHODS if methods is True else methods or ())
    if chosen & {"dspike", "msg"}:
        config["model"]["surrogate"] = {"class_path": "DSpike" if "dspike" in chosen else "ATan",
                                        "init_args": {"alpha": 3.0 if "dspike" in chosen else 2.0,
                                                      "mask_p": 0.3 if "msg" in chosen else 0.0}}
    if "two" in chosen:
        config["model"]["decoder"] = {"class_path": "TemporallyWeightedDecoder", "init_args": {"start": 1, "beta": 0.3}}
    if "dspike" in chosen:
        config["trainer"]["callbacks"].append(
            {"class_path": "spikegrad.callbacks.DspikeTemperatureSearch",
             "init_args": {"b0": 3.0, "delta_b": 0.5, "num_coordinates": 8}})
    if "psg" in chosen:
        config["trainer"]["callbacks"].append(
            {"class_path": "spikegrad.callbacks.ParametricSurrogate", "init_args": {"kappa": 1.5}})
    path = os.path.join(str(folder), f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def subprocess_env(extra: dict | None = None) -> dict:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS_DIR, env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    env[TRUSTED_MODULES_ENV] = _with_test_modules(env.get(TRUSTED_MODULES_ENV))
    return env


def _with_test_modules(trusted: str | None) -> str:
    """``trusted`` (a value of SPIKEGRAD_TRUSTED_MODULES) plus the test-only modules."""
    return ",".join(filter(None, [trusted, TRUSTED_TEST_MODULES]))


def start_cli(args: list[str], cwd) -> subprocess.Popen:
    return subprocess.Popen([BIN, *args], cwd=str(cwd), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_cli(args: list[str], cwd, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``spikegrad ARGS`` in a subprocess that imports from tests/ (``env``: extra environment variables)."""
    return subprocess.run([BIN, *args], cwd=str(cwd), env=subprocess_env(env), capture_output=True, text=True,
                          timeout=timeout)


def run_main(args: list[str], cwd) -> None:
    """Runs ``spikegrad ARGS`` in this process (cheaper than a subprocess), from ``cwd``, trusting ``_probes``."""
    from spikegrad.cli import main

    old, old_trusted = os.getcwd(), os.environ.get(TRUSTED_MODULES_ENV)
    os.chdir(str(cwd))
    os.environ[TRUSTED_MODULES_ENV] = _with_test_modules(old_trusted)
    try:
        main(args)
    finally:
        os.chdir(old)
        if old_trusted is None:
            os.environ.pop(TRUSTED_MODULES_ENV, None)
        else:
            os.environ[TRUSTED_MODULES_ENV] = old_trusted


def run_dir(folder, name: str = "tiny", version: int = 0) -> str:
    return os.path.join(str(folder), "logs", name, f"version_{version}")


def load_checkpoint(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
