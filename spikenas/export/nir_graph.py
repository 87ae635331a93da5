"""A trained :class:`~spikenas.network.SpikingNetwork` as a NIR graph (neuromorphic intermediate representation).

One NIR step is one timestep of the network (``dt`` seconds of NIR time), and the graph's
input is one image ``[c, H, W]``, fed at every step (direct encoding); its output is one
step's logits ``[classes]``: average them over the ``T`` steps for the class. Every layer
keeps its meaning exactly:

- a convolution followed by batch norm (stem, ``conv1x1``/``conv3x3`` edges, reductions)
  becomes one ``Conv2d`` with the batch norm folded into its weights and bias (a grouped
  convolution is written dense, zeros across groups: nir 1.0 cannot read grouped ones back);
- batch norm followed by LIF neurons (reductions, head) folds into the neurons: ``r`` is the
  batch norm's scale and ``v_leak`` its shift (NIR's ``tau v' = (v_leak - v) + r I``);
- LIF neurons become ``LIF`` nodes with ``tau`` = the time constant in steps times ``dt``,
  threshold and hard reset; weights are the quantised ones when the model was quantised
  (per-channel scales survive the folding);
- each cell node is a ``Scale`` of ones where its incoming edges sum; ``skip`` is an edge;
  ``avgpool`` (3x3, borders averaged over valid pixels) is ``SumPool2d`` then a ``Scale`` by
  one over each position's window size; the reductions' 2x2 average is ``AvgPool2d``;
- a backward edge ``k -> j`` is its operation on node ``k`` followed by a one-step ``Delay``
  into node ``j``: a recurrent connection;
- the head's classifier is ``Linear``/``Affine``; the population vote (mean over each class's
  outputs) is a ``Linear`` of ``1 / votes`` weights after it, so the trained (quantised)
  weights are written unchanged.

What NIR cannot express (soft reset, a plugin layer of another kind) is an
:class:`ExportError` naming the part, never a silently different graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import nir
import numpy as np
import torch
from torch import nn

from spikenas.errors import SpikenasError
from spikenas.neuron import LIF
from spikenas.network import SpikingNetwork, edge_key
from spikenas.ops.builtin import AvgPool3x3

Shape = tuple[int, ...]


class ExportError(SpikenasError):
    """A part of the network that NIR cannot express."""


def _array(t: torch.Tensor | float, shape: Shape | None = None) -> np.ndarray:
    value = torch.as_tensor(t, dtype=torch.float32).detach().cpu()
    if shape is not None:
        value = value.expand(shape) if value.dim() <= len(shape) else value
    return value.contiguous().numpy().astype(np.float32).copy()


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` of an eval-mode batch norm: ``bn(x) = scale x + shift``."""
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * scale
    return scale.detach(), shift.detach()


def _dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's ``[out, in / groups, kh, kw]`` weight as the equal dense
    ``[out, in, kh, kw]`` one (zeros across groups): nir 1.0 infers a convolution's input
    channels from its weight alone, so it cannot read a grouped one back."""
    out, per_group = weight.shape[:2]
    dense = weight.new_zeros(out, per_group * groups, *weight.shape[2:])
    step = out // groups
    for g in range(groups):
        dense[g * step:(g + 1) * step, g * per_group:(g + 1) * per_group] = weight[g * step:(g + 1) * step]
    return dense


def _conv_shape(conv: nn.Conv2d, shape: Shape) -> Shape:
    _, h, w = shape
    size = []
    for n, k, s, p, d in zip((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation):
        size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return (conv.out_channels, *size)


@dataclass
class _Pending:
    """A batch norm seen but not yet folded (into the next LIF)."""

    bn: nn.BatchNorm2d
    where: str


class NIRGraphBuilder:
    """Accumulates NIR nodes and edges; ``chain`` exports a sequence of layers."""

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: nir.NIRNode, *sources: str) -> str:
        if name in self.nodes:
            raise ExportError(f"two NIR nodes named {name!r}")
        self.nodes[name] = node
        self.edges.extend((s, name) for s in sources)
        return name

    def junction(self, name: str, shape: Shape, *sources: str) -> str:
        """A node where incoming edges sum (``Scale`` by ones)."""
        return self.add(name, nir.Scale(scale=np.ones(shape, dtype=np.float32)), *sources)

    def lif(self, name: str, lif: LIF, shape: Shape, source: str, bn: _Pending | None) -> str:
        c = lif.config
        if c.reset != "hard":
            raise ExportError(f"{name}: neuron reset {c.reset!r} has no NIR form (nir.LIF resets to v_reset); train with reset 'hard' to export")
        tau_steps = 1.0 / float(lif._rate())
        r, v_leak = torch.ones(shape[0]), torch.zeros(shape[0])
        if bn is not None:
            r, v_leak = _bn_affine(bn.bn)
        per_channel = (shape[0],) + (1,) * (len(shape) - 1)
        node = nir.LIF(
            tau=np.full(shape, tau_steps * self.dt, dtype=np.float32),
            r=_array(r.reshape(per_channel), shape),
            v_leak=_array(v_leak.reshape(per_channel), shape),
            v_threshold=np.full(shape, c.threshold, dtype=np.float32),
            v_reset=np.full(shape, c.v_reset, dtype=np.float32),
        )
        return self.add(name, node, source)

    def chain(self, layers: Iterable[nn.Module], source: str, shape: Shape, prefix: str) -> tuple[str, Shape]:
        """Export ``layers`` (a spikenas chain: LIF, Conv2d [+ BatchNorm2d], BatchNorm2d before
        LIF, AvgPool3x3, AvgPool2d, Flatten, Linear, Identity) fed by ``source``; returns the
        last node's name and its shape (channels first, no batch or time)."""
        layers = [layer for layer in layers if not isinstance(layer, nn.Identity)]
        pending: _Pending | None = None
        i = 0
        while i < len(layers):
            layer, name = layers[i], f"{prefix}_{i}"
            following = layers[i + 1] if i + 1 < len(layers) else None
            if pending is not None and not isinstance(layer, LIF):
                raise ExportError(f"{pending.where}: a batch norm that neither follows a convolution nor precedes LIF neurons has no NIR form")
            if isinstance(layer, LIF):
                source = self.lif(name, layer, shape, source, pending)
                pending = None
            elif isinstance(layer, nn.BatchNorm2d):
                pending = _Pending(layer, name)
            elif isinstance(layer, nn.Conv2d):
                source, shape = self._conv(name, layer, following if isinstance(following, nn.BatchNorm2d) else None, shape, source)
                i += isinstance(following, nn.BatchNorm2d)
            elif isinstance(layer, AvgPool3x3):
                source, shape = self._avgpool3x3(name, shape, source)
            elif isinstance(layer, nn.AvgPool2d):
                source, shape = self._avgpool(name, layer, shape, source)
            elif isinstance(layer, nn.Flatten):
                source = self.add(name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), source)
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, nn.Linear):
                weight = _array(layer.weight)
                node = nir.Affine(weight=weight, bias=_array(layer.bias)) if layer.bias is not None else nir.Linear(weight=weight)
                source, shape = self.add(name, node, source), (layer.out_features,)
            else:
                raise ExportError(f"{prefix}: layer {type(layer).__name__} has no NIR form")
            i += 1
        if pending is not None:
            raise ExportError(f"{pending.where}: a batch norm that neither follows a convolution nor precedes LIF neurons has no NIR form")
        return source, shape

    def _conv(self, name: str, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, shape: Shape, source: str) -> tuple[str, Shape]:
        weight = conv.weight.detach()  # the quantised weight when the conv is parametrised
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
        if bn is not None:
            scale, shift = _bn_affine(bn)
            weight = weight * scale.reshape(-1, 1, 1, 1)
            bias = bias * scale + shift
        if conv.groups > 1:
            weight = _dense(weight, conv.groups)
        node = nir.Conv2d(
            input_shape=tuple(shape[1:]), weight=_array(weight), stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=1, bias=_array(bias),
        )
        return self.add(name, node, source), _conv_shape(conv, shape)

    def _avgpool3x3(self, name: str, shape: Shape, source: str) -> tuple[str, Shape]:
        summed = self.add(f"{name}_sum", nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([1, 1])), source)
        h, w = shape[1:]
        ones = torch.ones(1, 1, h, w)
        count = torch.nn.functional.conv2d(ones, torch.ones(1, 1, 3, 3), padding=1)[0]  # valid pixels per window
        return self.add(f"{name}_mean", nir.Scale(scale=_array(1.0 / count, shape)), summed), shape

    def _avgpool(self, name: str, pool: nn.AvgPool2d, shape: Shape, source: str) -> tuple[str, Shape]:
        k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
        s = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
        if s != k or pool.padding not in (0, (0, 0)) or pool.ceil_mode:
            raise ExportError(f"{name}: only non-overlapping average pooling without padding is exported")
        node = nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))
        return self.add(name, node, source), (shape[0], shape[1] // k, shape[2] // k)


def network_to_nir(network: SpikingNetwork, dt: float = 1e-3, metadata: dict | None = None) -> nir.NIRGraph:
    """The NIR graph of ``network`` in eval mode (batch norm on running statistics).

    ``dt``: seconds of NIR time per timestep (``tau`` is written in seconds: steps times
    ``dt``); read the graph back with the same ``dt``. ``metadata`` is stored in the graph.
    """
    if not dt > 0:
        raise ExportError(f"export dt must be > 0 seconds, got {dt}")
    network = network.eval()
    macro = network.macro
    g = NIRGraphBuilder(dt)
    with torch.no_grad():
        source = g.add("input", nir.Input(input_type={"input": np.array(macro.input_shape)}))
        source, shape = g.chain(network.stem, source, tuple(macro.input_shape), "stem")
        for i, cell in enumerate(network.cells):
            if i > 0:
                source, shape = g.chain(network.reductions[i - 1], source, shape, f"reduction{i - 1}")
            source = _cell(g, cell, i, source, shape)
        source = _head(g, network, source, shape)
        g.add("output", nir.Output(output_type={"output": np.array([macro.num_classes])}), source)
    data = {"timesteps": macro.timesteps, "dt": dt, "encoding": "direct: the image at every step",
            "output": "logits per step; average over the timesteps", **(metadata or {})}
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=data)


def _cell(g: NIRGraphBuilder, cell, index: int, source: str, shape: Shape) -> str:
    prefix = f"cell{index}"
    live = sorted({0, cell.nodes - 1} | {n for e in cell.edges for n in (e.src, e.dst)})  # pruned nodes stay out
    node = {j: f"{prefix}_node{j}" for j in live}
    g.junction(node[0], shape, source)
    for j in live[1:]:
        g.junction(node[j], shape)
    for edge in cell.edges:
        key = edge_key(edge)
        module = cell.ops[key]
        name = f"{prefix}_{key}"
        if not isinstance(module, nn.Sequential):
            raise ExportError(f"{name}: operation {edge.op!r} ({type(module).__name__}) is not a chain of layers; it has no NIR form")
        last, out_shape = g.chain(list(module), node[edge.src], shape, name)
        if out_shape != shape:
            raise ExportError(f"{name}: operation {edge.op!r} changes the shape {shape} to {out_shape}")
        if edge.backward:
            last = g.add(f"{name}_delay", nir.Delay(delay=np.full(shape, g.dt, dtype=np.float32)), last)
        g.edges.append((last, node[edge.dst]))
    return node[cell.nodes - 1]


def _head(g: NIRGraphBuilder, network: SpikingNetwork, source: str, shape: Shape) -> str:
    head = network.head
    source, shape = g.chain(head.features, source, shape, "head")
    source, shape = g.chain(head.classifier, source, shape, "classifier")
    if head.votes > 1:  # its own layer, so the trained (quantised) weights stay as they are
        classes = network.macro.num_classes
        vote = torch.kron(torch.eye(classes), torch.full((1, head.votes), 1.0 / head.votes))  # [classes, classes * votes]
        source = g.add("vote", nir.Linear(weight=_array(vote)), source)
    return source
