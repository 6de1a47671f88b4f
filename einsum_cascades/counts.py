"""Operator and iteration-space counts of Einsums, as exact integers.

Counting convention (the one the FuseMax artifact uses): every point of an
Einsum's iteration space applies each operator of its right-hand side once; a
reduction of n values counts n applications of the reduction operator into its
initial value; a multiply whose product is sum-reduced is one
multiply-accumulate (``mac``), and the reduction's add is not counted apart.
A plain copy or a constant costs nothing.
"""

from __future__ import annotations

from collections import Counter
from math import prod

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, Call, Cascade, Einsum, Expr
from einsum_cascades.points import count_points


def operator_counts(einsum: Einsum) -> dict[str, int]:
    """Count operator applications per iteration-space point of ``einsum``.

    Returns
    -------
    dict
        Operator name (``mac``, ``mul``, ``add``, ``sub``, ``max``, ``exp``,
        ``sub_exp``, ``div``, ...) to applications per point.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> operator_counts(cascade.einsum("BQK")), operator_counts(cascade.einsum("SLN"))
    ({'mac': 1}, {'sub_exp': 1})
    """
    counts: Counter[str] = Counter()
    expr = einsum.expr
    reduced = bool(einsum.reduced_variables)
    fused_mac = reduced and einsum.reduce_operator == "add" and isinstance(expr, Call) and expr.operator == "mul"
    if fused_mac:
        counts["mac"] += 1
        for arg in expr.args:
            _count_calls(arg, counts)
    else:
        _count_calls(expr, counts)
        if reduced:
            counts[einsum.reduce_operator] += 1
    return dict(counts)


def _count_calls(expr: Expr, counts: Counter[str]) -> None:
    if isinstance(expr, Call):
        counts[expr.operator] += 1
        for arg in expr.args:
            _count_calls(arg, counts)


def rank_sizes(cascade: Cascade, sizes: dict[str, int]) -> dict[str, int]:
    """Complete a size assignment with the sizes of partitioned sub-ranks and of the iterative rank.

    ``sizes`` gives every unpartitioned rank and, for each partition, the whole
    rank and all sub-ranks but the outermost; the outermost is the ceiling of
    the whole over the product of the others (the last tile may be partial).
    An iterative rank that has no size of its own takes the number of
    iterates its stopping condition allows (``i >= K`` gives K).

    Raises
    ------
    CascadeError
        If a size is missing or not a positive integer, or an iterative
        rank's size disagrees with its stopping condition.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> full = rank_sizes(cascade, dict(B=1, H=1, E=64, F=64, M=1000, P=1000, M0=256))
    >>> full["M1"]
    4
    """
    result = dict(sizes)
    for rank, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CascadeError(f"size of rank {rank} must be a positive integer, got {value!r}")
    for partition in cascade.partitions:
        inner = partition.parts[1:]
        missing = [part for part in (partition.rank,) + inner if part not in result]
        if missing:
            raise CascadeError(
                f"partition {partition.rank} = {' x '.join(partition.parts)} needs sizes for {', '.join(missing)}"
            )
        tile = prod(result[part] for part in inner)
        result[partition.parts[0]] = -(-result[partition.rank] // tile)
    if cascade.iteration is not None:
        rank = cascade.iteration.variable.upper()
        bound = cascade.iteration.stop.right
        if all(size in result for size in bound.sizes):
            count = iteration_count(cascade, result)
            if rank not in result:
                result[rank] = count
            elif result[rank] != count:
                raise CascadeError(
                    f"iterative rank {rank} has size {result[rank]}, but its stopping condition "
                    f"{cascade.iteration.variable} {cascade.iteration.stop.operator} ... allows {count} iterates"
                )
    missing = [rank for rank in cascade.ranks if rank not in result]
    if missing:
        raise CascadeError(f"missing size for rank(s) {', '.join(missing)}")
    return result


def iteration_count(cascade: Cascade, sizes: dict[str, int]) -> int:
    """Number of iterates the recurrence computes: N for ``i >= N`` and ``i = N``, N + 1 for ``i > N``.

    Raises
    ------
    CascadeError
        If the cascade has no iterative rank, or the count is not positive.
    """
    if cascade.iteration is None:
        raise CascadeError(f"cascade {cascade.name!r} has no iterative rank")
    stop = cascade.iteration.stop
    bound = stop.right.evaluate(sizes)
    count = bound + 1 if stop.operator == ">" else bound
    if count <= 0:
        raise CascadeError(f"the stopping condition of {cascade.name!r} allows no iterate at these sizes ({count})")
    return count


def einsum_ranks(cascade: Cascade, einsum: Einsum) -> tuple[str, ...]:
    """Ranks of the iteration space of ``einsum``, batch ranks first."""
    return cascade.batch_ranks + tuple(variable.upper() for variable in einsum.variables)


def extent(cascade: Cascade, ranks: tuple[str, ...], sizes: dict[str, int]) -> int:
    """Exact number of points in the space spanned by ``ranks``.

    When every sub-rank of a partition is present the points are the whole
    rank's coordinates (a partial last tile contributes only the coordinates
    that exist); otherwise each sub-rank contributes its own size.
    """
    remaining = list(ranks)
    total = 1
    for partition in cascade.partitions:
        if all(part in remaining for part in partition.parts):
            total *= sizes[partition.rank]
            for part in partition.parts:
                remaining.remove(part)
    for rank in remaining:
        total *= sizes[rank]
    return total


def iteration_points(cascade: Cascade, einsum: Einsum, sizes: dict[str, int]) -> int:
    """Exact number of iteration-space points of ``einsum`` at the given rank sizes.

    Filters (``m <= p``, windows) remove the points they fail; see
    :func:`einsum_cascades.points.count_points`.
    """
    if einsum.filters:
        return count_points(cascade, einsum, sizes)
    return extent(cascade, einsum_ranks(cascade, einsum), sizes)


def tensor_elements(cascade: Cascade, tensor: str, sizes: dict[str, int]) -> int:
    """Exact number of elements of ``tensor`` at the given rank sizes."""
    return extent(cascade, cascade.tensor_ranks(tensor), sizes)


def access_ranks(cascade: Cascade, access: Access) -> tuple[str, ...]:
    """Ranks of the iteration space that an operand access depends on, batch ranks first."""
    return cascade.batch_ranks + tuple(variable.upper() for variable in access.variables)
