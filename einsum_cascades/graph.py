"""The dependency graph of a cascade, its checks, and the order the executor follows.

Nodes are the input tensors and the Einsums, and an initialization Einsum is
named ``init:TENSOR``.  One edge runs from a producer to a consumer per tensor
access.
An edge is *loop-carried* when the consumer reads an earlier iterate of the
iterative rank than the producer writes (``RM[m1, p]`` read by the Einsum that
writes ``RM[m1+1, p]``), and *terminal* when it reads the last iterate of a
recurrence at a fixed coordinate (``RNV[f, M1, p]``).  Only loop-carried edges
may close a cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import networkx as nx

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, Cascade, Einsum, SourcePosition
from einsum_cascades.printer import format_access, format_einsum


def node_id(einsum: Einsum) -> str:
    """Graph node of an Einsum: its tensor name, prefixed with ``init:`` for initialization."""
    return f"init:{einsum.name}" if einsum.initialization else einsum.name


def _shifted_writes(einsum: Einsum) -> list[tuple[int, str, int]]:
    """Output positions written at ``u + c`` with ``c != 0``, as (position, variable, c)."""
    found = []
    for position, index in enumerate(einsum.output.indices):
        variable = index.expr.variables[0] if index.expr.variables else None
        offset = index.expr.offset_from(variable) if variable is not None else None
        if offset:
            found.append((position, variable, offset))
    return found


def recurrence_positions(cascade: Cascade) -> dict[str, int]:
    """Map each recurrence tensor to the index position of its iterative rank.

    A recurrence tensor is one that an Einsum of the cascade proper writes at
    the next iterate, as ``RM[m1+1, p]``.  It stores iterates 0 to N of the
    iterative rank, one more than the rank's size N.
    """
    if cascade.iteration is None:
        return {}
    variable = cascade.iteration.variable
    found = {}
    for einsum in cascade.einsums:
        for position, shifted, _ in _shifted_writes(einsum):
            if shifted == variable:
                found[einsum.name] = position
    return found


@dataclass(frozen=True)
class _Read:
    carried: frozenset[str]
    ahead: bool
    terminal: bool


def _classify(producer: Einsum, access: Access, iterative: str | None, recurrence: bool) -> _Read:
    carried: set[str] = set()
    ahead = terminal = False
    for position, index in enumerate(producer.output.indices):
        if position >= len(access.indices):
            break
        variable = index.expr.variables[0] if index.expr.variables else None
        write = index.expr.offset_from(variable) if variable is not None else None
        if write is None:
            continue
        read_expr = access.indices[position].expr
        read = read_expr.offset_from(variable)
        if read is None:
            if variable == iterative and recurrence and variable not in read_expr.variables:
                terminal = True
            continue
        if read < write:
            carried.add(variable)
        elif read > write and variable == iterative:
            ahead = True
    return _Read(frozenset(carried), ahead, terminal)


def dependency_graph(cascade: Cascade) -> nx.MultiDiGraph:
    """Build the dependency graph of ``cascade``.

    Returns
    -------
    networkx.MultiDiGraph
        Node attributes: ``kind`` (``input`` or ``einsum``), ``tensor``,
        ``initialization`` and ``label`` (the Einsum as text).  Edge
        attributes: ``tensor``, ``access`` (as written), ``loop_carried``,
        ``carried`` (rank variables along which the read is of an earlier
        coordinate than the write), ``terminal`` and ``ahead`` (reads a later
        iterate than the producer writes).

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> graph = dependency_graph(load_library_cascade("attention-1pass"))
    >>> sorted(graph.predecessors("PRM"))
    ['RM', 'init:RM']
    >>> sorted(d["access"] for _, _, d in graph.in_edges("PRM", data=True) if d["loop_carried"])
    ['RM[m1, p]']
    """
    graph = nx.MultiDiGraph(name=cascade.name)
    iterative = cascade.iteration.variable if cascade.iteration is not None else None
    recurrences = recurrence_positions(cascade)
    for name in cascade.inputs:
        graph.add_node(name, kind="input", tensor=name, initialization=False, label=name)
    writers: dict[str, list[Einsum]] = {}
    for einsum in cascade.all_einsums:
        graph.add_node(
            node_id(einsum), kind="einsum", tensor=einsum.name, initialization=einsum.initialization,
            label=format_einsum(einsum),
        )
        writers.setdefault(einsum.name, []).append(einsum)
    for einsum in cascade.all_einsums:
        for access in einsum.accesses:
            if access.tensor in cascade.inputs:
                graph.add_edge(access.tensor, node_id(einsum), tensor=access.tensor, access=format_access(access),
                               loop_carried=False, carried=[], terminal=False, ahead=False)
                continue
            for producer in writers.get(access.tensor, []):
                recurrence = access.tensor in recurrences and not producer.initialization
                read = _classify(producer, access, iterative, recurrence)
                if read.ahead and producer.initialization:
                    continue  # the initialization writes iterate 0 only, and this access reads a later one
                if read.ahead and recurrence:
                    raise CascadeError(
                        f"{format_access(access)} reads an iterate of {access.tensor} that {producer.name}'s Einsum "
                        f"has not written yet; a recurrence may read the iterate it writes or earlier ones",
                        access.position,
                    )
                graph.add_edge(
                    node_id(producer), node_id(einsum), tensor=access.tensor, access=format_access(access),
                    loop_carried=iterative in read.carried, carried=sorted(read.carried), terminal=read.terminal,
                    ahead=read.ahead,
                )
    return graph


def to_dot(graph: nx.MultiDiGraph) -> str:
    """Return the graph in Graphviz DOT: inputs as boxes, loop-carried reads dashed, terminal reads bold."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {quote(graph.graph.get('name', 'cascade'))} {{", "  rankdir=TB;"]
    for node, data in graph.nodes(data=True):
        shape = "box" if data["kind"] == "input" else "ellipse"
        style = ', style="dashed"' if data.get("initialization") else ""
        lines.append(f"  {quote(node)} [shape={shape}, label={quote(data['label'])}{style}];")
    for source, target, data in graph.edges(data=True):
        style = ""
        if data.get("loop_carried"):
            style = ', style="dashed"'
        elif data.get("terminal"):
            style = ', style="bold"'
        lines.append(f"  {quote(source)} -> {quote(target)} [label={quote(data['access'])}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(graph: nx.MultiDiGraph) -> str:
    """Return the graph as networkx node-link JSON (``networkx.node_link_graph`` reads it back)."""
    return json.dumps(nx.node_link_data(graph, edges="edges"), indent=2)


@dataclass(frozen=True)
class Schedule:
    """Execution order: ``pre`` once, ``body`` once per iterate of the iterative rank, then ``post``."""

    pre: tuple[Einsum, ...]
    body: tuple[Einsum, ...]
    post: tuple[Einsum, ...]


def schedule(cascade: Cascade, graph: nx.MultiDiGraph | None = None) -> Schedule:
    """Split the Einsums into those before, inside and after the recurrence, each in dependency order.

    The recurrence body consists of the Einsums that write a next iterate and
    every Einsum both fed by and feeding one of them.  An Einsum that needs no
    iterate runs before the loop, and one that needs the whole recurrence runs
    after it.

    Raises
    ------
    CascadeError
        If an Einsum that needs the last iterate feeds the recurrence, an
        initialization Einsum reads the recurrence, or an Einsum of the body
        does not index its output with the iterative rank variable.
    """
    graph = dependency_graph(cascade) if graph is None else graph
    einsum_of = {node_id(einsum): einsum for einsum in cascade.all_einsums}
    order = {node: position for position, node in enumerate(einsum_of)}
    forward = nx.DiGraph()
    forward.add_nodes_from(einsum_of)
    within = nx.DiGraph()
    within.add_nodes_from(einsum_of)
    everything = nx.DiGraph()
    everything.add_nodes_from(einsum_of)
    for source, target, data in graph.edges(data=True):
        if source not in einsum_of:
            continue
        everything.add_edge(source, target)
        if not data["loop_carried"]:
            within.add_edge(source, target)
        if not data["terminal"]:
            forward.add_edge(source, target)

    recurrences = recurrence_positions(cascade)
    seeds = {node_id(e) for e in cascade.einsums if e.name in recurrences}
    body: set[str] = set()
    if seeds:
        reached = set(seeds).union(*(nx.descendants(forward, seed) for seed in seeds))
        feeding = set(seeds).union(*(nx.ancestors(forward, seed) for seed in seeds))
        body = reached & feeding
    after = set().union(*(nx.descendants(everything, node) for node in body)) - body if body else set()
    variable = cascade.iteration.variable if cascade.iteration is not None else None
    for node in sorted(after, key=order.get):
        if nx.descendants(everything, node) & body:
            raise CascadeError(
                f"Einsum {node} reads the last iterate of a recurrence over {variable} but feeds that recurrence; "
                f"a recurrence cannot depend on its own final value",
                einsum_of[node].position,
            )
    for source, target, data in graph.edges(data=True):
        if data["ahead"] and source in body and target in body:
            raise CascadeError(
                f"Einsum {target} reads {data['access']}, an iterate of {variable} that {source} computes later",
                einsum_of[target].position,
            )
    for node in sorted(body | after, key=order.get):
        einsum = einsum_of[node]
        if einsum.initialization:
            raise CascadeError(
                f"initialization Einsum {einsum.name} reads a tensor the recurrence over {variable} computes; "
                f"initialization runs before the recurrence",
                einsum.position,
            )
        if node in body and variable not in einsum.output.variables:
            raise CascadeError(
                f"Einsum {einsum.name} takes part in the recurrence over {variable}, so its output needs the "
                f"index {variable}; it would otherwise reduce or skip iterates",
                einsum.output.position,
            )

    def ordered(nodes: set[str]) -> tuple[Einsum, ...]:
        sub = within.subgraph(nodes)
        return tuple(einsum_of[n] for n in nx.lexicographical_topological_sort(sub, key=lambda n: order[n]))

    pre = set(einsum_of) - body - after
    return Schedule(ordered(pre), ordered(body), ordered(after))


def check_dependencies(cascade: Cascade, start: SourcePosition | None = None,
                       iteration_position: SourcePosition | None = None) -> None:
    """Check recurrences and cycles.

    Raises
    ------
    CascadeError
        If a next iterate is written without a stopping condition or beyond
        ``+1``, a recurrence has no initialization, an iterative rank has no
        recurrence, or a cycle does not run through the iterative rank.
    """
    iterative = cascade.iteration.variable if cascade.iteration is not None else None
    recurrences = recurrence_positions(cascade)
    for einsum in cascade.einsums:
        for _, variable, offset in _shifted_writes(einsum):
            if variable == iterative and offset != 1:
                raise CascadeError(
                    f"a recurrence writes the next iterate, as {einsum.name}[..., {variable}+1, ...]; "
                    f"found {variable}{offset:+d}",
                    einsum.output.position,
                )
    initialized = {einsum.name for einsum in cascade.initialization}
    for einsum in cascade.einsums:
        if einsum.name in recurrences and einsum.name not in initialized:
            raise CascadeError(
                f"recurrence {einsum.name} over {iterative} has no initialization; add an Einsum such as "
                f"{einsum.name}[... {iterative} : {iterative} = 0 ...] = 0 under 'init:'",
                einsum.output.position,
            )
    if iterative is not None and not recurrences:
        raise CascadeError(
            f"{iterative} is declared iterative, but no Einsum writes a next iterate such as X[{iterative}+1]",
            iteration_position or start,
        )

    graph = dependency_graph(cascade)
    einsum_of = {node_id(einsum): einsum for einsum in cascade.all_einsums}
    within = nx.MultiDiGraph()
    within.add_nodes_from(einsum_of)
    for source, target, key, data in graph.edges(keys=True, data=True):
        if source in einsum_of and not data["loop_carried"]:
            within.add_edge(source, target, key, **data)
    try:
        cycle = nx.find_cycle(within)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle is not None:
        nodes = [edge[0] for edge in cycle]
        first = min(nodes, key=list(einsum_of).index)
        for source, target, key in cycle:
            if within.edges[source, target, key]["terminal"]:
                raise CascadeError(
                    f"Einsum {target} reads the last iterate of a recurrence over {iterative} but feeds that "
                    f"recurrence; a recurrence cannot depend on its own final value",
                    einsum_of[target].position,
                )
        carried = sorted({v for s, t, k in cycle for v in within.edges[s, t, k]["carried"] if v != iterative})
        path = " -> ".join(nodes[nodes.index(first):] + nodes[: nodes.index(first)] + [first])
        if carried:
            rank = carried[0]
            hint = (
                f"only one rank variable may be iterative, and it is {iterative}"
                if iterative is not None
                else f"add a stopping condition, as 'iterate {rank} until {rank} >= {rank.upper()}'"
            )
            raise CascadeError(f"cycle {path} is a recurrence over {rank}, but {rank} is not iterative; {hint}",
                               einsum_of[first].position)
        raise CascadeError(
            f"cycle {path} does not run through an iterative rank; a tensor may depend on itself only through "
            f"an earlier iterate, as RM[m1+1, p] = max(RM[m1, p], ...)",
            einsum_of[first].position,
        )
    schedule(cascade, graph)
