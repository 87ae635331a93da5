"""A trained :class:`~spikenas.network.SpikingNetwork` as a NIR graph (neuromorphic intermediate
representation), lowered to the conventions of one reader (:mod:`spikenas.export.targets`).

One NIR step is one timestep; the graph's input is one image ``[c, H, W]``, fed at every step
(direct encoding); its output is one step's logits ``[classes]``: average them over the ``T``
steps (``metadata['timesteps']``) for the class. Every layer keeps its meaning exactly:

- a convolution followed by batch norm (stem, ``conv1x1``/``conv3x3`` edges, reductions) is one
  ``Conv2d`` with the batch norm folded into its weights and bias; a grouped one is written
  dense (zeros across groups: no reader builds grouped ones from NIR);
- batch norm followed by LIF neurons (reductions, head) is folded into the convolutions that
  feed the neurons (their weights scaled per channel, the shift in one bias) where they feed
  nothing else, else it is a 1x1 ``Conv2d`` of ``diag(scale)`` and bias ``shift``: the neurons
  keep ``r = 1`` and ``v_leak = 0``;
- neurons are ``LIF`` nodes (``tau`` and threshold as the target reads them), or ``IF`` nodes
  for sinabs's IAF (:meth:`~spikenas.export.targets.Target.neuron_node`);
  weights are the quantised ones when the model was quantised (per-channel scales survive the
  folding);
- a cell node is the sum of its incoming edges: those edges go straight into every node that
  reads it (an identity ``Flatten`` of the last dimension stays only where that would repeat an
  edge); ``skip`` is an edge;
- ``avgpool`` (3x3, borders averaged over their valid pixels) is four ``SumPool2d`` branches
  over differently zero-padded copies, each weighted and re-padded by fixed 1x1 ``Conv2d``
  (interior ``1/4 - 2/12 + 1/36 = 1/9``, edges ``1/4 - 1/12 = 1/6``, corners ``1/4``): no
  ``Scale``, and every border pixel still averaged correctly;
- a 2x2 (``head_pool``) average is ``SumPool2d`` with its ``1/k^2`` folded into the convolution
  before it (reductions) or the linear layer after it (head);
- a backward edge ``k -> j`` is its operation on node ``k`` followed by a one-step ``Delay``
  into node ``j`` (``nir``), or, for the toolchains (:attr:`Target.feedback` ``cycle``), by an
  identity node whose edge into node ``j`` the reader's executor delivers one step later
  (:func:`_feed_back`);
- the classifier is ``Affine``; the population vote (mean over each class's outputs) is a
  second ``Affine`` of ``1 / votes`` weights, so the trained (quantised) weights stay as they are.

What a target cannot express (soft reset, a plugin layer of another kind) is an
:class:`ExportError` naming the part and the target, never a silently different graph.
"""

from __future__ import annotations

from typing import Iterable

import nir
import numpy as np
import torch
from torch import nn

from spikenas.export import lowering
from spikenas.export.graph import ExportError, Graph, Shape, array, conv, identity
from spikenas.export.targets import DIRECT_ENCODING, Target, conv_output_shape, get_target, pool_kernel
from spikenas.neuron import LIF
from spikenas.network import SpikingNetwork, edge_key
from spikenas.ops.builtin import AvgPool3x3

# the 3x3 valid-pixel average as four branches: (padding before the window sum, weight,
# padding after it that puts the smaller map back in place)
AVGPOOL_BRANCHES = (((1, 1), 1 / 4, (0, 0)), ((0, 1), -1 / 12, (1, 0)), ((1, 0), -1 / 12, (0, 1)), ((0, 0), 1 / 36, (1, 1)))


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` of an eval-mode batch norm: ``bn(x) = scale x + shift``."""
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * scale
    return scale.detach(), shift.detach()


def _dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's ``[out, in / groups, kh, kw]`` weight as the equal dense one."""
    out, per_group = weight.shape[:2]
    dense = weight.new_zeros(out, per_group * groups, *weight.shape[2:])
    step = out // groups
    for g in range(groups):
        dense[g * step:(g + 1) * step, g * per_group:(g + 1) * per_group] = weight[g * step:(g + 1) * step]
    return dense


def _diagonal(channels: int, value: float | np.ndarray) -> np.ndarray:
    """``[C, C, 1, 1]`` weights of a channel-wise 1x1 convolution multiplying channel c by ``value[c]``."""
    weight = np.zeros((channels, channels, 1, 1), dtype=np.float32)
    weight[range(channels), range(channels), 0, 0] = value
    return weight


class NIRBuilder:
    """Exports the layers of a network into a :class:`Graph` for one :class:`Target`."""

    def __init__(self, target: Target, dt: float) -> None:
        self.target, self.dt = target, dt
        self.g = Graph()
        self.batch_norms: list[str] = []  # 1x1 convolutions that hold a batch norm before neurons
        self.pool_factor = 1.0  # an average pool's 1/k^2 not yet folded into a linear layer
        self.fed_back: list[tuple[str, str]] = []  # (source, cell node) edges the reader delays one step

    def chain(self, layers: Iterable[nn.Module], source: str, shape: Shape, prefix: str) -> tuple[str, Shape]:
        """Export ``layers`` (LIF, Conv2d [+ BatchNorm2d], BatchNorm2d before LIF, AvgPool3x3,
        AvgPool2d, Flatten, Linear, Identity) fed by ``source``; returns the last node and its
        shape. What the target cannot express is refused first (:meth:`Target.check_layers`)."""
        layers = [layer for layer in layers if not isinstance(layer, nn.Identity)]
        self.target.check_layers(layers, shape, prefix)
        pending_bn: tuple[nn.BatchNorm2d, str] | None = None
        i = 0
        while i < len(layers):
            layer, name = layers[i], f"{prefix}_{i}"
            following = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, LIF):
                if pending_bn is not None:
                    source = self._batch_norm(f"{pending_bn[1]}_bn", pending_bn[0], shape, source)
                source = self._lif(name, layer, shape, source)
                pending_bn = None
            elif isinstance(layer, nn.BatchNorm2d):
                pending_bn = (layer, name)
            elif isinstance(layer, nn.Conv2d):
                bn = following if isinstance(following, nn.BatchNorm2d) else None
                source, shape = self._conv(name, layer, bn, shape, source, self.pool_factor)
                self.pool_factor, i = 1.0, i + (bn is not None)
            elif isinstance(layer, AvgPool3x3):
                source = self._avgpool3x3(name, shape, source)
            elif isinstance(layer, nn.AvgPool2d):
                source, shape, folded = self._avgpool(name, layer, shape, source)
                if not folded:
                    self.pool_factor /= pool_kernel(layer) ** 2
            elif isinstance(layer, nn.Flatten):
                flat = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=-len(shape), end_dim=-1)
                shape = (int(np.prod(shape)),)
                source = self.g.add(name, flat, shape, source)
            elif isinstance(layer, nn.Linear):
                weight = layer.weight.detach() * self.pool_factor
                bias = layer.bias.detach() if layer.bias is not None else torch.zeros(layer.out_features)
                source = self.g.add(name, nir.Affine(weight=array(weight), bias=array(bias)), (layer.out_features,), source)
                shape, self.pool_factor = (layer.out_features,), 1.0
            i += 1
        return source, shape

    def _lif(self, name: str, layer: LIF, shape: Shape, source: str) -> str:
        return self.g.add(name, self.target.neuron_node(layer, self.dt, shape), shape, source)

    def _batch_norm(self, name: str, bn: nn.BatchNorm2d, shape: Shape, source: str) -> str:
        scale, shift = _bn_affine(bn)
        node = conv(_diagonal(shape[0], scale.numpy()), shift.numpy(), input_shape=shape[1:])
        self.batch_norms.append(self.g.add(name, node, shape, source))
        return name

    def _conv(self, name: str, layer: nn.Conv2d, bn: nn.BatchNorm2d | None, shape: Shape, source: str,
              factor: float) -> tuple[str, Shape]:
        weight = layer.weight.detach() * factor  # the quantised weight when the conv is parametrised
        bias = layer.bias.detach() if layer.bias is not None else torch.zeros(layer.out_channels)
        if bn is not None:
            scale, shift = _bn_affine(bn)
            weight, bias = weight * scale.reshape(-1, 1, 1, 1), bias * scale + shift
        if layer.groups > 1:
            weight = _dense(weight, layer.groups)
        node = conv(weight.numpy(), bias.numpy(), layer.stride, layer.padding, input_shape=shape[1:])
        out = conv_output_shape(layer, shape)
        return self.g.add(name, node, out, source), out

    def _avgpool3x3(self, name: str, shape: Shape, source: str) -> str:
        c, h, w = shape
        mean = self.g.add(f"{name}_mean", identity(shape), shape)
        self.g.junctions.add(mean)  # the four branches sum here
        for k, (before, weight, after) in enumerate(AVGPOOL_BRANCHES):
            x = source
            if before != (0, 0):  # zero padding (and the weight) as a 1x1 convolution
                padded = (c, h + 2 * before[0], w + 2 * before[1])
                x = self.g.add(f"{name}_{k}_pad", conv(_diagonal(c, weight), np.zeros(c), 1, before, (h, w)), padded, x)
            summed_shape = (c, h - 2 + 2 * before[0], w - 2 + 2 * before[1])
            pool = nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([0, 0]))
            x = self.g.add(f"{name}_{k}_sum", pool, summed_shape, x)
            if after != (0, 0):
                x = self.g.add(f"{name}_{k}_place", conv(_diagonal(c, 1.0 if before != (0, 0) else weight), np.zeros(c), 1,
                                                         after, summed_shape[1:]), shape, x)
            self.g.connect(x, mean)
        return mean

    def _avgpool(self, name: str, pool: nn.AvgPool2d, shape: Shape, source: str) -> tuple[str, Shape, bool]:
        """``SumPool2d``; its ``1/k^2`` is folded into the convolution before it when that
        convolution feeds only the pool (returns True), else left to the next linear layer."""
        k = pool_kernel(pool)
        before = self.g.nodes[source]
        folded = isinstance(before, nir.Conv2d) and not self.g.outputs(source)
        if folded:
            before.weight, before.bias = array(before.weight / k**2), array(before.bias / k**2)
        node = nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
        out = (shape[0], shape[1] // k, shape[2] // k)
        return self.g.add(name, node, out, source), out, folded


def network_to_nir(network: SpikingNetwork, target: str = "nir", dt: float = 1e-3, metadata: dict | None = None) -> nir.NIRGraph:
    """The NIR graph of ``network`` in eval mode (batch norm on running statistics), lowered
    for ``target`` (:data:`~spikenas.export.targets.TARGETS`). ``dt``: seconds of NIR time per
    timestep for targets that do not fix it (``nir``: ``tau`` = steps x ``dt``); stored in
    ``metadata['dt']`` with ``timesteps`` and the target. ``metadata`` is stored in the graph."""
    spec = get_target(target)
    if not dt > 0:
        raise ExportError(f"export dt must be > 0 seconds, got {dt}")
    dt = spec.dt or dt
    network = network.eval()
    macro = network.macro
    b = NIRBuilder(spec, dt)
    with torch.no_grad():
        source = b.g.add("input", nir.Input(input_type={"input": np.array(macro.input_shape)}), tuple(macro.input_shape))
        source, shape = b.chain(network.stem, source, tuple(macro.input_shape), "stem")
        for i, cell in enumerate(network.cells):
            if i > 0:
                source, shape = b.chain(network.reductions[i - 1], source, shape, f"reduction{i - 1}")
            source = _cell(b, cell, i, source, shape)
        source = _head(b, network, source, shape)
        if b.pool_factor != 1.0:
            raise ExportError("head: an average pool that no linear layer follows has no form without Scale")
        b.g.add("output", nir.Output(output_type={"output": np.array([macro.num_classes])}), (macro.num_classes,), source)
    lowering.lower(b.g, b.batch_norms, spec, dt, b.fed_back)
    data = {"timesteps": macro.timesteps, "dt": dt, "target": spec.name, "reader": spec.reader,
            "encoding": DIRECT_ENCODING, "output": "logits per step; average over the timesteps",
            **(metadata or {})}
    return b.g.to_nir(data, type_check=not spec.per_channel)


def _cell(b: NIRBuilder, cell, index: int, source: str, shape: Shape) -> str:
    prefix = f"cell{index}"
    live = sorted({0, cell.nodes - 1} | {n for e in cell.edges for n in (e.src, e.dst)})  # pruned nodes stay out
    node = {j: b.g.add(f"{prefix}_node{j}", identity(shape), shape) for j in live}
    b.g.junctions.update(node.values())
    b.g.connect(source, node[0])
    for edge in cell.edges:
        key = edge_key(edge)
        module = cell.ops[key]
        name = f"{prefix}_{key}"
        if not isinstance(module, nn.Sequential):
            raise ExportError(f"{name}: operation {edge.op!r} ({type(module).__name__}) is not a chain of layers; "
                              f"target {b.target.name} cannot express it")
        last, out_shape = b.chain(list(module), node[edge.src], shape, name)
        if out_shape != shape:
            raise ExportError(f"{name}: operation {edge.op!r} changes the shape {shape} to {out_shape}")
        if edge.backward:
            b.target.refuse_delay(f"{name} (cell {index}, {edge.src} -> {edge.dst})")
            if b.target.feedback == "delay":
                last = b.g.add(f"{name}_delay", nir.Delay(delay=array(b.dt, shape)), shape, last)
            else:
                last = b.g.add(f"{name}_back", identity(shape), shape, last)
                b.fed_back.append((last, node[edge.dst]))
        b.g.connect(last, node[edge.dst])
    if b.target.feedback == "cycle":
        _feed_back(b, [pair for pair in b.fed_back if pair[1] in node.values()], node[0], shape)
    return node[cell.nodes - 1]


def _feed_back(b: NIRBuilder, fed_back: list[tuple[str, str]], node0: str, shape: Shape) -> None:
    """Make one cell's fed-back edges ``(source, node j)`` run one step late in nirtorch's two
    executors. Both run node ``j`` before the source (the lowering orders them so); then
    ``GraphExecutor`` (norse, sinabs) reads the source's output of the step before, and
    ``nir_to_torch`` (snnTorch) does so only where ``j`` has another input and reaches the source
    through the graph. So node ``j`` stays a node of its own, one with no forward input is fed
    zeros from node 0 (a zero bridge), and a source that ``j`` does not reach gets a zero loop
    from ``j`` (a LIF that never fires adds 0 to it)."""
    sources = {source for source, _ in fed_back}
    for source, j in fed_back:
        b.g.junctions.discard(j)
        if not set(b.g.inputs(j)) - sources:
            b.g.connect(lowering.zero_bridge(b.g, f"{j}_zeros", shape, node0, b.target, b.dt), j)
        if not b.g.reaches(j, source):
            b.g.connect(lowering.zero_bridge(b.g, f"{source}_loop", shape, j, b.target, b.dt), source)


def _head(b: NIRBuilder, network: SpikingNetwork, source: str, shape: Shape) -> str:
    head = network.head
    source, shape = b.chain(head.features, source, shape, "head")
    source, shape = b.chain(head.classifier, source, shape, "classifier")
    if head.votes > 1:  # its own layer, so the trained (quantised) weights stay as they are
        classes = network.macro.num_classes
        vote = torch.kron(torch.eye(classes), torch.full((1, head.votes), 1.0 / head.votes))  # [classes, classes * votes]
        source = b.g.add("vote", nir.Affine(weight=array(vote), bias=array(0.0, (classes,))), (classes,), source)
    return source

