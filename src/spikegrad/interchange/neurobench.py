"""NeuroBench's figures of a trained model next to ours (``spikegrad neurobench --ckpt_path FILE``).

NeuroBench (Yik et al., "The neurobench framework for benchmarking neuromorphic computing algorithms and
systems", Nature Communications 16, 2025; package ``neurobench``) measures a model with forward hooks: *static*
metrics of the weights (footprint, connection sparsity) and *workload* metrics over a data set (activation
sparsity, synaptic operations: effective MACs, effective ACs and dense operations per sample). This module runs its
``Benchmark`` on a :class:`~spikegrad.module.SpikingClassifier` (our spiking layers registered as its activation
modules) and, on the same batches in the same (eval) mode, our own :class:`~spikegrad.callbacks.FiringRateMonitor`
and :class:`~spikegrad.callbacks.EnergyMonitor` through their sampling hooks, so both columns come from the code that
produces them in training. docs/analysis.md compares the definitions; where they coincide the numbers are equal
(tested): activation sparsity is ``1 - firing_rate/mean``, and NeuroBench's effective ACs are our SOPs of the
layers whose input is binary spikes.

``neurobench`` is not a dependency of spikegrad (it pins its own snnTorch and audio stack); install it to use this
command (``pip install neurobench``, or the project's ``peers`` extra).
"""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader, TensorDataset

from spikegrad.callbacks.analysis.energy import SYNAPTIC_LAYERS, EnergyMonitor, synaptic_macs
from spikegrad.callbacks.analysis.firing_rate import FiringRateMonitor
from spikegrad.errors import UsageError, report
from spikegrad.layer_names import synaptic_layer_names
from spikegrad.neurons import SpikingNeuron

__all__ = ["compare", "main", "neurobench_figures", "spikegrad_figures"]

SPLITS = ("test", "val", "train")


def _import_neurobench():
    """NeuroBench's classes used here, or a one-line error when the package is not installed."""
    try:
        from neurobench import benchmarks, models
        from neurobench.metrics import static, workload
    except ImportError as error:
        raise UsageError(f"spikegrad neurobench needs the package neurobench ({error}); valid: pip install neurobench "
                         f"(or the spikegrad[peers] extra)") from None
    return SimpleNamespace(
        Benchmark=benchmarks.Benchmark, TorchModel=models.TorchModel, Footprint=static.Footprint,
        ConnectionSparsity=static.ConnectionSparsity, ParameterCount=static.ParameterCount,
        ClassificationAccuracy=workload.ClassificationAccuracy, ActivationSparsity=workload.ActivationSparsity,
        SynapticOperations=workload.SynapticOperations,
    )


def neurobench_figures(classifier, batches) -> dict[str, float]:
    """NeuroBench's static and workload metrics of ``classifier`` on ``batches`` (an iterable of ``(x, y)``)."""
    nb = _import_neurobench()

    class Classifier(nb.TorchModel):
        """NeuroBench's view of a classifier: the network is the backbone, a call returns the predicted classes."""

        def __init__(self) -> None:
            super().__init__(classifier.backbone)
            self.add_activation_module(SpikingNeuron)

        def __call__(self, batch):
            with torch.no_grad():
                return classifier.decoder(classifier(batch)).argmax(-1)

    classifier.eval()
    batches = list(batches)
    # a loader that gives the same batches: NeuroBench weighs per-batch results by len(loader.dataset)
    loader = DataLoader(TensorDataset(torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])),
                        batch_size=len(batches[0][1]), shuffle=False)
    benchmark = nb.Benchmark(
        Classifier(), loader, [], [],
        [[nb.Footprint, nb.ConnectionSparsity, nb.ParameterCount],
         [nb.ClassificationAccuracy, nb.ActivationSparsity, nb.SynapticOperations]],
    )
    results = benchmark.run(quiet=True)
    figures = {key: float(value) for key, value in results.items() if not isinstance(value, dict)}
    figures.update({f"SynapticOperations/{k}": float(v) for k, v in results["SynapticOperations"].items()})
    return figures


class _Collected:
    """Takes the monitors' ``logger.log_metrics`` calls."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.update(metrics)


def spikegrad_figures(classifier, batches) -> dict[str, float]:
    """Our monitors' numbers on ``batches`` in eval mode: per batch through their own sampling hooks, then averaged
    over the samples (firing rates over neurons, steps and samples; operations and energy per sample)."""
    classifier.eval()
    layers = classifier.spiking_layers()
    totals: dict[str, float] = {}
    samples = 0
    for x, y in batches:
        sink = _Collected()
        trainer = SimpleNamespace(is_global_zero=True, loggers=[sink])
        monitors = [FiringRateMonitor(every_n_steps=1, figure_every_n_epochs=0), EnergyMonitor(every_n_steps=1)]
        for layer in layers.values():
            layer.request_recording(sink)
        try:
            for monitor in monitors:
                monitor.before_sample(trainer, classifier, layers)
            with torch.no_grad():
                classifier(x)
            for monitor in monitors:
                monitor.on_sample(trainer, classifier, layers, step=0)
        finally:
            for layer in layers.values():
                layer.release_recording(sink)
        batch = int(y.shape[0])
        samples += batch
        for key, value in sink.metrics.items():
            totals[key] = totals.get(key, 0.0) + value * batch
    return {key: value / samples for key, value in totals.items()}


def per_layer(classifier, batches) -> list[tuple[str, str, float, float, float]]:
    """``(layer, input kind, NeuroBench effective ops, NeuroBench dense ops, our ops)`` per synaptic layer and
    sample: NeuroBench's own per-layer count (``single_layer_MACs``) on the inputs the layer received, and ours
    (:class:`~spikegrad.callbacks.EnergyMonitor`: SOPs after the first spiking layer, MACs of an encoder-fed layer)."""
    _import_neurobench()
    from neurobench.metrics.utils.layers import single_layer_MACs

    batches = list(batches)
    ours = spikegrad_figures(classifier, batches)
    T, direct = classifier.time_steps, classifier.encoding == "direct"
    counts: dict[str, list] = {}

    busy = []  # the counting calls the layer (and NeuroBench copies of it, hooks included) again

    def hook(name):
        def count(module, args):
            if busy:
                return
            busy.append(name)
            try:
                effective, spiking = single_layer_MACs(args[0], module)
                dense, _ = single_layer_MACs(args[0], module, total=True)
                macs = synaptic_macs(module, module(args[0])) / T  # ours: per step
            finally:
                busy.clear()
            row = counts.setdefault(name, [0.0, 0.0, 0.0, True])
            row[0], row[1], row[2], row[3] = row[0] + effective, row[1] + dense, row[2] + macs, row[3] and spiking
        return count

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in classifier.named_modules()
               if isinstance(m, SYNAPTIC_LAYERS)]
    samples = 0
    try:
        with torch.no_grad():
            for x, y in batches:
                classifier(x)
                samples += int(y.shape[0])
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    readable = synaptic_layer_names(classifier)  # the names of the energy tags: conv1, fc1, ...
    for path, (effective, dense, macs, spiking) in counts.items():
        name = readable.get(path, path)
        sops = ours.get(f"energy/sops/{name}")
        our_ops = sops if sops is not None else macs / samples * (1 if direct else T)
        kind = ("0/1 spikes: AC" if spiking else "real values: MAC") + (" / ours: SOP" if sops is not None else
                                                                         " / ours: MAC")
        rows.append((name, kind, effective / samples, dense / samples, our_ops))
    return rows


def _footprint(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def compare(classifier, batches) -> list[tuple[str, float, float | None, str]]:
    """``(figure, NeuroBench, spikegrad, how the definitions differ)`` on the same batches (per sample)."""
    batches = list(batches)
    theirs = neurobench_figures(classifier, batches)
    ours = spikegrad_figures(classifier, batches)
    T = classifier.time_steps
    return [
        ("footprint (bytes)", theirs["Footprint"], float(_footprint(classifier.backbone)),
         "same: parameters and buffers of the backbone"),
        ("parameters", theirs["ParameterCount"], float(sum(p.numel() for p in classifier.backbone.parameters())),
         "same"),
        ("connection sparsity", theirs["ConnectionSparsity"], None, "zero weights / weights; we have no such figure"),
        ("accuracy", theirs["ClassificationAccuracy"], None, "NeuroBench's; ours is spikegrad test"),
        ("activation sparsity", theirs["ActivationSparsity"], 1.0 - ours["firing_rate/mean"],
         "same: 1 - firing_rate/mean (zero spikes / all neuron-steps)"),
        ("effective ACs", theirs["SynapticOperations/Effective_ACs"], ours["energy/sops"],
         "NeuroBench: layers whose input is 0/1, one AC per nonzero input and nonzero weight; ours: every layer "
         "after the first spiking layer, input rate x T x MACs (average-pooled spikes and padding included)"),
        ("effective MACs", theirs["SynapticOperations/Effective_MACs"], ours["energy/snn_macs"],
         f"NeuroBench: layers with non-binary input, nonzero inputs only, at each of T = {T} steps; ours: the "
         "encoder-fed layer once (direct encoding), all inputs"),
        ("dense operations", theirs["SynapticOperations/Dense"], T * ours["energy/ann_macs"],
         "NeuroBench: every synapse at each step, padding excluded; ours: T x the ANN's MACs (padding included)"),
    ]


def layers_markdown(rows) -> str:
    lines = ["| synaptic layer | input (NeuroBench / ours) | NeuroBench effective | NeuroBench dense | spikegrad |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {kind} | {eff:.6g} | {dense:.6g} | {ours:.6g} |" for name, kind, eff, dense, ours in rows]
    return "\n".join(lines)


def markdown(rows) -> str:
    def show(value: float | None) -> str:
        return "—" if value is None else f"{value:.6g}"

    lines = ["| figure (per sample) | NeuroBench | spikegrad | definitions |", "|---|---|---|---|"]
    for name, theirs, ours, how in rows:
        lines.append(f"| {name} | {show(theirs)} | {show(ours)} | {how} |")
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """``spikegrad neurobench --ckpt_path FILE [--split test]``."""
    from spikegrad.interchange.command import classifier_from_checkpoint, datamodule_from_settings, run_settings

    parser = argparse.ArgumentParser(
        prog="spikegrad neurobench",
        description="NeuroBench's footprint, connection sparsity, activation sparsity and synaptic operations of a "
        "trained model next to spikegrad's firing-rate and energy figures on the same batches (a markdown table).",
    )
    parser.add_argument("--ckpt_path", required=True, metavar="FILE", help="checkpoint written by spikegrad fit")
    parser.add_argument("--split", choices=SPLITS, default="test", help="the run's data split to measure on")
    parser.add_argument("--limit_batches", type=int, default=None, metavar="N", help="only the first N batches")
    options = parser.parse_args(args)
    try:
        if options.limit_batches is not None and options.limit_batches < 1:
            raise UsageError(f"--limit_batches must be >= 1, got {options.limit_batches}")
        classifier = classifier_from_checkpoint(options.ckpt_path)
        data = datamodule_from_settings(run_settings(options.ckpt_path))
        data.setup("fit" if options.split != "test" else "test")
        loader = getattr(data, f"{options.split}_dataloader")()
        limit = options.limit_batches
        batches = [(x, y) for i, (x, y) in enumerate(loader) if limit is None or i < limit]
        print(markdown(compare(classifier, batches)))
        print()
        print(layers_markdown(per_layer(classifier, batches)))
    except UsageError as error:
        sys.exit(report(error, prog="spikegrad neurobench"))
