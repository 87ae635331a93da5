"""Genotypes: what a searched architecture is, as an immutable value that round-trips to YAML.

A genotype holds one :class:`CellGenotype` per cell (cells may differ). A cell has ``nodes``
nodes (node 0 is the cell input, node ``nodes-1`` its output) and a set of edges, at most one
per node pair. An edge ``src -> dst`` with ``src < dst`` is *forward* (same timestep); with
``src > dst`` it is *backward*: its operation runs on node ``src``'s value at step ``t`` and
delivers the result to node ``dst`` at step ``t + 1``. A backward edge into node 0 adds to the cell's input before every forward edge
that leaves it (SNASNet's ``Neuronal_Cell_backward``). YAML form::

    cells:
      - nodes: 4
        edges:              # [operation, src, dst]
          - [conv3x3, 0, 1]
          - [skip, 0, 3]
          - [conv1x1, 3, 1] # backward: conv1x1(node 3 at t-1) feeds node 1 at t

A cell may also be written as SNASNet's connection matrix, ``{cnt_mat: "0303 0030 2002 0200"}``
(or a list of rows): ``nodes`` rows of ``nodes`` digits, row = source, column = destination,
above the diagonal forward edges, below it backward ones; 0 zero, 1 skip, 2 conv1x1,
3 conv3x3, 4 avgpool (:data:`SNASNET_OPERATIONS`). :meth:`CellGenotype.to_cnt_mat` converts
back.

Structural checks live here; checks that need the operation registry (unknown operation, no
path from input to output) live in :mod:`spikenas.space.cell`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from spikenas.base.errors import SpikenasError


SNASNET_OPERATIONS = ("zero", "skip", "conv1x1", "conv3x3", "avgpool")  # cnt_mat digit -> operation


class GenotypeError(SpikenasError):
    """A malformed or invalid genotype; the message names the cell and edge."""


@dataclass(frozen=True, order=True)
class Edge:
    """One connection ``src -> dst`` carrying operation ``op``."""

    src: int
    dst: int
    op: str

    @property
    def backward(self) -> bool:
        """True when the edge delivers the previous timestep (``src > dst``)."""
        return self.src > self.dst

    @property
    def pair(self) -> tuple[int, int]:
        return (min(self.src, self.dst), max(self.src, self.dst))

    def __str__(self) -> str:
        return f"{self.src}>{self.dst}:{self.op}"


MAX_NODES = 64  # SNASNet's cells have 4; more than 64 is a typo (and quadratic in edges)


@dataclass(frozen=True)
class CellGenotype:
    """The edges of one cell, kept in canonical order (by node pair)."""

    nodes: int
    edges: tuple[Edge, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, int) or isinstance(self.nodes, bool):
            raise GenotypeError(f"a cell's nodes must be a whole number, got {self.nodes!r}")
        if not 2 <= self.nodes <= MAX_NODES:
            raise GenotypeError(f"a cell has 2..{MAX_NODES} nodes, got {self.nodes!r}")
        edges = tuple(sorted(self.edges, key=lambda e: (e.pair[1], e.pair[0])))
        object.__setattr__(self, "edges", edges)
        seen: set[tuple[int, int]] = set()
        for edge in edges:
            for node in (edge.src, edge.dst):
                if not 0 <= node < self.nodes:
                    raise GenotypeError(
                        f"edge {edge}: node {node} out of range 0..{self.nodes - 1}"
                    )
            if edge.src == edge.dst:
                raise GenotypeError(f"edge {edge}: an edge cannot connect node {edge.src} to itself")
            if edge.pair in seen:
                raise GenotypeError(f"edge {edge}: node pair {edge.pair} has more than one edge")
            seen.add(edge.pair)

    @classmethod
    def from_ops(cls, nodes: int, ops: Iterable[tuple[str, int, int]]) -> "CellGenotype":
        return cls(nodes, tuple(Edge(int(s), int(d), str(op)) for op, s, d in ops))

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "edges": [[e.op, e.src, e.dst] for e in self.edges]}

    @classmethod
    def from_cnt_mat(cls, matrix: Any) -> "CellGenotype":
        """A cell from SNASNet's connection matrix (``"0303 0030 2002 0200"`` or its rows)."""
        rows = matrix.split() if isinstance(matrix, str) else matrix
        n = len(rows) if isinstance(rows, (list, tuple)) else 0
        if n and not all(isinstance(r, str) for r in rows):
            raise GenotypeError(
                f"cnt_mat rows {_short(matrix)} must be strings: quote them ('0303'), or YAML reads 0303 as a number"
            )
        if n < 2 or not all(len(r) == n and r.isascii() and r.isdigit() for r in rows):  # isdigit alone takes '²'
            raise GenotypeError(f"malformed cnt_mat {_short(matrix)}: expected {n or 'N'} rows of as many digits")
        digits = [[int(c) for c in r] for r in rows]
        edges = []
        for i, j in ((i, j) for j in range(1, n) for i in range(j)):
            forward, backward = digits[i][j], digits[j][i]
            for value in (forward, backward):
                if value >= len(SNASNET_OPERATIONS):
                    raise GenotypeError(f"cnt_mat digit {value} at pair ({i}, {j}): digits are 0-4 ({', '.join(SNASNET_OPERATIONS)})")
            if forward and backward:
                raise GenotypeError(
                    f"cnt_mat pair ({i}, {j}) has a forward and a backward edge; spikenas allows one edge per node pair"
                )
            edges.append(Edge(j, i, SNASNET_OPERATIONS[backward]) if backward else Edge(i, j, SNASNET_OPERATIONS[forward]))
        if any(digits[i][i] for i in range(n)):
            raise GenotypeError(f"cnt_mat {_short(matrix)}: its diagonal must be 0 (no edge from a node to itself)")
        return cls(n, tuple(edges))

    def to_cnt_mat(self) -> str:
        """SNASNet's connection matrix, rows separated by spaces; a one-line error for an
        operation SNASNet does not have."""
        digits = [[0] * self.nodes for _ in range(self.nodes)]
        for e in self.edges:
            if e.op not in SNASNET_OPERATIONS:
                raise GenotypeError(f"edge {e}: {e.op!r} has no cnt_mat digit (only {', '.join(SNASNET_OPERATIONS)})")
            digits[e.src][e.dst] = SNASNET_OPERATIONS.index(e.op)
        return " ".join("".join(map(str, row)) for row in digits)

    def replace_edge(self, edge: Edge) -> "CellGenotype":
        """A copy with the edge on ``edge``'s node pair replaced (or added)."""
        kept = tuple(e for e in self.edges if e.pair != edge.pair)
        return CellGenotype(self.nodes, kept + (edge,))

    def __str__(self) -> str:
        return " ".join(str(e) for e in self.edges)


@dataclass(frozen=True)
class Genotype:
    """A whole architecture: one cell genotype per cell, in network order."""

    cells: tuple[CellGenotype, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))
        if not self.cells:
            raise GenotypeError("a genotype needs at least one cell")

    # -- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"cells": [cell.to_dict() for cell in self.cells]}

    @classmethod
    def from_dict(cls, data: Any) -> "Genotype":
        """Parse ``{"cells": [{"nodes": N, "edges": [[op, src, dst], ...]}, ...]}``; a cell may be
        ``{"cnt_mat": "0303 0030 2002 0200"}`` instead."""
        if isinstance(data, Genotype):
            return data
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise GenotypeError(f"malformed genotype: expected a mapping with a 'cells' list, got {_short(data)}")
        cells = []
        for index, cell in enumerate(data["cells"]):
            unknown = sorted(set(cell) - {"nodes", "edges", "cnt_mat"}, key=str) if isinstance(cell, dict) else []
            if unknown:
                raise GenotypeError(f"malformed genotype: cell {index} has unknown key {unknown[0]!r} (known: nodes, edges, cnt_mat)")
            if isinstance(cell, dict) and "cnt_mat" in cell:
                if "edges" in cell:
                    raise GenotypeError(f"malformed genotype: cell {index} has both 'cnt_mat' and 'edges': give one")
                try:
                    parsed = CellGenotype.from_cnt_mat(cell["cnt_mat"])
                except GenotypeError as exc:
                    raise GenotypeError(f"cell {index}: {exc}") from None
                if "nodes" in cell and cell["nodes"] != parsed.nodes:
                    raise GenotypeError(f"malformed genotype: cell {index} says nodes: {cell['nodes']!r} but its cnt_mat "
                                        f"has {parsed.nodes} rows")
                cells.append(parsed)
                continue
            if not isinstance(cell, dict) or not isinstance(cell.get("edges"), list):
                raise GenotypeError(f"malformed genotype: cell {index} needs 'edges' as a list (or a 'cnt_mat'), got {_short(cell)}")
            nodes = cell.get("nodes", 4)
            if not isinstance(nodes, int) or isinstance(nodes, bool):
                raise GenotypeError(f"malformed genotype: cell {index} nodes must be a whole number, got {nodes!r}")
            edges = []
            for raw in cell["edges"]:
                ok = (
                    isinstance(raw, (list, tuple))
                    and len(raw) == 3
                    and isinstance(raw[0], str)
                    and all(isinstance(n, int) and not isinstance(n, bool) for n in raw[1:])
                )
                if not ok:
                    raise GenotypeError(
                        f"malformed genotype: cell {index} edge {_short(raw)} is not [operation, src, dst]"
                    )
                edges.append(Edge(raw[1], raw[2], raw[0]))
            try:
                cells.append(CellGenotype(nodes, tuple(edges)))
            except GenotypeError as exc:
                raise GenotypeError(f"cell {index}: {exc}") from None
        return cls(tuple(cells))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), default_flow_style=None, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "Genotype":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise GenotypeError(f"malformed genotype YAML{where}: {what}") from None
        if isinstance(data, dict) and "genotype" in data and "cells" not in data:
            data = data["genotype"]
        return cls.from_dict(data)

    # -- identity ----------------------------------------------------------------------------
    @functools.cached_property
    def hash(self) -> str:
        """A stable 12-hex-digit identity (same on every machine and Python version)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def replace_cell(self, index: int, cell: CellGenotype) -> "Genotype":
        cells = list(self.cells)
        cells[index] = cell
        return Genotype(tuple(cells))

    def __str__(self) -> str:
        return " | ".join(str(cell) for cell in self.cells)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
