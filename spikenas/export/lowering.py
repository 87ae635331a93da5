"""Passes that rewrite an exported :class:`~spikenas.export.graph.Graph` in place, exactly.

:func:`lower` runs them for one target: identity junctions are removed wherever the edges
they sum can go straight into their readers (NIR sums a node's incoming edges), batch norms
before neurons are folded into the convolutions that feed them, and the nodes are put in the
order the target's reader executes them in:

- ``topological`` (``nir``): every edge but a ``Delay``'s output goes forward;
- every order: a backward edge written as a cycle (the toolchains) goes back, from its source
  to a cell node placed before it, and nirtorch's executors deliver it one step later;
- ``names`` (snnTorch): the same order written into each name (``n007_cell0_node1``), because
  ``nir.read`` returns nodes alphabetically and nirtorch runs them in that order;
- ``spine`` (norse and sinabs, nirtorch's ``GraphExecutor``): the executor runs the nodes in
  depth-first pre-order along each node's outgoing edges, as listed. The nodes are laid out in a
  depth-first topological order, each node's first edge goes to the next one (through a zero
  bridge where they have no edge), so the execution order is that order: every sum runs after
  all its inputs and the ``Output`` node runs last, so its value is what the module returns.
"""

from __future__ import annotations

import nir

from spikenas.export.graph import ExportError, Graph, Shape, array, lif
from spikenas.export.targets import Target


def lower(g: Graph, batch_norms: list[str], target: Target, dt: float, fed_back: list[tuple[str, str]] = ()) -> None:
    """Rewrite ``g`` for ``target`` (see the module docstring): ``batch_norms`` are the 1x1
    convolutions that hold a batch norm before neurons, ``dt`` the seconds per step it was built
    with, ``fed_back`` the ``(source, node)`` edges the reader delays one step (backward edges
    written as cycles): each node is put before its source, so the executor runs it first."""
    remove_junctions(g)
    fold_batch_norms(g, batch_norms)
    late = list(fed_back) + [(a, b) for a, b in g.edges if isinstance(g.nodes[a], nir.Delay)]
    before = [(node, source) for source, node in fed_back]
    if target.order == "spine":
        spine(g, target, dt, late, before)
    else:
        _reorder(g, g.topological(ignore=late, before=before), rename=target.order == "names")


def remove_junctions(g: Graph) -> None:
    """Bypass every junction whose inputs can feed its readers directly: no input repeated, no
    reader already fed by one of them (an edge twice would be read as one), no ``Output`` reader."""
    changed = True
    while changed:
        changed = False
        for j in sorted(g.junctions):
            sources, readers = g.inputs(j), g.outputs(j)
            if not sources or not readers or len(set(sources)) != len(sources):
                continue
            if any(isinstance(g.nodes[r], nir.Output) or set(sources) & set(g.inputs(r)) for r in readers):
                continue
            g.bypass(j)
            changed = True


def fold_batch_norms(g: Graph, batch_norms: list[str]) -> None:
    """Fold each batch-norm 1x1 convolution (``diag(scale)``, bias ``shift``) into the
    convolutions and linear layers that feed it when they feed nothing else: their output
    channels are scaled (through a sum pool, channel by channel, to the convolution before it)
    and the shift goes into one bias. Otherwise the 1x1 convolution stays."""
    for bn in batch_norms:
        sources = g.inputs(bn)
        scaled, direct = [], []
        for p in sources:
            node = g.nodes[p]
            if g.outputs(p) != [bn]:
                break
            if isinstance(node, (nir.Conv2d, nir.Affine)):
                scaled.append(p)
                direct.append(p)
                continue
            before = g.inputs(p)
            if (isinstance(node, nir.SumPool2d) and len(before) == 1 and isinstance(g.nodes[before[0]], nir.Conv2d)
                    and g.outputs(before[0]) == [p]):
                scaled.append(before[0])
                continue
            break
        else:
            if not direct:
                continue
            weight = g.nodes[bn].weight
            scale = weight[range(weight.shape[0]), range(weight.shape[0]), 0, 0]
            for p in scaled:
                node = g.nodes[p]
                node.weight = array(node.weight * scale.reshape((-1,) + (1,) * (node.weight.ndim - 1)))
                node.bias = array(node.bias * scale)
            g.nodes[direct[0]].bias = array(g.nodes[direct[0]].bias + g.nodes[bn].bias)
            g.bypass(bn)


def _reorder(g: Graph, order: list[str], rename: bool = False) -> None:
    """Nodes in ``order`` (edges grouped by source in that order); ``rename``: each name
    prefixed with its index (``n007_``)."""
    width = len(str(len(order)))
    name = {n: (f"n{i:0{width}d}_{n}" if rename else n) for i, n in enumerate(order)}
    position = {n: i for i, n in enumerate(order)}
    g.nodes = {name[n]: g.nodes[n] for n in order}
    g.shapes = {name[n]: g.shapes[n] for n in order}
    g.edges = [(name[a], name[b]) for a, b in sorted(g.edges, key=lambda e: position[e[0]])]


def zero_bridge(g: Graph, name: str, shape: Shape, source: str, target: Target, dt: float) -> str:
    """A LIF that never fires: exact zeros of ``shape`` (joins a spine where no edge does)."""
    tau, _ = target.lif_parameters(1.0, 1.0, dt, shape)
    return g.add(name, lif(tau, array(1e30, tau.shape)), shape, source)


def spine(g: Graph, target: Target, dt: float, late: list[tuple[str, str]] = (),
          before: list[tuple[str, str]] = ()) -> None:
    """Lay the graph out as one executed chain (see the module docstring), the edges in ``late``
    going back along it and each pair in ``before`` in that order; zero bridges are LIFs of
    ``target`` at ``dt``."""
    order = g.topological(ignore=late, depth_first=True, before=before)
    laid_out, first_edge = [], {}
    for k, (a, b) in enumerate(zip(order, order[1:])):
        laid_out.append(a)
        if (a, b) in g.edges:
            first_edge[a] = (a, b)
            continue
        wanted = g.shapes[g.inputs(b)[0]] if g.inputs(b) else g.shapes[a]
        if g.shapes[a] != wanted:
            raise ExportError(f"cannot chain {a} {g.shapes[a]} to {b} {wanted} for nirtorch's executor")
        bridge = zero_bridge(g, f"bridge{k}", g.shapes[a], a, target, dt)
        g.connect(bridge, b)
        laid_out.append(bridge)
        first_edge[a], first_edge[bridge] = (a, bridge), (bridge, b)
    laid_out.append(order[-1])
    edges = []
    for n in laid_out:
        if n in first_edge:
            edges.append(first_edge[n])
        edges.extend(e for e in g.edges if e[0] == n and e != first_edge.get(n))
    g.nodes = {n: g.nodes[n] for n in laid_out}
    g.shapes = {n: g.shapes[n] for n in laid_out}
    g.edges = edges
