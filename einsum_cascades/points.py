"""Exact number of iteration-space points of an Einsum whose filters couple rank variables.

The points are the integer coordinates of the Einsum's rank variables (and
batch ranks) inside their ranges that satisfy every filter and, when all
sub-ranks of a partition index the Einsum, the partition's bound
``m1*M0 + m0 < M``.  Each such constraint is linear in the rank variables.
So, for fixed values of the others, one chosen variable's admissible
coordinates form an interval with a closed-form length, and only the other
constrained variables are enumerated, with numpy.  The chosen variable is the one that leaves the fewest coordinates to
enumerate (for a causal mask over M x P, P of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import AffineExpr, Cascade, Einsum

# Largest number of coordinate combinations enumerated at once.
_CHUNK = 1 << 22


@dataclass(frozen=True)
class Constraint:
    """``sum(coefficients[v] * v) + constant  OP  0`` with OP one of ``<=``, ``=``, ``!=``."""

    coefficients: dict[str, int]
    constant: int
    operator: str


def _linear(expr: AffineExpr, sizes: dict[str, int]) -> tuple[dict[str, int], int]:
    coefficients: dict[str, int] = {}
    constant = 0
    for term in expr.terms:
        value = term.coefficient
        variable = None
        for factor in term.factors:
            if factor.islower():
                variable = factor
            else:
                value *= sizes[factor]
        if variable is None:
            constant += value
        else:
            coefficients[variable] = coefficients.get(variable, 0) + value
    return coefficients, constant


def constraints(cascade: Cascade, einsum: Einsum, sizes: dict[str, int]) -> list[Constraint]:
    """Filters and partition bounds of ``einsum`` as linear constraints (strict ones made non-strict)."""
    found: list[Constraint] = []
    for condition in einsum.filters:
        left, left_constant = _linear(condition.left, sizes)
        right, right_constant = _linear(condition.right, sizes)
        coefficients = dict(left)
        for variable, value in right.items():
            coefficients[variable] = coefficients.get(variable, 0) - value
        constant = left_constant - right_constant
        operator = condition.operator
        if operator in (">", ">="):
            coefficients = {v: -c for v, c in coefficients.items()}
            constant = -constant
            operator = "<" if operator == ">" else "<="
        if operator == "<":
            constant += 1
            operator = "<="
        found.append(Constraint({v: c for v, c in coefficients.items() if c}, constant, operator))
    variables = set(einsum.variables)
    for partition in cascade.partitions:
        if all(part.lower() in variables for part in partition.parts):
            coefficients = {}
            for position, part in enumerate(partition.parts):
                coefficients[part.lower()] = prod(sizes[p] for p in partition.parts[position + 1 :])
            found.append(Constraint(coefficients, 1 - sizes[partition.rank], "<="))
    return found


def count_points(cascade: Cascade, einsum: Einsum, sizes: dict[str, int]) -> int:
    """Exact number of points of ``einsum``'s iteration space, batch ranks included.

    Parameters
    ----------
    sizes : dict
        Every rank size, as :func:`einsum_cascades.counts.rank_sizes` returns them.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> from einsum_cascades.counts import rank_sizes
    >>> cascade = load_library_cascade("attention-1pass-causal")
    >>> sizes = rank_sizes(cascade, dict(B=1, H=1, E=1, F=1, M=4, P=4, M0=2))
    >>> count_points(cascade, cascade.einsum("BQK"), sizes)  # 4 + 3 + 2 + 1 key-query pairs
    10
    """
    ranges = {variable: sizes[variable.upper()] for variable in einsum.variables}
    found = constraints(cascade, einsum, sizes)
    coupled = sorted({v for c in found for v in c.coefficients})
    free = prod(sizes[rank] for rank in cascade.batch_ranks) * prod(
        size for variable, size in ranges.items() if variable not in coupled
    )
    if not coupled:
        return free if all(_holds_constant(c) for c in found) else 0

    chosen = min(coupled, key=lambda v: (prod(ranges[u] for u in coupled if u != v), v))
    enumerated = [v for v in coupled if v != chosen]
    total = 0
    for grid in _chunks(enumerated, ranges):
        count = grid.shape[0]
        low = np.zeros(count, dtype=np.int64)
        high = np.full(count, ranges[chosen] - 1, dtype=np.int64)
        keep = np.ones(count, dtype=bool)
        excluded: list[np.ndarray] = []
        for constraint in found:
            # The constraint reads a*x + rest OP 0 for the chosen variable x.
            rest = np.full(count, constraint.constant, dtype=np.int64)
            for position, variable in enumerate(enumerated):
                rest += constraint.coefficients.get(variable, 0) * grid[:, position]
            a = constraint.coefficients.get(chosen, 0)
            if a == 0:
                keep &= _compare(rest, constraint.operator)
            elif constraint.operator == "<=" and a > 0:
                high = np.minimum(high, (-rest) // a)
            elif constraint.operator == "<=":
                low = np.maximum(low, -((-rest) // -a))
            else:
                divisible = (-rest) % a == 0
                point = np.where(divisible, (-rest) // a, -1)
                if constraint.operator == "=":
                    keep &= divisible
                    low = np.maximum(low, point)
                    high = np.minimum(high, point)
                else:
                    excluded.append(np.where(divisible, point, -1))
        length = np.maximum(high - low + 1, 0)
        for point in excluded:
            length -= ((point >= low) & (point <= high)).astype(np.int64)
        total += int(np.sum(np.where(keep, np.maximum(length, 0), 0)))
    return free * total


def _compare(rest: np.ndarray, operator: str) -> np.ndarray:
    if operator == "<=":
        return rest <= 0
    if operator == "=":
        return rest == 0
    return rest != 0


def _holds_constant(constraint: Constraint) -> bool:
    return bool(_compare(np.array(constraint.constant), constraint.operator))


def _chunks(variables: list[str], ranges: dict[str, int]):
    """Yield arrays of shape (n, len(variables)) that together enumerate every coordinate combination."""
    sizes = [ranges[v] for v in variables]
    total = prod(sizes)
    if total > 1 << 40:
        raise CascadeError(
            f"too many coordinate combinations ({total}) to count the filtered iteration space exactly"
        )
    for start in range(0, total, _CHUNK):
        flat = np.arange(start, min(total, start + _CHUNK), dtype=np.int64)
        columns = np.unravel_index(flat, sizes) if sizes else ()
        yield np.stack(columns, axis=-1) if sizes else np.zeros((len(flat), 0), dtype=np.int64)
