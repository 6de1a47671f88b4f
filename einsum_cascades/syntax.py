"""Parser for the text form of Extended-Einsum cascades.

A cascade file is line oriented.  ``#`` starts a comment that runs to the end
of the line and ``/* ... */`` encloses one that may span lines; the ``#``
lines before the ``cascade`` statement form the cascade's description.
Statements::

    cascade attention-1pass
    ranks B H E F M P            # every rank; its name is also its size
    batch B H                    # ranks present on every tensor, omitted in writing
    partition M = M1 x M0        # m = m1*M0 + m0; the last M0 tile may be partial
    operator phi(x) charged as exp + add via einsum_cascades.operators:elu_plus_one
    input Q[e,p], K[e,m], V[f,m]
    output AV[f,p]
    iterate m1 until m1 >= M1    # or, as in the FuseMax paper,  ⋄ : m1 ≥ M1
    reference AV = softmax_attention(Q, K, V)
    init:                        # Einsums evaluated once, before the recurrence
      RM[m1 : m1 = 0, p] = -inf
    einsums:                     # the cascade proper
      BQK[m1,m0,p] = Q[e,p] * BK[e,m1,m0]
      LM[m1,p] = BQK[m1,m0,p] :: max(m0)

``docs/cascade-language.md`` gives the whole grammar, with every Unicode and
ASCII spelling.
"""

from __future__ import annotations

from pathlib import Path

from einsum_cascades.checks import Draft, build_cascade, make_einsum
from einsum_cascades.errors import CascadeError
from einsum_cascades.actions import ActionParser
from einsum_cascades.expressions import ExpressionParser, ParseContext
from einsum_cascades.ir import Access, Cascade, Einsum, Expr, Iteration, OperatorDef, Partition, Reference
from einsum_cascades.lexer import Line, blank_comments
from einsum_cascades.operators import BUILTINS

_SECTIONS = {
    ("init",): "init",
    ("initialization",): "init",
    ("einsums",): "main",
    ("extended", "einsums"): "main",
}
_KEYWORDS = ("cascade", "ranks", "batch", "partition", "input", "output", "iterate", "operator", "reference")
_POPULATE = {"+=": "add"}


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
    ...   Y = A[k] × B[k]
    ... ''')
    >>> cascade.einsums[0].reduced_variables
    ('k',)
    """
    parser = _StatementParser(path)
    description: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        description.append(stripped.lstrip("#").strip())
    parser.draft.description = "\n".join(description).strip()
    for number, raw in enumerate(blank_comments(text, path).splitlines(), start=1):
        parser.feed(raw, number)
    return build_cascade(parser.draft)


def load_cascade(path: str | Path) -> Cascade:
    """Read and parse a cascade file.

    Raises
    ------
    CascadeError
        If the file cannot be read or does not parse.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CascadeError(f"cannot read cascade file {str(path)!r}: {error}") from error
    return parse_cascade(text, str(path))


class _StatementParser:
    def __init__(self, path: str):
        self.draft = Draft(path=path)
        self.context = ParseContext(path)
        self.context.ranks = self.draft.ranks
        self.section: str | None = None

    def feed(self, raw: str, number: int) -> None:
        if not raw.strip():
            return
        line = Line(raw, self.draft.path, number)
        if line.done():
            return
        head = line.peek()
        section = self._section(line)
        if section is not None:
            self.section = section
            if not line.done():
                self._einsum(line)
            return
        if head.norm == "⋄":
            line.take()
            line.expect(":")
            self._stop(line, None, head)
            return
        keyword = head.text
        if head.kind == "name" and keyword in _KEYWORDS and self._is_keyword_line(line):
            line.take()
            getattr(self, f"_statement_{keyword}")(line, head)
            return
        if self.section is None:
            raise CascadeError("Einsum outside a section; write 'init:' or 'einsums:' before it", line.position(head))
        self._einsum(line)

    def _section(self, line: Line) -> str | None:
        words: list[str] = []
        offset = 0
        while line.peek(offset) is not None and line.peek(offset).kind == "name":
            words.append(line.peek(offset).text.lower())
            offset += 1
        if not words or not line.at(":", offset) or tuple(words) not in _SECTIONS:
            return None
        for _ in range(offset + 1):
            line.take()
        return _SECTIONS[tuple(words)]

    @staticmethod
    def _is_keyword_line(line: Line) -> bool:
        following = line.peek(1)
        return following is None or following.norm not in ("=", "[", "+=")

    # -- declarations -------------------------------------------------------

    def _statement_cascade(self, line: Line, head) -> None:
        if self.draft.name is not None:
            raise CascadeError("duplicate cascade statement: a file contains one cascade, and it is already named", line.position(head))
        self.draft.name = self._glued(line, "a cascade name")
        line.expect_end()

    def _glued(self, line: Line, what: str, stop: tuple[str, ...] = ()) -> str:
        """Read a name that may contain '-', '.' and ':' written without spaces (attention-1pass, numpy:sqrt)."""
        first = line.expect_name(what)
        text = first.text
        end = first.column + len(first.text)
        while not line.done() and line.peek().column == end and line.peek().text not in stop:
            token = line.peek()
            if token.kind == "op" and token.text not in ("-", ".", ":"):
                break
            line.take()
            text += token.text
            end = token.column + len(token.text)
        return text

    def _statement_ranks(self, line: Line, head) -> None:
        self.draft.ranks.extend(self._rank_names(line, declared=False))

    def _statement_batch(self, line: Line, head) -> None:
        self.draft.batch.extend(self._rank_names(line, declared=True))

    def _rank_names(self, line: Line, declared: bool) -> list[str]:
        names = []
        while not line.done():
            token = line.expect_name("a rank name")
            if not token.text[0].isupper():
                raise CascadeError(f"rank {token.text!r} must start with an upper-case letter", line.position(token))
            if declared:
                self._require_rank(token, line)
            elif token.text in self.draft.ranks or token.text in names:
                raise CascadeError(f"rank {token.text} is declared twice", line.position(token))
            names.append(token.text)
            if line.at(","):
                line.take()
        return names

    def _require_rank(self, token, line: Line) -> None:
        if token.text not in self.draft.ranks:
            raise CascadeError(
                f"undeclared rank {token.text!r}; declared ranks: {' '.join(self.draft.ranks) or '(none)'}",
                line.position(token),
            )

    def _statement_partition(self, line: Line, head) -> None:
        rank = line.expect_name("the rank to partition")
        self._require_rank(rank, line)
        line.expect("=")
        parts = [line.expect_name("a sub-rank name").text]
        while not line.done():
            separator = line.take()
            if separator.norm not in ("x", "*"):
                raise CascadeError(f"expected 'x' between sub-ranks, found {separator.text!r}", line.position(separator))
            parts.append(line.expect_name("a sub-rank name").text)
        if len(parts) < 2:
            raise CascadeError("a partition needs at least two sub-ranks, as in 'M = M1 x M0'", line.position(rank))
        self.draft.partitions.append(Partition(rank.text, tuple(parts)))
        for part in parts:
            if part not in self.draft.ranks:
                self.draft.ranks.append(part)

    def _statement_input(self, line: Line, head) -> None:
        self._declarations(line, "input")

    def _statement_output(self, line: Line, head) -> None:
        self._declarations(line, "output")

    def _declarations(self, line: Line, keyword: str) -> None:
        while not line.done():
            name = line.expect_name("a tensor name")
            ranks: list[str] = []
            if line.at("["):
                line.take()
                while not line.at("]"):
                    variable = line.expect_name("a rank variable")
                    rank = variable.text.upper()
                    if rank not in self.draft.ranks:
                        raise CascadeError(
                            f"rank variable {variable.text!r} has no declared rank {rank!r}; declared ranks: "
                            f"{' '.join(self.draft.ranks)}",
                            line.position(variable),
                        )
                    ranks.append(rank)
                    if line.at(","):
                        line.take()
                line.expect("]")
            if keyword == "input":
                self.draft.inputs[name.text] = tuple(ranks)
                self.draft.input_positions[name.text] = line.position(name)
            else:
                self.draft.outputs.append((name.text, tuple(ranks), line.position(name)))
            if line.at(","):
                line.take()

    def _statement_iterate(self, line: Line, head) -> None:
        variable = line.expect_name("the iterative rank variable")
        until = line.expect_name("'until'")
        if until.text != "until":
            raise CascadeError(f"expected 'until', found {until.text!r}", line.position(until))
        self._stop(line, variable, head)

    def _stop(self, line: Line, variable, head) -> None:
        if self.draft.iteration is not None:
            raise CascadeError("a cascade has one iterative rank and it already has a stopping condition", line.position(head))
        tested = line.peek()
        conditions = ExpressionParser(line, self.context).filters()
        line.expect_end()
        condition = conditions[0]
        name = variable.text if variable is not None else condition.variable
        if len(conditions) > 1 or condition.variable is None or condition.variable != name:
            shown = name or "the iterative rank variable"
            raise CascadeError(
                f"the stopping condition must test {shown!r} alone on its left side, as in {shown} >= N",
                line.position(tested),
            )
        rank = name.upper()
        if rank not in self.draft.ranks:
            self.draft.ranks.append(rank)
        self.draft.iteration = Iteration(name, condition)
        self.draft.iteration_position = line.position(variable if variable is not None else head)

    def _statement_operator(self, line: Line, head) -> None:
        name = line.expect_name("an operator name")
        if name.text in BUILTINS or name.text in self.context.operators:
            raise CascadeError(f"operator {name.text!r} is already defined", line.position(name))
        line.expect("(")
        parameters = [line.expect_name("a parameter name").text]
        while line.at(","):
            line.take()
            parameters.append(line.expect_name("a parameter name").text)
        line.expect(")")
        for word in ("charged", "as"):
            token = line.expect_name(f"'{word}'")
            if token.text != word:
                raise CascadeError(f"expected '{word}', found {token.text!r}", line.position(token))

        charge = [self._charge_term(line)]
        while line.at("+"):
            line.take()
            charge.append(self._charge_term(line))
        implementation = identity = None
        while not line.done():
            keyword = line.expect_name("'via' or 'identity'")
            if keyword.text == "via":
                implementation = self._glued(line, "module:function")
                if ":" not in implementation:
                    raise CascadeError(
                        f"write the implementation as module:function, as numpy:sqrt, not {implementation!r}",
                        line.position(keyword),
                    )
            elif keyword.text == "identity":
                identity = ExpressionParser(line, self.context).expr()
                if not hasattr(identity, "value"):
                    raise CascadeError("the identity of an operator is a number, such as 0 or -inf", line.position(keyword))
                identity = identity.value
            else:
                raise CascadeError(f"expected 'via' or 'identity', found {keyword.text!r}", line.position(keyword))

        definition = OperatorDef(
            name.text, tuple(parameters), tuple(charge), implementation, identity, position=line.position(name)
        )
        self.draft.operators.append(definition)
        self.context.operators[definition.name] = definition

    @staticmethod
    def _charge_term(line: Line) -> tuple[str, int]:
        count = 1
        if line.peek() is not None and line.peek().kind == "number":
            token = line.take()
            if not token.text.isdigit() or int(token.text) < 1:
                raise CascadeError(f"a charge count is a positive integer, not {token.text!r}", line.position(token))
            count = int(token.text)
        token = line.expect_name("a built-in operator to charge, such as exp or mac")
        valid = sorted(set(BUILTINS) | {"mac"})
        if token.text not in valid:
            raise CascadeError(
                f"an operator is charged as built-in operators; {token.text!r} is not one of {', '.join(valid)}",
                line.position(token),
            )
        return token.text, count

    def _statement_reference(self, line: Line, head) -> None:
        if self.draft.reference is not None:
            raise CascadeError("a cascade declares one reference", line.position(head))
        output = line.expect_name("the output tensor the reference defines")
        line.expect("=")
        function = line.expect_name("a reference function")
        line.expect("(")
        tensors: list[str] = []
        options: list[tuple[str, str]] = []
        while not line.at(")"):
            argument = line.expect_name("a tensor name or an option")
            if line.at("="):
                line.take()
                options.append((argument.text, self._option_value(line)))
            elif options:
                raise CascadeError("tensor arguments come before options", line.position(argument))
            else:
                tensors.append(argument.text)
            if not line.at(")"):
                line.expect(",")
        line.take()
        line.expect_end()
        self.draft.reference = Reference(output.text, function.text, tuple(tensors), tuple(options), line.position(function))

    @staticmethod
    def _option_value(line: Line) -> str:
        sign = ""
        if line.at("-"):
            line.take()
            sign = "-"
        token = line.take()
        if token.kind not in ("name", "number"):
            raise CascadeError(f"an option value is a name or a number, not {token.text!r}", line.position(token))
        return sign + token.norm

    # -- Einsums ----------------------------------------------------------

    def _einsum(self, line: Line) -> None:
        start = line.peek()
        parser = ExpressionParser(line, self.context)
        actions = ActionParser(parser)
        output = parser.access()
        populate = None
        token = line.peek()
        if token is not None and token.text in ("max", "min") and line.at("=", 1):
            line.take()
            populate = token.text
        elif token is not None and token.norm in _POPULATE:
            populate = _POPULATE[token.norm]
        elif token is None or token.norm != "=":
            found = "end of line" if token is None else repr(token.text)
            raise CascadeError(f"expected '=', found {found}", line.position(token))
        line.take()
        expr = parser.expr()
        maps, reduces = [], []
        if line.at("::"):
            line.take()
            maps, reduces = actions.parse()
        line.expect_end()
        expr = actions.apply_maps(expr, maps)
        for action in maps:
            if action.variables and not set(action.variables) <= set(_variables(output, expr)):
                raise CascadeError(
                    f"the map action's rank variable {', '.join(action.variables)} is not a rank variable of this Einsum",
                    action.position,
                )
        einsum = make_einsum(output, expr, reduces, populate, self.section == "init", line.position(start))
        (self.draft.initialization if self.section == "init" else self.draft.einsums).append(einsum)


def _variables(output: Access, expr: Expr) -> list[str]:
    probe = Einsum(output=output, expr=expr, reduce_operator="add", reduced_variables=())
    return list(probe.variables)
