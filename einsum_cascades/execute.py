"""Reference executor: runs a cascade with numpy at given rank sizes.

Initialization Einsums and the Einsums that need no iterate run first, the
recurrence body runs once per iterate of the iterative rank, and the Einsums
that need the finished recurrence run last (see :func:`einsum_cascades.graph.schedule`).
Arrays are indexed in the order of the tensor's declared ranks, batch ranks
first.  A recurrence tensor stores iterates 0 to N along its iterative rank.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from einsum_cascades.counts import iteration_count, rank_sizes
from einsum_cascades.errors import CascadeError
from einsum_cascades.graph import recurrence_positions, schedule
from einsum_cascades.ir import Cascade
from einsum_cascades.numeric import TensorData, evaluate_einsum
from einsum_cascades.operators import resolve_function

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """Result of running a cascade: every tensor's values and which coordinates exist."""

    cascade: Cascade
    sizes: dict[str, int]
    values: dict[str, np.ndarray]
    present: dict[str, np.ndarray]

    def tensor(self, name: str) -> np.ndarray:
        """Values of tensor ``name`` with empty coordinates read as 0."""
        return np.where(self.present[name], self.values[name], 0.0)

    def output(self, name: str | None = None) -> np.ndarray:
        """Values of the output ``name`` (default: the cascade's first output), empty coordinates as 0."""
        if name is None:
            if not self.cascade.outputs:
                raise CascadeError(f"cascade {self.cascade.name!r} declares no output")
            name = self.cascade.outputs[0]
        return self.tensor(name)

    def arrays(self) -> dict[str, np.ndarray]:
        """Return every tensor by name, empty coordinates as 0, as written to an ``.npz`` file."""
        return {name: self.tensor(name) for name in self.values}


def tensor_shape(cascade: Cascade, tensor: str, sizes: dict[str, int]) -> tuple[int, ...]:
    """Shape of a tensor's array: its ranks' sizes, one more along a recurrence's iterative rank.

    Parameters
    ----------
    sizes : dict
        Every rank size, as :func:`einsum_cascades.counts.rank_sizes` returns them.
    """
    shape = [sizes[rank] for rank in cascade.tensor_ranks(tensor)]
    position = recurrence_positions(cascade).get(tensor)
    if position is not None:
        shape[len(cascade.batch_ranks) + position] = iteration_count(cascade, sizes) + 1
    return tuple(shape)


def random_inputs(cascade: Cascade, sizes: dict[str, int], seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Draw every input from a standard normal distribution times ``scale``, in declaration order.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("cascade1")
    >>> random_inputs(cascade, {"K": 3}, seed=1)["A"].shape
    (3,)
    """
    full = rank_sizes(cascade, sizes)
    generator = np.random.default_rng(seed)
    return {name: generator.standard_normal(tensor_shape(cascade, name, full)) * scale for name in cascade.inputs}


def execute(
    cascade: Cascade,
    sizes: dict[str, int],
    inputs: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    operators: dict[str, Callable[..., np.ndarray]] | None = None,
    allow_import: bool = True,
    dtype: type = np.float64,
) -> Execution:
    """Run ``cascade`` at the given rank sizes.

    Parameters
    ----------
    cascade : Cascade
        The cascade to run.
    sizes : dict
        Rank sizes; partition sub-ranks and the iterative rank are derived.
    inputs : dict, optional
        Arrays by input name, indexed in the order of the input's ranks with
        batch ranks first.  Missing inputs are drawn with
        :func:`random_inputs` from ``seed``; names that are not inputs are ignored.
    operators : dict, optional
        Python functions for user-defined operators, by name.
    allow_import : bool
        Whether a user-defined operator may import its ``via module:function``
        implementation.  Pass False for cascades from untrusted sources.
    dtype : numpy dtype
        Floating-point type of the computation (float64 by default).

    Returns
    -------
    Execution
        Every tensor's values and existence masks.

    Raises
    ------
    CascadeError
        If a size is missing or invalid, an input has the wrong shape, or an
        operator has no implementation.

    Examples
    --------
    >>> import numpy as np
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("cascade3")
    >>> result = execute(cascade, {"K": 4}, {"A": np.array([1.0, 2, 3, 4]), "B": np.ones(4)})
    >>> float(result.output())
    100.0
    """
    full = rank_sizes(cascade, sizes)
    drawn = random_inputs(cascade, full, seed) if inputs is None or set(cascade.inputs) - set(inputs) else {}
    given = dict(inputs or {})
    for name in given:
        if name not in cascade.inputs:
            logger.info("ignoring %s: not an input of cascade %s", name, cascade.name)
    functions = {definition.name: resolve_function(definition, operators, allow_import) for definition in cascade.operators}

    store: dict[str, TensorData] = {}
    for name in cascade.tensors:
        shape = tensor_shape(cascade, name, full)
        if name in cascade.inputs:
            array = np.asarray(given[name] if name in given else drawn[name])
            if array.shape != shape:
                ranks = " ".join(cascade.tensor_ranks(name)) or "(none)"
                raise CascadeError(
                    f"input {name} has shape {array.shape}, but ranks {ranks} at these sizes need {shape}"
                )
            store[name] = TensorData(array.astype(dtype), np.ones(shape, dtype=bool))
        else:
            store[name] = TensorData(np.zeros(shape, dtype=dtype), np.zeros(shape, dtype=bool))

    order = schedule(cascade)
    for einsum in order.pre:
        evaluate_einsum(cascade, einsum, store, full, functions)
    if order.body:
        variable = cascade.iteration.variable
        for iterate in range(iteration_count(cascade, full)):
            for einsum in order.body:
                evaluate_einsum(cascade, einsum, store, full, functions, fixed={variable: iterate})
    for einsum in order.post:
        evaluate_einsum(cascade, einsum, store, full, functions)

    return Execution(
        cascade=cascade,
        sizes=full,
        values={name: data.values for name, data in store.items()},
        present={name: data.present for name, data in store.items()},
    )
