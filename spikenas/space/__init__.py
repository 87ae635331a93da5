"""The search space: genotypes, cells, the macro-architecture and their counts."""

from spikenas.space.cell import CellSpace, live_edges, validate_genotype
from spikenas.space.genotype import CellGenotype, Edge, Genotype, GenotypeError
from spikenas.space.macro import MacroConfig

__all__ = ["CellGenotype", "CellSpace", "Edge", "Genotype", "GenotypeError", "MacroConfig", "live_edges", "validate_genotype"]
