"""Incremental scoring: the last cell's score equals the whole network's, and memoised edges are
not run again."""

from __future__ import annotations

import math
import random

import pytest
import torch

from spikenas import CellGenotype, Genotype
from spikenas.neuron import LIF
from spikenas.search.cell_search import build_context
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.space.config import SearchSpaceConfig


@pytest.fixture
def images(tiny_macro):
    return torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))


def make_ctx(tiny_macro, neuron, images, backward=False, **kw):
    return build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2, backward=backward), [images, images.flip(0)], **kw)


def test_score_is_deterministic_for_same_genotype_data_and_seed(tiny_macro, neuron, images, genotype):
    first = make_ctx(tiny_macro, neuron, images).engine.full_score(genotype)
    again = make_ctx(tiny_macro, neuron, images).engine.full_score(genotype)
    assert math.isfinite(first)
    assert first == again
    other_seed = make_ctx(tiny_macro, neuron, images, seed=1).engine.full_score(genotype)
    assert other_seed != first


@pytest.mark.parametrize("backward", [False, True])
def test_incremental_last_cell_score_equals_whole_network_score(tiny_macro, neuron, images, backward):
    ctx = make_ctx(tiny_macro, neuron, images, backward=backward)
    rng = random.Random(0)
    prefix = (ctx.cells.sample(rng),)
    evaluator = CellEvaluator(ctx.engine, prefix)
    for _ in range(4):
        cell = ctx.cells.sample(rng)
        whole = ctx.engine.full_score(Genotype(prefix + (cell,)))
        assert evaluator.score(cell) == pytest.approx(whole, rel=1e-9, abs=1e-9)




@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("budget", [None, {"memory": "1MiB", "synops": 1e12}])
def test_the_next_cell_starts_where_scoring_the_chosen_cell_whole_left_off(tiny_macro, neuron, images, backward, budget):
    """The rerank scores the finalists on the whole network; the next cell's evaluator starts
    from the chosen one's reduction output without running the prefix again, and scores (and
    SynOps) exactly as one built from scratch for that prefix."""
    ctx = make_ctx(tiny_macro, neuron, images, backward=backward, budget=budget)
    rng = random.Random(2)
    finalists = [ctx.cells.sample(rng) for _ in range(3)]
    candidates = [ctx.cells.sample(rng) for _ in range(3)]
    first = CellEvaluator(ctx.engine, ())
    first.score_many(finalists, whole=False)  # the ascent's local scores come first (their spikes are remembered)
    first.assess_many(finalists) if budget else first.score_many(finalists, whole=True)
    reductions = []
    first.net.reductions[0].register_forward_hook(lambda *args: reductions.append(1))
    for chosen, kept in [(finalists[1], True), (candidates[0], False)]:
        reductions.clear()
        following = first.following(chosen)
        assert len(reductions) == (0 if kept else len(ctx.engine.batches))
        fresh = CellEvaluator(ctx.engine, (chosen,))
        assert following.prefix == fresh.prefix == (chosen,)
        assert following.assess_many(candidates) == fresh.assess_many(candidates)  # exactly, SynOps too
        assert following.score(candidates[1], whole=False) == fresh.score(candidates[1], whole=False)


def test_the_rerank_takes_the_next_reductions_first_spikes_from_the_local_score(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images)
    finalist = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 1, 2), ("conv3x3", 2, 3), ("avgpool", 0, 3)])
    first = CellEvaluator(ctx.engine, ())
    first.score(finalist, whole=False)
    reduction = first.net.reductions[0]
    lif = next(m for m in reduction if isinstance(m, LIF))
    runs = []
    lif.register_forward_hook(lambda *args: runs.append(1))
    whole = first.score(finalist, whole=True)
    assert runs == []  # not run again ...
    assert whole == CellEvaluator(ctx.engine, ()).score(finalist, whole=True)  # ... and the same score as running it


def test_next_cell_inputs_over_the_keep_limit_are_computed_again(tiny_macro, neuron, images, monkeypatch):
    from spikenas.evaluate import incremental

    monkeypatch.setattr(incremental, "KEEP_BYTES", 0)
    ctx = make_ctx(tiny_macro, neuron, images)
    finalists = [ctx.cells.sample(random.Random(i)) for i in range(2)]
    first = CellEvaluator(ctx.engine, ())
    first.score_many(finalists, whole=True)
    reductions = []
    first.net.reductions[0].register_forward_hook(lambda *args: reductions.append(1))
    following = first.following(finalists[0])
    assert len(reductions) == len(ctx.engine.batches)
    candidate = ctx.cells.sample(random.Random(5))
    assert following.score(candidate) == CellEvaluator(ctx.engine, (finalists[0],)).score(candidate)


def test_the_last_cell_has_no_following_cell(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images)
    last = CellEvaluator(ctx.engine, (ctx.cells.sample(random.Random(0)),))
    with pytest.raises(ValueError, match="cell 1 is the last cell"):
        last.following(ctx.cells.sample(random.Random(1)))


def _count_calls(evaluator, cells, kind) -> list[str]:
    """Names of the edges whose ``kind`` layers run from now on, one entry per call."""
    calls: list[str] = []
    for cell in cells:
        for edge in cell.edges:
            for layer in evaluator.module(edge).modules():
                if isinstance(layer, kind) and not layer._forward_hooks:
                    layer.register_forward_hook(lambda m, args, out, name=str(edge): calls.append(name))
    return calls


def test_a_move_reruns_only_the_edges_downstream_of_it(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images)
    prefix = (ctx.cells.sample(random.Random(0)),)
    evaluator = CellEvaluator(ctx.engine, prefix)
    first = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv3x3", 1, 2), ("conv1x1", 2, 3), ("skip", 0, 3)])
    moved = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv3x3", 1, 2), ("conv3x3", 2, 3), ("skip", 0, 3)])
    evaluator.score(first)
    calls = _count_calls(evaluator, (first, moved), torch.nn.Conv2d)
    score = evaluator.score(moved)
    assert calls == ["2>3:conv3x3"] * len(ctx.engine.batches)  # only the changed edge, once per batch
    assert score == pytest.approx(ctx.engine.full_score(Genotype(prefix + (moved,))), rel=1e-9)
    calls.clear()
    assert evaluator.score(moved) == score and calls == []


def test_a_move_on_a_nodes_last_edge_reuses_the_sum_of_the_edges_before_it(tiny_macro, neuron, images):
    """Node sums are memoised like edges: after ``first``, moving edge 2->3 adds only the new
    edge's output to the remembered sum of 0->3 and 1->3 (node 2's sum is reused whole)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class CellAdds(TorchDispatchMode):  # additions of whole [T, B, C, H, W] node values
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten.add.Tensor and out.dim() == 5:
                CellAdds.count += 1
            return out

    ctx = make_ctx(tiny_macro, neuron, images)
    prefix = (ctx.cells.sample(random.Random(0)),)
    ops = [("conv3x3", 0, 1), ("conv3x3", 0, 2), ("conv1x1", 1, 2), ("conv3x3", 0, 3), ("conv1x1", 1, 3)]
    first = CellGenotype.from_ops(4, ops + [("conv1x1", 2, 3)])
    moved = CellGenotype.from_ops(4, ops + [("conv3x3", 2, 3)])
    evaluator = CellEvaluator(ctx.engine, prefix)
    evaluator.score(first, whole=False)
    counts = []
    for scorer in (evaluator, CellEvaluator(ctx.engine, prefix)):  # memoised, then from scratch
        CellAdds.count = 0
        with torch.no_grad(), CellAdds():
            score = scorer.score(moved, whole=False)
        counts.append(CellAdds.count)
        assert score == evaluator.score(moved, whole=False)
    assert counts == [len(ctx.engine.batches), 3 * len(ctx.engine.batches)]


def test_convolution_edges_from_one_node_share_its_spikes(tiny_macro, neuron, images):
    """Every built-in convolution begins with a LIF layer on its source node: edges from one
    node fire the same spikes, so the evaluator runs that layer once per node and batch (and
    the score still equals the whole network's)."""
    ctx = make_ctx(tiny_macro, neuron, images)
    prefix = (ctx.cells.sample(random.Random(0)),)
    evaluator = CellEvaluator(ctx.engine, prefix)
    cell = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 0, 2), ("conv3x3", 0, 3), ("conv1x1", 1, 3), ("conv3x3", 2, 3)])
    lifs = _count_calls(evaluator, (cell,), LIF)
    score = evaluator.score(cell)
    assert len(lifs) == 3 * len(ctx.engine.batches)  # nodes 0, 1 and 2, not one per edge (5)
    assert score == pytest.approx(ctx.engine.full_score(Genotype(prefix + (cell,))), rel=1e-9)


def test_scoring_reads_the_device_only_for_the_numbers_a_decision_needs(tiny_macro, neuron, images):
    """One host read per scoring batch (its score) and one for the SynOps total: none per LIF
    layer or timestep, which on a GPU would each stall the launch queue. (The spy cannot see
    inside ``torch.inference_mode``, so scoring runs under ``no_grad`` here.)"""
    from unittest import mock

    from host_reads import HostReads

    with mock.patch("torch.inference_mode", torch.no_grad):
        ctx = build_context(tiny_macro, neuron, SearchSpaceConfig(cells=2, backward=True), [images, images.flip(0)],
                            budget={"memory": "1MiB", "synops": 1e12})
        rng = random.Random(1)
        genotype = Genotype(tuple(ctx.cells.sample(rng) for _ in range(2)))
        evaluator = CellEvaluator(ctx.engine, genotype.cells[:1])
        feed_forward = CellGenotype.from_ops(4, [("conv3x3", 0, 1), ("conv1x1", 1, 2), ("conv3x3", 2, 3), ("avgpool", 0, 3)])
        recurrent = next(c for c in (ctx.cells.sample(rng) for _ in range(100)) if any(e.backward for e in c.edges))
        ctx.engine.full_score(genotype)
        reads = {}
        for name, run in [("score", lambda: ctx.engine.full_score(genotype)), ("assess", lambda: ctx.engine.assess(genotype)),
                          ("cell", lambda: evaluator.assess(feed_forward)), ("recurrent cell", lambda: evaluator.assess(recurrent))]:
            with HostReads() as spy:
                run()
            reads[name] = spy.seen
    batches = len(ctx.engine.batches)
    assert reads["score"] == ["_local_scalar_dense"] * batches
    for name in ("assess", "cell", "recurrent cell"):
        assert reads[name] == ["_local_scalar_dense"] * (batches + 1), name
