"""Intermediate representation of Extended-Einsum cascades.

A cascade is a list of Einsums over named ranks.  Each Einsum writes one output
tensor access from an expression tree of tensor accesses, constants and operator
calls, and folds the values that collide on one output coordinate with a
reduction operator.  Ranks may be partitioned (``M = M1 x M0``) and one rank
variable may be iterative (``RM[m1+1, p] = max(RM[m1, p], LM[m1, p])``), in which
case initialization Einsums give the first iterate and a stopping condition ends
the recurrence.

Rank names are upper case (``M``, ``M1``); the rank variable that walks a rank is
the same name in lower case (``m``, ``m1``).  A rank's name doubles as its size.
The IR is plain frozen data: it knows nothing about hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class SourcePosition:
    """Line and column (both 1-based) of a construct in a cascade file."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Term:
    """One product in an affine rank expression: ``coefficient * factor1 * factor2 ...``.

    Factors are rank variables (lower case, e.g. ``m1``) or rank sizes (upper
    case, e.g. ``M0``).  A term with no factors is a constant.
    """

    coefficient: int
    factors: tuple[str, ...] = ()

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f for f in self.factors if f.islower())


@dataclass(frozen=True)
class AffineExpr:
    """A sum of terms, such as ``m1*M0 + m0`` or ``m1 + 1`` or ``M1``."""

    terms: tuple[Term, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        seen: list[str] = []
        for term in self.terms:
            for variable in term.variables:
                if variable not in seen:
                    seen.append(variable)
        return tuple(seen)

    @property
    def single_variable(self) -> str | None:
        """The rank variable when the expression is exactly one bare variable."""
        if len(self.terms) == 1 and self.terms[0].coefficient == 1:
            factors = self.terms[0].factors
            if len(factors) == 1 and factors[0].islower():
                return factors[0]
        return None

    def evaluate(self, values: dict[str, int]) -> int:
        """Evaluate with rank-variable coordinates and rank sizes taken from ``values``."""
        total = 0
        for term in self.terms:
            product = term.coefficient
            for factor in term.factors:
                product *= values[factor]
            total += product
        return total


@dataclass(frozen=True)
class Condition:
    """A comparison of a rank variable with an affine expression (``m1 = 0``, ``m <= p``)."""

    variable: str
    operator: str  # one of "=", "<", "<=", ">", ">=", "!="
    bound: AffineExpr


@dataclass(frozen=True)
class Index:
    """One index position of a tensor access: an affine expression with an optional filter."""

    expr: AffineExpr
    condition: Condition | None = None


@dataclass(frozen=True)
class Access:
    """A tensor access such as ``BK[e, m1, m0]`` or ``K[e, m1*M0+m0]``."""

    tensor: str
    indices: tuple[Index, ...]
    position: SourcePosition | None = field(default=None, compare=False)

    @property
    def variables(self) -> tuple[str, ...]:
        seen: list[str] = []
        for index in self.indices:
            for variable in index.expr.variables:
                if variable not in seen:
                    seen.append(variable)
        return tuple(seen)


@dataclass(frozen=True)
class Constant:
    """A literal value; ``-inf`` and ``inf`` are allowed."""

    value: float
    text: str


@dataclass(frozen=True)
class Call:
    """An operator applied to argument expressions, e.g. ``mul(Q, BK)`` or ``sub_exp(BQK, RM)``."""

    operator: str
    args: tuple["Expr", ...]


Expr = Union[Access, Constant, Call]


@dataclass(frozen=True)
class Einsum:
    """One Extended Einsum: ``output = expr`` with a reduction over the ranks the output lacks.

    ``reduce_operator`` folds the values that land on one output coordinate
    (``add`` by default, as the paper's shorthand leaves a sum implicit).
    ``reduced_variables`` lists the rank variables that appear on the right but
    not on the left.
    """

    output: Access
    expr: Expr
    reduce_operator: str
    reduced_variables: tuple[str, ...]
    initialization: bool = False
    position: SourcePosition | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """Name of the Einsum, which is the name of the tensor it writes."""
        return self.output.tensor

    @property
    def accesses(self) -> tuple[Access, ...]:
        """Every tensor read on the right-hand side, in reading order."""
        found: list[Access] = []
        _collect_accesses(self.expr, found)
        return tuple(found)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the tensors read, without repetition."""
        names: list[str] = []
        for access in self.accesses:
            if access.tensor not in names:
                names.append(access.tensor)
        return tuple(names)

    @property
    def output_variables(self) -> tuple[str, ...]:
        return self.output.variables

    @property
    def variables(self) -> tuple[str, ...]:
        """Rank variables of the iteration space: the output's, then the reduced ones."""
        ordered = list(self.output.variables)
        for access in self.accesses:
            for variable in access.variables:
                if variable not in ordered:
                    ordered.append(variable)
        return tuple(ordered)


def _collect_accesses(expr: Expr, found: list[Access]) -> None:
    if isinstance(expr, Access):
        found.append(expr)
    elif isinstance(expr, Call):
        for arg in expr.args:
            _collect_accesses(arg, found)


@dataclass(frozen=True)
class Partition:
    """A rank split into sub-ranks, outermost first: ``M = M1 x M0`` means ``m = m1*M0 + m0``.

    The innermost sub-rank's size is a free parameter (chosen by a mapping);
    the others follow by ceiling division, so a last partial tile exists when
    the rank is not a multiple of the tile.
    """

    rank: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Iteration:
    """An iterative rank variable and the condition that stops the recurrence."""

    variable: str
    stop: Condition


@dataclass(frozen=True)
class Cascade:
    """A validated cascade of Extended Einsums.

    ``ranks`` lists every rank name, partition sub-ranks included.
    ``batch_ranks`` are present on every tensor but omitted in writing
    (batch ``B`` and heads ``H`` in attention).  ``tensors`` maps each tensor to
    its rank names in declaration order, batch ranks excluded.
    """

    name: str
    description: str
    ranks: tuple[str, ...]
    batch_ranks: tuple[str, ...]
    partitions: tuple[Partition, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: dict[str, tuple[str, ...]]
    initialization: tuple[Einsum, ...]
    einsums: tuple[Einsum, ...]
    iteration: Iteration | None = None
    source: str = "<string>"

    def einsum(self, name: str) -> Einsum:
        """Return the (non-initialization) Einsum that writes tensor ``name``."""
        for einsum in self.einsums:
            if einsum.name == name:
                return einsum
        known = ", ".join(e.name for e in self.einsums)
        raise KeyError(f"cascade {self.name!r} has no Einsum {name!r}; Einsums: {known}")

    def partition_of(self, rank: str) -> Partition | None:
        """Return the partition that ``rank`` belongs to, as the whole or as a part."""
        for partition in self.partitions:
            if rank == partition.rank or rank in partition.parts:
                return partition
        return None

    def tensor_ranks(self, tensor: str) -> tuple[str, ...]:
        """Ranks of a tensor with the batch ranks first."""
        return self.batch_ranks + self.tensors[tensor]
