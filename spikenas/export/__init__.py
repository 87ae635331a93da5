"""Export of trained networks for neuromorphic hardware: NIR graphs (:mod:`.nir_graph`) and
nirtorch's executor to run them back (:mod:`.nir_load`)."""

from spikenas.export.nir_graph import ExportError, network_to_nir
from spikenas.export.nir_load import load_nir, run_nir

__all__ = ["ExportError", "load_nir", "network_to_nir", "run_nir"]
