"""The limits a search must meet: bytes under its cost model and, optionally, SynOps.

``budget`` is one size (``256KiB``: bytes under the run's ``cost_model``) or a mapping of named
limits, ``{memory: 256KiB, synops: 2e6}``:

- the cost model's name (``memory`` for the built-in one, a plugin's name otherwise): bytes,
  counted from the genotype before a candidate is scored;
- ``synops``: synaptic operations of one inference (spikes x fan-out, summed over the ``T``
  timesteps, mean over the scoring images; :mod:`spikenas.cost.synops`), measured at
  initialisation in the same pass that scores a candidate.

A network meets the limits when its bytes and its SynOps are at most their limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from spikenas.base.errors import SpikenasError
from spikenas.base.units import parse_bytes, parse_count

SYNOPS = "synops"


@dataclass(frozen=True)
class Limits:
    """``bytes``: the cost model's ``total_bytes`` limit; ``synops``: SynOps per inference
    (None = no limit)."""

    bytes: int | None = None
    synops: float | None = None


def parse_limits(budget: Any, cost_model: str = "memory") -> Limits:
    """:class:`Limits` from a ``budget`` setting; an unknown limit name or a bad value is a
    one-line error naming it."""
    if not isinstance(budget, Mapping):
        return Limits(bytes=parse_bytes(budget))
    if not budget:
        raise SpikenasError(f"budget is an empty mapping; give limits like {{{cost_model}: 256KiB, synops: 2e6}}")
    bytes_limit, synops_limit = None, None
    for name, value in budget.items():
        if name == cost_model:
            bytes_limit = parse_bytes(value, f"budget limit {name!r}")
        elif name == SYNOPS:
            synops_limit = None if value is None else parse_count(value, "budget limit 'synops'")
        else:
            raise SpikenasError(
                f"budget limit {name!r} is unknown: give {cost_model!r} (bytes under the cost model {cost_model!r}) "
                f"and/or 'synops' (synaptic operations per inference)"
            )
    return Limits(bytes_limit, synops_limit)
