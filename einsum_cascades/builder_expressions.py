"""Expressions of the Python builder: rank expressions (:class:`Affine`) and right-hand sides (:class:`Node`).

Both wrap the IR of :mod:`einsum_cascades.ir`.  Errors name the file and line
of the user's call, the first stack frame outside the builder modules.
"""

from __future__ import annotations

import math
import sys

from einsum_cascades.errors import CascadeError
from einsum_cascades.expressions import exp_of
from einsum_cascades.ir import AffineExpr, Call, Condition, Constant, Expr, Index, SourcePosition, Term
from einsum_cascades.operators import default_merge

_BUILDER_MODULES = ("einsum_cascades.builder", __name__)

_MERGE_NAMES = {
    "intersection": "intersection", "∩": "intersection", "&": "intersection",
    "union": "union", "∪": "union", "U": "union",
    "one_sided": "one_sided", "←": "one_sided", "<-": "one_sided",
    "pass_through": "pass_through", "1": "pass_through",
}


def caller_position(depth: int = 2) -> SourcePosition:
    """Return the position of the user's call: the first stack frame outside the builder modules."""
    frame = sys._getframe(depth)
    while frame is not None and frame.f_globals.get("__name__") in _BUILDER_MODULES:
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
        raise CascadeError(f"a rank expression combines rank variables, rank sizes and integers, not {value!r}", caller_position())

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
                    raise CascadeError("a rank expression is affine: a term may hold one rank variable", caller_position())
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
            raise CascadeError("only an operator application has a merge", caller_position())
        name = _MERGE_NAMES.get(merge)
        if name is None:
            raise CascadeError(f"unknown merge {merge!r}; valid: {', '.join(sorted(set(_MERGE_NAMES.values())))}", caller_position())
        return Node(Call(self.expr.operator, self.expr.args, None if name == default_merge(self.expr.operator) else name))


def as_expr(value) -> Expr:
    """Turn a :class:`Node` or a Python number into an IR expression."""
    if isinstance(value, Node):
        return value.expr
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CascadeError(f"an expression is a tensor access, a number or an operator application, not {value!r}", caller_position())
    if isinstance(value, float) and math.isnan(value):
        raise CascadeError("a constant may not be NaN", caller_position())
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


