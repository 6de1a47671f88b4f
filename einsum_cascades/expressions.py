"""Recursive-descent parsing of Einsum right-hand sides, tensor accesses, rank expressions and filters.

Works on one tokenized line (:class:`einsum_cascades.lexer.Line`); the actions
after ``::`` are parsed by :mod:`einsum_cascades.actions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Condition,
    Constant,
    Expr,
    Index,
    OperatorDef,
    RankSize,
    Term,
)
from einsum_cascades.lexer import Line, Token
from einsum_cascades.operators import BUILTINS

_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass
class ParseContext:
    """Declarations above the current line that the parser uses: ranks and user-defined operators."""

    path: str
    ranks: list[str] = field(default_factory=list)
    operators: dict[str, OperatorDef] = field(default_factory=dict)


class ExpressionParser:
    """Parser for the expression parts of one line."""

    def __init__(self, line: Line, context: ParseContext):
        self.line = line
        self.context = context
        self.placeholder: Token | None = None  # first generic '·' on this line

    # -- rank expressions and filters -------------------------------------

    def affine(self) -> AffineExpr:
        line = self.line
        sign = 1
        if line.at("-"):
            line.take()
            sign = -1
        terms = [self._affine_term(sign)]
        while line.at("+") or line.at("-"):
            sign = 1 if line.take().norm == "+" else -1
            terms.append(self._affine_term(sign))
        return AffineExpr(tuple(terms))

    def _affine_term(self, sign: int) -> Term:
        line = self.line
        coefficient = sign
        factors: list[str] = []
        first = line.peek()
        while True:
            token = line.take()
            if token.kind == "number":
                if not token.text.isdigit():
                    raise CascadeError(f"rank expressions take integers, not {token.text!r}", line.position(token))
                coefficient *= int(token.text)
            elif token.kind == "name" and token.norm not in ("inf", "sigmoid"):
                factors.append(token.text)
            else:
                raise CascadeError(
                    f"expected a rank variable, a rank size or an integer, found {token.text!r}",
                    line.position(token),
                )
            if not line.at("*"):
                break
            line.take()
        variables = [factor for factor in factors if factor.islower()]
        if len(variables) > 1:
            raise CascadeError(
                f"a term of a rank expression may use one rank variable, but {'*'.join(factors)} uses "
                f"{', '.join(variables)}; rank expressions are affine, as m1*M0 + m0",
                line.position(first),
            )
        return Term(coefficient, tuple(factors))

    def filters(self) -> tuple[Condition, ...]:
        """Parse ``comparison {and comparison}``, where a comparison may be chained (``p-W < m <= p``)."""
        found = list(self._comparison_chain())
        while self.line.peek() is not None and self.line.peek().norm == "and":
            self.line.take()
            found.extend(self._comparison_chain())
        return tuple(found)

    def _comparison_chain(self) -> list[Condition]:
        line = self.line
        left = self.affine()
        chain: list[Condition] = []
        while True:
            token = line.peek()
            if token is None or token.norm not in _COMPARISONS:
                if chain:
                    return chain
                found = "end of line" if token is None else repr(token.text)
                raise CascadeError(
                    f"expected a comparison (=, <, <=, >, >=, !=), found {found}", line.position(token)
                )
            line.take()
            right = self.affine()
            chain.append(Condition(left, token.norm, right))
            left = right

    # -- tensor accesses ----------------------------------------------------

    def access(self) -> Access:
        line = self.line
        name = line.expect_name("a tensor name")
        indices: list[Index] = []
        if line.at("["):
            line.take()
            while True:
                expr = self.affine()
                conditions: tuple[Condition, ...] = ()
                if line.at(":"):
                    line.take()
                    conditions = self.filters()
                indices.append(Index(expr, conditions))
                if line.at(","):
                    line.take()
                    continue
                line.expect("]")
                break
        return Access(name.text, tuple(indices), line.position(name))

    # -- right-hand sides ---------------------------------------------------

    def expr(self) -> Expr:
        line = self.line
        left = self._product()
        while line.at("+") or line.at("-"):
            operator = "add" if line.take().norm == "+" else "sub"
            left = Call(operator, (left, self._product()))
        return left

    def _product(self) -> Expr:
        line = self.line
        left = self._unary()
        while line.peek() is not None and line.peek().norm in ("*", "/", "·"):
            token = line.take()
            if token.norm == "·" and self.placeholder is None:
                self.placeholder = token
            operator = {"*": "mul", "/": "div", "·": "·"}[token.norm]
            left = Call(operator, (left, self._unary()))
        return left

    def _unary(self) -> Expr:
        line = self.line
        if line.at("-"):
            token = line.take()
            operand = self._unary()
            if isinstance(operand, Constant):
                text = operand.text[1:] if operand.text.startswith("-") else "-" + operand.text
                return Constant(-operand.value, text)
            raise CascadeError("negation applies only to constants; write 0 - x", line.position(token))
        return self._primary()

    def _primary(self) -> Expr:
        line = self.line
        token = line.peek()
        if token is None:
            raise CascadeError("expected an expression, found end of line", line.position())

        if token.kind == "number":
            line.take()
            return Constant(float(token.text), token.text)
        if token.norm == "(":
            line.take()
            inner = self.expr()
            line.expect(")")
            return inner
        if token.kind != "name":
            raise CascadeError(f"expected an expression, found {token.text!r}", line.position(token))

        following = line.peek(1)
        if token.norm == "inf" and not (following is not None and following.norm in ("[", "(")):
            line.take()
            return Constant(math.inf, "inf")
        if token.text == "e" and following is not None and following.norm in ("^{", "^"):
            line.take()
            opener = line.take()
            if opener.norm == "^":
                line.expect("(")
            inner = self.expr()
            line.expect("}" if opener.norm == "^{" else ")")
            return exp_of(inner)

        if following is not None and following.norm == "(":
            line.take()
            line.take()
            args = [self.expr()]
            while line.at(","):
                line.take()
                args.append(self.expr())
            line.expect(")")
            return self._call(token, args)

        if token.text in self.context.ranks and not (following is not None and following.norm == "["):
            line.take()
            return RankSize(token.text)
        return self.access()

    def _call(self, token: Token, args: list[Expr]) -> Expr:
        name = token.norm
        arity = self.arity(name)
        if arity is None:
            valid = ", ".join(sorted(set(BUILTINS) | set(self.context.operators)))
            raise CascadeError(f"unknown operator {token.text!r}; valid: {valid}, + - * /", self.line.position(token))
        if len(args) != arity:
            raise CascadeError(f"{token.text} takes {arity} argument(s), got {len(args)}", self.line.position(token))
        if name == "exp":
            return exp_of(args[0])
        return Call(name, tuple(args))

    def arity(self, name: str) -> int | None:
        """Return the number of operands of a built-in or declared operator, or None if it is unknown."""
        if name in BUILTINS:
            return BUILTINS[name].arity
        definition = self.context.operators.get(name)
        return definition.arity if definition is not None else None


def exp_of(inner: Expr) -> Expr:
    """Build ``exp(inner)``, fusing ``exp(a - b)`` into the subtract-then-exp operator."""
    if isinstance(inner, Call) and inner.operator == "sub" and inner.merge is None:
        return Call("sub_exp", inner.args)
    return Call("exp", (inner,))
