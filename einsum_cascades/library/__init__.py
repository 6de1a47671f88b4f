"""The cascade library: one ``NAME.cascade`` text file per cascade."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade
from einsum_cascades.syntax import load_cascade, parse_cascade


def library_names() -> list[str]:
    """Names of the cascades shipped in the library, sorted."""
    folder = resources.files(__name__)
    return sorted(entry.name.removesuffix(".cascade") for entry in folder.iterdir() if entry.name.endswith(".cascade"))


def load_library_cascade(name: str) -> Cascade:
    """Load a library cascade by name.

    Examples
    --------
    >>> load_library_cascade("attention-3pass").outputs
    ('AV',)
    """
    entry = resources.files(__name__) / f"{name}.cascade"
    if not entry.is_file():
        raise CascadeError(f"unknown cascade {name!r}; library cascades: {', '.join(library_names())}")
    return parse_cascade(entry.read_text(encoding="utf-8"), f"{name}.cascade")


def resolve_cascade(name_or_path: str) -> Cascade:
    """Load a cascade from a file path, or from the library when no such file exists."""
    path = Path(name_or_path)
    if path.suffix == ".cascade" or path.is_file():
        if not path.is_file():
            raise CascadeError(f"cascade file {name_or_path!r} not found")
        return load_cascade(path)
    return load_library_cascade(name_or_path)
