"""Export of trained networks to NIR for other toolchains: the graph (:mod:`.nir_graph`),
lowered to each reader's conventions (:mod:`.targets`, :mod:`.lowering`), spikenas's reference
reader (:mod:`.nir_load`) and the readers' own recipes (:mod:`.consumers`)."""

from spikenas.export.graph import ExportError
from spikenas.export.nir_graph import network_to_nir
from spikenas.export.nir_load import load_nir, run_nir
from spikenas.export.targets import TARGETS, get_target

__all__ = ["ExportError", "TARGETS", "get_target", "load_nir", "network_to_nir", "run_nir"]
