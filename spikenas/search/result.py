"""The outcome of a search."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spikenas.cost import MemoryReport
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig


@dataclass(frozen=True)
class SearchResult:
    """The chosen architecture and how it was found.

    ``score`` is the whole network's score; ``bytes`` its cost model ``total_bytes``
    (never above ``budget``); ``synops`` its SynOps per inference at initialisation when the
    search had a SynOps limit (never above ``synops_limit``); ``candidates`` the number of
    candidates scored; ``seconds`` the wall time of the strategy plus the final scoring.
    """

    genotype: Genotype
    macro: MacroConfig
    strategy: str
    score_name: str
    score: float
    bytes: int
    budget: int | None
    candidates: int
    seconds: float
    report: MemoryReport
    run_dir: Path | None = None
    synops: float | None = None
    synops_limit: float | None = None
    weight_bits: int | None = None
    cost_options: dict | None = None

    def summary(self) -> str:
        budget = "none" if self.budget is None else f"{self.budget}"
        line = (
            f"strategy={self.strategy} candidates={self.candidates} seconds={self.seconds:.2f} "
            f"score={self.score:.6g} bytes={self.bytes} budget={budget}"
        )
        if self.synops_limit is not None:
            line += f" synops={self.synops:.0f} synops_limit={self.synops_limit:.0f}"
        return line
