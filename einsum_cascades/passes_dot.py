"""The dependency graph of a cascade in Graphviz DOT, colored by the passes over one rank."""

from __future__ import annotations

from einsum_cascades.ir import Cascade
from einsum_cascades.passes import RankPasses
from einsum_cascades.passes_reads import dependency_edges
from einsum_cascades.passes_ranks import rank_classes

# Fill colors of passes 1, 2, 3, ... (ColorBrewer "Pastel1"); later passes reuse them in turn.
PASS_COLORS = ("#b3cde3", "#fed9a6", "#fbb4ae", "#ccebc5", "#decbe4", "#ffffcc", "#e5d8bd", "#fddaec")

_EDGE_STYLES = {
    "previous": ' [style=dashed, label="earlier iterate"]',
    "terminal": ' [style=bold, label="last iterate"]',
    "initial": ' [style=dotted, label="first iterate"]',
}


def passes_dot(cascade: Cascade, passes: RankPasses) -> str:
    """Return the DOT text of the cascade's dependency graph, with Einsums colored by pass.

    Input tensors are gray boxes.  An Einsum that sweeps the fiber is filled
    with the color of its pass.  One that does not is white with a dashed
    outline, labeled with the pass it runs during or after.  Dashed edges read an earlier iterate of
    the iterative rank, dotted edges the first iterate (from the
    initialization) and bold edges the last iterate.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> from einsum_cascades.passes import analyze_passes
    >>> cascade = load_library_cascade("attention-3pass")
    >>> text = passes_dot(cascade, analyze_passes(cascade, "M").ranks["M"])
    >>> text.splitlines()[0]
    'digraph "attention-3pass" {'
    >>> [line.strip() for line in text.splitlines() if line.strip().startswith('"SN"')][0]
    '"SN" [label="SN\\\\npass 2 over M", style=filled, fillcolor="#fed9a6"];'
    """
    lines = [
        f"digraph {_quote(cascade.name)} {{",
        "  rankdir=LR;",
        f"  label={_quote(f'{cascade.name}: {passes.passes} pass(es) over {passes.rank}')};",
        "  labelloc=t;",
        "  node [shape=ellipse, fontname=Helvetica];",
    ]
    for tensor in cascade.inputs:
        lines.append(f"  {_quote(tensor)} [shape=box, style=filled, fillcolor=\"#eeeeee\"];")

    node_ids = []
    for state, level in zip(passes.states, passes.einsums):
        node = f"init:{level.einsum}" if level.initialization else level.einsum
        node_ids.append(node)
        lines.append(f"  {_quote(node)} [{_node_attributes(level, passes.rank)}];")

    for writer, reader, tensor, kind in dependency_edges(cascade, rank_classes(cascade)):
        source = tensor if writer is None else node_ids[writer]
        lines.append(f"  {_quote(source)} -> {_quote(node_ids[reader])}{_EDGE_STYLES.get(kind, '')};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attributes(level, rank: str) -> str:
    prefix = "init " if level.initialization else ""
    if level.relayout:
        return f'label="{prefix}{level.einsum}\\ncopy", style=dotted'
    if level.sweeps:
        color = PASS_COLORS[(level.level - 1) % len(PASS_COLORS)]
        return f'label="{prefix}{level.einsum}\\npass {level.level} over {rank}", style=filled, fillcolor="{color}"'
    if level.after and level.level == 0:
        when = "before pass 1"
    elif level.after:
        when = f"after pass {level.level}"
    else:
        when = f"during pass {level.level}"
    return f'label="{prefix}{level.einsum}\\n{when}", style=dashed'


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
