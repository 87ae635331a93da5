"""The scoring engine: runs candidate networks, records their spikes, memoises edges, stacks
tails and tallies SynOps, between the networks and scores below and the search and analysis
above (:class:`ScoringEngine`, :func:`cell_scorer`)."""

from spikenas.evaluate.cells import cell_scorer
from spikenas.evaluate.engine import ScoringEngine, compiled_lif, network_synops, ranks_whole_networks_only
from spikenas.evaluate.protocol import Assessment, CellScorer

__all__ = ["Assessment", "CellScorer", "ScoringEngine", "cell_scorer", "compiled_lif", "network_synops", "ranks_whole_networks_only"]
