"""Run a NIR file in snnTorch and Norse the way their users would, and compare with spikegrad.

Both peers import a graph into a module that is called once per time step and returns ``(output, state)``;
their spiking layers are recorded with forward hooks. Two things of the peers' importers are worked around, both
documented in docs/export.md: they turn NIR's batch-less ``Flatten(start_dim=0)`` into ``torch.nn.Flatten(0)``,
which flattens the batch axis too (we put ``start_dim`` 1 back), and snnTorch prints its own messages while
importing (silenced).

``python tests/_peers.py`` prints the agreement table of docs/export.md (trains the models first, about a minute
on 2 CPU cores).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass

import nir
import torch
from torch import nn

from spikegrad.neurons import spiking_layers


def _batch_flatten(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if isinstance(module, nn.Flatten) and module.start_dim == 0:
            module.start_dim = 1
            module.end_dim = module.end_dim if module.end_dim < 0 else module.end_dim + 1
    return net


def snntorch_module(path: str) -> nn.Module:
    import snntorch  # noqa: F401  (the importer needs the package itself)
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        return _batch_flatten(import_from_nir(nir.read(path)))


def norse_module(path: str, dt: float = 1e-4) -> nn.Module:
    from norse.torch.utils.import_nir import from_nir

    logging.getLogger().setLevel(logging.ERROR)  # Norse warns through the root logger when r != 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch.load is deprecated
        return _batch_flatten(from_nir(nir.read(path), dt=dt))


def _neuron_types() -> tuple[type, ...]:
    types: list[type] = []
    with contextlib.suppress(ImportError):
        import snntorch

        types.append(snntorch.SpikingNeuron)
    with contextlib.suppress(ImportError):
        from norse.torch.module.iaf import IAFCell
        from norse.torch.module.lif_box import LIFBoxCell

        types += [LIFBoxCell, IAFCell]
    return tuple(types)


@dataclass
class Run:
    """Per-step outputs ``[T, B, K]`` and each spiking layer's spikes ``[T, B, ...]`` by NIR node name."""

    outputs: torch.Tensor
    spikes: dict[str, torch.Tensor]


def run_peer(net: nn.Module, inputs: torch.Tensor) -> Run:
    """Runs an imported graph step by step on time-first ``inputs`` ``[T, B, ...]`` from a fresh state."""
    recorded: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, _neuron_types()):
            if hasattr(module, "mem"):  # snnTorch keeps the potential in the module (init_hidden)
                module.mem = torch.zeros(0)

            def hook(mod, args, out, name=name.split(".")[-1]):
                recorded.setdefault(name, []).append((out[0] if isinstance(out, tuple) else out).detach())

            handles.append(module.register_forward_hook(hook))
    outputs, state = [], None
    try:
        with torch.no_grad():
            for x in inputs:
                out, state = net(x, state)
                outputs.append(out)
    finally:
        for handle in handles:
            handle.remove()
    return Run(torch.stack(outputs), {name: torch.stack(steps) for name, steps in recorded.items()})


def run_ours(backbone: nn.Module, inputs: torch.Tensor) -> Run:
    """Our backbone on ``[T, B, ...]``, with its spikes by NIR node name (the module name, ``.`` -> ``_``)."""
    layers = spiking_layers(backbone)
    owner = object()
    for layer in layers.values():
        layer.request_recording(owner)
    try:
        with torch.no_grad():
            outputs = backbone(inputs)
        spikes = {name.removeprefix("layers.").replace(".", "_"): layer.recorded["spikes"]
                  for name, layer in layers.items()}  # NIRBackbone keeps its layers in .layers
    finally:
        for layer in layers.values():
            layer.release_recording(owner)
    return Run(outputs, spikes)


@dataclass
class Agreement:
    equal_spikes: float  # fraction of equal spike entries over all layers
    spikes: int  # spike entries compared
    max_output_diff: float
    equal_predictions: float  # fraction of samples with the same argmax of the mean output

    def row(self) -> str:
        return (f"{self.equal_spikes:.6f} of {self.spikes} spikes equal, predictions {self.equal_predictions:.4f} "
                f"equal, max |output diff| {self.max_output_diff:.3g}")


def agreement(ours: Run, theirs: Run) -> Agreement:
    if set(ours.spikes) != set(theirs.spikes):
        raise AssertionError(f"spiking layers differ: {sorted(ours.spikes)} vs {sorted(theirs.spikes)}")
    equal = total = 0
    for name, spikes in ours.spikes.items():
        other = theirs.spikes[name].reshape(spikes.shape)
        equal += int((spikes == other).sum())
        total += spikes.numel()
    diff = float((ours.outputs - theirs.outputs.reshape(ours.outputs.shape)).abs().max())
    same = (ours.outputs.mean(0).argmax(-1) == theirs.outputs.reshape(ours.outputs.shape).mean(0).argmax(-1))
    return Agreement(equal / total, total, diff, float(same.float().mean()))


# --- small trained models on the digits ------------------------------------------------------------------------------
CONVNET = {"class_path": "SpikingConvNet", "init_args": {"channels": [8, 16], "hidden": 32}}
MLP_WITHOUT_BN = {"class_path": "SpikingMLP", "init_args": {"hidden": [32], "batch_norm": False}}


def train_digits(folder, name: str, backbone: dict | None = None, neuron: dict | None = None, time_steps: int = 4,
                 epochs: int = 3, batches: int = 12) -> str:
    """Trains a model on the digits with ``spikegrad fit`` (a few seconds); returns its last checkpoint."""
    import os

    import yaml

    from _tiny_run import run_dir, run_main, tiny_config

    path = tiny_config(folder, name=name, max_epochs=epochs, limit_train_batches=batches, limit_val_batches=1)
    with open(path) as f:
        config = yaml.safe_load(f)
    config["model"]["time_steps"] = time_steps
    config["model"]["optimizer"]["init_args"]["lr"] = 0.01
    config["data"]["init_args"]["batch_size"] = 64
    if backbone is not None:
        config["model"]["backbone"] = backbone
    if neuron is not None:
        config["model"]["neuron"] = neuron
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    run_main(["fit", "--config", path], folder)
    return os.path.join(run_dir(folder, name), "checkpoints", "last.ckpt")


def digits_test_set() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits test split of DigitsDataModule's defaults (359 standardised images and their labels)."""
    from spikegrad.data import DigitsDataModule

    data = DigitsDataModule()
    data.setup("test")
    return data.test_set.tensors


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((outputs.reshape(outputs.shape[0], labels.shape[0], -1).mean(0).argmax(-1) == labels).float().mean())


def agreement_rows(ckpt_path: str, folder: str) -> list[str]:
    """Markdown rows: the checkpoint's model on the digits test set against its NIR file run by spikegrad, snnTorch
    and Norse (``--pool sum`` for Norse, which reads no AvgPool2d)."""
    import os

    from spikegrad.interchange.command import classifier_from_checkpoint, export
    from spikegrad.models.nir_graph import NIRBackbone
    from spikegrad.neurons import LIF

    classifier = classifier_from_checkpoint(ckpt_path)
    images, labels = digits_test_set()
    inputs = classifier.encode(images)
    ours = run_ours(classifier.backbone, inputs)
    name = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(ckpt_path))))
    rows = [f"| {name} | spikegrad (trained model) | - | {accuracy(ours.outputs, labels):.4f} |"]
    files = {}
    for pool in ("avg", "sum"):
        files[pool] = os.path.join(folder, f"{name}_{pool}.nir")
        export(ckpt_path, files[pool], pool=pool)
    runs = {
        "spikegrad (import)": run_ours(NIRBackbone(classifier.hparams.input_shape, labels.max().item() + 1, LIF,
                                                   files["avg"]).eval(), inputs),
        "snnTorch 1.0": run_peer(snntorch_module(files["avg"]), inputs),
        "Norse 1.1 (--pool sum)": run_peer(norse_module(files["sum"]), inputs),
    }
    for peer, run in runs.items():
        measured = agreement(ours, run)
        rows.append(f"| {name} | {peer} | {measured.equal_spikes:.6f} of {measured.spikes:,} | "
                    f"{accuracy(run.outputs, labels):.4f} (max output diff {measured.max_output_diff:.2g}) |")
    return rows


def random_mlp(neuron) -> torch.nn.Module:
    """An MLP (64-32, no batch norm) with fixed random weights strong enough for every layer to fire often."""
    from spikegrad.models import SpikingMLP

    torch.manual_seed(0)
    model = SpikingMLP((1, 8, 8), 10, neuron, hidden=(64, 32), batch_norm=False)
    for parameter in model.parameters():
        parameter.data *= 3
    return model.eval()


def plif() -> torch.nn.Module:
    """A PLIF layer with τ = 1/sigmoid(-0.3) = 2.35 (not a power of two)."""
    from spikegrad.neurons import PLIF

    layer = PLIF(init_tau=2.0)
    layer.w.data.fill_(-0.3)
    return layer


def neuron_form_rows(folder: str, steps: int = 6) -> list[str]:
    """Markdown rows: each neuron form in an MLP with random weights, on the digits test set, in each peer."""
    import os

    from spikegrad.interchange import export_backbone
    from spikegrad.neurons import IF, LIF

    forms = {
        "LIF charge form, τ = 2": lambda: LIF(tau=2.0),
        "LIF charge form, τ = 3": lambda: LIF(tau=3.0),
        "PLIF, τ = 2.35": plif,
        "LIF leak form, τ = 2": lambda: LIF(tau=2.0, decay_input=False),
        "IF": IF,
    }
    images, labels = digits_test_set()
    inputs = images.unsqueeze(0).expand(steps, -1, -1, -1, -1)
    rows = []
    for label, neuron in forms.items():
        model = random_mlp(neuron)
        path = os.path.join(folder, "form.nir")
        nir.write(path, export_backbone(model, (1, 8, 8)).graph)
        ours = run_ours(model, inputs)
        cells = []
        for make in (snntorch_module, norse_module):
            try:
                measured = agreement(ours, run_peer(make(path), inputs))
                cells.append(f"{measured.equal_spikes:.6f} (predictions {measured.equal_predictions:.4f})")
            except AssertionError as error:
                cells.append(f"refused: {error}")
        rows.append(f"| {label} | {' | '.join(cells)} |")
    return rows


if __name__ == "__main__":  # the agreement tables of docs/export.md: python tests/_peers.py [CKPT ...]
    import sys
    import tempfile

    folder = tempfile.mkdtemp()
    checkpoints = sys.argv[1:]
    if not checkpoints:
        checkpoints = [train_digits(folder, "mlp", MLP_WITHOUT_BN), train_digits(folder, "convnet", CONVNET)]
    print("| model | run by | equal spikes | test accuracy |\n|---|---|---|---|")
    for checkpoint in checkpoints:
        print("\n".join(agreement_rows(checkpoint, folder)))
    print("\n| neuron (random-weight MLP, T = 6) | snnTorch: equal spikes | Norse: equal spikes |\n|---|---|---|")
    print("\n".join(neuron_form_rows(folder)))
