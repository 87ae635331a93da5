"""spikenas: fast, memory-aware neural architecture search for spiking neural networks."""

__version__ = "0.1.0"

from spikenas.errors import SpikenasError  # noqa: E402
from spikenas.plugin import get_plugin_manager, get_registries, hookimpl  # noqa: E402
from spikenas.space.genotype import CellGenotype, Edge, Genotype  # noqa: E402

__all__ = ["CellGenotype", "Edge", "Genotype", "SpikenasError", "__version__", "get_plugin_manager", "get_registries", "hookimpl"]
