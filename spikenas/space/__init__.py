"""The search space as data: genotypes, cell rules, the macro-architecture and the search-space
configuration. Nothing here builds a module (that is :mod:`spikenas.network`)."""

from spikenas.space.cell import CellSpace, live_edges, validate_genotype
from spikenas.space.config import SearchSpaceConfig
from spikenas.space.genotype import CellGenotype, Edge, Genotype, GenotypeError
from spikenas.space.macro import MacroConfig

__all__ = ["CellGenotype", "CellSpace", "Edge", "Genotype", "GenotypeError", "MacroConfig", "SearchSpaceConfig", "live_edges", "validate_genotype"]
