"""Symbolic operation counts and tensor footprints (sympy), per Einsum and in total.

The counting convention is the one the FuseMax artifact uses.  Every point of
an Einsum's iteration space applies each operator of its right-hand side
once.  A reduction of n values counts n applications of the reduction
operator into its initial value.  A multiply whose product is sum-reduced is
one multiply-accumulate (``mac``), and the reduction's add is not counted
apart.
Copies and constants cost nothing.  The points of an iteration space are the
coordinates that exist: a partial last tile counts only the coordinates below
the rank's size, and a filter (``m <= p``) removes the points it fails.
Whether an operand happens to be empty at run time (a zero divisor, a
never-written coordinate) does not change the counts.

Rank sizes are positive integer symbols named after the ranks.  The outer
sub-rank of a partition (``M1``) and an iterative rank keep their own
symbols; :attr:`CascadeCounts.relations` gives them in terms of the others
(``M1 = ceiling(M/M0)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import sympy

from einsum_cascades.counts import operator_counts, rank_sizes
from einsum_cascades.errors import CascadeError
from einsum_cascades.graph import recurrence_positions
from einsum_cascades.ir import AffineExpr, Cascade, Einsum
from einsum_cascades.points import count_points


def rank_symbols(cascade: Cascade) -> dict[str, sympy.Symbol]:
    """Return one positive integer symbol per rank."""
    return {rank: sympy.Symbol(rank, positive=True, integer=True) for rank in cascade.ranks}


def size_relations(cascade: Cascade, symbols: dict[str, sympy.Symbol]) -> dict[sympy.Symbol, sympy.Expr]:
    """Derived sizes: the outer sub-rank of each partition, and an iterative rank that is not one."""
    relations: dict[sympy.Symbol, sympy.Expr] = {}
    for partition in cascade.partitions:
        tile = prod(symbols[part] for part in partition.parts[1:])
        relations[symbols[partition.parts[0]]] = sympy.ceiling(symbols[partition.rank] / tile)
    if cascade.iteration is not None:
        rank = symbols[cascade.iteration.variable.upper()]
        if rank not in relations:
            relations[rank] = iteration_expr(cascade, symbols)
    return relations


def iteration_expr(cascade: Cascade, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """Number of iterates of the recurrence as an expression in the rank sizes."""
    stop = cascade.iteration.stop
    bound = _affine(stop.right, symbols, {})
    return bound + 1 if stop.operator == ">" else bound


def _affine(expr: AffineExpr, sizes: dict[str, sympy.Symbol], variables: dict[str, sympy.Symbol]) -> sympy.Expr:
    total = sympy.Integer(0)
    for term in expr.terms:
        product = sympy.Integer(term.coefficient)
        for factor in term.factors:
            product *= variables[factor] if factor.islower() else sizes[factor]
        total += product
    return total


def einsum_points(cascade: Cascade, einsum: Einsum, symbols: dict[str, sympy.Symbol], batch: bool = True) -> sympy.Expr:
    """Number of iteration-space points of ``einsum`` as an expression in the rank sizes.

    Without filters the result is a product of sizes (the whole rank ``M`` in
    place of ``M1*M0`` when every sub-rank of its partition is present).  With
    filters it is a (possibly unevaluated) ``sympy.Sum`` over the coupled rank
    variables of the closed-form length of one of them.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> einsum_points(cascade, cascade.einsum("BQK"), rank_symbols(cascade))
    B*E*H*M*P
    """
    ranks = [variable.upper() for variable in einsum.variables]
    variables = {v: sympy.Symbol(v, integer=True, nonnegative=True) for v in einsum.variables}
    conditions = _conditions(cascade, einsum, symbols, variables)
    coupled = sorted({v for relation, _ in conditions for v in einsum.variables if relation.has(variables[v])},
                     key=einsum.variables.index)
    factor = prod(symbols[rank] for rank in cascade.batch_ranks) if batch else sympy.Integer(1)
    remaining = [rank for rank, v in zip(ranks, einsum.variables) if v not in coupled]
    if not conditions:
        for partition in cascade.partitions:
            if all(part in remaining for part in partition.parts):
                factor *= symbols[partition.rank]
                for part in partition.parts:
                    remaining.remove(part)
    factor *= prod(symbols[rank] for rank in remaining)
    if not coupled:
        return factor

    chosen = max(coupled, key=lambda v: (sum(1 for relation, _ in conditions if relation.has(variables[v])),
                                         einsum.variables.index(v)))
    x = variables[chosen]
    low: list[sympy.Expr] = [sympy.Integer(0)]
    high: list[sympy.Expr] = [symbols[chosen.upper()] - 1]
    indicator = sympy.Integer(1)
    for relation, operator in conditions:
        a = sympy.expand(relation).coeff(x)
        rest = sympy.expand(relation - a * x)
        if a == 0:
            indicator *= sympy.Piecewise((1, _relational(rest, operator)), (0, True))
        elif operator == "<=" and a.is_positive:
            high.append(sympy.floor(-rest / a))
        elif operator == "<=" and a.is_negative:
            low.append(sympy.ceiling(-rest / a))
        elif operator == "=" and a in (1, -1):
            low.append(-rest / a)
            high.append(-rest / a)
        else:
            raise CascadeError(f"cannot count the filtered points of {einsum.name} symbolically")
    length = sympy.Max(0, sympy.Min(*high) - sympy.Max(*low) + 1)
    summand = indicator * length
    for variable in reversed([v for v in coupled if v != chosen]):
        summand = sympy.Sum(summand, (variables[variable], 0, symbols[variable.upper()] - 1))
    return factor * summand


def _relational(expr: sympy.Expr, operator: str):
    return {"<=": expr <= 0, "=": sympy.Eq(expr, 0)}[operator]


def _conditions(cascade, einsum, symbols, variables) -> list[tuple[sympy.Expr, str]]:
    """Filters and partition bounds as (expression, operator) meaning ``expression OP 0``, OP in ``<=``, ``=``."""
    found = []
    for condition in einsum.filters:
        difference = _affine(condition.left, symbols, variables) - _affine(condition.right, symbols, variables)
        operator = condition.operator
        if operator in (">", ">="):
            difference, operator = -difference, ("<" if operator == ">" else "<=")
        if operator == "<":
            difference, operator = difference + 1, "<="
        if operator == "!=":
            raise CascadeError(f"cannot count the filtered points of {einsum.name} symbolically: '!=' filter")
        found.append((difference, operator))
    for partition in cascade.partitions:
        if all(part.lower() in variables for part in partition.parts):
            coordinate = sympy.Integer(0)
            for position, part in enumerate(partition.parts):
                stride = prod(symbols[p] for p in partition.parts[position + 1 :])
                coordinate += variables[part.lower()] * stride
            if found:
                found.append((coordinate - symbols[partition.rank] + 1, "<="))
    return found


def charged_counts(cascade: Cascade, counts: dict[str, object]) -> dict[str, object]:
    """Replace user-defined operators by the built-in operators they are charged as."""
    charged: dict[str, object] = {}
    for operator, count in counts.items():
        definition = cascade.operator(operator)
        pieces = definition.charge if definition is not None else ((operator, 1),)
        for name, times in pieces:
            charged[name] = charged.get(name, 0) + count * times
    return charged


@dataclass(frozen=True)
class EinsumCount:
    """Points and operator applications of one Einsum."""

    name: str
    initialization: bool
    points: sympy.Expr
    operators: dict[str, sympy.Expr]
    charged: dict[str, sympy.Expr]


@dataclass(frozen=True)
class CascadeCounts:
    """Symbolic counts of a cascade: per Einsum, in total, and tensor footprints in elements."""

    cascade: Cascade
    symbols: dict[str, sympy.Symbol]
    relations: dict[sympy.Symbol, sympy.Expr]
    einsums: tuple[EinsumCount, ...]
    total: dict[str, sympy.Expr]
    total_charged: dict[str, sympy.Expr]
    footprints: dict[str, sympy.Expr] = field(default_factory=dict)

    def evaluate(self, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
        """Exact integer counts at the given sizes.

        Returns
        -------
        dict
            ``{"total": ..., "total_charged": ..., "footprints": ...}`` and one
            entry per Einsum (``init:NAME`` for initialization Einsums) with
            its points and charged operator counts.
        """
        full = rank_sizes(self.cascade, sizes)
        values = {self.symbols[rank]: size for rank, size in full.items() if rank in self.symbols}
        result: dict[str, dict[str, int]] = {"total": {}, "total_charged": {}, "footprints": {}}
        for einsum, count in zip(self.cascade.all_einsums, self.einsums):
            points = count_points(self.cascade, einsum, full)
            per_point = operator_counts(einsum)
            key = f"init:{einsum.name}" if einsum.initialization else einsum.name
            charged = charged_counts(self.cascade, {op: n * points for op, n in per_point.items()})
            result[key] = {"points": points, **charged}
            for operator, n in per_point.items():
                result["total"][operator] = result["total"].get(operator, 0) + n * points
            for operator, n in charged.items():
                result["total_charged"][operator] = result["total_charged"].get(operator, 0) + n
        for tensor, expr in self.footprints.items():
            result["footprints"][tensor] = int(expr.subs(values))
        return result


def symbolic_counts(cascade: Cascade, batch: bool = True) -> CascadeCounts:
    """Count operator applications and tensor footprints of ``cascade`` symbolically.

    Parameters
    ----------
    batch : bool
        Include the batch ranks (B, H) in the counts; False gives the counts of
        one batch element.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> counts = symbolic_counts(load_library_cascade("attention-3pass"), batch=False)
    >>> counts.total["mac"], counts.total["div"]
    (E*M*P + F*M*P, M*P)
    """
    symbols = rank_symbols(cascade)
    entries = []
    total: dict[str, sympy.Expr] = {}
    for einsum in cascade.all_einsums:
        points = einsum_points(cascade, einsum, symbols, batch)
        operators = {op: n * points for op, n in operator_counts(einsum).items()}
        charged = charged_counts(cascade, operators)
        entries.append(EinsumCount(einsum.name, einsum.initialization, points, operators, charged))
        for operator, count in operators.items():
            total[operator] = total.get(operator, 0) + count
    total = {op: sympy.expand(count) for op, count in total.items()}
    return CascadeCounts(
        cascade=cascade,
        symbols=symbols,
        relations=size_relations(cascade, symbols),
        einsums=tuple(entries),
        total=total,
        total_charged={op: sympy.expand(c) for op, c in charged_counts(cascade, total).items()},
        footprints={tensor: footprint(cascade, tensor, symbols, batch) for tensor in cascade.tensors},
    )


def footprint(cascade: Cascade, tensor: str, symbols: dict[str, sympy.Symbol], batch: bool = True) -> sympy.Expr:
    """Return the elements of ``tensor`` fully materialized; a recurrence stores its iterates 0 to N.

    A tensor over every sub-rank of a partition has the whole rank's
    coordinates (``M`` for ``M1 x M0``), because the partial last tile has no more.
    """
    ranks = list(cascade.tensor_ranks(tensor) if batch else cascade.tensors[tensor])
    iterative = recurrence_positions(cascade).get(tensor)
    total = sympy.Integer(1)
    if iterative is not None:
        rank = cascade.tensors[tensor][iterative]
        ranks.remove(rank)
        total *= symbols[rank] + 1
    for partition in cascade.partitions:
        if all(part in ranks for part in partition.parts):
            total *= symbols[partition.rank]
            for part in partition.parts:
                ranks.remove(part)
    return total * prod(symbols[rank] for rank in ranks)
