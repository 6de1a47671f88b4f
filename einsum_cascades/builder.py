"""Python builder for cascades: the same IR and the same checks as the text language.

Tensors are handles indexed with rank expressions.  An index is a string in
the text syntax (``"m1*M0 + m0"``, ``"m1 : m1 = 0"``) or an :class:`Affine`
object from :meth:`CascadeBuilder.variables`.  Expressions combine with
``+ - * /`` and the functions of this module.  Errors carry the file and line
of the builder call that caused them.

Examples
--------
>>> from einsum_cascades.builder import CascadeBuilder, exp
>>> c = CascadeBuilder("attention-3pass")
>>> c.ranks("B H E F M P"); c.batch("B H")
>>> Q, K, V = c.inputs("Q[e,p]", "K[e,m]", "V[f,m]")
>>> QK, GM, SN, SD, A, AV = c.tensors("QK GM SN SD A AV")
>>> c.outputs("AV[f,p]")
>>> c.einsum(QK["m", "p"], Q["e", "p"] * K["e", "m"])
>>> c.einsum(GM["p"], QK["m", "p"], reduce="max")
>>> c.einsum(SN["m", "p"], exp(QK["m", "p"] - GM["p"]))
>>> c.einsum(SD["p"], SN["m", "p"])
>>> c.einsum(A["m", "p"], SN["m", "p"] / SD["p"])
>>> c.einsum(AV["f", "p"], A["m", "p"] * V["f", "m"])
>>> from einsum_cascades.library import load_library_cascade
>>> c.build().einsums == load_library_cascade("attention-3pass").einsums
True
"""

from __future__ import annotations

import math
import sys
from typing import Callable, Iterable

from einsum_cascades.checks import Draft, build_cascade, make_einsum
from einsum_cascades.errors import CascadeError
from einsum_cascades.expressions import ExpressionParser, ParseContext, ReduceAction, exp_of
from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Cascade,
    Condition,
    Constant,
    Expr,
    Index,
    Iteration,
    OperatorDef,
    Partition,
    RankSize,
    Reference,
    SourcePosition,
    Term,
)
from einsum_cascades.lexer import Line
from einsum_cascades.operators import default_merge

_MERGE_NAMES = {
    "intersection": "intersection", "∩": "intersection", "&": "intersection",
    "union": "union", "∪": "union", "U": "union",
    "one_sided": "one_sided", "←": "one_sided", "<-": "one_sided",
    "pass_through": "pass_through", "1": "pass_through",
}
_REDUCE_NAMES = {"sum": "add", "add": "add", "+": "add", "max": "max", "min": "min", "mul": "mul", "*": "mul"}
_POPULATE_NAMES = {None: None, "=": None, "+=": "add", "add": "add", "max": "max", "max=": "max", "min": "min",
                   "min=": "min"}


def _caller(depth: int = 2) -> SourcePosition:
    """Position of the user's call: the first frame outside this module."""
    frame = sys._getframe(depth)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame is None:
        return SourcePosition("<builder>", 1, 1)
    return SourcePosition(frame.f_code.co_filename, frame.f_lineno, 1)


class Affine:
    """A rank expression built in Python: ``m1 * M0 + m0``; comparisons give filters."""

    def __init__(self, expr: AffineExpr):
        self.expr = expr

    @staticmethod
    def _of(value: "Affine | int") -> AffineExpr:
        if isinstance(value, Affine):
            return value.expr
        if isinstance(value, int) and not isinstance(value, bool):
            return AffineExpr((Term(value, ()),))
        raise CascadeError(f"a rank expression combines rank variables, rank sizes and integers, not {value!r}", _caller())

    def __add__(self, other):
        return Affine(AffineExpr(self.expr.terms + self._of(other).terms))

    __radd__ = __add__

    def __sub__(self, other):
        negated = tuple(Term(-t.coefficient, t.factors) for t in self._of(other).terms)
        return Affine(AffineExpr(self.expr.terms + negated))

    def __rsub__(self, other):
        return Affine(self._of(other)) - self

    def __mul__(self, other):
        other_expr = self._of(other)
        terms = []
        for left in self.expr.terms:
            for right in other_expr.terms:
                factors = left.factors + right.factors
                if len([f for f in factors if f.islower()]) > 1:
                    raise CascadeError("a rank expression is affine: a term may hold one rank variable", _caller())
                terms.append(Term(left.coefficient * right.coefficient, factors))
        return Affine(AffineExpr(tuple(terms)))

    __rmul__ = __mul__

    def _compare(self, operator: str, other) -> Condition:
        return Condition(self.expr, operator, self._of(other))

    def __le__(self, other):
        return self._compare("<=", other)

    def __lt__(self, other):
        return self._compare("<", other)

    def __ge__(self, other):
        return self._compare(">=", other)

    def __gt__(self, other):
        return self._compare(">", other)

    def eq(self, other) -> Condition:
        """Return the filter ``self = other`` (``==`` keeps its Python meaning)."""
        return self._compare("=", other)

    def ne(self, other) -> Condition:
        """Return the filter ``self != other``."""
        return self._compare("!=", other)

    def where(self, *conditions: Condition) -> Index:
        """This rank expression as an index that exists only where every condition holds."""
        return Index(self.expr, tuple(conditions))


class Node:
    """An expression of the right-hand side, wrapping an IR expression."""

    def __init__(self, expr: Expr):
        self.expr = expr

    def _binary(self, operator: str, other, reverse: bool = False) -> "Node":
        other_expr = as_expr(other)
        args = (other_expr, self.expr) if reverse else (self.expr, other_expr)
        return Node(Call(operator, args))

    def __add__(self, other):
        return self._binary("add", other)

    def __radd__(self, other):
        return self._binary("add", other, reverse=True)

    def __sub__(self, other):
        return self._binary("sub", other)

    def __rsub__(self, other):
        return self._binary("sub", other, reverse=True)

    def __mul__(self, other):
        return self._binary("mul", other)

    def __rmul__(self, other):
        return self._binary("mul", other, reverse=True)

    def __truediv__(self, other):
        return self._binary("div", other)

    def __rtruediv__(self, other):
        return self._binary("div", other, reverse=True)

    def merge(self, merge: str) -> "Node":
        """Return the same operator application with another merge.

        The merge is ``intersection`` (∩), ``union`` (∪), ``one_sided`` (←) or
        ``pass_through`` (1).
        """
        if not isinstance(self.expr, Call):
            raise CascadeError("only an operator application has a merge", _caller())
        name = _MERGE_NAMES.get(merge)
        if name is None:
            raise CascadeError(f"unknown merge {merge!r}; valid: {', '.join(sorted(set(_MERGE_NAMES.values())))}", _caller())
        return Node(Call(self.expr.operator, self.expr.args, None if name == default_merge(self.expr.operator) else name))


def as_expr(value) -> Expr:
    """Turn a :class:`Node` or a Python number into an IR expression."""
    if isinstance(value, Node):
        return value.expr
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CascadeError(f"an expression is a tensor access, a number or an operator application, not {value!r}", _caller())
    if isinstance(value, float) and math.isnan(value):
        raise CascadeError("a constant may not be NaN", _caller())
    if isinstance(value, int):
        return Constant(float(value), str(value))
    if math.isinf(value):
        return Constant(value, "inf" if value > 0 else "-inf")
    return Constant(value, repr(value))


def exp(x) -> Node:
    """``e^x``; ``exp(a - b)`` is the fused subtract-then-exp operator, as in the text language."""
    return Node(exp_of(as_expr(x)))


def maximum(a, b) -> Node:
    """``max(a, b)`` as a map action (merge ∪)."""
    return Node(Call("max", (as_expr(a), as_expr(b))))


def minimum(a, b) -> Node:
    """``min(a, b)`` as a map action (merge ∪)."""
    return Node(Call("min", (as_expr(a), as_expr(b))))


def sigmoid(x) -> Node:
    """``σ(x) = 1 / (1 + e^-x)``."""
    return Node(Call("sigmoid", (as_expr(x),)))


class TensorHandle:
    """A tensor name; index it (``Q["e", "p"]``) to get an access, or use it bare for a scalar."""

    def __init__(self, builder: "CascadeBuilder", name: str):
        self.builder = builder
        self.name = name

    def __getitem__(self, indices) -> Node:
        if not isinstance(indices, tuple):
            indices = (indices,)
        position = _caller()
        return Node(Access(self.name, tuple(self.builder._index(item, position) for item in indices), position))

    def access(self) -> Node:
        """Return the tensor with no index (a scalar, or a tensor whose only ranks are batch ranks)."""
        return Node(Access(self.name, (), _caller()))


class CascadeBuilder:
    """Build a :class:`Cascade` statement by statement, as the text language would."""

    def __init__(self, name: str, description: str = ""):
        self.draft = Draft(path="<builder>", name=name, description=description.strip(), start=_caller())
        self.context = ParseContext("<builder>", ranks=self.draft.ranks)

    # -- declarations -------------------------------------------------------

    def ranks(self, names: str | Iterable[str]) -> None:
        """Declare ranks, as ``"B H E F M P"``."""
        for name in _split(names):
            if not name[:1].isupper():
                raise CascadeError(f"rank {name!r} must start with an upper-case letter", _caller())
            if name in self.draft.ranks:
                raise CascadeError(f"rank {name} is declared twice", _caller())
            self.draft.ranks.append(name)

    def batch(self, names: str | Iterable[str]) -> None:
        """Declare the batch ranks: present on every tensor and omitted in indices."""
        for name in _split(names):
            self._require_rank(name)
            self.draft.batch.append(name)

    def partition(self, rank: str, *parts: str) -> None:
        """Split ``rank`` into sub-ranks, outermost first: ``partition("M", "M1", "M0")``."""
        self._require_rank(rank)
        if len(parts) < 2:
            raise CascadeError("a partition needs at least two sub-ranks, as in partition('M', 'M1', 'M0')", _caller())
        self.draft.partitions.append(Partition(rank, tuple(parts)))
        for part in parts:
            if part not in self.draft.ranks:
                self.draft.ranks.append(part)

    def _require_rank(self, name: str) -> None:
        if name not in self.draft.ranks:
            raise CascadeError(f"undeclared rank {name!r}; declared ranks: {' '.join(self.draft.ranks) or '(none)'}", _caller())

    def inputs(self, *declarations: str) -> list[TensorHandle]:
        """Declare input tensors, as ``"Q[e,p]"``, and return their handles."""
        handles = []
        for declaration in declarations:
            name, ranks = self._declaration(declaration)
            self.draft.inputs[name] = ranks
            self.draft.input_positions[name] = _caller()
            handles.append(TensorHandle(self, name))
        return handles

    def outputs(self, *declarations: str) -> None:
        """Declare the output tensors, as ``"AV[f,p]"``."""
        for declaration in declarations:
            name, ranks = self._declaration(declaration)
            self.draft.outputs.append((name, ranks, _caller()))

    def _declaration(self, text: str) -> tuple[str, tuple[str, ...]]:
        name, _, rest = text.partition("[")
        variables = [v.strip() for v in rest.rstrip("]").split(",") if v.strip()]
        ranks = []
        for variable in variables:
            if variable.upper() not in self.draft.ranks:
                raise CascadeError(
                    f"rank variable {variable!r} has no declared rank {variable.upper()!r}; declared ranks: "
                    f"{' '.join(self.draft.ranks)}",
                    _caller(),
                )
            ranks.append(variable.upper())
        return name.strip(), tuple(ranks)

    def tensors(self, names: str | Iterable[str]) -> list[TensorHandle]:
        """Handles for intermediate tensors, as ``"QK GM SN"``."""
        return [TensorHandle(self, name) for name in _split(names)]

    def variables(self, names: str | Iterable[str]) -> list[Affine]:
        """Rank variables (``"m1 m0"``) or rank sizes (``"M0"``) for building rank expressions."""
        return [Affine(AffineExpr((Term(1, (name,)),))) for name in _split(names)]

    def size(self, rank: str) -> Node:
        """Return the size of ``rank`` as a value, as ``E`` in ``SX[p] / E``."""
        return Node(RankSize(rank))

    def operator(
        self,
        name: str,
        function: Callable | None,
        parameters: Iterable[str] = ("x",),
        charged_as: dict[str, int] | str = "mul",
        identity: float | None = None,
        implementation: str | None = None,
    ) -> Callable[..., Node]:
        """Define a user-defined operator and return a function that applies it.

        ``charged_as`` names the built-in operators one application counts as
        (``{"exp": 1, "add": 1}``).  A module-level ``function`` is recorded as
        ``module:function`` so that the printed cascade can import it.
        """
        if implementation is None and function is not None and "<" not in getattr(function, "__qualname__", "<"):
            implementation = f"{function.__module__}:{function.__qualname__}"
        charge = ((charged_as, 1),) if isinstance(charged_as, str) else tuple(charged_as.items())
        definition = OperatorDef(name, tuple(parameters), charge, implementation, identity, function, _caller())
        self.draft.operators.append(definition)
        self.context.operators[name] = definition

        def apply(*args) -> Node:
            return Node(Call(name, tuple(as_expr(arg) for arg in args)))

        return apply

    def iterate(self, variable: str, until: str) -> None:
        """Make ``variable`` iterative, stopping when ``until`` (``"m1 >= M1"``) holds."""
        position = _caller()
        condition = self._filters(until, position)
        if len(condition) != 1:
            raise CascadeError("a stopping condition is one comparison, as 'm1 >= M1'", position)
        if variable.upper() not in self.draft.ranks:
            self.draft.ranks.append(variable.upper())
        self.draft.iteration = Iteration(variable, condition[0])
        self.draft.iteration_position = position

    def reference(self, output: str, function: str, *tensors: str, **options) -> None:
        """Declare the reference definition, as ``reference("AV", "softmax_attention", "Q", "K", "V")``."""
        values = tuple((key, str(value)) for key, value in options.items())
        self.draft.reference = Reference(output, function, tuple(tensors), values, _caller())

    # -- Einsums ------------------------------------------------------------

    def einsum(self, output: Node | TensorHandle, expr, reduce=None, populate: str | None = None) -> None:
        """Add an Einsum of the cascade proper.

        Parameters
        ----------
        output : Node or TensorHandle
            The indexed output tensor (a bare handle for a scalar).
        expr : Node or number
            The right-hand side.
        reduce : str or (str, iterable of str), optional
            The reduction operator (``"max"``) for every rank variable the
            output lacks, or an operator and the variables it reduces.  By
            default those variables are sum-reduced.
        populate : str, optional
            ``"+="``, ``"max="`` or ``"min="`` to combine with the value already there.
        """
        self._add(output, expr, reduce, populate, initialization=False)

    def init(self, output: Node | TensorHandle, expr, reduce=None, populate: str | None = None) -> None:
        """Add an initialization Einsum, evaluated once before the recurrence."""
        self._add(output, expr, reduce, populate, initialization=True)

    def _add(self, output, expr, reduce, populate, initialization: bool) -> None:
        position = _caller()
        if isinstance(output, TensorHandle):
            output = Node(Access(output.name, (), position))
        if not isinstance(output, Node) or not isinstance(output.expr, Access):
            raise CascadeError("the left-hand side of an Einsum is one tensor access, as QK['m', 'p']", position)
        right = as_expr(expr)
        reduces = []
        if reduce is not None:
            operator, variables = (reduce, None) if isinstance(reduce, str) else (reduce[0], tuple(reduce[1]))
            name = _REDUCE_NAMES.get(operator, operator)
            if variables is None:
                probe = make_einsum(output.expr, right, [], None, initialization, position)
                variables = probe.reduced_variables
            reduces = [ReduceAction(name, variables, position)]
        if populate not in _POPULATE_NAMES:
            raise CascadeError(f"unknown populate action {populate!r}; valid: =, +=, max=, min=", position)
        einsum = make_einsum(output.expr, right, reduces, _POPULATE_NAMES[populate], initialization, position)
        (self.draft.initialization if initialization else self.draft.einsums).append(einsum)

    def _index(self, item, position: SourcePosition) -> Index:
        if isinstance(item, Index):
            return item
        if isinstance(item, Affine):
            return Index(item.expr)
        if isinstance(item, int) and not isinstance(item, bool):
            return Index(AffineExpr((Term(item, ()),)))
        if not isinstance(item, str):
            raise CascadeError(f"an index is a rank expression (a string, an Affine or an int), not {item!r}", position)
        line = self._line(item, position)
        parser = ExpressionParser(line, self.context)
        try:
            expr = parser.affine()
            filters = ()
            if line.at(":"):
                line.take()
                filters = parser.filters()
            line.expect_end()
        except CascadeError as error:
            raise CascadeError(f"in index {item!r}: {error.reason}", position) from None
        return Index(expr, filters)

    def _filters(self, text: str, position: SourcePosition) -> tuple[Condition, ...]:
        line = self._line(text, position)
        try:
            conditions = ExpressionParser(line, self.context).filters()
            line.expect_end()
        except CascadeError as error:
            raise CascadeError(f"in condition {text!r}: {error.reason}", position) from None
        return conditions

    @staticmethod
    def _line(text: str, position: SourcePosition) -> Line:
        try:
            return Line(text, position.path, position.line)
        except CascadeError as error:
            raise CascadeError(f"in {text!r}: {error.reason}", position) from None

    def build(self) -> Cascade:
        """Check the statements and return the cascade.

        Raises
        ------
        CascadeError
            On the first problem, with the file and line of the builder call at fault.
        """
        return build_cascade(self.draft)


def _split(names: str | Iterable[str]) -> list[str]:
    return names.replace(",", " ").split() if isinstance(names, str) else list(names)
