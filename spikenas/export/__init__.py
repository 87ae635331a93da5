"""Export of trained networks to NIR for other toolchains: a network as NIR nodes
(:mod:`.from_network`) in a graph under construction (:mod:`.graph`), lowered to each reader's
conventions (:mod:`.targets`, which also says what each reader runs, and :mod:`.support`, what it
runs at a search's shapes; :mod:`.lowering`),
spikenas's reference reader (:mod:`.nir_load`), the readers' own recipes (:mod:`.consumers`)
and the ``spikenas export`` command (:mod:`.command`).

Imports go one way: ``graph`` <- ``targets`` <- ``lowering`` <- ``from_network`` <- ``command``,
``targets`` <- ``support``;
``nir_load`` reads with ``graph`` and ``targets``."""

from spikenas.export.from_network import network_to_nir
from spikenas.export.graph import ExportError
from spikenas.export.nir_load import load_nir, run_nir
from spikenas.export.targets import TARGETS, get_target

__all__ = ["ExportError", "TARGETS", "get_target", "load_nir", "network_to_nir", "run_nir"]
