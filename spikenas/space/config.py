"""What a search may choose: the cell space and the macro knobs a budget may turn."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional

from spikenas.base.errors import SpikenasError
from spikenas.space.genotype import MAX_NODES
from spikenas.space.macro import MacroConfig

MAX_CELLS = 64
"""More cells than any network of this space can hold: each after the first halves the feature map."""

DEFAULT_OPERATIONS = ("zero", "skip", "conv1x1", "conv3x3", "avgpool")


@dataclass
class SearchSpaceConfig:
    """The search space.

    Args:
        operations: operations an edge may carry (names from the operation registry).
        cells: number of cells of the network.
        nodes: nodes per cell (node 0 = input, last = output).
        backward: allow backward (temporal) edges.
        direct_edge: require a connecting input-to-output edge in every cell (SNASNet).
        channels: widths ``C`` the search may choose from (None: only the model's).
        head_hidden: hidden sizes of the classifier it may choose from (None: the model's).
        head_pool: pooling factors before the classifier it may choose from (None: the model's).
        cell_counts: numbers of cells a search that chooses by trials (``choose: trials``) may
            take (None: ``cells``).
        timesteps: time steps ``T`` it may take (None: the model's). They change no byte of a
            weights-only budget, only time and spikes: under a memory budget alone more steps
            rarely lose, so list several where a SynOps limit or latency makes them a choice.
        weight_bits: weight precisions (bits per weight; 32 = float, no quantisation) it may
            take (None: the cost model's). The chosen network trains at its precision.
    """

    operations: list[str] = field(default_factory=lambda: list(DEFAULT_OPERATIONS))
    cells: int = 2
    nodes: int = 4
    backward: bool = False
    direct_edge: bool = True
    channels: Optional[list[int]] = None
    head_hidden: Optional[list[int]] = None
    head_pool: Optional[list[int]] = None
    cell_counts: Optional[list[int]] = None
    timesteps: Optional[list[int]] = None
    weight_bits: Optional[list[int]] = None

    def check(self) -> "SearchSpaceConfig":
        """``self`` if every setting is valid (a one-line error otherwise). Called by the search
        and the analysis rather than on construction, where the CLI's parser would wrap the
        error in a traceback."""
        if self.cells < 1:
            raise SpikenasError(f"space.cells must be >= 1, got {self.cells}")
        if self.cells > MAX_CELLS:
            raise SpikenasError(f"space.cells must be at most {MAX_CELLS} (each cell after the first halves the "
                                f"feature map), got {self.cells}")
        if not 2 <= self.nodes <= MAX_NODES:
            raise SpikenasError(f"space.nodes must be 2..{MAX_NODES}, got {self.nodes}")
        for name in ("channels", "head_hidden", "head_pool"):
            values = getattr(self, name)
            if values is not None and (not values or min(values) < (0 if name == "head_hidden" else 1)):
                raise SpikenasError(f"space.{name} must be a non-empty list of sizes, got {values}")
        for name, low, high in (("cell_counts", 1, MAX_CELLS), ("timesteps", 1, 10_000), ("weight_bits", 2, 32)):
            values = getattr(self, name)
            if values is None:
                continue
            if not isinstance(values, (list, tuple)) or not values or any(
                    isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high for v in values):
                raise SpikenasError(f"space.{name} must be a non-empty list of integers in {low}..{high}, got {values}")
        if self.weight_bits is not None and any(16 < b < 32 for b in self.weight_bits):
            raise SpikenasError(f"space.weight_bits takes 2..16 (quantised) or 32 (float), got {self.weight_bits}")
        return self

    def free_dimensions(self) -> list[str]:
        """The macro dimensions listed with more than one option: what only ``choose: trials``
        can choose (``choose: rule`` fixes precision, cell count and time steps)."""
        return [name for name in ("cell_counts", "timesteps", "weight_bits") if len(set(getattr(self, name) or ())) > 1]


def macro_options(base: MacroConfig, space: SearchSpaceConfig) -> list[MacroConfig]:
    """Every macro the knobs of ``space`` allow around ``base``, largest first (width, then
    hidden size, then less pooling): those a search may choose from."""
    channels = sorted(set(space.channels or [base.channels]), reverse=True)
    hidden = sorted(set(space.head_hidden or [base.head_hidden]), reverse=True)
    pools = sorted(set(space.head_pool or [base.head_pool]))
    return [base.replace(channels=c, head_hidden=h, head_pool=p) for c, h, p in itertools.product(channels, hidden, pools)]
