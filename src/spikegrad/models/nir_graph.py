"""A NIR graph as a spikegrad backbone: :class:`NIRBackbone`, for ``spikegrad test``/``predict`` (and fit).

The import side of :mod:`spikegrad.interchange` (the export is :mod:`spikegrad.interchange.to_nir`).

A graph written by ``spikegrad export``, snnTorch's ``export_to_nir`` or any other tool that uses the nodes
below becomes a :class:`~spikegrad.models.Backbone`, so a :class:`~spikegrad.module.SpikingClassifier` evaluates and
analyses it like one of ours::

    model:
      backbone:
        class_path: NIRBackbone             # or spikegrad.models.NIRBackbone
        init_args: {path: model.nir}        # dt: the file's step ("dt" in its metadata, else 1e-4 s)

Each node becomes our module on time-first tensors ``[T, B, ...]``: ``Affine``/``Linear`` a time-distributed
``nn.Linear``, ``Conv1d``/``Conv2d`` a time-distributed convolution, ``AvgPool2d`` an average pool, ``SumPool2d`` a
sum pool (``AvgPool2d`` with ``divisor_override=1``), ``Flatten`` a flatten behind the time and batch axes, ``LIF``
and ``IF`` our neurons at step ``dt`` (:func:`~spikegrad.interchange.discretisation.neuron_steps`: ``LIF`` with
``decay_input`` true for ``R = 1``, false for ``R = τ/dt``, ``IF`` for ``R = 1/dt``; another ``R`` scales the
threshold instead of the input, see :meth:`NIRBackbone._neuron`). A node with several incoming edges gets their sum
(NIR's rule). The spiking layers take the surrogate of the run's ``model.surrogate`` setting (what training from
the imported weights would use); their dynamics come from the file, so ``model.neuron``'s own options are not used.
Node types without a counterpart here (``CubaLIF``, ``LI``, ``Threshold``, recurrent subgraphs, ...) are refused
with one line naming the node.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import nir
import numpy as np
import torch
from torch import nn

from spikegrad.errors import UsageError
from spikegrad.interchange.discretisation import DEFAULT_DT, neuron_steps
from spikegrad.models.base import Backbone, NeuronFactory
from spikegrad.models.layers import TimeDistributed
from spikegrad.neurons import IF, LIF, SpikingNeuron

__all__ = ["NIRBackbone", "read_graph"]

SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "LIF",
             "IF")


class FlattenDims(nn.Module):
    """NIR's ``Flatten(start_dim, end_dim)`` of the batch-less shape, on ``[T, B, ...]``."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.start_dim + 2 if self.start_dim >= 0 else self.start_dim
        end = self.end_dim + 2 if self.end_dim >= 0 else self.end_dim
        return x.flatten(start, end)


def read_graph(path: str) -> nir.NIRGraph:
    """``nir.read(path)`` with a one-line error for a missing or unreadable file."""
    if not os.path.isfile(path):
        raise UsageError(f"model.backbone.path: no such NIR file {path!r}")
    try:  # without nir's type check: snnTorch writes its input type with the sample's batch axis ([1, 64]),
        return nir.read(path, type_check=False)  # which fails it; NIRBackbone checks the shapes by running the graph
    except Exception as error:  # h5py's OSError for a foreign file, KeyError for a damaged one, ...
        raise UsageError(f"model.backbone.path {path}: not a readable NIR file ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None


def _metadata_value(metadata: dict, key: str):
    value = metadata.get(key)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def _tensor(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float32)


def _pair(value) -> tuple[int, ...]:
    array = np.atleast_1d(np.asarray(value)).astype(int)
    return tuple(int(v) for v in (array if array.size > 1 else np.repeat(array, 2)))


def _padding(value):
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    return tuple(int(v) for v in np.atleast_1d(np.asarray(value)))


def _synapse(node: nir.NIRNode) -> nn.Module:
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _tensor(node.weight)
        bias = getattr(node, "bias", None)
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        layer.weight.data.copy_(weight)
        if bias is not None:
            layer.bias.data.copy_(_tensor(bias).reshape(-1))
        return layer
    weight = _tensor(node.weight)
    conv = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
    layer = conv(weight.shape[1] * node.groups, weight.shape[0], tuple(weight.shape[2:]), stride=node.stride,
                 padding=_padding(node.padding), dilation=node.dilation, groups=node.groups, bias=True)
    layer.weight.data.copy_(weight)
    layer.bias.data.copy_(_tensor(node.bias).reshape(-1))
    return layer


def _order(names: Sequence[str], edges: list[tuple[str, str]]) -> list[str]:
    """Topological order of the nodes (Kahn); a cycle is refused (our layers are feed-forward)."""
    incoming = {name: {s for s, t in edges if t == name} for name in names}
    order, ready = [], [name for name in names if not incoming[name]]
    while ready:
        name = ready.pop(0)
        order.append(name)
        for target in names:
            if name in incoming[target]:
                incoming[target].discard(name)
                if not incoming[target] and target not in order and target not in ready:
                    ready.append(target)
    if len(order) != len(names):
        cyclic = sorted(set(names) - set(order))
        raise UsageError(f"NIR graph: the nodes {', '.join(cyclic[:4])} form a recurrent loop; spikegrad's backbones "
                         f"are feed-forward")
    return order


class NIRBackbone(Backbone):
    """A NIR graph (a ``.nir`` file) as a backbone: ``[T, B, *input_shape]`` -> per-step outputs ``[T, B, K]``.

    Args:
        input_shape: ``(C, H, W)`` of one step (from the DataModule); must equal the graph's input shape.
        num_classes: K; must equal the graph's output size.
        neuron: the run's neuron factory; only its surrogate and backend are used (the dynamics are the file's).
        path: the ``.nir`` file.
        dt: seconds per step; ``None`` takes the file's ``dt`` metadata (written by ``spikegrad export``), else
            1e-4 s, the step of snnTorch's exporter.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, neuron: NeuronFactory, path: str,
                 dt: float | None = None) -> None:
        super().__init__()
        graph = read_graph(str(path))
        self.path = str(path)
        metadata = getattr(graph, "metadata", None) or {}
        self.dt = float(dt if dt is not None else _metadata_value(metadata, "dt") or DEFAULT_DT)
        if not self.dt > 0:
            raise UsageError(f"model.backbone.dt must be > 0 seconds, got {self.dt!r}")
        template = neuron()
        self._surrogate, self._backend = template.surrogate, template.backend
        self.edges = [(str(s), str(t)) for s, t in graph.edges]
        names = list(graph.nodes)
        self.order = _order(names, self.edges)
        self.layers = nn.ModuleDict()
        self.keys: dict[str, str] = {}  # node name -> key in self.layers
        self.input_name = self.output_name = None
        for name in self.order:
            self._add(name, graph.nodes[name])
        self.input_shape = self._input_shape(graph)
        self._check_shapes(tuple(int(d) for d in input_shape), int(num_classes))

    def _add(self, name: str, node: nir.NIRNode) -> None:
        kind = type(node).__name__
        if isinstance(node, nir.Input):
            self.input_name = name
            return
        if isinstance(node, nir.Output):
            self.output_name = name
            return
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)):
            module = TimeDistributed(_synapse(node))
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            kernel = _pair(node.kernel_size)
            divisor = 1 if isinstance(node, nir.SumPool2d) else None
            module = TimeDistributed(nn.AvgPool2d(kernel, _pair(node.stride), _pair(node.padding),
                                                  divisor_override=divisor))
        elif isinstance(node, nir.Flatten):
            module = FlattenDims(node.start_dim, node.end_dim)
        elif isinstance(node, (nir.LIF, nir.IF)):
            module = self._neuron(name, node)
        else:
            raise UsageError(f"NIR node {name!r}: {kind} has no counterpart in spikegrad; valid node types: "
                             f"{', '.join(SUPPORTED)}")
        key = name.replace(".", "_")
        self.keys[name] = key
        self.layers[key] = module

    def _input_shape(self, graph: nir.NIRGraph) -> tuple[int, ...]:
        """The per-sample input shape: the Input node's, without a leading batch axis that some writers keep (the
        layer that reads the input says how many axes it takes)."""
        if self.input_name is None:
            raise UsageError(f"model.backbone.path {self.path}: the graph has no Input node")
        shape = tuple(int(d) for d in np.atleast_1d(graph.nodes[self.input_name].input_type["input"]))
        readers = [graph.nodes[t] for s, t in self.edges if s == self.input_name]
        if readers and all(isinstance(r, (nir.Affine, nir.Linear)) for r in readers):
            return (int(np.asarray(readers[0].weight).shape[1]),)
        axes = {nir.Conv2d: 3, nir.Conv1d: 2}.get(type(readers[0])) if readers else None
        return shape[-axes:] if axes and len(shape) > axes else shape

    def _neuron(self, name: str, node: nir.NIRNode) -> SpikingNeuron:
        """Our IF or LIF for a NIR neuron. An input scale κ that is neither form's (``R`` other than 1, ``τ/dt`` or,
        for an IF, ``1/dt``) is taken into the threshold: ``h = λ·v + κ·x`` fires at θ exactly when
        ``h/κ = λ·(v/κ) + x`` fires at ``θ/κ``, and the reset to 0 keeps the scaling (snnTorch's importer does the
        same)."""
        steps = neuron_steps(node, name, self.dt)
        surrogate = copy.deepcopy(self._surrogate)
        options = {"reset": "hard", "backend": self._backend}
        if steps.integrate or steps.decay == 1.0:
            return IF(surrogate, v_threshold=steps.v_threshold / steps.input_scale, **options)
        if steps.charge_form:
            return LIF(surrogate, tau=steps.tau, decay_input=True, v_threshold=steps.v_threshold, **options)
        scale = 1.0 if steps.leak_form else steps.input_scale
        return LIF(surrogate, tau=steps.tau, decay_input=False, v_threshold=steps.v_threshold / scale, **options)

    def _check_shapes(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        if self.input_name is None or self.output_name is None:
            raise UsageError(f"model.backbone.path {self.path}: the graph needs one Input and one Output node")
        if int(np.prod(self.input_shape)) != int(np.prod(input_shape)):
            raise UsageError(f"model.backbone.path {self.path}: the graph's input {self.input_shape} does not fit the "
                             f"data's {input_shape}")
        with torch.no_grad():
            out = self(torch.zeros(1, 1, *input_shape))
        if out.shape[2:] != (num_classes,):
            raise UsageError(f"model.backbone.path {self.path}: the graph's output {tuple(out.shape[2:])} does not fit "
                             f"the data's {num_classes} classes")

    def nir_nodes(self) -> list[tuple[str, str | None, nn.Module | None]]:
        """``(node name, key in self.layers, module)`` in execution order; ``None`` for the Input and Output."""
        return [(name, self.keys.get(name), self.layers[self.keys[name]] if name in self.keys else None)
                for name in self.order]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        values = {self.input_name: x.reshape(T, B, *self.input_shape)}
        for name in self.order:
            if name == self.input_name:
                continue
            sources = [values[s] for s, t in self.edges if t == name]
            summed = sources[0]
            for other in sources[1:]:  # in edge order, as the traced model added them
                summed = summed + other
            values[name] = summed if name == self.output_name else self.layers[self.keys[name]](summed)
        return values[self.output_name]
