"""Numpy evaluation of one Einsum over its iteration space: the reference semantics of the language.

Every tensor is stored as a value array and a ``present`` mask: a coordinate
that no Einsum wrote, that lies past its rank's size, or that a filter removes
is *empty*, not zero.  The iteration space is a dense grid with one axis per
batch rank and per rank variable (an iterative variable inside the recurrence
is one fixed coordinate).  At each point:

* an access reads its value where the coordinate exists, is in range and
  passes the access's filters, and is empty elsewhere;
* an operator combines its operands according to its merge.  ``∩`` visits
  points where every operand exists.  ``∪`` visits points where any does, and
  an empty operand reads as the operator's empty value (0, or -inf for max).
  ``←`` visits points where every operand exists and the divisor is nonzero,
  because a fibertree stores no zeros.  The pass-through merge visits every
  point;
* when all sub-ranks of a partition index the Einsum, the points with
  ``m1*M0 + m0 >= M`` do not exist (a partial last tile adds nothing);
* the reduction folds the existing values of one output coordinate, and an
  output coordinate with none stays empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, AffineExpr, Call, Cascade, Condition, Constant, Einsum, Expr, RankSize
from einsum_cascades.operators import BUILTINS, default_merge, empty_value, reduction_identity

_COMPARE = {
    "=": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


@dataclass
class TensorData:
    """Values and existence of one tensor; arrays are indexed batch ranks first."""

    values: np.ndarray
    present: np.ndarray


class _Grid:
    """Coordinates of the iteration space of one Einsum, as broadcastable integer arrays."""

    def __init__(self, cascade: Cascade, einsum: Einsum, sizes: dict[str, int], fixed: dict[str, int]):
        self.sizes = sizes
        batch = cascade.batch_ranks
        variables = einsum.variables
        self.ndim = len(batch) + len(variables)
        self.shape: list[int] = []
        self.batch: list[np.ndarray] = []
        self.coordinates: dict[str, np.ndarray] = {}
        for axis, rank in enumerate(batch):
            self.batch.append(self._axis(axis, np.arange(sizes[rank])))
        for offset, variable in enumerate(variables):
            axis = len(batch) + offset
            if variable in fixed:
                values = np.array([fixed[variable]])
            else:
                values = np.arange(sizes[variable.upper()])
            self.coordinates[variable] = self._axis(axis, values)

    def _axis(self, axis: int, values: np.ndarray) -> np.ndarray:
        shape = [1] * self.ndim
        shape[axis] = len(values)
        self.shape.append(len(values))
        return values.reshape(shape)

    def affine(self, expr: AffineExpr) -> np.ndarray | int:
        total: np.ndarray | int = 0
        for term in expr.terms:
            product: np.ndarray | int = term.coefficient
            for factor in term.factors:
                product = product * (self.coordinates[factor] if factor.islower() else self.sizes[factor])
            total = total + product
        return total

    def holds(self, condition: Condition) -> np.ndarray | bool:
        return _COMPARE[condition.operator](self.affine(condition.left), self.affine(condition.right))


def _read(access: Access, grid: _Grid, tensor: TensorData) -> tuple[np.ndarray, np.ndarray]:
    """Gather an operand's values and existence over the grid."""
    index: list[np.ndarray | int] = list(grid.batch)
    exists: np.ndarray | bool = True
    for position, entry in enumerate(access.indices):
        coordinate = np.asarray(grid.affine(entry.expr))
        extent = tensor.values.shape[len(grid.batch) + position]
        exists = exists & (coordinate >= 0) & (coordinate < extent)
        for condition in entry.filters:
            exists = exists & grid.holds(condition)
        index.append(np.clip(coordinate, 0, extent - 1))
    values = tensor.values[tuple(index)]
    present = tensor.present[tuple(index)] & exists
    return values, present


def _evaluate(expr: Expr, grid: _Grid, store: dict[str, TensorData], functions) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(expr, Access):
        return _read(expr, grid, store[expr.tensor])
    if isinstance(expr, Constant):
        return np.float64(expr.value), np.True_
    if isinstance(expr, RankSize):
        return np.float64(grid.sizes[expr.rank]), np.True_
    operands = [_evaluate(arg, grid, store, functions) for arg in expr.args]
    return _apply(expr, operands, functions)


def _apply(call: Call, operands, functions) -> tuple[np.ndarray, np.ndarray]:
    """Apply one operator to evaluated operands under its merge."""
    merge = call.merge or default_merge(call.operator)
    values = [value for value, _ in operands]
    presents = [present for _, present in operands]
    if merge == "intersection":
        present = np.logical_and.reduce(np.broadcast_arrays(*presents)) if len(presents) > 1 else presents[0]
    elif merge == "one_sided":
        present = np.logical_and.reduce(np.broadcast_arrays(*presents)) & (values[-1] != 0)
    else:
        empty = empty_value(call.operator)
        values = [np.where(p, v, empty) for v, p in zip(values, presents)]
        if merge == "union":
            present = np.logical_or.reduce(np.broadcast_arrays(*presents)) if len(presents) > 1 else presents[0]
        else:
            present = np.True_
    builtin = call.operator in BUILTINS
    function = BUILTINS[call.operator].function if builtin else functions[call.operator]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if builtin:
            result = np.asarray(function(*values), dtype=np.float64)
        else:
            result = _call_user_operator(call.operator, function, values)
    return np.where(present, result, 0.0), np.asarray(present)


def _call_user_operator(name: str, function: Callable[..., np.ndarray], values: list[np.ndarray]) -> np.ndarray:
    """Call a user-defined operator, turning its failures into a CascadeError that names it."""
    expected = np.broadcast_shapes(*(np.shape(value) for value in values))
    try:
        result = np.asarray(function(*values), dtype=np.float64)
    except Exception as error:  # a user's function may raise anything
        raise CascadeError(f"user-defined operator {name!r} failed: {type(error).__name__}: {error}") from None
    if result.shape != expected and result.shape != ():
        raise CascadeError(
            f"user-defined operator {name!r} returned shape {result.shape}; it must return one value per "
            f"element, shape {expected}"
        )
    return result


def evaluate_einsum(
    cascade: Cascade,
    einsum: Einsum,
    store: dict[str, TensorData],
    sizes: dict[str, int],
    functions: dict[str, Callable[..., np.ndarray]],
    fixed: dict[str, int] | None = None,
) -> None:
    """Evaluate ``einsum`` and write its output into ``store``.

    ``fixed`` pins rank variables to one coordinate (the iterative variable
    inside the recurrence).

    Raises
    ------
    CascadeError
        If the Einsum writes an existing value past the last coordinate of an
        output rank.
    """
    grid = _Grid(cascade, einsum, sizes, fixed or {})
    masks = _space_masks(cascade, einsum, grid, sizes)
    batch = len(cascade.batch_ranks)
    kept = batch + len(einsum.output.indices)
    axes = tuple(range(kept, grid.ndim))

    contracted = None
    if axes and einsum.reduce_operator == "add":
        contracted = _contract(einsum.expr, grid, store, masks, kept)
    if contracted is not None:
        values, present = contracted
    else:
        values, present = _evaluate(einsum.expr, grid, store, functions)
        shape = tuple(grid.shape)
        values = np.broadcast_to(values, shape)
        present = np.broadcast_to(present, shape).copy()
        for mask in masks:
            present &= mask
        if axes:
            values, present = _reduce(einsum, cascade, values, present, axes, functions)
    _write(einsum, grid, store[einsum.name], values, present, batch)


def _space_masks(cascade: Cascade, einsum: Einsum, grid: _Grid, sizes: dict[str, int]) -> list[np.ndarray]:
    """Points that exist: partition bounds ``m1*M0 + m0 < M`` and the filters of the output."""
    masks = []
    for partition in cascade.partitions:
        if all(part.lower() in grid.coordinates for part in partition.parts):
            coordinate: np.ndarray | int = 0
            for position, part in enumerate(partition.parts):
                stride = prod(sizes[p] for p in partition.parts[position + 1 :])
                coordinate = coordinate + grid.coordinates[part.lower()] * stride
            masks.append(np.asarray(coordinate < sizes[partition.rank]))
    for index in einsum.output.indices:
        for condition in index.filters:
            masks.append(np.asarray(grid.holds(condition)))
    return masks


def _factors(expr: Expr) -> list[Expr] | None:
    """Leaves of a product of accesses and finite constants with the default merge, or None."""
    if isinstance(expr, Access):
        return [expr]
    if isinstance(expr, Constant):
        return [expr] if np.isfinite(expr.value) else None
    if isinstance(expr, Call) and expr.operator == "mul" and expr.merge is None:
        leaves: list[Expr] = []
        for arg in expr.args:
            found = _factors(arg)
            if found is None:
                return None
            leaves.extend(found)
        return leaves
    return None


def _contract(expr: Expr, grid: _Grid, store: dict[str, TensorData], masks: list[np.ndarray], kept: int):
    """Sum-reduce a product of operands with ``numpy.einsum``, without forming the whole iteration space.

    Gives the same values as the general path: an empty operand, a point past
    a partition bound or outside an output filter adds nothing, and an output
    coordinate with no existing point stays empty.  Returns None when an
    operand contains an infinity, where ``0 * inf`` would differ.
    """
    leaves = _factors(expr)
    if leaves is None:
        return None
    full = (1,) * grid.ndim
    shape = tuple(grid.shape[:kept])

    def shaped(array: np.ndarray) -> np.ndarray:
        return np.reshape(array, array.shape if array.ndim == grid.ndim else full)

    # Masks over output axes only are applied after the reduction; the others join the contraction.
    after = [m for m in masks if all(size == 1 for size in shaped(m).shape[kept:])]
    inside = [m for m in masks if not any(m is other for other in after)]
    scale = 1.0
    values: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    dense = not inside
    for leaf in leaves:
        if isinstance(leaf, Constant):
            scale *= leaf.value
            continue
        value, present = _read(leaf, grid, store[leaf.tensor])
        masked = np.where(present, value, 0.0)
        if not np.all(np.isfinite(masked)):
            return None
        dense = dense and bool(np.all(present))
        values.append(shaped(masked))
        counts.append(shaped(present).astype(np.float64))
    for mask in inside:
        values.append(shaped(mask).astype(np.float64))
        counts.append(values[-1])
    if not values:
        return None

    reduced = _einsum(values, grid, kept) * scale
    if dense:
        exists = np.ones(shape, dtype=bool)
    else:
        exists = _einsum(counts, grid, kept) > 0
    for mask in after:
        exists = exists & np.reshape(shaped(mask), shaped(mask).shape[:kept])
    return np.where(exists, reduced, 0.0), exists


def _einsum(operands: list[np.ndarray], grid: _Grid, kept: int) -> np.ndarray:
    """Sum the product of grid-shaped operands over the axes past ``kept``, squeezing their length-1 axes.

    Squeezed operands let ``numpy.einsum`` pick matrix products instead of
    broadcasting over the whole iteration space.
    """
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    squeezed = []
    subscripts = []
    used: set[int] = set()
    for operand in operands:
        axes = [axis for axis in range(grid.ndim) if operand.shape[axis] != 1 or grid.shape[axis] == 1]
        squeezed.append(np.reshape(operand, [operand.shape[axis] for axis in axes]))
        subscripts.append("".join(letters[axis] for axis in axes))
        used.update(axes)
    output = [axis for axis in range(kept) if axis in used]
    spec = ",".join(subscripts) + "->" + "".join(letters[axis] for axis in output)
    result = np.einsum(spec, *squeezed, optimize=True)
    shape = [grid.shape[axis] if axis in output else 1 for axis in range(kept)]
    return np.broadcast_to(np.reshape(result, shape), tuple(grid.shape[:kept]))


def _reduce(einsum: Einsum, cascade: Cascade, values, present, axes, functions):
    identity = reduction_identity(einsum.reduce_operator, cascade.operators)
    masked = np.where(present, values, identity)
    exists = np.any(present, axis=axes)
    if einsum.reduce_operator in BUILTINS:
        ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[einsum.reduce_operator]
        folded = ufunc.reduce(masked, axis=axes)
    else:
        function = functions[einsum.reduce_operator]
        flat = masked.reshape(masked.shape[: axes[0]] + (-1,))
        folded = np.full(flat.shape[:-1], identity, dtype=np.float64)
        for position in range(flat.shape[-1]):
            folded = np.asarray(function(folded, flat[..., position]), dtype=np.float64)
    return np.where(exists, folded, 0.0), exists


def _write(einsum: Einsum, grid: _Grid, target: TensorData, values, present, batch: int) -> None:
    coordinates: list[np.ndarray] = [np.arange(grid.shape[axis]) for axis in range(batch)]
    for position, entry in enumerate(einsum.output.indices):
        axis = batch + position
        coordinate = np.asarray(grid.affine(entry.expr)).reshape(-1)
        extent = target.values.shape[axis]
        valid = (coordinate >= 0) & (coordinate < extent)
        if not valid.all():
            if np.take(present, np.flatnonzero(~valid), axis=axis).any():
                variable = entry.expr.variables[0]
                raise CascadeError(
                    f"Einsum {einsum.name} writes coordinate {int(coordinate[~valid][0])} of rank "
                    f"{variable.upper()}, past its last coordinate {extent - 1}",
                    einsum.position,
                )
            keep = np.flatnonzero(valid)
            values = np.take(values, keep, axis=axis)
            present = np.take(present, keep, axis=axis)
            coordinate = coordinate[keep]
        coordinates.append(coordinate)

    key = tuple(np.ix_(*coordinates)) if coordinates else ()
    old_values = target.values[key]
    old_present = target.present[key]
    if einsum.populate is None:
        new_values = np.where(present, values, old_values)
    else:
        function = BUILTINS[einsum.populate].function
        combined = np.where(old_present, function(old_values, values), values)
        new_values = np.where(present, combined, old_values)
    target.values[key] = new_values
    target.present[key] = old_present | present
