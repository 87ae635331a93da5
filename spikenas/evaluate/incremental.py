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
at once where it is a chain of frame-wise and LIF layers (:class:`~spikenas.evaluate.stacked_tail.StackedTail`:
each LIF layer once on the stacked candidates; every spike as when run alone).
Scoring a cell on the whole network passes through the next cell's input; for the finalists
the search scores that way, the evaluator keeps it (:meth:`CellEvaluator.next_inputs`), so the
next cell's evaluator (:meth:`CellEvaluator.following`) starts there instead of running the
prefix again, with the same kernel sums bit for bit as one built from scratch.
Cells with backward edges run step by step, unmemoised. Under a SynOps
limit, :meth:`CellEvaluator.assess` also counts the whole network's SynOps in the same pass
(the prefix's and each memoised edge's counts are kept with them).
"""

from __future__ import annotations

from typing import Hashable, NamedTuple

import torch
from torch import nn

from spikenas.network import CellModule, SpikingNetwork, edge_key, seeded
from spikenas.neuron import LIF, record_spikes
from spikenas.ops import SpikingSequential
from spikenas.score import KernelAccumulator, KernelScore, finite_mean, scoring_mode
from spikenas.evaluate.engine import ScoringEngine
from spikenas.evaluate.protocol import Assessment
from spikenas.evaluate.stacked_tail import StackedTail, chunks, recorder
from spikenas.evaluate.tensor_cache import TensorLRU
from spikenas.space.genotype import CellGenotype, Edge
from spikenas.cost.synops import SynOpsTally, fan_outs_by_module


def _until_first_lif(module: nn.Sequential) -> nn.Sequential:
    for index, layer in enumerate(module):
        if isinstance(layer, LIF):
            return module[: index + 1]
    return module


KEEP_BYTES = 256 << 20  # per evaluator, for each of: next-cell inputs kept from whole-network scoring, local spikes kept for the rerank


class BatchState(NamedTuple):
    """The network at a cell's input for one scoring batch: the input ``x [T, B, C, H, W]``, the
    kernel contributions of every LIF layer before it (``acc``) and, when SynOps are counted,
    their SynOps (``synops``, a float64 tensor; None otherwise)."""

    x: torch.Tensor
    acc: KernelAccumulator
    synops: torch.Tensor | None


class CellEvaluator:
    """Scores of candidate cells at position ``len(prefix)`` after the fixed ``prefix`` cells.

    ``score(cell)`` is the mean over the scoring batches of the score of the network prefix
    (stem, fixed cells and reductions, the candidate, and what follows it up to the next LIF
    layer); for the last cell this is the whole network's score. ``cache_bytes`` bounds the
    memoised edge outputs; ``start`` is the network at the cell's input, one
    :class:`BatchState` per scoring batch (:meth:`following` passes it; computed when None);
    ``net`` the scoring network, every cell at its cheapest, when another evaluator of the
    search has it (built when None). ``score``: the kernel score recorded (the search's when
    None); ``measure``: whether whole networks' SynOps are counted (when None: under the
    search's SynOps limit only).
    """

    def __init__(self, engine: ScoringEngine, prefix: tuple[CellGenotype, ...], cache_bytes: int = 1 << 30,
                 start: list[BatchState] | None = None, net: SpikingNetwork | None = None,
                 score: KernelScore | None = None, measure: bool | None = None) -> None:
        self.engine = engine
        self.kernel_score = score if score is not None else engine.score
        self.prefix = tuple(prefix)
        self.index = len(prefix)
        self.is_last = self.index == engine.num_cells - 1
        # Parts are seeded by name, so this network shares every weight with any network that
        # has the same parts. Only its stem (cell 0), reductions from this cell's on, later cells
        # and head run: every cell is built at its cheapest (the same network for every cell).
        self.net = net if net is not None else scoring_mode(engine.build(engine.complete(())))
        self.next_lif: nn.Module = self.net.head if self.is_last else _until_first_lif(self.net.reductions[self.index])
        self._after_next_lif = None if self.is_last else self.net.reductions[self.index][len(self.next_lif):]
        self.channels = engine.macro.cell_shape(self.index)[0]
        self._modules: dict[str, nn.Module] = {}
        self._splits: dict[str, tuple[LIF | None, nn.Module]] = {}
        self._stacked: StackedTail | None = None
        self._edges = TensorLRU(cache_bytes)
        self._tails = TensorLRU(KEEP_BYTES)  # see _remember_tail
        self._measure = engine.count_synops if measure is None else measure  # count SynOps of whole networks
        self._fan = fan_outs_by_module(self.net) if self._measure else {}
        self._kept: dict[CellGenotype, list[BatchState]] = {}  # next-cell inputs of whole-scored cells
        self._kept_bytes = 0
        start = start if start is not None else self._start()
        self._inputs = [s.x for s in start]
        self._prefix = [s.acc for s in start]
        self._prefix_synops = [s.synops for s in start]

    def _start(self) -> list[BatchState]:
        """The network at this cell's input: the encoded images for cell 0; for a later cell,
        what the previous cell's evaluator hands on (:meth:`next_inputs`), so the kernel
        contributions are summed in the same order whether or not that evaluator kept them."""
        if self.prefix:
            previous = CellEvaluator(self.engine, self.prefix[:-1], cache_bytes=0, net=self.net, score=self.kernel_score,
                                     measure=self._measure)
            return previous.next_inputs(self.prefix[-1])
        states = []
        with torch.inference_mode():
            for images in self.engine.batches:
                acc, tally = KernelAccumulator(self.kernel_score), SynOpsTally(self._fan)
                with self._recording(self.net, acc, tally):
                    x = self.net.encode(images)
                states.append(BatchState(x, acc, tally.total if self._measure else None))
        return states

    def next_inputs(self, cell: CellGenotype) -> list[BatchState]:
        """The network at the next cell's input, per scoring batch, with ``cell`` at this
        position: kept from scoring ``cell`` on the whole network when it was (within
        :data:`KEEP_BYTES`), otherwise computed now."""
        if self.is_last:
            raise ValueError(f"cell {self.index} is the last cell: no cell follows it")
        kept = self._kept.get(cell)
        if kept is not None:
            return kept
        module = self._cell_module(cell)
        keys = None if module.recurrent else _node_keys(module)
        output = _output_key(module, keys)
        states = []
        with torch.inference_mode():
            for b in range(len(self._inputs)):
                acc = self._prefix[b].copy()
                tally = SynOpsTally(self._fan, self._prefix_synops[b]) if self._measure else None
                states.append(self._reduce(self._run_cell(module, b, keys, acc, tally), acc, tally, (b, output)))
        return states

    def following(self, cell: CellGenotype) -> "CellEvaluator":
        """The evaluator of the next cell, with ``cell`` chosen at this position."""
        return CellEvaluator(self.engine, self.prefix + (cell,), self._edges.max_bytes, self.next_inputs(cell), self.net,
                             self.kernel_score, self._measure)

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
            spec = self.engine.operations.get(edge.op)
            name = f"cell{self.index}/{key}"
            built = seeded(self.engine.seed, name, lambda: spec.build(self.channels, self.engine.neuron))
            self._modules[key] = scoring_mode(built.to(self.engine.device, memory_format=self.engine.memory_format))
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
            self._stacked = StackedTail([head.features, head.classifier] if self.is_last else [self.next_lif], self.engine.stack_bytes)
        return self._stacked

    def _evaluate(self, cells: list[CellGenotype], whole: bool, synops: bool) -> list[Assessment]:
        """Assessments of ``cells``, in groups whose cell outputs fit ``engine.stack_bytes`` together."""
        x = self._inputs[0]  # a cell's output has its input's shape
        groups = chunks(cells, x.numel() * x.element_size(), self.engine.stack_bytes)
        return [a for group in groups for a in self._evaluate_group(group, whole, synops)]

    def _evaluate_group(self, cells: list[CellGenotype], whole: bool, synops: bool) -> list[Assessment]:
        tail = self._tail(whole)
        beyond = whole and not self.is_last  # the rest of the network: keep the next cell's input
        modules = [self._cell_module(cell) for cell in cells]
        sources = [None if m.recurrent else _node_keys(m) for m in modules]
        outputs = [_output_key(m, keys) for m, keys in zip(modules, sources)]
        local = not whole and not self.is_last  # the next reduction's first LIF layer: remember its spikes
        values: list[list[float]] = [[] for _ in cells]
        totals = [SynOpsTally(self._fan) for _ in cells]
        kept: list[list[BatchState] | None] = [[] if beyond and (synops or not self._measure) else None for _ in cells]
        with torch.inference_mode():
            for b in range(len(self._inputs)):
                accs = [self._prefix[b].copy() for _ in cells]
                tallies = [SynOpsTally(self._fan, self._prefix_synops[b]) if synops else None for _ in cells]
                outs = [self._run_cell(module, b, keys, acc, tally)
                        for module, keys, acc, tally in zip(modules, sources, accs, tallies)]
                if tail is not None:
                    remember = (lambda k, spikes, kernel: self._remember_tail((b, outputs[k]), spikes, kernel)) if local else None
                    tail.run(outs, recorder(accs, tallies, remember))
                for k, (out, acc, tally) in enumerate(zip(outs, accs, tallies)):
                    if beyond:
                        state = self._reduce(out, acc, tally, (b, outputs[k]))
                        if kept[k] is not None:
                            kept[k].append(state)
                        with self._recording(self.net, acc, tally):
                            self._beyond(state.x)
                    values[k].append(acc.value())
                    if tally is not None:
                        totals[k].add(tally.total)
        for cell, states in zip(cells, kept):
            self._keep(cell, states)
        images = sum(len(x) for x in self.engine.batches)
        return [Assessment(finite_mean(v), total.value() / images if synops else None) for v, total in zip(values, totals)]

    def _cell_module(self, cell: CellGenotype) -> CellModule:
        """The candidate as a :class:`CellModule` running the cached edge modules."""
        build = self.engine.operations
        return CellModule(cell, self.channels, self.engine.neuron, build, build_op=self.module)

    def _reduce(self, out: torch.Tensor, acc: KernelAccumulator, tally: SynOpsTally | None,
                key: tuple[int, Hashable | None]) -> BatchState:
        """The reduction after this cell on its output ``out`` (``key``: batch and output key),
        recorded into ``acc`` and ``tally``: the next cell's input and what the network recorded
        before it. Its first LIF layer's spikes come from the local score when remembered."""
        reduction = self.net.reductions[self.index]
        remembered = self._tails.get(key) if key[1] is not None else None
        with self._recording(reduction, acc, tally):
            if remembered is None:
                x = reduction(out)
            else:
                spikes, kernel = remembered[:2]
                acc.merge(kernel, spikes.shape[0])  # as recording the layer would, bit for bit
                if tally is not None:
                    tally.add_layer(self.next_lif[-1], spikes)
                x = self._after_next_lif(spikes)
        return BatchState(x, acc.copy(), None if tally is None else tally.total)

    def _remember_tail(self, key: tuple[int, Hashable | None], spikes: torch.Tensor, kernel: torch.Tensor) -> None:
        """Remember a candidate's spikes ``[T, B, ...]`` of the next reduction's first LIF layer
        and their kernel contribution, by batch and output key, within :data:`KEEP_BYTES`: the
        rerank scores the best candidates on the whole network, through that layer again. Only
        spikes small enough for a cell's candidates (dozens) to fit are kept: larger ones would
        be evicted before the rerank and only cost memory."""
        size = spikes.numel() * spikes.element_size()
        if key[1] is not None and size <= KEEP_BYTES // 64:
            self._tails.put(key, (spikes, kernel), size)

    def _beyond(self, x: torch.Tensor) -> torch.Tensor:
        """The network from the next cell's input ``x``: the later cells (at their cheapest) with
        their reductions, then the head."""
        net = self.net
        for i in range(self.index + 1, len(net.cells)):
            if i > self.index + 1:
                x = net.reductions[i - 1](x)
            x = net.cells[i](x)
        return net.head(x)

    def _keep(self, cell: CellGenotype, states: list[BatchState] | None) -> None:
        """Keep ``cell``'s next-cell inputs (all batches) for :meth:`next_inputs` while the kept
        inputs stay within :data:`KEEP_BYTES`."""
        if not states or cell in self._kept:
            return
        size = sum(s.x.numel() * s.x.element_size() for s in states)
        if self._kept_bytes + size <= KEEP_BYTES:
            self._kept[cell] = states
            self._kept_bytes += size

    def _run_cell(self, module: CellModule, b: int, sources: dict | None, acc: KernelAccumulator,
                  tally: SynOpsTally | None) -> torch.Tensor:
        """The candidate cell's output on batch ``b``, its spikes recorded into ``acc`` and
        ``tally``; a feed-forward cell memoises its edges (``sources``: :func:`_node_keys`)."""
        if sources is None:  # step by step: nothing to memoise
            with self._recording(module, acc, tally):
                return module(self._inputs[b])
        return module(self._inputs[b], run_edge=lambda e, x: self._memoised(e, x, (b, str(e), sources[e.src]), acc, tally),
                      add=lambda total, y, j, k: self._summed(total, y, (b, "sum", sources[j][:k + 1])))

    def _summed(self, total: torch.Tensor, y: torch.Tensor, key: Hashable) -> torch.Tensor:
        """``total + y``, memoised by ``key`` (the edges summed and what feeds them): a move
        that changes a node's last incoming edge reuses the sum of the ones before it."""
        cached = self._edges.get(key)
        if cached is None:
            out = total + y
            self._edges.put(key, (out,), out.numel() * out.element_size())
            return out
        return cached[0]

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
        local = KernelAccumulator(self.kernel_score)
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
            local = KernelAccumulator(self.kernel_score)
            with record_spikes(lif, local.add):
                spikes = lif(source)
            fired = spikes.sum(dtype=torch.float64) if self._measure else None
            cached = (spikes, local.kernel, local.count, fired)
            self._edges.put(key, cached, spikes.numel() * spikes.element_size())
        return cached[:4]


def _node_keys(cell: CellModule) -> dict[int, tuple]:
    """A key per node of a feed-forward cell that names the sub-graph computing it (node 0: the
    cell input), so equal keys mean equal values for one input: one ``(edge, source key)`` term
    per incoming edge, in the order the cell sums them."""
    keys: dict[int, tuple] = {0: ()}
    for j in range(1, cell.nodes):
        incoming = [e for e in cell.edges if e.dst == j]
        if incoming:
            keys[j] = tuple((str(e), keys[e.src]) for e in incoming)
    return keys


def _output_key(cell: CellModule, keys: dict[int, tuple] | None) -> tuple | None:
    """The key of a feed-forward cell's output (:func:`_node_keys`); None for a cell with
    backward edges or without a live edge into its output node (nothing to remember it by)."""
    return None if keys is None else keys.get(cell.nodes - 1)
