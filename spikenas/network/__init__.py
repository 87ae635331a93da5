"""The modules built from the search space's data: the network, its parts, and their counts.

:class:`SpikingNetwork` and :class:`CellModule` (:mod:`spikenas.network.model`), the stem,
reductions and head (:mod:`spikenas.network.parts`), and the parameter, neuron and hardware
counts of a genotype without allocating weights (:mod:`spikenas.network.profile`).
"""

from spikenas.network.model import CellModule, SpikingNetwork, edge_key, part_seed, seeded
from spikenas.network.parts import Head, Stem, build_reduction

__all__ = ["CellModule", "Head", "SpikingNetwork", "Stem", "build_reduction", "edge_key", "part_seed", "seeded"]
