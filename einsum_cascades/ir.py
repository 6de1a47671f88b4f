"""Intermediate representation of Extended-Einsum cascades.

A cascade is a list of Einsums over named ranks.  Each Einsum writes one output
tensor access from an expression tree of tensor accesses, constants, rank sizes
and operator calls, and folds the values that collide on one output coordinate
with a reduction operator.  Ranks may be partitioned (``M = M1 x M0``) and one
rank variable may be iterative (``RM[m1+1, p] = max(RM[m1, p], LM[m1, p])``), in
which case initialization Einsums give the first iterate and a stopping
condition ends the recurrence.

Rank names are upper case (``M``, ``M1``); the rank variable that walks a rank is
the same name in lower case (``m``, ``m1``).  A rank's name doubles as its size.
The IR is plain frozen data with no notion of hardware.  Source positions
never take part in equality, so a parsed cascade equals one built in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

# Merge operators of a map action: which points of the iteration space are visited.
MERGES = ("intersection", "union", "one_sided", "pass_through")

# Comparison operators of filters and stopping conditions.
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class SourcePosition:
    """Line and column (both 1-based) of a construct in a cascade file or Python source."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Term:
    """One product in an affine rank expression: ``coefficient * factor1 * factor2 ...``.

    Factors are rank variables (lower case, e.g. ``m1``) or rank sizes (upper
    case, e.g. ``M0``).  A term with no factors is a constant; a term has at
    most one rank variable, so the expression stays affine.
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
    def sizes(self) -> tuple[str, ...]:
        """Rank sizes (upper-case factors) the expression refers to."""
        seen: list[str] = []
        for term in self.terms:
            for factor in term.factors:
                if not factor.islower() and factor not in seen:
                    seen.append(factor)
        return tuple(seen)

    @property
    def single_variable(self) -> str | None:
        """The rank variable when the expression is exactly one bare variable."""
        if len(self.terms) == 1 and self.terms[0].coefficient == 1:
            factors = self.terms[0].factors
            if len(factors) == 1 and factors[0].islower():
                return factors[0]
        return None

    def offset_from(self, variable: str) -> int | None:
        """Return ``c`` when the expression is ``variable + c`` for an integer ``c``, else None.

        Examples
        --------
        >>> AffineExpr((Term(1, ("m1",)), Term(1, ()))).offset_from("m1")
        1
        """
        offset = 0
        seen = False
        for term in self.terms:
            if term.factors == (variable,) and term.coefficient == 1 and not seen:
                seen = True
            elif not term.factors:
                offset += term.coefficient
            else:
                return None
        return offset if seen else None

    def evaluate(self, values: dict[str, int]) -> int:
        """Evaluate with rank-variable coordinates and rank sizes taken from ``values``."""
        total = 0
        for term in self.terms:
            product = term.coefficient
            for factor in term.factors:
                product *= values[factor]
            total += product
        return total


def variable_expr(variable: str) -> AffineExpr:
    """Return the affine expression made of one bare rank variable."""
    return AffineExpr((Term(1, (variable,)),))


@dataclass(frozen=True)
class Condition:
    """A comparison of two affine expressions, such as ``m1 = 0`` or ``m1*M0 + m0 <= p``.

    ``left`` may be given as a rank-variable name, which stands for that bare
    variable.
    """

    left: AffineExpr
    operator: str  # one of COMPARISONS
    right: AffineExpr

    def __post_init__(self) -> None:
        if isinstance(self.left, str):
            object.__setattr__(self, "left", variable_expr(self.left))

    @property
    def variable(self) -> str | None:
        """The rank variable when the left side is one bare variable (``m1`` in ``m1 >= M1``)."""
        return self.left.single_variable

    @property
    def bound(self) -> AffineExpr:
        """The right side of the comparison."""
        return self.right

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.left.variables + self.right.variables))


@dataclass(frozen=True)
class Index:
    """One index position of a tensor access: an affine expression and optional filters.

    Every filter must hold for the coordinate to exist in this access.  On an
    operand, filters restrict the data space (``K[e, m : m <= p]``).  On an
    output, they restrict the points written (``RM[m1 : m1 = 0, p]``).
    """

    expr: AffineExpr
    filters: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if self.filters is None:
            object.__setattr__(self, "filters", ())
        elif isinstance(self.filters, Condition):
            object.__setattr__(self, "filters", (self.filters,))

    @property
    def condition(self) -> Condition | None:
        """The first filter, or None; kept for code written when an index had at most one."""
        return self.filters[0] if self.filters else None


@dataclass(frozen=True)
class Access:
    """A tensor access such as ``BK[e, m1, m0]`` or ``K[e, m1*M0+m0]``."""

    tensor: str
    indices: tuple[Index, ...]
    position: SourcePosition | None = field(default=None, compare=False)

    @property
    def variables(self) -> tuple[str, ...]:
        """Rank variables of the index expressions (filters excluded), in order of appearance."""
        seen: list[str] = []
        for index in self.indices:
            for variable in index.expr.variables:
                if variable not in seen:
                    seen.append(variable)
        return tuple(seen)

    @property
    def filters(self) -> tuple[Condition, ...]:
        return tuple(condition for index in self.indices for condition in index.filters)


@dataclass(frozen=True)
class Constant:
    """A literal value; ``text`` is its ASCII spelling (``-inf``, ``0``, ``1e-05``)."""

    value: float
    text: str


@dataclass(frozen=True)
class RankSize:
    """The size of a rank used as a value, as ``E`` in ``MU[p] = SX[p] / E``."""

    rank: str


@dataclass(frozen=True)
class Call:
    """An operator applied to argument expressions, e.g. ``mul(Q, BK)`` or ``sub_exp(BQK, RM)``.

    ``merge`` is the merge operator of this map action (one of ``MERGES``), or
    None for the operator's default merge.
    """

    operator: str
    args: tuple["Expr", ...]
    merge: str | None = None


Expr = Union[Access, Constant, RankSize, Call]


@dataclass(frozen=True)
class Einsum:
    """One Extended Einsum: ``output = expr`` with a reduction over the ranks the output lacks.

    ``reduce_operator`` folds the values that land on one output coordinate
    (``add`` by default, because the FuseMax paper's shorthand leaves a sum implicit).
    ``reduced_variables`` lists the rank variables that appear on the right but
    not on the left.  ``populate`` is the populate action: None writes the
    value, ``add``/``max``/``min`` combine it with the value already there.
    """

    output: Access
    expr: Expr
    reduce_operator: str
    reduced_variables: tuple[str, ...]
    initialization: bool = False
    position: SourcePosition | None = field(default=None, compare=False)
    populate: str | None = None

    @property
    def name(self) -> str:
        """Name of the Einsum, which is the name of the tensor it writes."""
        return self.output.tensor

    @property
    def accesses(self) -> tuple[Access, ...]:
        """Every tensor read on the right-hand side, in reading order."""
        found: list[Access] = []
        collect_accesses(self.expr, found)
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

    @property
    def filters(self) -> tuple[Condition, ...]:
        """Filters of the output and of every operand access."""
        found = list(self.output.filters)
        for access in self.accesses:
            found.extend(access.filters)
        return tuple(found)


def collect_accesses(expr: Expr, found: list[Access]) -> None:
    """Append every tensor access in ``expr`` to ``found``, left to right."""
    if isinstance(expr, Access):
        found.append(expr)
    elif isinstance(expr, Call):
        for arg in expr.args:
            collect_accesses(arg, found)


def collect_calls(expr: Expr, found: list[Call]) -> None:
    """Append every operator call in ``expr`` to ``found``, outermost first."""
    if isinstance(expr, Call):
        found.append(expr)
        for arg in expr.args:
            collect_calls(arg, found)


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
class OperatorDef:
    """A user-defined compute operator.

    ``charge`` lists the built-in operators one application is charged as,
    with their counts (``(("exp", 1), ("add", 1))``); the symbolic counts and
    hardware models use it.  ``implementation`` names a Python function as
    ``module:function``; ``function`` is the callable itself when the cascade
    was built in Python.  A binary operator with an ``identity`` may also
    serve as a reduction.
    """

    name: str
    parameters: tuple[str, ...]
    charge: tuple[tuple[str, int], ...]
    implementation: str | None = None
    identity: float | None = None
    function: Callable | None = field(default=None, compare=False, repr=False)
    position: SourcePosition | None = field(default=None, compare=False)

    @property
    def arity(self) -> int:
        return len(self.parameters)


@dataclass(frozen=True)
class Reference:
    """The reference definition a cascade's output is checked against.

    ``function`` names an entry of ``einsum_cascades.references``.  ``tensors``
    are its positional tensor arguments.  ``options`` are its keyword
    arguments as written: rank names, tensor names, operator names, words or
    numbers.
    """

    output: str
    function: str
    tensors: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()
    position: SourcePosition | None = field(default=None, compare=False)


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
    source: str = field(default="<string>", compare=False)
    operators: tuple[OperatorDef, ...] = ()
    reference: Reference | None = None

    def einsum(self, name: str) -> Einsum:
        """Return the (non-initialization) Einsum that writes tensor ``name``."""
        for einsum in self.einsums:
            if einsum.name == name:
                return einsum
        known = ", ".join(e.name for e in self.einsums)
        raise KeyError(f"cascade {self.name!r} has no Einsum {name!r}; Einsums: {known}")

    @property
    def all_einsums(self) -> tuple[Einsum, ...]:
        """Initialization Einsums, then the cascade proper."""
        return self.initialization + self.einsums

    def operator(self, name: str) -> OperatorDef | None:
        """Return the user-defined operator called ``name``, or None."""
        for definition in self.operators:
            if definition.name == name:
                return definition
        return None

    def partition_of(self, rank: str) -> Partition | None:
        """Return the partition that ``rank`` belongs to, as the whole or as a part."""
        for partition in self.partitions:
            if rank == partition.rank or rank in partition.parts:
                return partition
        return None

    def tensor_ranks(self, tensor: str) -> tuple[str, ...]:
        """Ranks of a tensor with the batch ranks first."""
        return self.batch_ranks + self.tensors[tensor]
