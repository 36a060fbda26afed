"""Readable names of the spiking layers, from the backbone's structure, for every tag, figure and report.

Module paths such as ``backbone.1`` or ``backbone.3.0.conv1.2`` say where a layer is registered, not what it is.
Every spiking layer gets a name from what feeds it, in forward (registration) order:

* a layer outside residual blocks is named after the last weight layer registered before it, counted over the
  whole backbone: ``conv1.lif``, ``conv2.lif``, ``fc1.lif`` (``conv<k>`` for convolutions, ``fc<k>`` for
  linear layers; the suffix is the neuron class in lower case: ``lif``, ``plif``, ``if``);
* a layer inside a block (a module of its own class, such as a residual block) is named by stage, block and its
  position in the block: ``layer2.0.lif1`` is the first spiking layer of block 0 of the second stage.

Numbers are zero-padded when a backbone has ten or more of a kind (``conv01`` … ``conv13``), so that the
alphabetical order of TensorBoard's tag list is the depth order too. :func:`named_spiking_layers` is the one
place the callbacks, the classifier and the report take layer names from.
"""

from __future__ import annotations

from torch import nn

from spikegrad.neurons import SpikingNeuron

__all__ = ["named_spiking_layers", "readable_layer_names", "synaptic_layer_names"]

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
WEIGHT_KINDS = ((nn.Linear, "fc"), ((nn.Conv1d, nn.Conv2d, nn.Conv3d), "conv"))


def _backbone(module: nn.Module) -> nn.Module:
    return getattr(module, "backbone", module)


def _weight_kind(module: nn.Module) -> str | None:
    return next((kind for types, kind in WEIGHT_KINDS if isinstance(module, types)), None)


def _padded(prefix: str, number: int, total: int) -> str:
    return f"{prefix}{number:0{len(str(total))}d}"


def readable_layer_names(module: nn.Module) -> dict[str, str]:
    """``{module path in module: readable name}`` of every spiking layer of ``module`` (a classifier with a
    ``backbone``, or a backbone), in forward order."""
    root = _backbone(module)
    prefix = "" if root is module else next(p for p, m in module.named_modules() if m is root) + "."
    modules = dict(root.named_modules())
    totals = {kind: sum(_weight_kind(m) == kind for m in modules.values()) for _, kind in WEIGHT_KINDS}
    counts = {kind: 0 for _, kind in WEIGHT_KINDS}
    last_weight: str | None = None
    stages: dict[str, int] = {}  # top-level child path -> stage number
    in_block: dict[str, int] = {}  # block path -> spiking layers seen so far
    names: dict[str, str] = {}
    for path, sub in modules.items():
        kind = _weight_kind(sub)
        if kind is not None:
            counts[kind] += 1
            last_weight = _padded(kind, counts[kind], totals[kind])
        if not isinstance(sub, SpikingNeuron):
            continue
        neuron = type(sub).__name__.lower()
        block = _enclosing_block(path, modules, root)
        if block is None:
            base = f"{last_weight}.{neuron}" if last_weight else neuron
            name, n = base, 1
            while name in names.values():  # two spiking layers after the same weight layer
                n += 1
                name = f"{base}{n}"
        else:
            top, _, rest = block.partition(".")
            stages.setdefault(top, len(stages) + 1)
            in_block[block] = in_block.get(block, 0) + 1
            name = f"layer{stages[top]}.{rest or 0}.{neuron}{in_block[block]}"
        names[prefix + path] = name
    return names


def _enclosing_block(path: str, modules: dict[str, nn.Module], root: nn.Module) -> str | None:
    """The path of the innermost ancestor of ``path`` that is a module class of its own (not a container, not
    the backbone, not a spiking layer), ``None`` when there is none."""
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        ancestor = ".".join(parts[:end])
        sub = modules.get(ancestor)
        if sub is None or sub is root or isinstance(sub, CONTAINERS) or isinstance(sub, SpikingNeuron):
            continue
        if type(sub).__module__.startswith("spikegrad.models.layers"):  # TimeDistributed and the like
            continue
        return ancestor
    return None


def named_spiking_layers(module: nn.Module) -> dict[str, SpikingNeuron]:
    """The spiking layers of ``module`` by readable name (see the module docstring), in forward order."""
    lookup = dict(module.named_modules())
    return {name: lookup[path] for path, name in readable_layer_names(module).items()}


def synaptic_layer_names(module: nn.Module) -> dict[str, str]:
    """``{module path: name}`` of every weight layer (``conv<k>``, ``fc<k>``, counted in forward order over the
    backbone as in :func:`readable_layer_names`)."""
    root = _backbone(module)
    prefix = "" if root is module else next(p for p, m in module.named_modules() if m is root) + "."
    modules = dict(root.named_modules())
    totals = {kind: sum(_weight_kind(m) == kind for m in modules.values()) for _, kind in WEIGHT_KINDS}
    counts = {kind: 0 for _, kind in WEIGHT_KINDS}
    names: dict[str, str] = {}
    for path, sub in modules.items():
        kind = _weight_kind(sub)
        if kind is not None:
            counts[kind] += 1
            names[prefix + path] = _padded(kind, counts[kind], totals[kind])
    return names
