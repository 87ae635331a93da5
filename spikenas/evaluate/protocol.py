"""What the scoring engine hands a search: an :class:`Assessment` per candidate, and a
:class:`CellScorer` for the candidates of one cell position."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from spikenas.space.genotype import CellGenotype


class Assessment(NamedTuple):
    """A candidate scored on the whole network: its ``score`` and, when measured, its SynOps
    per inference (``synops``; None when not measured)."""

    score: float
    synops: float | None = None


class CellScorer(Protocol):
    """Scores candidate cells at position ``index`` after the fixed cells ``prefix``; the
    network's later cells are at their cheapest. ``is_last``: the last cell position."""

    prefix: tuple[CellGenotype, ...]
    index: int
    is_last: bool

    def score_many(self, cells: list[CellGenotype], whole: bool = True) -> list[float]:
        """Each candidate's score: on the whole network (``whole``), or on the network up to
        the first LIF layer after the cell (cheaper; the same for the last cell). A scorer
        whose local and whole scores coincide ignores ``whole``."""
        ...

    def assess_many(self, cells: list[CellGenotype]) -> list[Assessment]:
        """Each candidate's whole-network score and, where SynOps are counted, its SynOps."""
        ...

    def following(self, cell: CellGenotype) -> "CellScorer":
        """The scorer of the next position, with ``cell`` chosen at this one."""
        ...
