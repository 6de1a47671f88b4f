"""Parsing of the actions after ``::``, and applying map actions to an expression.

A map action (``∧_k ×(∩)``) sets the merge of every application of the
operator it names, and gives the generic ``·`` of the FuseMax and EDGE papers
its operator.  Reduce actions (``∨_m0 max(∪)``, ``max(m0)``) are returned as
:class:`ReduceAction` for :func:`einsum_cascades.checks.make_einsum`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from einsum_cascades.errors import CascadeError
from einsum_cascades.expressions import ExpressionParser
from einsum_cascades.ir import Call, Expr, SourcePosition
from einsum_cascades.lexer import Token
from einsum_cascades.operators import BUILTINS, default_merge

# Spellings of operators inside map and reduce actions.
_ACTION_OPERATORS = {"*": "mul", "+": "add", "-": "sub", "/": "div", "sum": "add", "sigmoid": "sigmoid"}
_REDUCE_SPELLINGS = {"+": "add", "sum": "add", "add": "add", "max": "max", "min": "min", "*": "mul", "mul": "mul"}
_MERGE_SPELLINGS = {"∩": "intersection", "∪": "union", "U": "union", "←": "one_sided", "1": "pass_through"}


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


class ActionParser:
    """Parser for the actions after ``::`` on the line an :class:`ExpressionParser` is reading."""

    def __init__(self, expressions: ExpressionParser):
        self.expressions = expressions
        self.line = expressions.line
        self.context = expressions.context

    def _arity(self, name: str) -> int | None:
        return self.expressions.arity(name)

    def parse(self) -> tuple[list[MapAction], list[ReduceAction]]:
        """Parse the actions up to the end of the line: map actions, then reduce actions as written."""
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
        placeholder = self.expressions.placeholder
        if placeholder is not None and not maps:
            raise CascadeError(
                "'·' needs a map action that names its operator, as in ':: ∧_k ×(∩)'",
                self.line.position(placeholder),
            )
        for action in maps:
            if self._arity(action.operator) != 2 and placeholder is not None and action is maps[0]:
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
