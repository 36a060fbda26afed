"""A trained :class:`~spikegrad.module.SpikingClassifier` as a NIR graph (``spikegrad export``).

The backbone is traced with ``torch.fx`` down to its building blocks (time-distributed layers, batch norms,
spiking layers, flatten, residual additions), whatever backbone class assembled them, and each block becomes
NIR nodes:

=============================================  ==================================================================
ours                                           NIR
=============================================  ==================================================================
``Linear`` (+ the ``BatchNorm1d`` after it)    ``Affine`` (``Linear`` when there is neither bias nor BN)
``Conv2d`` (+ the batch norm after it)         ``Conv2d`` with the BN folded into weight and bias
``AvgPool2d``, ``AdaptiveAvgPool2d``           ``AvgPool2d`` (the adaptive one as a fixed kernel)
``Flatten`` (of ``[T, B, ...]``)               ``Flatten`` (``start_dim`` 0 of the batch-less shape)
IF, LIF, PLIF, any neuron of the family        ``IF`` / ``LIF`` (:mod:`~spikegrad.interchange.discretisation`)
``a + b`` (a residual block's shortcut)        both edges into the node that reads the sum (NIR adds the inputs)
``Dropout``, ``Identity``                      nothing (identity at inference)
=============================================  ==================================================================

A batch norm at inference is the affine map ``y = γ·(x - μ)/√(σ² + ε) + β`` with the running estimates, for
every form of :mod:`spikegrad.models.norm` (``tbn``, ``per_step``: one shared running estimate, ``tdbn``: the
fixed ``α·θ`` scales the normalised value), so it folds exactly into the convolution or linear layer before it:
``W' = W·s``, ``b' = (b - μ)·s + β`` per output channel with ``s = γ·α·θ/√(σ² + ε)`` (computed in float64, stored as
float32). A batch norm without running estimates, or after a layer whose output is also used elsewhere, is refused.

Not exported, because they do not change inference: the surrogate gradient and its MSG masking, the reset
gradient setting (``detach_reset``) and the kernels' ``backend``; they are listed as notes. Refused with one line:
a soft reset (NIR resets to ``v_reset`` only), max pooling (no NIR node), element-wise products of two signals
(SEW's ``AND``/``IAND``), and any operation without a NIR node. The graph's output is the last layer's per-step
output (the logits ``[T, B, K]``); the decoder that averages or weights them over time is not a NIR node and is
described in the graph's metadata.

We walk the fx graph ourselves rather than through ``nirtorch.torch_to_nir``: that maps one module to one node
and cannot fold a batch norm that is a separate module into the layer before it, nor see through our
time-distributed wrappers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field

import nir
import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from spikegrad.decoding import Decoder
from spikegrad.errors import UsageError
from spikegrad.interchange.discretisation import DEFAULT_DT, neuron_node
from spikegrad.models.layers import Flatten, TimeDistributed
from spikegrad.models.norm import SpikingBatchNorm
from spikegrad.neurons import SpikingNeuron

__all__ = ["Export", "export_classifier", "export_backbone"]

PASS_THROUGH = (nn.Dropout, nn.Identity)
POOL_FORMS = ("avg", "sum")
ADDITIONS = (operator.add, operator.iadd, torch.add)
TRAINING_ONLY_NOTE = (
    "not exported, training only (inference unchanged): surrogate gradients and their MSG masks, detach_reset, backend"
)


@dataclass
class Export:
    """The NIR graph of a model and the notes on what was dropped or converted."""

    graph: nir.NIRGraph
    notes: list[str] = field(default_factory=list)


class _Tracer(fx.Tracer):
    """Traces down to our building blocks: spiking layers, time-distributed layers, batch norms and flatten stay
    single calls."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (SpikingNeuron, TimeDistributed, SpikingBatchNorm, Flatten)):
            return True
        return super().is_leaf_module(m, qualname)


def _sanitize(name: str) -> str:
    return name.replace(".", "_") or "node"


def _bn_scale_shift(bn: nn.Module, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, β')`` with ``BN(x) = s·x + β'`` at inference, in float64, for ``nn.BatchNormNd`` and
    :class:`SpikingBatchNorm`."""
    inner = bn.bn if isinstance(bn, SpikingBatchNorm) else bn
    if not inner.track_running_stats or inner.running_mean is None:
        raise UsageError(
            f"cannot export {where}: its batch norm has no running statistics (it normalises with each batch's, "
            f"which is not a fixed map at inference); valid: batch norms with track_running_stats"
        )
    mean = inner.running_mean.detach().double()
    scale = 1.0 / torch.sqrt(inner.running_var.detach().double() + inner.eps)
    if isinstance(bn, SpikingBatchNorm) and bn.weight is not None:  # tdBN: γ·(α·θ·x̂) + β
        gamma, beta = bn.weight.detach().double() * bn.scale, bn.bias.detach().double()
    elif inner.affine:
        gamma, beta = inner.weight.detach().double(), inner.bias.detach().double()
    else:
        gamma, beta = torch.ones_like(mean), torch.zeros_like(mean)
    s = gamma * scale
    return s, beta - mean * s


@dataclass
class _Synapse:
    """A Linear or Conv2d on its way to a node, so that a following batch norm can fold into it."""

    module: nn.Module
    in_shape: tuple[int, ...]
    weight: torch.Tensor = None
    bias: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.weight = self.module.weight.detach().double()
        self.bias = None if self.module.bias is None else self.module.bias.detach().double()

    def fold(self, bn: nn.Module, where: str) -> None:
        s, shift = _bn_scale_shift(bn, where)
        if s.numel() != self.weight.shape[0]:
            raise UsageError(f"cannot export {where}: batch norm of {s.numel()} channels after {self.weight.shape[0]}")
        self.weight = self.weight * s.view(-1, *([1] * (self.weight.dim() - 1)))
        self.bias = shift if self.bias is None else self.bias * s + shift

    def node(self) -> nir.NIRNode:
        weight = self.weight.float().numpy()
        if isinstance(self.module, nn.Linear):
            if self.bias is None:
                return nir.Linear(weight=weight)
            return nir.Affine(weight=weight, bias=self.bias.float().numpy())
        conv = self.module
        if conv.padding_mode != "zeros":
            raise UsageError(f"cannot export a convolution with padding_mode {conv.padding_mode!r}; valid: zeros")
        bias = np.zeros(weight.shape[0], dtype=np.float32) if self.bias is None else self.bias.float().numpy()
        padding = conv.padding if isinstance(conv.padding, str) else tuple(int(p) for p in conv.padding)
        return nir.Conv2d(input_shape=tuple(self.in_shape[-2:]), weight=weight, stride=tuple(conv.stride),
                          padding=padding, dilation=tuple(conv.dilation), groups=conv.groups, bias=bias)


class _GraphBuilder:
    """Collects NIR nodes and edges; every traced value is the sum of the outputs of a list of NIR nodes."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.scales: dict[str, float] = {}  # node -> factor its output still needs (sum pools, --pool sum)
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.pending: dict[str, _Synapse] = {}  # synaptic nodes that a batch norm may still fold into

    def add(self, name: str, node: nir.NIRNode | _Synapse, sources: Iterable[str]) -> list[str]:
        name = _sanitize(name)
        while name in self.nodes or name in self.pending:
            name += "_"
        sources = list(sources)
        self._take_scale(name, node, sources)
        if isinstance(node, _Synapse):
            self.pending[name] = node
        else:
            self.nodes[name] = node
        self.edges.extend((source, name) for source in sources)
        return [name]

    def _take_scale(self, name: str, node, sources: list[str]) -> None:
        """A sum pool written for an average pool leaves a factor 1/k² on its output, which the next Linear or
        Conv2d takes into its weights (a Flatten passes it on)."""
        factors = [self.scales[s] for s in sources if s in self.scales]
        if not factors:
            return
        if len(sources) == 1 and isinstance(node, _Synapse):
            node.weight = node.weight * factors[0]
        elif len(sources) == 1 and isinstance(node, nir.Flatten):
            self.scales[name] = factors[0]
        else:
            raise UsageError(
                f"cannot export {name} with --pool sum: the average pool before it is not followed by a Linear or "
                f"Conv2d that can take its 1/k² factor; valid: --pool avg"
            )

    def fold_into(self, sources: list[str], bn: nn.Module, where: str, single_use: bool) -> list[str]:
        if len(sources) != 1 or sources[0] not in self.pending or not single_use:
            raise UsageError(
                f"cannot export {where}: a batch norm folds only into the Linear or Conv2d right before it, whose "
                f"output nothing else reads (NIR has no batch-norm node)"
            )
        self.pending[sources[0]].fold(bn, where)
        return sources

    def finish(self) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
        nodes = {**self.nodes, **{name: synapse.node() for name, synapse in self.pending.items()}}
        order = {name: i for i, name in enumerate(self._creation_order)}
        return dict(sorted(nodes.items(), key=lambda item: order[item[0]])), self.edges

    @property
    def _creation_order(self) -> list[str]:
        seen: list[str] = []
        for source, target in self.edges:
            for name in (source, target):
                if name not in seen:
                    seen.append(name)
        return seen + [n for n in (*self.nodes, *self.pending) if n not in seen]


def _shape(node: fx.Node) -> tuple[int, ...]:
    """The per-sample shape of a traced value (without T and B)."""
    return tuple(node.meta["tensor_meta"].shape[2:])


def _pool_node(module: nn.Module, in_shape: tuple[int, ...], where: str) -> nir.NIRNode:
    if isinstance(module, nn.AdaptiveAvgPool2d):
        out = module.output_size if isinstance(module.output_size, tuple) else (module.output_size,) * 2
        h, w = in_shape[-2:]
        out = tuple(size if o is None else o for o, size in zip(out, (h, w), strict=True))
        if h % out[0] or w % out[1]:
            raise UsageError(f"cannot export {where}: adaptive pooling of {h}x{w} to {out[0]}x{out[1]} has no fixed "
                             f"kernel; valid: sizes that divide the input")
        kernel = (h // out[0], w // out[1])
        return nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(kernel), padding=np.array((0, 0)))
    pair = nn.modules.utils._pair
    if module.ceil_mode or module.divisor_override is not None or (any(pair(module.padding))
                                                                   and not module.count_include_pad):
        raise UsageError(f"cannot export {where}: AvgPool2d with ceil_mode, divisor_override or padding without "
                         f"count_include_pad has no NIR node; valid: plain AvgPool2d")
    stride = module.stride if module.stride is not None else module.kernel_size
    return nir.AvgPool2d(kernel_size=np.array(pair(module.kernel_size)), stride=np.array(pair(stride)),
                         padding=np.array(pair(module.padding)))


def _neuron_node(layer: SpikingNeuron, shape: tuple[int, ...], where: str, dt: float) -> nir.NIRNode:
    """The NIR neuron of one of our spiking layers (see :mod:`spikegrad.interchange.discretisation`)."""
    if type(layer).multistep is not SpikingNeuron.multistep:
        raise UsageError(
            f"cannot export {where}: {type(layer).__name__} defines its own dynamics (multistep); the export knows "
            f"the family recursion h = λ·v + κ·x"
        )
    if layer.reset != "hard":
        raise UsageError(
            f"cannot export {where}: neuron reset {layer.reset!r} (subtract the threshold) has no NIR form, NIR "
            f"resets to v_reset only; valid: reset hard"
        )
    decay, input_scale = (float(c.detach()) if isinstance(c, torch.Tensor) else float(c) for c in layer.coefficients())
    tau = getattr(layer, "tau", None)  # LIF and PLIF say their τ; a neuron of the family without one: 1/(1 - λ)
    if tau is None:
        tau = math.inf if decay == 1.0 else 1.0 / (1.0 - decay)
    if getattr(layer, "decay_input", None) is True:
        input_scale = 1.0 / tau  # κ = 1/τ exactly, so that R is 1
    return neuron_node(float(tau), input_scale, layer.threshold_value(), shape, dt)


def export_backbone(backbone: nn.Module, input_shape: tuple[int, ...], dt: float = DEFAULT_DT,
                    pool: str = "avg") -> Export:
    """The NIR graph of a backbone (``[T, B, *input_shape]`` -> ``[T, B, K]``) in its current weights.

    ``pool``: ``avg`` writes average pooling as NIR ``AvgPool2d``; ``sum`` as ``SumPool2d`` with the ``1/k²`` folded
    into the next Linear or Conv2d (for tools that read no ``AvgPool2d``, such as Norse 1.1).

    The backbone is put in eval mode for the trace (batch norms use their running estimates) and left in the mode
    it had. Raises :class:`UsageError` (one line, naming the layer) for what NIR cannot express.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        if hasattr(backbone, "nir_nodes"):  # an imported graph (NIRBackbone) writes its own nodes
            return _export_imported(backbone, input_shape, dt)
        traced = fx.GraphModule(backbone, _Tracer().trace(backbone))
        with torch.no_grad():
            ShapeProp(traced).propagate(torch.zeros(1, 1, *input_shape))
        return _convert(traced, dict(backbone.named_modules()), input_shape, dt, pool)
    finally:
        backbone.train(was_training)


def _convert(traced: fx.GraphModule, modules: dict[str, nn.Module], input_shape, dt: float, pool: str) -> Export:
    if pool not in POOL_FORMS:
        raise UsageError(f"--pool {pool!r}: unknown; valid choices: {', '.join(POOL_FORMS)}")
    out = _GraphBuilder(pool)
    values: dict[fx.Node, list[str]] = {}
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            out.nodes["input"] = nir.Input(input_type={"input": np.array(input_shape)})
            values[node] = ["input"]
        elif node.op == "output":
            result = node.args[0]
            shape = _shape(result)
            out.add("output", nir.Output(output_type={"output": np.array(shape)}), values[result])
        elif node.op == "call_function" and node.target in ADDITIONS and len(node.args) == 2 and all(
            isinstance(a, fx.Node) for a in node.args
        ):
            values[node] = values[node.args[0]] + values[node.args[1]]  # NIR sums the inputs of a node
        elif node.op == "call_module":
            values[node] = _module_nodes(out, node, modules[node.target], values[node.args[0]], dt)
        else:
            where = node.meta.get("nn_module_stack", {})
            inside = f" in {list(where)[-1]}" if where else ""
            raise UsageError(
                f"cannot export the operation {getattr(node.target, '__name__', node.target)!s}{inside}: NIR has no "
                f"node for it (valid: Linear, Conv2d, BatchNorm, AvgPool2d, Flatten, spiking layers, additions)"
            )
    nodes, edges = out.finish()
    return Export(nir.NIRGraph(nodes=nodes, edges=edges, metadata={}))


def _module_nodes(out: _GraphBuilder, node: fx.Node, module: nn.Module, sources: list[str], dt: float) -> list[str]:
    """NIR nodes of one traced module call; returns the nodes whose sum is its output."""
    where = node.target
    in_shape, shape = _shape(node.args[0]), _shape(node)
    single_use = len(node.args[0].users) == 1
    if isinstance(module, SpikingNeuron):
        return out.add(where, _neuron_node(module, shape, where, dt), sources)
    if isinstance(module, SpikingBatchNorm) or isinstance(module, nn.modules.batchnorm._BatchNorm):
        return out.fold_into(sources, module, where, single_use)
    if isinstance(module, Flatten):
        return out.add(where, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1), sources)
    if isinstance(module, PASS_THROUGH):
        return sources
    if isinstance(module, TimeDistributed):
        return _time_distributed(out, where, module, sources, in_shape, single_use)
    raise UsageError(f"cannot export {where}: {type(module).__name__} has no NIR node; valid: Linear, Conv2d, "
                     f"BatchNorm, AvgPool2d, Flatten, Dropout, spiking layers")


def _time_distributed(out: _GraphBuilder, where: str, module: TimeDistributed, sources: list[str],
                      in_shape: tuple[int, ...], single_use: bool) -> list[str]:
    shape = in_shape
    for index, layer in enumerate(module):
        name = f"{where}.{index}"
        if isinstance(layer, PASS_THROUGH):
            continue
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            sources = out.add(name, _Synapse(layer, shape), sources)
            single_use = True
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            sources = out.fold_into(sources, layer, name, single_use)
        elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            pool = _pool_node(layer, shape, name)
            if out.pool == "sum":  # AvgPool2d = SumPool2d · 1/k², the factor goes into the next synaptic layer
                pool = nir.SumPool2d(kernel_size=pool.kernel_size, stride=pool.stride, padding=pool.padding)
            sources = out.add(name, pool, sources)
            if out.pool == "sum":
                out.scales[sources[0]] = 1.0 / float(np.prod(pool.kernel_size))
            single_use = True
        elif isinstance(layer, nn.Flatten):
            start, end = (d - 1 if d > 0 else d for d in (layer.start_dim, layer.end_dim))
            sources = out.add(name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end),
                              sources)
        elif isinstance(layer, nn.MaxPool2d):
            raise UsageError(f"cannot export {name}: MaxPool2d has no NIR node (NIR 1.0 pools by sum or average); "
                             f"valid: average pooling (backbone option pool: avg)")
        else:
            raise UsageError(f"cannot export {name}: {type(layer).__name__} has no NIR node; valid: Linear, Conv2d, "
                             f"BatchNorm, AvgPool2d, Flatten, Dropout")
        with torch.no_grad():
            shape = tuple(layer(torch.zeros(1, *shape)).shape[1:])
    return sources


def _export_imported(backbone: nn.Module, input_shape, dt: float) -> Export:
    """The graph of a :class:`~spikegrad.models.nir_graph.NIRBackbone` from its layers, in its current weights
    (so that an imported, fine-tuned model is written again with the same nodes and edges; pools as they came)."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    handles = [module.register_forward_hook(
        lambda m, args, output, key=key: shapes.__setitem__(key, (tuple(args[0].shape[2:]), tuple(output.shape[2:]))))
        for key, module in backbone.layers.items()]
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    nodes = {}
    for name, key, module in backbone.nir_nodes():
        if module is None:  # the Input (the Output is written last)
            if name == backbone.input_name:
                nodes[name] = nir.Input(input_type={"input": np.array(backbone.input_shape)})
            continue
        in_shape, out_shape = shapes[key]
        if isinstance(module, SpikingNeuron):
            nodes[name] = _neuron_node(module, out_shape, name, dt)
        elif isinstance(module, TimeDistributed) and isinstance(module[0], (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nodes[name] = _Synapse(module[0], in_shape).node()
        elif isinstance(module, TimeDistributed):  # a pool
            layer = module[0]
            pair = nn.modules.utils._pair
            kind = nir.SumPool2d if layer.divisor_override == 1 else nir.AvgPool2d
            nodes[name] = kind(kernel_size=np.array(pair(layer.kernel_size)), stride=np.array(pair(layer.stride)),
                               padding=np.array(pair(layer.padding)))
        else:  # FlattenDims
            nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=module.start_dim,
                                      end_dim=module.end_dim)
    output_shape = shapes[backbone.keys[[s for s, t in backbone.edges if t == backbone.output_name][0]]][1]
    nodes[backbone.output_name] = nir.Output(output_type={"output": np.array(output_shape)})
    return Export(nir.NIRGraph(nodes=nodes, edges=list(backbone.edges), metadata={}))


def _decoder_metadata(decoder: Decoder) -> dict:
    weights = getattr(decoder, "weights", None)
    metadata = {"decoder": type(decoder).__name__}
    if isinstance(weights, torch.Tensor):
        metadata["decoder_weights"] = weights.detach().double().numpy()
    return metadata


def export_classifier(classifier, dt: float = DEFAULT_DT, pool: str = "avg") -> Export:
    """The NIR graph of a :class:`~spikegrad.module.SpikingClassifier`'s backbone, with the run's facts in the graph's
    metadata (``dt``, ``time_steps``, ``encoding``, the decoder) and notes on what was not exported."""
    input_shape = tuple(int(d) for d in classifier.hparams.input_shape)
    export = export_backbone(classifier.backbone, input_shape, dt, pool)
    export.graph.metadata = {
        "source": "spikegrad",
        "dt": float(dt),
        "time_steps": int(classifier.time_steps),
        "encoding": classifier.encoding,
        "spike_condition": "h >= v_threshold",
        **_decoder_metadata(classifier.decoder),
    }
    layers = list(classifier.spiking_layers().values())
    notes = [TRAINING_ONLY_NOTE]
    learned = sorted({key for layer in layers for key in layer.learned_values()})
    if learned:
        notes.append(f"learned {', '.join(learned)} exported as fixed values of each layer")
    if classifier.encoding == "direct":
        notes.append(f"direct encoding: present the static input at each of T = {classifier.time_steps} steps")
    decoder = type(classifier.decoder).__name__
    if decoder == "MeanDecoder":
        notes.append("decoder MeanDecoder: the prediction is the mean of the graph's per-step outputs")
    else:
        notes.append(f"decoder {decoder}: not a NIR node; named (with any per-step weights) in the graph's metadata")
    export.notes = notes + export.notes
    return export
