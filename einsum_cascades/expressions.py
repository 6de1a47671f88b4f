"""Recursive-descent parsing of Einsum right-hand sides, rank expressions, filters and actions.

Works on one tokenized line (:class:`einsum_cascades.lexer.Line`).  Map actions
(``:: ∧_k ×(∩)``) are applied to the parsed expression here. They set the
merge of the operator they name, and they give the generic ``·`` of the
FuseMax and EDGE papers its operator.  Reductions are returned as :class:`ReduceAction` for
:func:`einsum_cascades.checks.make_einsum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

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
    SourcePosition,
    Term,
)
from einsum_cascades.lexer import Line, Token
from einsum_cascades.operators import BUILTINS, default_merge

# Spellings of operators inside map and reduce actions.
_ACTION_OPERATORS = {"*": "mul", "+": "add", "-": "sub", "/": "div", "sum": "add", "sigmoid": "sigmoid"}
_REDUCE_SPELLINGS = {"+": "add", "sum": "add", "add": "add", "max": "max", "min": "min", "*": "mul", "mul": "mul"}
_MERGE_SPELLINGS = {"∩": "intersection", "∪": "union", "U": "union", "←": "one_sided", "1": "pass_through"}
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass
class ParseContext:
    """Declarations above the current line that the parser uses: ranks and user-defined operators."""

    path: str
    ranks: list[str] = field(default_factory=list)
    operators: dict[str, OperatorDef] = field(default_factory=dict)


@dataclass(frozen=True)
class ReduceAction:
    """A reduce action as written: its operator, the rank variables it folds, and its position."""

    operator: str
    variables: tuple[str, ...]
    position: SourcePosition


@dataclass(frozen=True)
class MapAction:
    """A map action as written: ``∧_k ×(∩)``."""

    operator: str
    merge: str
    variables: tuple[str, ...]
    position: SourcePosition


class ExpressionParser:
    """Parser for the expression parts of one line."""

    def __init__(self, line: Line, context: ParseContext):
        self.line = line
        self.context = context
        self.placeholder: Token | None = None  # first generic '·' seen on this line

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
        arity = self._arity(name)
        if arity is None:
            valid = ", ".join(sorted(set(BUILTINS) | set(self.context.operators)))
            raise CascadeError(f"unknown operator {token.text!r}; valid: {valid}, + - * /", self.line.position(token))
        if len(args) != arity:
            raise CascadeError(f"{token.text} takes {arity} argument(s), got {len(args)}", self.line.position(token))
        if name == "exp":
            return exp_of(args[0])
        return Call(name, tuple(args))

    def _arity(self, name: str) -> int | None:
        if name in BUILTINS:
            return BUILTINS[name].arity
        definition = self.context.operators.get(name)
        return definition.arity if definition is not None else None

    # -- actions after '::' -------------------------------------------------

    def actions(self) -> tuple[list[MapAction], list[ReduceAction]]:
        line = self.line
        maps: list[MapAction] = []
        reduces: list[ReduceAction] = []
        while not line.done():
            token = line.peek()
            if token.norm in ("∧", "^"):
                maps.append(self._map_action())
            elif token.norm == "∨" or (token.kind == "name" and token.text.startswith("v_")):
                reduces.append(self._paper_reduce())
            else:
                reduces.append(self._short_reduce())
        return maps, reduces

    def _subscript(self, marker: Token, suffix: str | None) -> tuple[str, ...]:
        """Read the rank variables after ``∨_``/``∧_``: ``_m0`` or ``_{m1, m0}``; ``suffix`` is the rest of ``v_...``."""
        line = self.line
        if suffix is None:
            token = line.peek()
            if token is None or token.kind != "name" or not token.text.startswith("_"):
                raise CascadeError(
                    f"expected '_' and the rank variable after {marker.text!r}, as in {marker.text}_m0",
                    line.position(token),
                )
            line.take()
            suffix = token.text[1:]
        if suffix:
            return (suffix,)
        if line.at("{"):
            line.take()
            names = [line.expect_name("a rank variable").text]
            while line.at(","):
                line.take()
                names.append(line.expect_name("a rank variable").text)
            line.expect("}")
            return tuple(names)
        raise CascadeError(
            "write the reduced rank after the underscore with no space, as in ∨_m0", line.position(marker)
        )

    def _merge(self) -> str:
        line = self.line
        line.expect("(")
        token = line.take()
        merge = _MERGE_SPELLINGS.get(token.norm)
        if token.norm == "<" and line.at("-"):
            line.take()
            merge = "one_sided"
        if merge is None:
            raise CascadeError(
                f"unknown merge operator {token.text!r}; use ∩ (or &), ∪ (or U), ← (or <-) or 1",
                line.position(token),
            )
        line.expect(")")
        return merge

    def _operator_name(self, what: str) -> Token:
        token = self.line.take()
        if token.kind not in ("name", "op") or token.norm in ("(", ")", ",", "::"):
            raise CascadeError(f"expected {what}, found {token.text!r}", self.line.position(token))
        return token

    def _map_action(self) -> MapAction:
        line = self.line
        marker = line.take()
        variables = self._subscript(marker, None) if line.peek() is not None and line.peek().text.startswith("_") else ()
        token = self._operator_name("the operator of the map action")
        operator = _ACTION_OPERATORS.get(token.norm, token.norm)
        if self._arity(operator) is None:
            valid = ", ".join(sorted(set(BUILTINS) | set(self.context.operators)))
            raise CascadeError(f"unknown operator {token.text!r} in map action; valid: {valid}", line.position(token))
        merge = self._merge()
        return MapAction(operator, merge, variables, line.position(marker))

    def _paper_reduce(self) -> ReduceAction:
        line = self.line
        marker = line.take()
        if marker.norm == "∨":
            following = line.peek()
            if following is not None and following.text == "_" and line.peek(1) is not None and line.peek(1).kind == "name":
                raise CascadeError(
                    "write the reduced rank after the underscore with no space, as in ∨_m0", line.position(marker)
                )
            variables = self._subscript(marker, None)
        else:
            variables = self._subscript(marker, marker.text[2:])
        operator = self._reduce_operator()
        merge_token = line.peek(1)
        merge = self._merge()
        if merge != "union":
            raise CascadeError(
                f"a reduction merges the values of one output coordinate with ∪ (or U), not {merge_token.text!r}",
                line.position(merge_token),
            )
        return ReduceAction(operator, variables, line.position(marker))

    def _short_reduce(self) -> ReduceAction:
        line = self.line
        start = line.peek()
        operator = self._reduce_operator()
        line.expect("(")
        variables: list[str] = []
        while not line.at(")"):
            variables.append(line.expect_name("a rank variable").text)
            if line.at(","):
                line.take()
        line.expect(")")
        return ReduceAction(operator, tuple(variables), line.position(start))

    def _reduce_operator(self) -> str:
        line = self.line
        token = line.take()
        operator = _REDUCE_SPELLINGS.get(token.norm)
        if operator is None:
            definition = self.context.operators.get(token.text)
            if definition is not None and definition.arity == 2:
                operator = definition.name
        if operator is None:
            user = [name for name, d in self.context.operators.items() if d.arity == 2]
            valid = ", ".join(sorted(set(_REDUCE_SPELLINGS) | set(user)))
            raise CascadeError(f"unknown reduction operator {token.text!r}; valid: {valid}", line.position(token))
        return operator

    # -- applying map actions ---------------------------------------------

    def apply_maps(self, expr: Expr, maps: list[MapAction]) -> Expr:
        """Give ``·`` its operator and set the merges that the map actions name."""
        if self.placeholder is not None and not maps:
            raise CascadeError(
                "'·' needs a map action that names its operator, as in ':: ∧_k ×(∩)'",
                self.line.position(self.placeholder),
            )
        for action in maps:
            if self._arity(action.operator) != 2 and self.placeholder is not None and action is maps[0]:
                raise CascadeError(
                    f"'·' combines two operands, but the map action names {action.operator!r}, which takes "
                    f"{self._arity(action.operator)}",
                    action.position,
                )
        placeholder_operator = maps[0].operator if maps else None
        expr = _replace_placeholder(expr, placeholder_operator)
        for action in maps:
            expr, found = _set_merge(expr, action.operator, action.merge)
            if not found:
                raise CascadeError(
                    f"the map action names {action.operator!r}, but the expression applies no {action.operator!r}",
                    action.position,
                )
        return expr


def exp_of(inner: Expr) -> Expr:
    """Build ``exp(inner)``, fusing ``exp(a - b)`` into the subtract-then-exp operator."""
    if isinstance(inner, Call) and inner.operator == "sub" and inner.merge is None:
        return Call("sub_exp", inner.args)
    return Call("exp", (inner,))


def _replace_placeholder(expr: Expr, operator: str | None) -> Expr:
    if not isinstance(expr, Call):
        return expr
    args = tuple(_replace_placeholder(arg, operator) for arg in expr.args)
    if expr.operator == "·":
        return Call(operator, args)
    return replace(expr, args=args)


def _set_merge(expr: Expr, operator: str, merge: str) -> tuple[Expr, bool]:
    if not isinstance(expr, Call):
        return expr, False
    found = False
    args = []
    for arg in expr.args:
        new_arg, arg_found = _set_merge(arg, operator, merge)
        args.append(new_arg)
        found = found or arg_found
    result = replace(expr, args=tuple(args))
    if expr.operator == operator:
        found = True
        result = replace(result, merge=None if merge == default_merge(operator) else merge)
    return result, found
