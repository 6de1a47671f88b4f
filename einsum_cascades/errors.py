"""Errors raised for invalid cascade text or cascade use."""

from __future__ import annotations

from einsum_cascades.ir import SourcePosition


class CascadeError(ValueError):
    """A cascade is invalid; the message names the file, line and column when known."""

    def __init__(self, message: str, position: SourcePosition | None = None):
        self.position = position
        self.reason = message
        if position is not None:
            message = f"{position}: {message}"
        super().__init__(message)
