"""Extended-Einsum cascades: the language, its checks and its counts.

This package knows nothing about hardware; ``fusemax`` builds on it.
"""

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade, Einsum
from einsum_cascades.library import library_names, load_library_cascade, resolve_cascade
from einsum_cascades.syntax import load_cascade, parse_cascade

__all__ = [
    "Cascade",
    "CascadeError",
    "Einsum",
    "library_names",
    "load_cascade",
    "load_library_cascade",
    "parse_cascade",
    "resolve_cascade",
]
