"""``spikegrad export --ckpt_path RUN/checkpoints/x.ckpt --out model.nir``: a trained model as a NIR file.

The command needs nothing but the checkpoint: the run's model settings are stored in it (the classifier's
hyperparameters, :func:`run_settings`), so the model is rebuilt as it was trained, its weights are loaded, and the
backbone is written with :func:`nir.write` (:mod:`spikegrad.interchange.to_nir`). It prints what was converted or
left out, one line each, and exits with code 2 and one line for what NIR cannot express.
"""

from __future__ import annotations

import argparse
import os
import sys

import nir

from spikegrad.errors import UsageError, report
from spikegrad.interchange.discretisation import DEFAULT_DT
from spikegrad.interchange.to_nir import POOL_FORMS, export_classifier
from spikegrad.resume import read_checkpoint, recorded_settings
from spikegrad.trust import enforce_trusted_modules

__all__ = ["classifier_from_checkpoint", "datamodule_from_settings", "main", "run_settings"]


def run_settings(ckpt_path: str) -> dict:
    """The run's ``model`` and ``data`` settings as stored in the checkpoint ``ckpt_path`` (one-line
    :class:`UsageError` for a missing or foreign file)."""
    return recorded_settings(read_checkpoint(ckpt_path))


def _instantiate(base: type, config: dict, setting: str):
    """``config`` (``{"_class_path": ..., **options}`` or the options of ``base``) built by jsonargparse, the way
    Lightning rebuilds a module from a checkpoint, under the trusted-module policy."""
    from lightning.pytorch.cli import instantiate_module

    enforce_trusted_modules()
    try:
        return instantiate_module(base, config)
    except UsageError:
        raise
    except Exception as error:  # jsonargparse's ArgumentError, a refused import, a ValueError of the class
        raise UsageError(f"{setting}: the checkpoint's settings cannot be built: {error}") from None


def classifier_from_checkpoint(ckpt_path: str):
    """The :class:`~spikegrad.module.SpikingClassifier` of a checkpoint with its weights, in eval mode."""
    from spikegrad.module import SpikingClassifier

    checkpoint = read_checkpoint(ckpt_path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    if not hparams:
        raise UsageError(f"ckpt_path {ckpt_path}: the checkpoint holds no model settings (hyper_parameters); valid "
                         f"values: a checkpoint file written by spikegrad fit")
    classifier = _instantiate(SpikingClassifier, hparams, "model")
    classifier.load_state_dict(checkpoint["state_dict"])
    return classifier.eval()


def datamodule_from_settings(settings: dict):
    """The run's DataModule from :func:`run_settings` (``settings["data"]``)."""
    from spikegrad.data.base import SpikeDataModule

    data = settings.get("data")
    if not isinstance(data, dict) or "class_path" not in data:
        raise UsageError("data: the checkpoint records no data settings; valid: a checkpoint written by spikegrad fit")
    return _instantiate(SpikeDataModule, {"_class_path": data["class_path"], **(data.get("init_args") or {})}, "data")


def export(ckpt_path: str, out: str, dt: float = DEFAULT_DT, pool: str = "avg") -> list[str]:
    """Writes the NIR file ``out`` of the checkpoint's model; returns the notes (what was dropped or converted)."""
    if not dt > 0:
        raise UsageError(f"--dt must be > 0 seconds per step, got {dt!r}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UsageError(f"--out {out}: the folder {folder} does not exist")
    result = export_classifier(classifier_from_checkpoint(ckpt_path), dt, pool)
    nir.write(out, result.graph)
    nodes = len(result.graph.nodes)
    return [*result.notes, f"wrote {out}: {nodes} NIR nodes, {len(result.graph.edges)} edges, dt = {dt:g} s per step"]


def main(args: list[str] | None = None) -> None:
    """``spikegrad export --ckpt_path FILE --out FILE.nir [--dt SECONDS]``."""
    parser = argparse.ArgumentParser(
        prog="spikegrad export",
        description="Write a trained model's backbone as a NIR graph (Neuromorphic Intermediate Representation), "
        "readable by snnTorch, Norse and other NIR tools. The model settings are read from the checkpoint.",
    )
    parser.add_argument("--ckpt_path", required=True, metavar="FILE", help="checkpoint written by spikegrad fit")
    parser.add_argument("--out", required=True, metavar="FILE", help="the NIR file to write, e.g. model.nir")
    parser.add_argument("--dt", type=float, default=DEFAULT_DT,
                        help=f"seconds per step in the file (default {DEFAULT_DT:g}, the step snnTorch's importer "
                        "assumes); NIR's time constants are tau_steps * dt")
    parser.add_argument("--pool", choices=POOL_FORMS, default="avg",
                        help="average pooling as NIR AvgPool2d (avg, default) or as SumPool2d with 1/k^2 folded into "
                        "the next Linear/Conv2d (sum: for tools that read no AvgPool2d, e.g. Norse 1.1)")
    options = parser.parse_args(args)
    try:
        for line in export(options.ckpt_path, options.out, options.dt, options.pool):
            print(line)
    except UsageError as error:
        sys.exit(report(error, prog="spikegrad export"))
