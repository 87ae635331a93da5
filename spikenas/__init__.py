"""spikenas: fast, memory-aware neural architecture search for spiking neural networks."""

__version__ = "0.1.0"

from spikenas.base.errors import SpikenasError  # noqa: E402
from spikenas.plugin import get_plugin_manager, get_registries, hookimpl  # noqa: E402
from spikenas.plugin.manager import set_builtin_plugins  # noqa: E402
from spikenas.space.genotype import CellGenotype, Edge, Genotype  # noqa: E402

__all__ = ["CellGenotype", "Edge", "Genotype", "SpikenasError", "__version__", "get_plugin_manager", "get_registries", "hookimpl"]

BUILTIN_PLUGINS = (
    "spikenas.ops.builtin", "spikenas.cost.memory", "spikenas.cost.speck", "spikenas.score.sahd", "spikenas.score.hamming", "spikenas.cost.size",
    "spikenas.score.synflow", "spikenas.score.naswot",
    "spikenas.search.consecutive", "spikenas.search.random_search", "spikenas.search.evolution",
)
"""The modules that are spikenas's own plugins, in the order their hooks are called (the order
``spikenas plugins`` lists their items). The plugin package names nothing above it: the
application hands it this list here, where every import of spikenas begins."""

set_builtin_plugins(BUILTIN_PLUGINS)
