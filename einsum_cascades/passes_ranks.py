"""Ranks for the pass analysis: rank classes, pass targets and iterate reads.

A rank variable walks the rank its upper-case name gives (``m1`` walks ``M1``).
But a tensor access may walk a declared rank with a variable of another name:
``A[i]`` with ``A`` declared ``A[k]`` walks the K fiber of A with ``i``.  Such
ranks form one *class*, so passes over K count the Einsums that iterate ``i``.

A *target* is one rank whose passes are counted: a whole rank, or one sub-rank
of a partitioned rank.  An Einsum sweeps the target's fiber when its iteration
space contains one of the target's *full sets* of rank classes: ``{M}`` or
``{M1, M0}`` for the whole of ``M = M1 x M0``, ``{M0}`` or ``{M}`` for the
sub-rank ``M0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, AffineExpr, Cascade, Einsum


def rank_classes(cascade: Cascade) -> dict[str, str]:
    """Map every rank to the name of its class (ranks walked by the same variable).

    Examples
    --------
    >>> from einsum_cascades.syntax import parse_cascade
    >>> cascade = parse_cascade('''
    ... cascade walk
    ... ranks K I
    ... input A[k]
    ... output Y
    ... einsums:
    ...   Y = A[i]
    ... ''')
    >>> rank_classes(cascade)
    {'K': 'K', 'I': 'K'}
    """
    parent = {rank: rank for rank in cascade.ranks}

    def find(rank: str) -> str:
        while parent[rank] != rank:
            rank = parent[rank]
        return rank

    def union(first: str, second: str) -> None:
        first, second = find(first), find(second)
        if first == second:
            return
        # The rank declared first names the class, so names do not depend on visiting order.
        if cascade.ranks.index(second) < cascade.ranks.index(first):
            first, second = second, first
        parent[second] = first

    for einsum in cascade.initialization + cascade.einsums:
        for access in (einsum.output,) + einsum.accesses:
            declared = cascade.tensors.get(access.tensor, ())
            for position, index in enumerate(access.indices):
                found = offset_variable(index.expr)
                if found is None or position >= len(declared):
                    continue
                walked = found[0].upper()
                if walked in parent and declared[position] in parent:
                    union(walked, declared[position])
    return {rank: find(rank) for rank in cascade.ranks}


def offset_variable(expr: AffineExpr) -> tuple[str, int] | None:
    """Split ``v + c`` (or ``v - c``) into the variable and the constant; None otherwise."""
    variable: str | None = None
    offset = 0
    for term in expr.terms:
        if not term.factors:
            offset += term.coefficient
        elif len(term.factors) == 1 and term.factors[0].islower() and term.coefficient == 1 and variable is None:
            variable = term.factors[0]
        else:
            return None
    if variable is None:
        return None
    return variable, offset


@dataclass(frozen=True)
class Target:
    """A rank whose passes are counted, with the rank classes that make up its fiber.

    ``full_sets`` lists alternative sets of rank classes; an iteration space (or
    a coverage) that contains one of them spans the whole fiber.  ``classes`` is
    their union: every rank class that walks part of the fiber.
    """

    rank: str
    full_sets: tuple[frozenset[str], ...]

    @property
    def classes(self) -> frozenset[str]:
        found: set[str] = set()
        for full in self.full_sets:
            found |= full
        return frozenset(found)

    def is_full(self, classes: frozenset[str] | set[str]) -> bool:
        """Return whether ``classes`` spans the whole fiber of the target."""
        return any(full <= classes for full in self.full_sets)


def pass_targets(cascade: Cascade, classes: dict[str, str]) -> list[Target]:
    """List the ranks to report, partitioned ranks first, each followed by its sub-ranks.

    Batch ranks are left out: every tensor carries them and nothing reduces
    them.  So is a rank no tensor carries, such as a window size used only in
    filters.
    """
    ordered: list[str] = []
    for partition in cascade.partitions:
        for rank in (partition.rank,) + partition.parts:
            if rank not in ordered:
                ordered.append(rank)
    for rank in cascade.ranks:
        if rank not in ordered:
            ordered.append(rank)

    carried = {classes[rank] for ranks in cascade.tensors.values() for rank in ranks}
    targets = []
    for rank in ordered:
        if rank in cascade.batch_ranks or classes[rank] not in carried:
            continue
        targets.append(Target(rank, _full_sets(cascade, classes, rank)))
    return targets


def _full_sets(cascade: Cascade, classes: dict[str, str], rank: str) -> tuple[frozenset[str], ...]:
    partition = cascade.partition_of(rank)
    if partition is None:
        return (frozenset({classes[rank]}),)
    whole = frozenset({classes[partition.rank]})
    if rank == partition.rank:
        return (whole, frozenset(classes[part] for part in partition.parts))
    return (frozenset({classes[rank]}), whole)


def find_target(targets: list[Target], rank: str) -> Target:
    """Return the target of ``rank``; raise CascadeError naming the valid ranks."""
    for target in targets:
        if target.rank == rank:
            return target
    valid = ", ".join(target.rank for target in targets)
    raise CascadeError(f"unknown rank {rank!r}; ranks: {valid}")


def fixed_variables(einsum: Einsum) -> set[str]:
    """Rank variables that one coordinate pins down (``m1`` in ``RM[m1:m1=0, p]``)."""
    fixed = set()
    for access in (einsum.output,) + einsum.accesses:
        for condition in access.filters:
            if condition.operator == "=" and condition.variable is not None:
                fixed.add(condition.variable)
    return fixed


def iteration_classes(einsum: Einsum, classes: dict[str, str]) -> frozenset[str]:
    """Rank classes the Einsum's iteration space walks, pinned variables excluded."""
    fixed = fixed_variables(einsum)
    return frozenset(classes[variable.upper()] for variable in einsum.variables if variable not in fixed)


def is_relayout(einsum: Einsum) -> bool:
    """Return whether the Einsum only copies one tensor into another layout (``BK[e,m1,m0] = K[e, m1*M0+m0]``)."""
    if not isinstance(einsum.expr, Access) or einsum.reduced_variables:
        return False
    for access in (einsum.output, einsum.expr):
        for condition in access.filters:
            if condition.operator != "=":
                return False
    return True


@dataclass(frozen=True)
class IterateRead:
    """Kind of read of a tensor that a recurrence writes.

    ``kind`` is ``"previous"`` (an earlier iterate, such as ``RM[m1, p]`` where
    ``RM[m1+1, p]`` is written), ``"current"`` (the iterate of this step),
    ``"terminal"`` (the last iterate, at the stopping bound, such as
    ``RNV[f, M1, p]``) or ``"fixed"`` (another constant iterate).
    """

    kind: str
    iterative_class: str


def iterate_read(cascade: Cascade, classes: dict[str, str], access: Access, writer: Einsum) -> IterateRead | None:
    """Classify a read of a tensor written by ``writer`` along the iterative rank; None if not iterative."""
    iteration = cascade.iteration
    if iteration is None or writer.initialization:
        return None
    variable = iteration.variable
    written = _iterative_position(writer.output, variable)
    if written is None:
        return None
    position, written_offset = written
    iterative_class = classes[variable.upper()]
    if position >= len(access.indices):
        return None

    expr = access.indices[position].expr
    found = offset_variable(expr)
    if found is not None and found[0] == variable:
        delta = found[1] - written_offset
        return IterateRead("previous" if delta < 0 else "current", iterative_class)
    if not expr.variables:
        kind = "terminal" if expr == iteration.stop.bound else "fixed"
        return IterateRead(kind, iterative_class)
    return IterateRead("current", iterative_class)


def _iterative_position(output: Access, variable: str) -> tuple[int, int] | None:
    for position, index in enumerate(output.indices):
        found = offset_variable(index.expr)
        if found is not None and found[0] == variable:
            return position, found[1]
    return None
