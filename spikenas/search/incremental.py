"""Scoring candidates for one cell while the cells before it stay fixed.

The consecutive search changes one cell at a time, and a coordinate move changes one edge of
it. :class:`CellEvaluator` therefore computes once, per scoring batch, the input of cell ``c``
and the kernel contributions of every LIF layer before it; for a candidate it runs cell ``c``
and then either only the first LIF layer after it (a *local* score) or the rest of the
network with the later cells at their cheapest (a *whole* score). For the last cell both are
exactly the whole network's score. Every candidate runs through
:class:`~spikenas.network.CellModule`'s own forward with cached edge modules; inside a
feed-forward cell the output of each edge is memoised (through ``run_edge``) by the edge and
the sub-graph feeding it, so a move recomputes only the edges downstream of the changed one,
and the spikes of the LIF layer that begins a convolution edge are computed once per source
node and shared by every such edge from it (their kernel contributions too).
The part after the cell runs for all the candidates of a call to :meth:`CellEvaluator.score_many`
at once where it is a chain of frame-wise and LIF layers (:class:`~spikenas.search.stacked.StackedTail`:
each LIF layer once on the stacked candidates; every spike as when run alone).
Cells with backward edges run step by step, unmemoised. Under a SynOps
limit, :meth:`CellEvaluator.assess` also counts the whole network's SynOps in the same pass
(the prefix's and each memoised edge's counts are kept with them).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

import torch
from torch import nn

from spikenas.network import CellModule, edge_key, seeded
from spikenas.neuron import LIF, record_spikes
from spikenas.ops import SpikingSequential
from spikenas.score import KernelAccumulator, finite_mean, scoring_mode
from spikenas.search.context import Assessment, SearchContext
from spikenas.search.stacked import StackedTail, chunks, recorder
from spikenas.space.genotype import CellGenotype, Edge
from spikenas.synops import SynOpsTally, fan_outs_by_module


class _TensorLRU:
    """Least-recently-used cache bounded by the bytes of the tensors it holds."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple] = OrderedDict()

    def get(self, key: Hashable) -> tuple | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: tuple, size: int) -> None:
        self._items[key] = item + (size,)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.bytes -= old[-1]


def _until_first_lif(module: nn.Sequential) -> nn.Sequential:
    for index, layer in enumerate(module):
        if isinstance(layer, LIF):
            return module[: index + 1]
    return module


class _Rest(nn.Module):
    """The network after cell ``index``: reductions, the (cheapest) later cells, the head."""

    def __init__(self, net, index: int) -> None:
        super().__init__()
        self.net = net
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.index + 1, len(self.net.cells)):
            x = self.net.cells[i](self.net.reductions[i - 1](x))
        return self.net.head(x)


class CellEvaluator:
    """Scores of candidate cells at position ``len(prefix)`` after the fixed ``prefix`` cells.

    ``score(cell)`` is the mean over the scoring batches of the score of the network prefix
    (stem, fixed cells and reductions, the candidate, and what follows it up to the next LIF
    layer); for the last cell this is the whole network's score.
    """

    def __init__(self, ctx: SearchContext, prefix: tuple[CellGenotype, ...], cache_bytes: int = 1 << 30) -> None:
        self.ctx = ctx
        self.index = len(prefix)
        last = self.index == ctx.num_cells - 1
        # Parts are seeded by name, so this network shares every weight with any network
        # that has the same parts; its own cells after the prefix are never run.
        self.net = scoring_mode(ctx.build(ctx.memory.cheapest(ctx.cells, ctx.num_cells, prefix)))
        self.is_last = last
        self.rest: nn.Module = self.net.head if last else _Rest(self.net, self.index)
        self.next_lif: nn.Module = self.net.head if last else _until_first_lif(self.net.reductions[self.index])
        self.channels = ctx.macro.cell_shape(self.index)[0]
        self._modules: dict[str, nn.Module] = {}
        self._splits: dict[str, tuple[LIF | None, nn.Module]] = {}
        self._stacked: StackedTail | None = None
        self._edges = _TensorLRU(cache_bytes)
        self._inputs: list[torch.Tensor] = []
        self._prefix: list[KernelAccumulator] = []
        self._measure = ctx.synops_limit is not None  # count SynOps of whole networks
        self._fan = fan_outs_by_module(self.net) if self._measure else {}
        self._prefix_synops: list[torch.Tensor | None] = []
        with torch.inference_mode():
            for images in ctx.batches:
                acc, tally = KernelAccumulator(ctx.score), SynOpsTally(self._fan)
                with self._recording(self.net, acc, tally):
                    x = self.net.encode(images)
                    for i in range(self.index):
                        x = self.net.cells[i](x)
                        x = self.net.reductions[i](x)
                self._inputs.append(x)
                self._prefix.append(acc)
                self._prefix_synops.append(tally.total)

    def _recording(self, module: nn.Module, acc: KernelAccumulator, tally: SynOpsTally | None):
        """Spikes of ``module`` into the score's accumulator and, when SynOps are counted,
        into ``tally``."""
        if tally is None or not self._measure:
            return record_spikes(module, acc.add)
        return tally.recording(module, acc.add)

    def module(self, edge: Edge) -> nn.Module:
        """The edge's operation, built once with the seed the full network would use."""
        key = edge_key(edge)
        if key not in self._modules:
            spec = self.ctx.registries.operations.get(edge.op)
            name = f"cell{self.index}/{key}"
            built = seeded(self.ctx.seed, name, lambda: spec.build(self.channels, self.ctx.neuron))
            self._modules[key] = scoring_mode(built.to(self.ctx.device, memory_format=self.ctx.memory_format))
            if self._measure:
                self._fan.update(fan_outs_by_module(built))
        return self._modules[key]

    def score(self, cell: CellGenotype, whole: bool = True) -> float:
        """The candidate's score. ``whole``: on the whole network (later cells at their
        cheapest); otherwise on the network up to the first LIF layer after the cell (the same
        thing for the last cell), about as cheap as running the cell alone."""
        return self.score_many([cell], whole)[0]

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        """:meth:`score` of each cell, equal to scoring them one by one; the part of the network
        after the cell runs for all of them at once where it can (:class:`StackedTail`)."""
        return [a.score for a in self._evaluate(cells, whole, synops=False)]

    def assess(self, cell: CellGenotype) -> Assessment:
        """The candidate's whole-network score and, under the search's SynOps limit, the whole
        network's SynOps per inference, counted in the same pass."""
        return self.assess_many([cell])[0]

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        """:meth:`assess` of each cell, as :meth:`score_many` scores them."""
        return self._evaluate(cells, True, synops=self._measure)

    def _tail(self, whole: bool) -> StackedTail | None:
        """The part after the cell as a :class:`StackedTail`: the first layers of the next
        reduction (local score) or the head (last cell); None for the rest of the network."""
        if whole and not self.is_last:
            return None
        if self._stacked is None:
            head = self.net.head
            self._stacked = StackedTail([head.features, head.classifier] if self.is_last else [self.next_lif], self.ctx.stack_bytes)
        return self._stacked

    def _evaluate(self, cells: list[CellGenotype], whole: bool, synops: bool) -> list[Assessment]:
        """Assessments of ``cells``, in groups whose cell outputs fit ``ctx.stack_bytes`` together."""
        x = self._inputs[0]  # a cell's output has its input's shape
        groups = chunks(cells, x.numel() * x.element_size(), self.ctx.stack_bytes)
        return [a for group in groups for a in self._evaluate_group(group, whole, synops)]

    def _evaluate_group(self, cells: list[CellGenotype], whole: bool, synops: bool) -> list[Assessment]:
        after = self.rest if whole else self.next_lif
        tail = self._tail(whole) if len(cells) > 1 else None
        build = self.ctx.registries.operations
        modules = [CellModule(cell, self.channels, self.ctx.neuron, build, build_op=self.module) for cell in cells]
        sources = [None if m.recurrent else _node_keys(m) for m in modules]
        values: list[list[float]] = [[] for _ in cells]
        totals = [SynOpsTally(self._fan) for _ in cells]
        with torch.inference_mode():
            for b in range(len(self._inputs)):
                accs = [self._prefix[b].copy() for _ in cells]
                tallies = [SynOpsTally(self._fan, self._prefix_synops[b]) if synops else None for _ in cells]
                outs = [self._run_cell(module, b, keys, acc, tally)
                        for module, keys, acc, tally in zip(modules, sources, accs, tallies)]
                if tail is None:
                    for out, acc, tally in zip(outs, accs, tallies):
                        with self._recording(after, acc, tally):
                            after(out)
                else:
                    tail.run(outs, recorder(accs, tallies))
                for k, (acc, tally) in enumerate(zip(accs, tallies)):
                    values[k].append(acc.value())
                    if tally is not None:
                        totals[k].add(tally.total)
        images = sum(len(x) for x in self.ctx.batches)
        return [Assessment(finite_mean(v), total.value() / images if synops else None) for v, total in zip(values, totals)]

    def _run_cell(self, module: CellModule, b: int, sources: dict | None, acc: KernelAccumulator,
                  tally: SynOpsTally | None) -> torch.Tensor:
        """The candidate cell's output on batch ``b``, its spikes recorded into ``acc`` and
        ``tally``; a feed-forward cell memoises its edges (``sources``: :func:`_node_keys`)."""
        if sources is None:  # step by step: nothing to memoise
            with self._recording(module, acc, tally):
                return module(self._inputs[b])
        return module(self._inputs[b], run_edge=lambda e, x: self._memoised(e, x, (b, str(e), sources[e.src]), acc, tally))

    def _memoised(self, edge: Edge, source: torch.Tensor, key: Hashable, acc: KernelAccumulator,
                  tally: SynOpsTally | None) -> torch.Tensor:
        """The edge's output on ``source``, memoised by ``key``; its kernel contributions go
        into ``acc`` and its SynOps into ``tally``, whether computed now or remembered."""
        cached = self._edges.get(key)
        if cached is None:
            cached = self._compute_edge(edge, source, key)
        out, kernel, count, synops = cached[:4]
        acc.merge(kernel, count)
        if tally is not None:
            tally.add(synops)
        return out

    def _compute_edge(self, edge: Edge, source: torch.Tensor, key: tuple) -> tuple:
        """Run the edge on ``source`` and memoise ``(output, kernel, count, synops)``. An
        operation that begins with a plain LIF layer (every built-in convolution) takes that
        layer's spikes from :meth:`_source_spikes`, shared by every such edge from the node."""
        local = KernelAccumulator(self.ctx.score)
        counted = SynOpsTally(self._fan) if self._measure else None
        head, tail = self._split(edge)
        x = source
        if head is not None:
            spikes, kernel, count, fired = self._source_spikes(head, key[0], key[2], source)
            local.merge(kernel, count)
            if counted is not None:
                counted.add(fired * self._fan.get(id(head), 0))
            x = spikes
        with self._recording(tail, local, counted):
            out = tail(x)
        item = (out, local.kernel, local.count, None if counted is None else counted.total)
        size = out.numel() * out.element_size() if out.data_ptr() != source.data_ptr() else 0
        self._edges.put(key, item, size)
        return item

    def _split(self, edge: Edge) -> tuple[LIF | None, nn.Module]:
        """``(first LIF, the rest)`` of an operation that begins with a plain :class:`LIF`
        layer; ``(None, operation)`` for any other."""
        key = edge_key(edge)
        if key not in self._splits:
            module = self.module(edge)
            starts = isinstance(module, SpikingSequential) and len(module) > 1 and type(module[0]) is LIF
            self._splits[key] = (module[0], module[1:]) if starts else (None, module)
        return self._splits[key]

    def _source_spikes(self, lif: LIF, b: int, source_key: Hashable, source: torch.Tensor) -> tuple:
        """``(spikes, kernel, count, spikes fired)`` of a LIF layer with ``lif``'s settings on a
        node's value (``source``, named by ``source_key``, of batch ``b``): the same for every
        edge from that node whose operation begins with such a layer, so computed once."""
        key = (b, "lif", lif.config, source_key)
        cached = self._edges.get(key)
        if cached is None:
            local = KernelAccumulator(self.ctx.score)
            with record_spikes(lif, local.add):
                spikes = lif(source)
            fired = spikes.sum(dtype=torch.float64) if self._measure else None
            cached = (spikes, local.kernel, local.count, fired)
            self._edges.put(key, cached, spikes.numel() * spikes.element_size())
        return cached[:4]


def _node_keys(cell: CellModule) -> dict[int, Hashable]:
    """A key per node of a feed-forward cell that names the sub-graph computing it (node 0: the
    cell input), so equal keys mean equal values for one input."""
    keys: dict[int, Hashable] = {0: ()}
    for j in range(1, cell.nodes):
        incoming = [e for e in cell.edges if e.dst == j]
        if incoming:
            keys[j] = tuple((str(e), keys[e.src]) for e in incoming)
    return keys
