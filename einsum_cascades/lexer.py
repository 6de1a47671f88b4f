"""Tokens of the cascade text language, with the Unicode spellings folded onto ASCII ones.

A token keeps the text as written (for messages) and a normalized spelling
(for the parser): ``×`` and ``*`` both normalize to ``*``, ``≤`` to ``<=``,
``∞`` to the name ``inf``.  Comments (``#`` to the end of the line, and
``/* ... */`` blocks that may span lines) are blanked out first, so columns in
messages stay those of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import SourcePosition

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>::|<=|>=|!=|==|\+=|\^\{|[-+*/×÷=<>()\[\],:{}^∨∪∩∧·.≤≥≠←−σ∞⋄&]))"
)

# Unicode and alternative ASCII spellings, mapped to the spelling the parser compares.
_NORMAL = {
    "−": "-",
    "×": "*",
    "÷": "/",
    ".": "·",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "==": "=",
    "&": "∩",
    "∞": "inf",
    "σ": "sigmoid",
}


@dataclass
class Token:
    """One token: its kind (``number``, ``name`` or ``op``), text as written, normalized text and column."""

    kind: str
    text: str
    norm: str
    column: int


def blank_comments(text: str, path: str) -> str:
    """Replace every comment by spaces, keeping line breaks, so positions do not move.

    Raises
    ------
    CascadeError
        If a ``/*`` block comment is never closed.
    """
    out: list[str] = []
    index = 0
    line, column = 1, 1
    while index < len(text):
        char = text[index]
        if char == "#":
            end = text.find("\n", index)
            end = len(text) if end < 0 else end
            out.append(" " * (end - index))
            column += end - index
            index = end
            continue
        if text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                raise CascadeError("block comment '/*' is never closed; add '*/'", SourcePosition(path, line, column))
            for skipped in text[index : end + 2]:
                if skipped == "\n":
                    out.append("\n")
                    line, column = line + 1, 1
                else:
                    out.append(" ")
                    column += 1
            index = end + 2
            continue
        out.append(char)
        if char == "\n":
            line, column = line + 1, 1
        else:
            column += 1
        index += 1
    return "".join(out)


class Line:
    """Tokens of one source line with a cursor, for recursive-descent parsing."""

    def __init__(self, text: str, path: str, line: int):
        self.path = path
        self.line = line
        self.tokens: list[Token] = []
        stripped = text.rstrip()
        position = 0
        while position < len(stripped):
            match = _TOKEN.match(stripped, position)
            if match is None or match.end() == position:
                column = position + 1 + (len(stripped[position:]) - len(stripped[position:].lstrip()))
                raise CascadeError(
                    f"unexpected character {stripped[column - 1]!r}; expected a name, a number or an operator",
                    SourcePosition(path, line, column),
                )
            kind = match.lastgroup or "op"
            written = match.group(kind)
            norm = _NORMAL.get(written, written)
            if written in ("∞", "σ"):
                kind = "name"
            self.tokens.append(Token(kind, written, norm, match.start(kind) + 1))
            position = match.end()
        self.cursor = 0

    def position(self, token: Token | None = None) -> SourcePosition:
        """Position of ``token``, of the next token, or just past the last one."""
        if token is None:
            token = self.peek()
        if token is not None:
            column = token.column
        elif self.tokens:
            column = self.tokens[-1].column + len(self.tokens[-1].text)
        else:
            column = 1
        return SourcePosition(self.path, self.line, column)

    def peek(self, offset: int = 0) -> Token | None:
        index = self.cursor + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, norm: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.norm == norm

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise CascadeError("unexpected end of line", self.position())
        self.cursor += 1
        return token

    def expect(self, norm: str, shown: str | None = None) -> Token:
        token = self.peek()
        if token is None or token.norm != norm:
            found = "end of line" if token is None else repr(token.text)
            raise CascadeError(f"expected {shown or norm!r}, found {found}", self.position(token))
        self.cursor += 1
        return token

    def expect_name(self, what: str) -> Token:
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
