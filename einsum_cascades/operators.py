"""Compute operators of the cascade language: the built-in ones and user-defined ones.

Each built-in operator has a default merge, which decides the points of the
iteration space a map action visits.  It also has the value an empty operand
reads as when the merge visits a point where that operand is empty, a numpy
implementation, and, when it can fold a reduction, its identity.  The defaults follow the FuseMax paper's
notation: ``×(∩)``, ``+(∪)``, ``max(∪)``, ``÷(←)``; subtract-then-exp,
exp and sigmoid visit only points where their operands exist, so an empty
(masked or past-the-end) coordinate never turns into ``e^(0 - max)``.
"""

from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import OperatorDef


def sub_exp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``e^(a - b)``, defined as 0 wherever ``a`` is -inf, whatever ``b`` is.

    The running-max correction ``e^(RM[m1] - RM[m1+1])`` meets ``-inf - (-inf)``
    while every key seen so far was masked.  The terms it rescales are then all
    zero, so 0 keeps the running sums exact, and ``e^a`` is 0 anyway.

    Examples
    --------
    >>> float(sub_exp(np.float64(-np.inf), np.float64(-np.inf)))
    0.0
    """
    with np.errstate(invalid="ignore", over="ignore"):
        result = np.exp(np.subtract(a, b))
    return np.where(np.isneginf(a), 0.0, result)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Return the logistic function ``1 / (1 + e^-x)`` without overflow for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    positive = x >= 0
    with np.errstate(over="ignore"):
        exp_negative = np.exp(-np.abs(x))
    return np.where(positive, 1.0 / (1.0 + exp_negative), exp_negative / (1.0 + exp_negative))


def elu_plus_one(x: np.ndarray) -> np.ndarray:
    """Return ``elu(x) + 1``: ``x + 1`` for positive ``x``, ``e^x`` otherwise.

    The positive feature map of linear attention (Katharopoulos et al.,
    "Transformers are RNNs", ICML 2020).
    """
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


@dataclass(frozen=True)
class Builtin:
    """A built-in compute operator."""

    name: str
    arity: int
    merge: str
    empty_value: float
    function: Callable[..., np.ndarray]
    identity: float | None = None


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


BUILTINS: dict[str, Builtin] = {
    builtin.name: builtin
    for builtin in (
        Builtin("mul", 2, "intersection", 0.0, np.multiply, identity=1.0),
        Builtin("add", 2, "union", 0.0, np.add, identity=0.0),
        Builtin("sub", 2, "union", 0.0, np.subtract),
        Builtin("div", 2, "one_sided", 0.0, _divide),
        Builtin("max", 2, "union", -math.inf, np.maximum, identity=-math.inf),
        Builtin("min", 2, "union", math.inf, np.minimum, identity=math.inf),
        Builtin("exp", 1, "intersection", 0.0, np.exp),
        Builtin("sub_exp", 2, "intersection", 0.0, sub_exp),
        Builtin("sigmoid", 1, "intersection", 0.0, sigmoid),
    )
}

# Built-in operators a reduction may fold with.
REDUCTION_OPERATORS = tuple(name for name, builtin in BUILTINS.items() if builtin.identity is not None)


def builtin_names() -> list[str]:
    """Names of the built-in compute operators, sorted."""
    return sorted(BUILTINS)


def default_merge(operator: str) -> str:
    """Return the merge a map action with ``operator`` uses when the cascade names none.

    User-defined operators visit only points where every operand exists.
    """
    builtin = BUILTINS.get(operator)
    return builtin.merge if builtin is not None else "intersection"


def operator_arity(operator: str, cascade_operators: tuple[OperatorDef, ...]) -> int | None:
    """Return the number of operands ``operator`` takes, or None if it is unknown."""
    if operator in BUILTINS:
        return BUILTINS[operator].arity
    for definition in cascade_operators:
        if definition.name == operator:
            return definition.arity
    return None


def reduction_identity(operator: str, cascade_operators: tuple[OperatorDef, ...]) -> float | None:
    """Return the identity of ``operator`` as a reduction, or None if it cannot reduce."""
    if operator in BUILTINS:
        return BUILTINS[operator].identity
    for definition in cascade_operators:
        if definition.name == operator and definition.arity == 2:
            return definition.identity
    return None


def empty_value(operator: str) -> float:
    """Return the value an empty operand of ``operator`` reads as under a union or pass-through merge."""
    builtin = BUILTINS.get(operator)
    return builtin.empty_value if builtin is not None else 0.0


def _import_beside(module_name: str, position) -> object:
    """Import a module, looking first in the folder of the cascade file that names it."""
    folder = Path(position.path).parent if position is not None and Path(position.path).is_file() else None
    if folder is None or (folder / f"{module_name.split('.')[0]}.py").is_file() is False:
        return importlib.import_module(module_name)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(str(folder))


def import_function(implementation: str, position=None) -> Callable[..., np.ndarray]:
    """Import the function named ``module:function`` (``numpy:sqrt``).

    Raises
    ------
    CascadeError
        If the module or the function cannot be found.
    """
    module_name, _, attribute = implementation.partition(":")
    if not module_name or not attribute:
        raise CascadeError(f"operator implementation {implementation!r} must be written module:function", position)
    try:
        module = _import_beside(module_name, position)
    except ImportError as error:
        raise CascadeError(f"cannot import module {module_name!r} for operator implementation: {error}", position) from error
    target = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise CascadeError(f"module {module_name!r} has no function {attribute!r}", position)
    if not callable(target):
        raise CascadeError(f"{implementation!r} is not callable", position)
    return target


def resolve_function(
    definition: OperatorDef,
    supplied: dict[str, Callable[..., np.ndarray]] | None = None,
    allow_import: bool = True,
) -> Callable[..., np.ndarray]:
    """Return the Python function that computes a user-defined operator.

    The function comes from ``supplied`` first, then from the callable given
    to the builder, then from importing ``definition.implementation``.

    Raises
    ------
    CascadeError
        If no implementation is available, or importing is not allowed.
    """
    if supplied and definition.name in supplied:
        return supplied[definition.name]
    if definition.function is not None:
        return definition.function
    if definition.implementation is None:
        raise CascadeError(
            f"operator {definition.name!r} has no implementation; pass operators={{'{definition.name}': function}} "
            f"or declare it with 'via module:function'",
            definition.position,
        )
    if not allow_import:
        raise CascadeError(
            f"operator {definition.name!r} would import {definition.implementation!r}, and imports are disabled; "
            f"pass operators={{'{definition.name}': function}}",
            definition.position,
        )
    return import_function(definition.implementation, definition.position)
