"""Several candidates per launch: the part after a cell runs for a move's candidates at once,
and every score, SynOps count and spike equals scoring them one by one."""

from __future__ import annotations

import random

import pytest
import torch

from spikenas import Genotype
from spikenas.neuron import LIF
from spikenas.search.cell_search import build_context, search
from spikenas.search.random_search import RandomSearch
from spikenas.search.records import RecordLog
from spikenas.search.consecutive import SpikeNASSearch
from spikenas.evaluate.incremental import CellEvaluator
from spikenas.search.settings import SearchSettings
from spikenas.evaluate.stacked_tail import STACK_BYTES, StackedTail, _dense, _groups
from spikenas.space.config import SearchSpaceConfig


@pytest.fixture
def images(tiny_macro):
    return torch.randn(12, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(3))


def make_ctx(tiny_macro, neuron, images, backward=False, **kw):
    space = SearchSpaceConfig(cells=2, backward=backward)
    return build_context(tiny_macro, neuron, space, [images, images.flip(0)], **kw)


def stacked_lif_inputs(module) -> list[int]:
    """The number of dimensions of every input the LIF layers of ``module`` get from now on
    (6: candidates stacked, ``[T, K, B, C, H, W]``)."""
    dims: list[int] = []
    for layer in module.modules():
        if isinstance(layer, LIF):
            layer.register_forward_hook(lambda m, args, out: dims.append(args[0].dim()))
    return dims


def move(ctx, cell, pair):
    """The valid cells one edge choice away from ``cell`` at node pair ``pair``."""
    cells = [cell.replace_edge(edge) for edge in ctx.cells.edge_choices(pair)]
    return [c for c in cells if ctx.cells.is_valid(c)]


@pytest.mark.parametrize("backward", [False, True])  # True: cells run step by step, unmemoised
@pytest.mark.parametrize("last", [False, True])
def test_a_moves_candidates_scored_at_once_score_as_one_by_one(tiny_macro, neuron, images, last, backward):
    ctx = make_ctx(tiny_macro, neuron, images, backward=backward)
    rng = random.Random(1)
    prefix = (ctx.cells.sample(rng),) if last else ()
    candidates = move(ctx, ctx.cells.sample(rng), ctx.cells.pairs[-1])
    assert len(candidates) >= 3
    alone = [CellEvaluator(ctx.engine, prefix).score(c, whole=False) for c in candidates]
    evaluator = CellEvaluator(ctx.engine, prefix)
    dims = stacked_lif_inputs(evaluator.net.head if last else evaluator.next_lif)
    together = evaluator.score_many(candidates, whole=False)
    assert together == alone  # bit for bit
    assert 6 in dims  # the LIF layers after the cell ran once for the stacked candidates
    if last:  # the incremental guarantee holds under batching: the whole network's score
        for cell, value in zip(candidates, together):
            assert value == pytest.approx(ctx.engine.full_score(Genotype(prefix + (cell,))), rel=1e-9, abs=1e-9)


def test_stacked_assessments_count_the_same_synops(tiny_macro, neuron, images):
    ctx = make_ctx(tiny_macro, neuron, images, budget={"synops": 1e12})
    rng = random.Random(2)
    prefix = (ctx.cells.sample(rng),)
    candidates = move(ctx, ctx.cells.sample(rng), ctx.cells.pairs[0])
    alone = [CellEvaluator(ctx.engine, prefix).assess(c) for c in candidates]
    together = CellEvaluator(ctx.engine, prefix).assess_many(candidates)
    assert together == alone
    assert all(a.synops > 0 for a in together)


def test_whole_networks_assessed_at_once_equal_one_by_one(tiny_macro, neuron, images):
    """The random search's path: each network up to its head, the heads stacked."""
    ctx = make_ctx(tiny_macro, neuron, images, budget={"synops": 1e12})
    rng = random.Random(3)
    genotypes = [Genotype((ctx.cells.sample(rng), ctx.cells.sample(rng))) for _ in range(5)]
    assert ctx.engine.assess_many(genotypes) == [ctx.engine.assess(g) for g in genotypes]


@pytest.mark.parametrize("strategy", [SpikeNASSearch, lambda: RandomSearch(candidates=24, chunk=8)])
def test_a_search_scores_the_same_with_stacking_off(tiny_macro, neuron, images, strategy):
    """``stack_bytes: 0`` (one candidate at a time) gives every record the same score."""
    runs = []
    for stack_bytes in (8 << 20, 0):
        log = RecordLog()
        result = search(make_ctx(tiny_macro, neuron, images, stack_bytes=stack_bytes), strategy(), log, show_progress=False)
        runs.append((str(result.genotype), [(r.key, r.score) for r in log.records]))
    assert runs[0] == runs[1]


def test_candidates_stack_only_within_the_byte_limit_and_with_one_layout():
    x = torch.zeros(5, 2, 3, 4, 4)
    assert [len(g) for g in _groups([x, x.clone(), x.clone()], max_bytes=2 * x.numel() * 4)] == [2, 1]
    channels_last = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    assert [len(g) for g in _groups([x, channels_last, channels_last], max_bytes=1 << 30)] == [1, 2]
    expanded = x[0].expand(5, 2, 3, 4, 4)  # the encoder's repeated frame: never stacked
    assert not _dense(expanded) and _dense(channels_last)
    assert [len(g) for g in _groups([expanded, expanded], max_bytes=1 << 30)] == [1, 1]


def test_the_search_setting_defaults_to_the_library_limit():
    assert SearchSettings().stack_limit() == STACK_BYTES
    assert SearchSettings(stack_bytes=0).stack_limit() == 0


def test_a_tail_without_a_lif_layer_is_refused():
    with pytest.raises(ValueError, match="needs a LIF layer"):
        StackedTail([torch.nn.Sequential(torch.nn.Identity())])
