"""Printer for cascades: text that parses back into an equal cascade.

Two spellings are available: ASCII (``*``, ``/``, ``exp(a - b)``,
``:: max(m0)``, ``iterate m1 until m1 >= M1``) and the FuseMax paper's Unicode
(``×``, ``÷``, ``e^{a − b}``, ``:: ∨_m0 max(∪)``, ``⋄ : m1 ≥ M1``).  The
printed form of the IR the parser or the builder makes parses back equal to
it; an IR assembled by hand with ``exp`` of a difference prints as the fused
subtract-then-exp, which is what the parser would have made of it.
"""

from __future__ import annotations

from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Cascade,
    Condition,
    Constant,
    Einsum,
    Expr,
    Index,
    OperatorDef,
    RankSize,
    Reference,
    collect_calls,
)

_ASCII = {"mul": "*", "div": "/", "add": "+", "sub": "-", "<=": "<=", ">=": ">=", "!=": "!=", "minus": "-"}
_UNICODE = {"mul": "×", "div": "÷", "add": "+", "sub": "−", "<=": "≤", ">=": "≥", "!=": "≠", "minus": "−"}
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2}
_MERGES_ASCII = {"intersection": "&", "union": "U", "one_sided": "<-", "pass_through": "1"}
_MERGES_UNICODE = {"intersection": "∩", "union": "∪", "one_sided": "←", "pass_through": "1"}
_POPULATE = {None: "=", "add": "+=", "max": "max=", "min": "min="}


def format_cascade(cascade: Cascade, unicode: bool = False) -> str:
    """Return the text form of ``cascade``.

    Parameters
    ----------
    cascade : Cascade
        The cascade to print.
    unicode : bool
        Print the FuseMax paper's symbols (``×``, ``e^{…}``, ``∨_m max(∪)``) instead of ASCII.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> text = format_cascade(load_library_cascade("cascade2"))
    >>> print(text.split("einsums:")[1].strip())
    Y = A[k] * B[k]
      X = A[k]
      Z = Y * X
    """
    lines: list[str] = []
    for line in cascade.description.splitlines():
        lines.append(f"# {line}".rstrip())
    lines.append(f"cascade {cascade.name}")
    lines.append("ranks " + " ".join(_declared_ranks(cascade)))
    if cascade.batch_ranks:
        lines.append("batch " + " ".join(cascade.batch_ranks))
    times = " × " if unicode else " x "
    for partition in cascade.partitions:
        lines.append(f"partition {partition.rank} = {times.join(partition.parts)}")
    if cascade.iteration is not None:
        stop = format_condition(cascade.iteration.stop, unicode)
        lines.append(f"⋄ : {stop}" if unicode else f"iterate {cascade.iteration.variable} until {stop}")
    for definition in cascade.operators:
        lines.append(format_operator(definition))
    if cascade.inputs:
        lines.append("input " + ", ".join(_declaration(cascade, name) for name in cascade.inputs))
    if cascade.outputs:
        lines.append("output " + ", ".join(_declaration(cascade, name) for name in cascade.outputs))
    if cascade.reference is not None:
        lines.append(format_reference(cascade.reference))
    if cascade.initialization:
        lines.append("init:")
        lines.extend("  " + format_einsum(einsum, unicode) for einsum in cascade.initialization)
    lines.append("einsums:")
    lines.extend("  " + format_einsum(einsum, unicode) for einsum in cascade.einsums)
    return "\n".join(lines) + "\n"


def _declared_ranks(cascade: Cascade) -> list[str]:
    """Ranks for the ``ranks`` line, leaving out those the partition and iterate statements add."""
    added = [part for partition in cascade.partitions for part in partition.parts]
    if cascade.iteration is not None:
        added.append(cascade.iteration.variable.upper())
    candidate = [rank for rank in cascade.ranks if rank not in added]
    simulated = list(candidate)
    for rank in added:
        if rank not in simulated:
            simulated.append(rank)
    return candidate if tuple(simulated) == cascade.ranks else list(cascade.ranks)


def _declaration(cascade: Cascade, name: str) -> str:
    ranks = cascade.tensors[name]
    return f"{name}[{', '.join(rank.lower() for rank in ranks)}]" if ranks else name


def format_operator(definition: OperatorDef) -> str:
    """Return the ``operator`` statement of a user-defined operator."""
    charge = " + ".join(name if count == 1 else f"{count} {name}" for name, count in definition.charge)
    text = f"operator {definition.name}({', '.join(definition.parameters)}) charged as {charge}"
    if definition.implementation is not None:
        text += f" via {definition.implementation}"
    if definition.identity is not None:
        text += f" identity {_number(definition.identity)}"
    return text


def format_reference(reference: Reference) -> str:
    """Return the ``reference`` statement."""
    args = list(reference.tensors) + [f"{key}={value}" for key, value in reference.options]
    return f"reference {reference.output} = {reference.function}({', '.join(args)})"


def _number(value: float) -> str:
    if value == float("inf"):
        return "inf"
    if value == float("-inf"):
        return "-inf"
    return repr(float(value))


def format_einsum(einsum: Einsum, unicode: bool = False) -> str:
    """Return one Einsum as a line of the text language (without indentation).

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> format_einsum(cascade.einsum("LM"), unicode=True)
    'LM[m1, p] = BQK[m1, m0, p] :: ∨_m0 max(∪)'
    """
    text = f"{format_access(einsum.output, unicode)} {_POPULATE[einsum.populate]} {format_expr(einsum.expr, unicode)}"
    actions = _map_actions(einsum, unicode)
    if einsum.reduced_variables and einsum.reduce_operator != "add":
        variables = einsum.reduced_variables
        if unicode:
            subscript = variables[0] if len(variables) == 1 else "{" + ", ".join(variables) + "}"
            actions.append(f"∨_{subscript} {_operator_symbol(einsum.reduce_operator, unicode)}(∪)")
        else:
            actions.append(f"{einsum.reduce_operator}({', '.join(variables)})")
    if actions:
        text += " :: " + " ".join(actions)
    return text


def _map_actions(einsum: Einsum, unicode: bool) -> list[str]:
    calls: list[Call] = []
    collect_calls(einsum.expr, calls)
    merges = _MERGES_UNICODE if unicode else _MERGES_ASCII
    seen: list[tuple[str, str]] = []
    for call in calls:
        if call.merge is not None and (call.operator, call.merge) not in seen:
            seen.append((call.operator, call.merge))
    variables = einsum.variables
    subscript = f"_{variables[0]}" if variables else ""
    marker = "∧" if unicode else "^"
    return [f"{marker}{subscript} {_operator_symbol(op, unicode)}({merges[merge]})" for op, merge in seen]


def _operator_symbol(operator: str, unicode: bool) -> str:
    if operator in ("mul", "div", "add", "sub"):
        return (_UNICODE if unicode else _ASCII)[operator]
    if operator == "sigmoid" and unicode:
        return "σ"
    return operator


def format_access(access: Access, unicode: bool = False) -> str:
    """Return a tensor access, such as ``RM[m1 : m1 = 0, p]``."""
    if not access.indices:
        return access.tensor
    return f"{access.tensor}[{', '.join(format_index(index, unicode) for index in access.indices)}]"


def format_index(index: Index, unicode: bool = False) -> str:
    text = format_affine(index.expr, unicode)
    if index.filters:
        text += " : " + format_filters(index.filters, unicode)
    return text


def format_filters(conditions: tuple[Condition, ...], unicode: bool = False) -> str:
    """Return filters joined by ``and``, writing ``a < b <= c`` where two comparisons share a side."""
    groups: list[str] = []
    current = ""
    previous: Condition | None = None
    for condition in conditions:
        operator = (_UNICODE if unicode else _ASCII).get(condition.operator, condition.operator)
        right = format_affine(condition.right, unicode)
        if previous is not None and previous.right == condition.left:
            current += f" {operator} {right}"
        else:
            if current:
                groups.append(current)
            current = f"{format_affine(condition.left, unicode)} {operator} {right}"
        previous = condition
    groups.append(current)
    return " and ".join(groups)


def format_condition(condition: Condition, unicode: bool = False) -> str:
    return format_filters((condition,), unicode)


def format_affine(expr: AffineExpr, unicode: bool = False) -> str:
    """Return a rank expression, such as ``m1*M0 + m0`` (``m1×M0 + m0`` in Unicode)."""
    times = "×" if unicode else "*"
    minus = "−" if unicode else "-"
    text = ""
    for position, term in enumerate(expr.terms):
        coefficient = term.coefficient
        negative = coefficient < 0
        magnitude = -coefficient if negative else coefficient
        if term.factors:
            body = times.join(term.factors) if magnitude == 1 else f"{magnitude}{times}{times.join(term.factors)}"
        else:
            body = str(magnitude)
        if position == 0:
            text = f"{minus}{body}" if negative else body
        else:
            text += f" {minus} {body}" if negative else f" + {body}"
    return text


def format_expr(expr: Expr, unicode: bool = False) -> str:
    """Return a right-hand-side expression with the fewest parentheses that keep its tree."""
    if isinstance(expr, Access):
        return format_access(expr, unicode)
    if isinstance(expr, RankSize):
        return expr.rank
    if isinstance(expr, Constant):
        return _constant(expr, unicode)
    symbols = _UNICODE if unicode else _ASCII
    if expr.operator in _PRECEDENCE:
        precedence = _PRECEDENCE[expr.operator]
        left, right = expr.args
        left_text = _operand(left, precedence - 1, unicode)
        right_text = _operand(right, precedence, unicode)
        return f"{left_text} {symbols[expr.operator]} {right_text}"
    if expr.operator == "sub_exp":
        inner = Call("sub", expr.args)
        return f"e^{{{format_expr(inner, unicode)}}}" if unicode else f"exp({format_expr(inner, unicode)})"
    if expr.operator == "exp":
        inner = format_expr(expr.args[0], unicode)
        return f"e^{{{inner}}}" if unicode else f"exp({inner})"
    name = "σ" if unicode and expr.operator == "sigmoid" else expr.operator
    return f"{name}({', '.join(format_expr(arg, unicode) for arg in expr.args)})"


def _operand(expr: Expr, bound: int, unicode: bool) -> str:
    """Format an operand, in parentheses when its operator binds no tighter than ``bound``."""
    text = format_expr(expr, unicode)
    if isinstance(expr, Call) and expr.operator in _PRECEDENCE and _PRECEDENCE[expr.operator] <= bound:
        return f"({text})"
    return text


def _constant(constant: Constant, unicode: bool) -> str:
    if not unicode:
        return constant.text
    text = constant.text.replace("inf", "∞")
    return "−" + text[1:] if text.startswith("-") else text
