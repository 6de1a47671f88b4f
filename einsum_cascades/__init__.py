"""Extended-Einsum cascades: the language, its checks, its executor and its counts.

This package has no notion of hardware; ``fusemax`` builds on it.
``symbolic_counts`` is loaded on first use, so importing the package does not
import sympy.
"""

from einsum_cascades.builder import CascadeBuilder
from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import Execution, execute, random_inputs
from einsum_cascades.graph import dependency_graph, to_dot, to_json
from einsum_cascades.ir import Cascade, Einsum
from einsum_cascades.library import library_names, load_library_cascade, resolve_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.rewrite import rewrite_to_passes
from einsum_cascades.printer import format_cascade
from einsum_cascades.syntax import load_cascade, parse_cascade
from einsum_cascades.verify import check_against_reference

__all__ = [
    "analyze_passes",
    "Cascade",
    "CascadeBuilder",
    "CascadeError",
    "Einsum",
    "Execution",
    "check_against_reference",
    "dependency_graph",
    "execute",
    "format_cascade",
    "library_names",
    "load_cascade",
    "load_library_cascade",
    "parse_cascade",
    "random_inputs",
    "resolve_cascade",
    "rewrite_to_passes",
    "symbolic_counts",
    "to_dot",
    "to_json",
]


def __getattr__(name: str):
    if name == "symbolic_counts":
        from einsum_cascades.symbolic import symbolic_counts

        return symbolic_counts
    raise AttributeError(f"module 'einsum_cascades' has no attribute {name!r}")
