"""A whole-budget candidate: the cells a search found at one macro, precision, cell count and time steps.

``spikenas search --choose trials`` proposes one :class:`Candidate` per macro it searched, keeps a
few (:mod:`spikenas.search.joint`) and lets short trainings choose among them
(:mod:`spikenas.search.trials`). A candidate is plain data that round-trips through JSON, so
the resume state and the Optuna study can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spikenas.base.errors import SpikenasError
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig


@dataclass(frozen=True)
class Candidate:
    """One network of the joint space, costed and scored.

    Attributes:
        macro: its macro (width, head, time steps); ``len(genotype.cells)`` cells.
        genotype: its cells.
        weight_bits: bits per weight it is costed and trained at (32: float).
        bytes: its ``total_bytes`` under the cost model at ``weight_bits``.
        params: its trainable parameters.
        score: the training-free score of the whole network at its macro (comparable only
            within one macro).
        headroom: the share of the budget its macro left to the cells.
    """

    macro: MacroConfig
    genotype: Genotype
    weight_bits: int
    bytes: int
    params: int
    score: float
    headroom: float

    @property
    def cells(self) -> int:
        return len(self.genotype.cells)

    @property
    def group(self) -> tuple[int, int, int]:
        """``(weight_bits, cells, timesteps)``: candidates of one group differ only in width and cells."""
        return self.weight_bits, self.cells, self.macro.timesteps

    @property
    def key(self) -> str:
        """A stable name, the same in every process: precision, cells, time steps, macro, genotype hash."""
        m = self.macro
        return (f"{self.weight_bits}bit-{self.cells}cell-T{m.timesteps}-C{m.channels}-h{m.head_hidden}-"
                f"p{m.head_pool}-{self.genotype.hash}")

    def describe(self) -> str:
        m = self.macro
        return (f"{self.weight_bits}-bit, {self.cells} cell{'s' if self.cells > 1 else ''}, T={m.timesteps}, "
                f"channels={m.channels} head_hidden={m.head_hidden} head_pool={m.head_pool}: {self.bytes:,} B, "
                f"{self.params:,} parameters")

    def to_dict(self) -> dict[str, Any]:
        return {"macro": self.macro.to_dict(), "genotype": self.genotype.to_dict(), "weight_bits": self.weight_bits,
                "bytes": self.bytes, "params": self.params, "score": self.score, "headroom": self.headroom}

    @classmethod
    def from_dict(cls, data: Any) -> "Candidate":
        """The candidate ``to_dict`` wrote; a one-line error for anything else."""
        try:
            return cls(MacroConfig(**data["macro"]), Genotype.from_dict(data["genotype"]), int(data["weight_bits"]),
                       int(data["bytes"]), int(data["params"]), float(data["score"]), float(data["headroom"]))
        except (KeyError, TypeError, ValueError, SpikenasError) as exc:
            raise SpikenasError(f"not a search candidate: {type(exc).__name__}: {str(exc)[:200]}") from None
