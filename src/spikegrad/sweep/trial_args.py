"""The ``spikegrad fit`` command line of one trial, and the check of every variant against the fit parser.

A trial is an ordinary run: ``spikegrad fit --config <config> --<setting> <value> ...`` with its own folder
``<log_root>/<sweep>/<variant>/seed_<s>/`` (the TensorBoard logger's ``save_dir/name/version``), which holds
``config.yaml``, ``manifest.json``, the events and ``checkpoints/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any

from spikegrad.errors import UsageError

__all__ = ["check_settings", "fit_args", "run_folder"]


def _arg_value(value: Any) -> str:
    """A value for the command line: strings as they are, everything else as JSON (which YAML reads)."""
    return value if isinstance(value, str) else json.dumps(value)


def run_folder(log_root: str, sweep: str, variant: str, seed: int) -> str:
    return os.path.join(log_root, sweep, variant, f"seed_{seed}")


def fit_args(config: str, settings: dict[str, Any], seed: int, log_root: str, sweep: str, variant: str,
             extra: tuple[str, ...] = ()) -> list[str]:
    """``fit`` arguments of one trial: the base config, the settings (overrides, then the variant's), the seed,
    and the logger folder ``<log_root>/<sweep>/<variant>/seed_<s>``."""
    args = ["fit", "--config", config]
    for key, value in settings.items():
        args += [f"--{key}", _arg_value(value)]
    args += [
        "--seed_everything", str(seed),
        "--trainer.logger.init_args.save_dir", os.path.join(log_root, sweep),
        "--trainer.logger.init_args.name", variant,
        "--trainer.logger.init_args.version", f"seed_{seed}",
        "--trainer.enable_progress_bar", "false",
        *extra,
    ]
    return args


def check_settings(label: str, args: list[str]) -> None:
    """Parses ``spikegrad ARGS --print_config`` in this process (nothing is built or trained): an unknown key or
    invalid value becomes a :class:`UsageError` naming ``label`` (the variant) and the parser's one line."""
    from spikegrad.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([*args, "--print_config"])
    except SystemExit as stop:
        if stop.code in (0, None):
            return
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        reason = lines[-1].removeprefix("spikegrad fit: error: ").removeprefix("spikegrad: error: ") if lines \
            else f"exit code {stop.code}"
        raise UsageError(f"{label}: {reason}") from None
    except UsageError as error:
        raise UsageError(f"{label}: {error}") from None
