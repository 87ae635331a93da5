"""A NIR graph under construction, and NIR nodes and files that every nir release from 1.0.4 reads.

:class:`Graph` holds named ``nir`` nodes, the edges between them (a node sums all its
incoming edges, as NIR says) and each node's output shape (channels first, no batch or time),
so the lowering passes (:mod:`spikenas.export.lowering`) can rewrite it in place.

Portability (sinabs pins ``nir<=1.0.4``, whose ``LIF`` has no ``v_reset``): :func:`lif` leaves
``v_reset`` out of the node when this nir has no such field, and :func:`write` removes the
all-zero ``v_reset`` datasets that nir >= 1.0.5 always writes, so every reader from 1.0.4 on
opens the file (1.0.5+ read a missing ``v_reset`` as zeros). A reset potential other than 0
needs nir >= 1.0.5 on both sides and is written as it is.
"""

from __future__ import annotations

import dataclasses
import io
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import h5py
import nir
import numpy as np

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write

Shape = tuple[int, ...]


class ExportError(SpikenasError):
    """A part of the network that the chosen export target cannot express."""


def array(value, shape: Shape | None = None) -> np.ndarray:
    """``value`` (array-like or number) as a float32 numpy array, broadcast to ``shape``."""
    out = np.asarray(value, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(out, shape) if shape is not None else out).astype(np.float32)


def lif(tau: np.ndarray, v_threshold: np.ndarray, v_reset: float = 0.0) -> nir.LIF:
    """``nir.LIF`` with ``r = 1`` and ``v_leak = 0`` (batch norm is never folded into neurons),
    every parameter of ``tau``'s shape; ``v_reset`` only where this nir knows it."""
    shape = tau.shape
    fields = {"tau": tau, "r": array(1.0, shape), "v_leak": array(0.0, shape), "v_threshold": array(v_threshold, shape)}
    check_v_reset(v_reset)
    if NIR_HAS_V_RESET:
        fields["v_reset"] = array(v_reset, shape)
    return nir.LIF(**fields)


def integrate_and_fire(v_threshold: np.ndarray) -> nir.IF:
    """``nir.IF`` with ``r = 1``, every parameter of ``v_threshold``'s shape (``v_reset`` 0 only
    where this nir knows it: :func:`to_bytes` leaves it out of the file)."""
    shape = v_threshold.shape
    fields = {"r": array(1.0, shape), "v_threshold": array(v_threshold, shape)}
    if NIR_HAS_V_RESET:
        fields["v_reset"] = array(0.0, shape)
    return nir.IF(**fields)


NIR_HAS_V_RESET = "v_reset" in {f.name for f in dataclasses.fields(nir.LIF)}  # nir >= 1.0.5


def check_v_reset(v_reset: float) -> None:
    """A reset potential this nir can write (any, from nir 1.0.5 on; else only 0)."""
    if v_reset != 0.0 and not NIR_HAS_V_RESET:
        raise ExportError(f"nir {nir.version} cannot write a reset potential of {v_reset} (its LIF resets to 0): install nir>=1.0.5")


def conv(weight: np.ndarray, bias: np.ndarray, stride: int | tuple = 1, padding: int | tuple = 0,
         input_shape: tuple[int, int] | None = None) -> nir.Conv2d:
    """A dense ``nir.Conv2d`` (``weight [out, in, k, k]``)."""
    pair = lambda v: (int(v), int(v)) if np.isscalar(v) else tuple(int(x) for x in v)  # noqa: E731
    return nir.Conv2d(input_shape=input_shape, weight=array(weight), stride=pair(stride), padding=pair(padding),
                      dilation=(1, 1), groups=1, bias=array(bias))


def identity(shape: Shape) -> nir.Flatten:
    """A node that passes its (summed) input of ``shape`` on unchanged: ``Flatten`` of the last
    dimension alone, which every consumer maps to a no-op (``Scale`` and ``AvgPool2d`` are not read by all)."""
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=-1, end_dim=-1)


class Graph:
    """Named nodes, edges (sources summed) and output shapes; see the module docstring."""

    def __init__(self) -> None:
        self.nodes: dict[str, nir.NIRNode] = {}
        self.shapes: dict[str, Shape] = {}
        self.edges: list[tuple[str, str]] = []
        self.junctions: set[str] = set()  # identity nodes that only sum (cell nodes), removable

    def add(self, name: str, node: nir.NIRNode, shape: Shape, *sources: str) -> str:
        if name in self.nodes:
            raise ExportError(f"two NIR nodes named {name!r}")
        self.nodes[name] = node
        self.shapes[name] = tuple(int(s) for s in shape)
        self.edges.extend((s, name) for s in sources)
        return name

    def connect(self, source: str, target: str) -> None:
        self.edges.append((source, target))

    def inputs(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def outputs(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def remove(self, name: str) -> None:
        """Drop ``name`` and every edge touching it."""
        del self.nodes[name], self.shapes[name]
        self.junctions.discard(name)
        self.edges = [(a, b) for a, b in self.edges if name not in (a, b)]

    def bypass(self, name: str) -> None:
        """Remove the pass-through node ``name``, connecting each of its sources to each of its targets."""
        sources, targets = self.inputs(name), self.outputs(name)
        self.remove(name)
        self.edges.extend((s, t) for t in targets for s in sources)

    def reaches(self, source: str, target: str) -> bool:
        """Whether a path of edges (any direction in time) leads from ``source`` to ``target``."""
        seen, frontier = {source}, [source]
        while frontier:
            for b in self.outputs(frontier.pop()):
                if b == target:
                    return True
                if b not in seen:
                    seen.add(b)
                    frontier.append(b)
        return False

    def of_type(self, kind: type | tuple[type, ...]) -> list[str]:
        return [name for name, node in self.nodes.items() if isinstance(node, kind)]

    def topological(self, ignore: Iterable[tuple[str, str]] = (), depth_first: bool = False,
                    before: Iterable[tuple[str, str]] = ()) -> list[str]:
        """The node names in an order where every edge not in ``ignore`` goes forward, and the
        first node of each pair in ``before`` comes before the second (Kahn's algorithm); a
        cycle is an :class:`ExportError`. Among the ready nodes it takes the one added first
        (insertion order), or with ``depth_first`` the one made ready last (a child of the last
        node whenever one is ready: the fewest bridges in a spine), first among those that lead
        to no ``Output`` but through ``ignore`` (they feed the next step: run as soon as they
        can, beside what they read), ``Output`` nodes only when nothing else is ready."""
        ignored = set(ignore)
        indegree = {name: 0 for name in self.nodes}
        successors = defaultdict(list)
        for a, b in [*self.edges, *before]:
            if (a, b) not in ignored:
                indegree[b] += 1
                successors[a].append(b)
        to_output = self._leading_to(self.of_type(nir.Output), ignored) if depth_first else set()
        ready = [name for name in self.nodes if indegree[name] == 0]
        order = []
        while ready:
            if depth_first:
                name = ([n for n in ready if n not in to_output] or
                        [n for n in ready if not isinstance(self.nodes[n], nir.Output)] or ready)[-1]
                ready.remove(name)
                children = reversed(successors[name])
            else:
                name = ready.pop(0)
                children = successors[name]
            order.append(name)
            for b in children:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
        if len(order) != len(self.nodes):
            raise ExportError("the NIR graph has a cycle without a delay")
        return order

    def _leading_to(self, targets: list[str], ignored: set[tuple[str, str]]) -> set[str]:
        """The nodes with a path of edges not in ``ignored`` to one of ``targets`` (them included)."""
        found, frontier = set(targets), list(targets)
        while frontier:
            b = frontier.pop()
            for a in self.inputs(b):
                if a not in found and (a, b) not in ignored:
                    found.add(a)
                    frontier.append(a)
        return found

    def to_nir(self, metadata: dict, type_check: bool = True) -> nir.NIRGraph:
        """The ``nir.NIRGraph`` (``type_check=False``: for a consumer whose parameter shapes
        nir's type inference does not follow, where this nir can check types at all)."""
        duplicates = {e for e in self.edges if self.edges.count(e) > 1}
        if duplicates:
            raise ExportError(f"duplicate NIR edge {sorted(duplicates)[0]}")  # a bug in a lowering pass, never silent
        graph = dict(nodes=dict(self.nodes), edges=list(self.edges), metadata=metadata)
        try:
            return nir.NIRGraph(**graph, type_check=type_check)
        except TypeError:  # nir <= 1.0.4 has no type checking
            return nir.NIRGraph(**graph)


def to_bytes(graph: nir.NIRGraph) -> bytes:
    """The HDF5 file of ``graph`` (``nir.write``) with the all-zero ``v_reset`` datasets
    removed (see the module docstring), built in memory: HDF5 writing straight to a full disk
    can crash the process, a failed ``write`` of these bytes cannot."""
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    with h5py.File(buffer, "r+") as handle:
        def strip(group: h5py.Group) -> None:
            for key in list(group.keys()):
                item = group[key]
                if isinstance(item, h5py.Group):
                    strip(item)
                elif key == "v_reset" and not np.any(item[()]):
                    del group[key]

        strip(handle["node"])
    return buffer.getvalue()


def write(path: Path, graph: nir.NIRGraph) -> None:
    """:func:`to_bytes` into ``path`` atomically (the old file, if any, stays until the new one is whole)."""
    atomic_write(path, to_bytes(graph))
