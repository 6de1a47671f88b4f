"""Checking a cascade's output against the reference definition its file declares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import Execution, execute, random_inputs
from einsum_cascades.ir import Cascade
from einsum_cascades.references import evaluate_reference


def relative_error(output: np.ndarray, reference: np.ndarray) -> float:
    """Norm-wise relative error ``‖output − reference‖ / ‖reference‖`` (Frobenius norms).

    A zero reference gives the absolute error ``‖output‖``; a NaN or an
    infinity anywhere gives infinity.

    Examples
    --------
    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    """
    output = np.asarray(output, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if output.shape != reference.shape:
        raise CascadeError(f"output shape {output.shape} differs from the reference shape {reference.shape}")
    if not (np.all(np.isfinite(output)) and np.all(np.isfinite(reference))):
        return float("inf")
    scale = float(np.linalg.norm(reference))
    difference = float(np.linalg.norm(output - reference))
    return difference / scale if scale > 0 else difference


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_against_reference`."""

    cascade: str
    output: str
    reference: str
    sizes: dict[str, int]
    relative_error: float
    execution: Execution


def check_against_reference(
    cascade: Cascade,
    sizes: dict[str, int],
    inputs: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    scale: float = 1.0,
    operators: dict[str, Callable[..., np.ndarray]] | None = None,
    allow_import: bool = True,
) -> CheckResult:
    """Run ``cascade`` and compare its output with its declared reference, in float64.

    Parameters
    ----------
    sizes : dict
        Rank sizes, as for :func:`einsum_cascades.execute.execute`.
    inputs : dict, optional
        Input arrays; missing ones are drawn from a standard normal
        distribution (seeded by ``seed``) times ``scale``.

    Raises
    ------
    CascadeError
        If the cascade declares no reference, or cannot run at these sizes.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> result = check_against_reference(cascade, dict(B=1, H=1, E=4, F=3, M=10, P=5, M0=4))
    >>> result.relative_error < 1e-12
    True
    """
    if cascade.reference is None:
        raise CascadeError(
            f"cascade {cascade.name!r} declares no reference definition; add a 'reference' statement to its file",
            None,
        )
    drawn = random_inputs(cascade, sizes, seed, scale)
    chosen = {**drawn, **(inputs or {})}
    execution = execute(cascade, sizes, chosen, seed, operators, allow_import)
    given = {name: execution.values[name] for name in cascade.inputs}
    reference = evaluate_reference(cascade, given, execution.sizes, operators, allow_import)
    output = execution.tensor(cascade.reference.output)
    return CheckResult(
        cascade=cascade.name,
        output=cascade.reference.output,
        reference=cascade.reference.function,
        sizes=execution.sizes,
        relative_error=relative_error(output, reference),
        execution=execution,
    )
