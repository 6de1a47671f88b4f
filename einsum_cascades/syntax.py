"""Parser for the text form of Extended-Einsum cascades.

A cascade file is line oriented.  ``#`` starts a comment; the comment lines
before the ``cascade`` statement form the cascade's description.  Statements::

    cascade attention-1pass
    ranks B H E F M P            # every rank; its name is also its size
    batch B H                    # ranks present on every tensor, omitted in writing
    partition M = M1 x M0        # m = m1*M0 + m0; the last M0 tile may be partial
    input Q[e,p], K[e,m], V[f,m]
    output AV[f,p]
    iterate m1 until m1 >= M1    # iterative rank variable and its stopping condition
    init:                        # the following Einsums run once, before the recurrence
      RM[m1:m1=0, p] = -inf
    einsums:                     # the cascade proper
      BQK[m1,m0,p] = Q[e,p] * BK[e,m1,m0]
      LM[m1,p] = BQK[m1,m0,p] :: max(m0)

Right-hand sides use ``+ - * /`` (also ``×`` and ``÷``), ``max(a, b)``,
``exp(x)`` (``exp(a - b)`` and ``e^{a - b}`` are the fused subtract-then-exp
operator), ``sigmoid(x)`` and numeric constants including ``inf``.  A rank
variable on the right that is absent on the left is reduced: by sum unless a
``:: max(r)`` or ``:: sum(r)`` suffix (or the paper's ``:: ∨_r max(∪)``) says
otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from einsum_cascades.errors import CascadeError
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
    Iteration,
    Partition,
    SourcePosition,
    Term,
)

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|!=|::|\^\{|[-+*/×÷=<>()\[\],:{}^∨∪∩∧]))"
)

# Operators a reduction suffix may name, with their ASCII and Unicode spellings.
_REDUCE_NAMES = {"sum": "add", "add": "add", "+": "add", "max": "max", "min": "min"}


@dataclass
class _Token:
    kind: str
    text: str
    column: int


class _Line:
    """Tokens of one source line with a cursor, for recursive-descent parsing."""

    def __init__(self, text: str, path: str, line: int):
        self.path = path
        self.line = line
        self.tokens: list[_Token] = []
        position = 0
        stripped = text.split("#", 1)[0].rstrip()
        while position < len(stripped):
            match = _TOKEN.match(stripped, position)
            if match is None or match.end() == position:
                column = position + 1 + (len(stripped[position:]) - len(stripped[position:].lstrip()))
                raise CascadeError(
                    f"unexpected character {stripped[column - 1]!r}; expected a name, a number or an operator",
                    SourcePosition(path, line, column),
                )
            kind = match.lastgroup or "op"
            self.tokens.append(_Token(kind, match.group(kind), match.start(kind) + 1))
            position = match.end()
        self.cursor = 0

    def position(self, token: _Token | None = None) -> SourcePosition:
        if token is None:
            token = self.peek()
        column = token.column if token is not None else (self.tokens[-1].column + len(self.tokens[-1].text) if self.tokens else 1)
        return SourcePosition(self.path, self.line, column)

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.cursor + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise CascadeError("unexpected end of line", self.position())
        self.cursor += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.peek()
        if token is None or token.text != text:
            found = "end of line" if token is None else repr(token.text)
            raise CascadeError(f"expected {text!r}, found {found}", self.position(token))
        self.cursor += 1
        return token

    def expect_name(self, what: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != "name":
            found = "end of line" if token is None else repr(token.text)
            raise CascadeError(f"expected {what}, found {found}", self.position(token))
        self.cursor += 1
        return token

    def done(self) -> bool:
        return self.cursor >= len(self.tokens)

    def expect_end(self) -> None:
        if not self.done():
            token = self.peek()
            raise CascadeError(f"unexpected {token.text!r} at end of statement", self.position(token))


def parse_cascade(text: str, path: str = "<string>") -> Cascade:
    """Parse the text form of a cascade into a checked :class:`Cascade`.

    Parameters
    ----------
    text : str
        The cascade source.
    path : str
        File name used in error positions.

    Raises
    ------
    CascadeError
        On a syntax error or an inconsistent cascade, with line and column.

    Examples
    --------
    >>> cascade = parse_cascade('''
    ... cascade dot
    ... ranks K
    ... input A[k], B[k]
    ... output Y
    ... einsums:
    ...   Y = A[k] * B[k]
    ... ''')
    >>> cascade.einsums[0].reduced_variables
    ('k',)
    """
    builder = _Builder(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        builder.feed(raw, number)
    return builder.finish()


def load_cascade(path: str | Path) -> Cascade:
    """Read and parse a cascade file."""
    path = Path(path)
    return parse_cascade(path.read_text(encoding="utf-8"), str(path))


class _Builder:
    def __init__(self, path: str):
        self.path = path
        self.name: str | None = None
        self.description: list[str] = []
        self.ranks: list[str] = []
        self.batch: list[str] = []
        self.partitions: list[Partition] = []
        self.inputs: dict[str, tuple[str, ...]] = {}
        self.outputs: list[tuple[str, tuple[str, ...], SourcePosition]] = []
        self.iteration: Iteration | None = None
        self.iteration_position: SourcePosition | None = None
        self.section: str | None = None
        self.initialization: list[Einsum] = []
        self.einsums: list[Einsum] = []

    # -- statements -------------------------------------------------------

    def feed(self, raw: str, number: int) -> None:
        stripped = raw.strip()
        if not stripped:
            return
        if stripped.startswith("#"):
            if self.name is None:
                self.description.append(stripped.lstrip("#").strip())
            return
        line = _Line(raw, self.path, number)
        if line.done():
            return
        head = line.peek()
        keyword = head.text
        if keyword in ("init", "einsums") and line.peek(1) is not None and line.peek(1).text == ":":
            line.take()
            line.take()
            self.section = "init" if keyword == "init" else "main"
            if not line.done():
                self._einsum(line)
            return
        if keyword == "cascade" and head.kind == "name" and self._is_keyword_line(line):
            line.take()
            self.name = self._cascade_name(line)
            line.expect_end()
        elif keyword in ("ranks", "batch") and self._is_keyword_line(line):
            line.take()
            names = self._rank_names(line, declared=keyword == "batch")
            (self.ranks if keyword == "ranks" else self.batch).extend(names)
        elif keyword == "partition" and self._is_keyword_line(line):
            line.take()
            self._partition(line)
        elif keyword in ("input", "output") and self._is_keyword_line(line):
            line.take()
            self._declarations(line, keyword)
        elif keyword == "iterate" and self._is_keyword_line(line):
            line.take()
            self._iterate(line)
        else:
            if self.section is None:
                raise CascadeError(
                    "Einsum outside a section; write 'init:' or 'einsums:' before it",
                    line.position(head),
                )
            self._einsum(line)

    @staticmethod
    def _cascade_name(line: _Line) -> str:
        first = line.expect_name("a cascade name")
        name = first.text
        end = first.column + len(first.text)
        # A cascade name may contain hyphens (attention-1pass), which the tokenizer
        # splits off, so glue back the tokens that touch without a space.
        while not line.done() and line.peek().column == end and (line.peek().kind != "op" or line.at("-")):
            token = line.take()
            name += token.text
            end = token.column + len(token.text)
        return name

    @staticmethod
    def _is_keyword_line(line: _Line) -> bool:
        following = line.peek(1)
        return following is None or following.text not in ("=", "[")

    def _rank_names(self, line: _Line, declared: bool = False) -> list[str]:
        """Read rank names. With ``declared``, each name must already appear in a ``ranks`` statement."""
        names = []
        while not line.done():
            token = line.expect_name("a rank name")
            if not token.text[0].isupper():
                raise CascadeError(f"rank {token.text!r} must start with an upper-case letter", line.position(token))
            if declared:
                self._require_rank(token, line)
            names.append(token.text)
            if line.at(","):
                line.take()
        return names

    def _partition(self, line: _Line) -> None:
        rank = line.expect_name("the rank to partition")
        self._require_rank(rank, line)
        line.expect("=")
        parts = [line.expect_name("a sub-rank name").text]
        while not line.done():
            separator = line.take()
            if separator.text not in ("x", "×", "*"):
                raise CascadeError(f"expected 'x' between sub-ranks, found {separator.text!r}", line.position(separator))
            parts.append(line.expect_name("a sub-rank name").text)
        if len(parts) < 2:
            raise CascadeError("a partition needs at least two sub-ranks, as in 'M = M1 x M0'", line.position(rank))
        self.partitions.append(Partition(rank.text, tuple(parts)))
        for part in parts:
            if part not in self.ranks:
                self.ranks.append(part)

    def _declarations(self, line: _Line, keyword: str) -> None:
        while not line.done():
            name = line.expect_name("a tensor name")
            ranks: list[str] = []
            if line.at("["):
                line.take()
                while not line.at("]"):
                    variable = line.expect_name("a rank variable")
                    rank = variable.text.upper()
                    if rank not in self.ranks:
                        raise CascadeError(
                            f"rank variable {variable.text!r} has no declared rank {rank!r}; declared ranks: {' '.join(self.ranks)}",
                            line.position(variable),
                        )
                    ranks.append(rank)
                    if line.at(","):
                        line.take()
                line.expect("]")
            if keyword == "input":
                self.inputs[name.text] = tuple(ranks)
            else:
                self.outputs.append((name.text, tuple(ranks), line.position(name)))
            if line.at(","):
                line.take()

    def _iterate(self, line: _Line) -> None:
        variable = line.expect_name("the iterative rank variable")
        line.expect("until")
        tested = line.peek()
        condition = self._condition(line)
        line.expect_end()
        if condition.variable != variable.text:
            raise CascadeError(
                f"the stopping condition must test {variable.text!r}, not {condition.variable!r}",
                line.position(tested),
            )
        self.iteration = Iteration(variable.text, condition)
        self.iteration_position = line.position(variable)

    def _require_rank(self, token: _Token, line: _Line) -> None:
        if token.text not in self.ranks:
            raise CascadeError(
                f"undeclared rank {token.text!r}; declared ranks: {' '.join(self.ranks) or '(none)'}",
                line.position(token),
            )

    # -- Einsums ----------------------------------------------------------

    def _einsum(self, line: _Line) -> None:
        start = line.peek()
        output = self._access(line, allow_bare=True)
        line.expect("=")
        expr = self._expr(line)
        reduce_operator = "add"
        explicit: tuple[str, ...] | None = None
        if line.at("::"):
            line.take()
            reduce_operator, explicit = self._reduction(line)
        line.expect_end()

        output_variables = set(output.variables)
        on_right: list[str] = []
        for access in _accesses(expr):
            for variable in access.variables:
                if variable not in on_right:
                    on_right.append(variable)
        reduced = tuple(v for v in on_right if v not in output_variables)
        if explicit is not None:
            missing = [v for v in reduced if v not in explicit]
            extra = [v for v in explicit if v not in reduced]
            if missing or extra:
                raise CascadeError(
                    f"reduction lists {', '.join(explicit) or 'nothing'} but the ranks reduced are "
                    f"{', '.join(reduced) or 'none'}",
                    line.position(start),
                )
        einsum = Einsum(
            output=output,
            expr=expr,
            reduce_operator=reduce_operator,
            reduced_variables=reduced,
            initialization=self.section == "init",
            position=line.position(start),
        )
        (self.initialization if self.section == "init" else self.einsums).append(einsum)

    def _reduction(self, line: _Line) -> tuple[str, tuple[str, ...]]:
        token = line.peek()
        if token is not None and token.text in ("∨", "v") and line.peek(1) is not None and line.peek(1).text == "_":
            raise CascadeError("write the reduced rank after the underscore with no space, as in ∨_m0", line.position(token))
        if token is not None and (token.text.startswith("v_") or token.text == "∨"):
            # Paper form: ∨_m0 max(∪), or the ASCII spelling v_m0 max(U).
            line.take()
            if token.text == "∨":
                variable_token = line.expect_name("the reduced rank variable after '∨_'")
                variables = (variable_token.text.lstrip("_"),)
            else:
                variables = (token.text[2:],)
            operator = self._reduce_operator(line, "a reduction operator (max, sum)")
            line.expect("(")
            merge = line.take()
            if merge.text not in ("∪", "U", "∩", "1"):
                raise CascadeError(f"unknown merge operator {merge.text!r}; use ∪ (or U)", line.position(merge))
            line.expect(")")
            return operator, variables
        operator = self._reduce_operator(line, "a reduction such as max(m0) or sum(m)")
        line.expect("(")
        variables: list[str] = []
        while not line.at(")"):
            variables.append(line.expect_name("a rank variable").text)
            if line.at(","):
                line.take()
        line.expect(")")
        return operator, tuple(variables)

    @staticmethod
    def _reduce_operator(line: _Line, what: str) -> str:
        token = line.take() if line.at("+") else line.expect_name(what)
        if token.text not in _REDUCE_NAMES:
            valid = ", ".join(sorted(_REDUCE_NAMES))
            raise CascadeError(f"unknown reduction operator {token.text!r}; valid: {valid}", line.position(token))
        return _REDUCE_NAMES[token.text]

    def _expr(self, line: _Line) -> Expr:
        left = self._term(line)
        while line.at("+") or line.at("-"):
            operator = "add" if line.take().text == "+" else "sub"
            left = Call(operator, (left, self._term(line)))
        return left

    def _term(self, line: _Line) -> Expr:
        left = self._unary(line)
        while line.peek() is not None and line.peek().text in ("*", "×", "/", "÷"):
            operator = "mul" if line.take().text in ("*", "×") else "div"
            left = Call(operator, (left, self._unary(line)))
        return left

    def _unary(self, line: _Line) -> Expr:
        if line.at("-"):
            token = line.take()
            operand = self._unary(line)
            if isinstance(operand, Constant):
                return Constant(-operand.value, "-" + operand.text)
            raise CascadeError("negation applies only to constants; write 0 - x", line.position(token))
        return self._primary(line)

    def _primary(self, line: _Line) -> Expr:
        token = line.peek()
        if token is None:
            raise CascadeError("expected an expression, found end of line", line.position())
        if token.kind == "number":
            line.take()
            return Constant(float(token.text), token.text)
        if token.text == "(":
            line.take()
            inner = self._expr(line)
            line.expect(")")
            return inner
        if token.kind != "name":
            raise CascadeError(f"expected an expression, found {token.text!r}", line.position(token))
        if token.text == "inf":
            line.take()
            return Constant(math.inf, "inf")
        following = line.peek(1)
        if token.text == "e" and following is not None and following.text in ("^{", "^"):
            line.take()
            opener = line.take()
            closer = "}" if opener.text == "^{" else ")"
            if opener.text == "^":
                line.expect("(")
            inner = self._expr(line)
            line.expect(closer)
            return _exp(inner)
        if following is not None and following.text == "(":
            line.take()
            line.take()
            args = [self._expr(line)]
            while line.at(","):
                line.take()
                args.append(self._expr(line))
            line.expect(")")
            return self._call(token, args, line)
        return self._access(line, allow_bare=True)

    def _call(self, token: _Token, args: list[Expr], line: _Line) -> Expr:
        arity = {"exp": 1, "sigmoid": 1, "max": 2, "min": 2}
        if token.text not in arity:
            raise CascadeError(
                f"unknown operator {token.text!r}; valid: {', '.join(sorted(arity))}, + - * /",
                line.position(token),
            )
        if len(args) != arity[token.text]:
            raise CascadeError(
                f"{token.text} takes {arity[token.text]} argument(s), got {len(args)}", line.position(token)
            )
        if token.text == "exp":
            return _exp(args[0])
        return Call(token.text, tuple(args))

    def _access(self, line: _Line, allow_bare: bool) -> Access:
        name = line.expect_name("a tensor name")
        indices: list[Index] = []
        if line.at("["):
            line.take()
            while True:
                expr = self._affine(line)
                condition = None
                if line.at(":"):
                    line.take()
                    condition = self._condition(line)
                indices.append(Index(expr, condition))
                if line.at(","):
                    line.take()
                    continue
                line.expect("]")
                break
        elif not allow_bare:
            raise CascadeError(f"expected '[' after {name.text!r}", line.position())
        return Access(name.text, tuple(indices), line.position(name))

    def _condition(self, line: _Line) -> Condition:
        variable = line.expect_name("a rank variable")
        operator = line.take()
        if operator.text not in ("=", "<", "<=", ">", ">=", "!="):
            raise CascadeError(
                f"expected a comparison (=, <, <=, >, >=, !=), found {operator.text!r}", line.position(operator)
            )
        return Condition(variable.text, operator.text, self._affine(line))

    def _affine(self, line: _Line) -> AffineExpr:
        terms = [self._affine_term(line, 1)]
        while line.at("+") or line.at("-"):
            sign = 1 if line.take().text == "+" else -1
            terms.append(self._affine_term(line, sign))
        return AffineExpr(tuple(terms))

    def _affine_term(self, line: _Line, sign: int) -> Term:
        coefficient = sign
        factors: list[str] = []
        while True:
            token = line.take()
            if token.kind == "number":
                if "." in token.text:
                    raise CascadeError(f"rank expressions take integers, not {token.text!r}", line.position(token))
                coefficient *= int(token.text)
            elif token.kind == "name":
                factors.append(token.text)
            else:
                raise CascadeError(
                    f"expected a rank variable, a rank size or an integer, found {token.text!r}",
                    line.position(token),
                )
            if line.at("*") or line.at("×"):
                line.take()
                continue
            return Term(coefficient, tuple(factors))

    # -- checks -----------------------------------------------------------

    def finish(self) -> Cascade:
        start = SourcePosition(self.path, 1, 1)
        if self.name is None:
            raise CascadeError("missing 'cascade NAME' statement", start)
        if not self.einsums:
            raise CascadeError("the cascade has no Einsums; add an 'einsums:' section", start)

        variables = {rank.lower(): rank for rank in self.ranks}
        tensors: dict[str, tuple[str, ...]] = dict(self.inputs)
        for einsum in self.initialization + self.einsums:
            self._check_variables(einsum, variables)
            ranks = tuple(self._output_rank(index, variables, einsum) for index in einsum.output.indices)
            known = tensors.get(einsum.name)
            if known is not None and known != ranks:
                raise CascadeError(
                    f"tensor {einsum.name} written with ranks [{', '.join(ranks)}] but declared with "
                    f"[{', '.join(known)}]",
                    einsum.output.position,
                )
            tensors[einsum.name] = ranks

        for einsum in self.initialization + self.einsums:
            for access in einsum.accesses:
                if access.tensor not in tensors:
                    defined = ", ".join(sorted(tensors))
                    raise CascadeError(
                        f"undefined tensor {access.tensor!r}; defined tensors: {defined}", access.position
                    )
                expected = len(tensors[access.tensor])
                if expected != len(access.indices):
                    raise CascadeError(
                        f"tensor {access.tensor} has {expected} rank(s) [{', '.join(tensors[access.tensor])}] "
                        f"but is accessed with {len(access.indices)} index(es)",
                        access.position,
                    )
        for name, ranks, position in self.outputs:
            if name not in tensors:
                raise CascadeError(f"output {name!r} is never written by an Einsum", position)
            if tensors[name] != ranks:
                raise CascadeError(
                    f"output {name} declared with ranks [{', '.join(ranks)}] but written with "
                    f"[{', '.join(tensors[name])}]",
                    position,
                )
        if self.iteration is not None and self.iteration.variable not in variables:
            raise CascadeError(
                f"iterative rank variable {self.iteration.variable!r} has no declared rank", self.iteration_position
            )

        return Cascade(
            name=self.name,
            description="\n".join(self.description).strip(),
            ranks=tuple(self.ranks),
            batch_ranks=tuple(self.batch),
            partitions=tuple(self.partitions),
            inputs=tuple(self.inputs),
            outputs=tuple(name for name, _, _ in self.outputs),
            tensors=tensors,
            initialization=tuple(self.initialization),
            einsums=tuple(self.einsums),
            iteration=self.iteration,
            source=self.path,
        )

    @staticmethod
    def _check_variables(einsum: Einsum, variables: dict[str, str]) -> None:
        for access in (einsum.output,) + einsum.accesses:
            for index in access.indices:
                factors = [factor for term in index.expr.terms for factor in term.factors]
                if index.condition is not None:
                    factors.append(index.condition.variable)
                    factors.extend(factor for term in index.condition.bound.terms for factor in term.factors)
                for factor in factors:
                    if factor.islower() and factor not in variables:
                        raise CascadeError(
                            f"unknown rank variable {factor!r}; rank variables: {', '.join(variables)}",
                            access.position,
                        )
                    if not factor.islower() and factor not in variables.values():
                        raise CascadeError(
                            f"unknown rank size {factor!r}; ranks: {', '.join(variables.values())}",
                            access.position,
                        )

    @staticmethod
    def _output_rank(index: Index, variables: dict[str, str], einsum: Einsum) -> str:
        found = index.expr.variables
        if len(found) != 1:
            raise CascadeError(
                "each output index must use exactly one rank variable (such as m1 or m1+1)",
                einsum.output.position,
            )
        return variables[found[0]]


def _accesses(expr: Expr) -> list[Access]:
    if isinstance(expr, Access):
        return [expr]
    if isinstance(expr, Call):
        found: list[Access] = []
        for arg in expr.args:
            found.extend(_accesses(arg))
        return found
    return []


def _exp(inner: Expr) -> Expr:
    """Build exp(inner), fusing exp(a - b) into the subtract-then-exp operator."""
    if isinstance(inner, Call) and inner.operator == "sub":
        return Call("sub_exp", inner.args)
    return Call("exp", (inner,))
