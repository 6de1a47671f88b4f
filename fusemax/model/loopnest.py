"""Loop nests of mapped Einsums: factor sizes, loop order, spatial placement and reuse.

A mapping splits ranks into loop factors.  For one Einsum, the factors of its
ranks become temporal loops at the ``dram`` and ``global_buffer`` levels or
spatial dimensions of its array.  Data movement follows the classic
loop-nest reuse rule: a tile of a tensor held below some loops is fetched
again once per iteration of every loop that does not index the tensor and
sits outside the innermost loop that does.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from einsum_cascades.counts import einsum_ranks, rank_sizes
from einsum_cascades.ir import Cascade, Einsum
from fusemax.arch import Architecture
from fusemax.errors import SpecError
from fusemax.mapping import Mapping
from fusemax.specs import evaluate_size

TEMPORAL_LEVELS = ("dram", "global_buffer")


@dataclass(frozen=True)
class Loop:
    """One temporal loop: a factor of ``rank`` iterated ``bound`` times at ``level``."""

    factor: str
    rank: str
    level: str
    bound: int


@dataclass(frozen=True)
class LoopNest:
    """The loop nest of one Einsum: temporal loops outermost first and spatial factors per dimension."""

    temporal: tuple[Loop, ...]
    spatial: dict[str, Loop]

    @property
    def temporal_iterations(self) -> int:
        """Cycles if every point took one cycle: the product of the temporal bounds."""
        return prod(loop.bound for loop in self.temporal)

    def refetches(self, relevant_ranks: set[str], levels: tuple[str, ...] = TEMPORAL_LEVELS) -> int:
        """Count how often the loops at ``levels`` fetch a tile indexed by ``relevant_ranks``.

        The count is the product of the bounds of the loops that do not index
        the tile and sit outside the innermost loop that does.
        """
        loops = [loop for loop in self.temporal if loop.level in levels]
        innermost = -1
        for position, loop in enumerate(loops):
            if loop.rank in relevant_ranks:
                innermost = position
        return prod(loop.bound for loop in loops[: max(innermost, 0)] if loop.rank not in relevant_ranks)


@dataclass(frozen=True)
class Factors:
    """Sizes of every rank and mapping factor for one workload."""

    rank_of: dict[str, str]
    size: dict[str, int]
    rank_size: dict[str, int]

    def factors_of(self, rank: str) -> list[str]:
        return [factor for factor, owner in self.rank_of.items() if owner == rank]


def size_names(arch: Architecture, workload_sizes: dict[str, int], row: dict[str, str]) -> dict[str, object]:
    """Names a size expression may use: configuration columns, architecture keys and workload ranks."""
    names: dict[str, object] = {}
    for column, value in row.items():
        try:
            names[column] = int(value)
        except ValueError:
            try:
                names[column] = float(value)
            except ValueError:
                names[column] = value
    names.update(arch.size_names())
    names.update(workload_sizes)
    return names


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: size must be a number, got {value!r}")
    result = int(-(-value // 1))  # round a fractional size up: a partial tile still takes a slot
    if result <= 0:
        raise SpecError(f"{where}: size must be positive, got {value!r}")
    return result


def resolve_factors(
    cascade: Cascade,
    mapping: Mapping,
    names: dict[str, object],
    workload_sizes: dict[str, int],
    max_fit: int | None = None,
) -> Factors:
    """Compute the size of every rank and factor; ``max_fit`` fixes the ``max-fit`` factor when given.

    Raises
    ------
    SpecError
        On an invalid size, a tiling of an unknown rank, or a tiling with not
        exactly one free factor.
    """
    sizes = dict(workload_sizes)
    for part, expression in mapping.partition_sizes.items():
        where = f"{mapping.source}: partition_sizes.{part}"
        sizes[part] = _positive_int(evaluate_size(expression, names, where), where)
    full = rank_sizes(cascade, sizes)
    rank_of = {rank: rank for rank in full}
    factor_size = dict(full)

    for rank, tiling in mapping.tiling.items():
        where = f"{mapping.source}: tiling.{rank}"
        if rank not in full:
            raise SpecError(f"{where}: unknown rank {rank!r}; ranks: {', '.join(full)}")
        free = [f for f in tiling.factors if f not in tiling.sizes]
        if len(free) != 1:
            raise SpecError(f"{where}: exactly one factor must have no size (it takes the rest); got {free or 'none'}")
        fixed: dict[str, int] = {}
        max_fit_factor = None
        for factor, expression in tiling.sizes.items():
            if factor not in tiling.factors:
                raise SpecError(f"{where}.sizes.{factor}: not one of the factors {tiling.factors}")
            if expression == "max-fit":
                max_fit_factor = factor
                continue
            fixed[factor] = _positive_int(evaluate_size(expression, names, f"{where}.sizes.{factor}"), f"{where}.sizes.{factor}")
            if fixed[factor] > full[rank]:
                # A loop factor longer than its rank would charge iterations over coordinates that do not exist.
                fixed[factor] = full[rank]
        tiles = -(-full[rank] // prod(fixed.values()))
        if max_fit_factor is not None:
            chosen = max_fit if max_fit is not None else 1
            fixed[max_fit_factor] = chosen
            fixed[free[0]] = -(-tiles // chosen)
        else:
            fixed[free[0]] = tiles
        del rank_of[rank]
        for factor in tiling.factors:
            rank_of[factor] = rank
            factor_size[factor] = fixed[factor]
    return Factors(rank_of=rank_of, size=factor_size, rank_size=full)


def max_fit_candidates(mapping: Mapping, factors_without_fit: Factors, names: dict[str, object]) -> tuple[str, list[int]] | None:
    """Find the ``max-fit`` factor and its candidate sizes: divisors of its tile count, largest first."""
    for rank, tiling in mapping.tiling.items():
        for factor, expression in tiling.sizes.items():
            if expression == "max-fit":
                inner = prod(
                    factors_without_fit.size[f] for f in tiling.factors if f in tiling.sizes and f != factor
                )
                tiles = -(-factors_without_fit.rank_size[rank] // inner)
                return factor, [d for d in range(tiles, 0, -1) if tiles % d == 0]
    return None


def build_loop_nest(cascade: Cascade, einsum: Einsum, mapping: Mapping, arch: Architecture, factors: Factors) -> LoopNest:
    """Place the factors of ``einsum``'s ranks into temporal loops and spatial dimensions.

    Raises
    ------
    SpecError
        If a spatial factor exceeds its array dimension or a factor is placed twice.
    """
    binding = mapping.einsums[einsum.name]
    ranks = einsum_ranks(cascade, einsum)
    own = [factor for rank in ranks for factor in factors.factors_of(rank)]
    where = f"{mapping.source}, Einsum {einsum.name}"

    spatial_spec = binding.spatial if binding.spatial is not None else mapping.spatial.get(binding.array, {})
    array = arch.array(binding.array)
    dimensions = {"rows": getattr(array, "rows", None), "cols": getattr(array, "cols", None), "lanes": getattr(array, "lanes", None)}
    spatial: dict[str, Loop] = {}
    for dimension, factor in spatial_spec.items():
        if dimensions.get(dimension) is None:
            valid = ", ".join(d for d, v in dimensions.items() if v is not None)
            raise SpecError(f"{where}: {binding.array} has no dimension {dimension!r}; dimensions: {valid}")
        if factor not in own:
            continue
        size = factors.size[factor]
        if size > dimensions[dimension]:
            raise SpecError(
                f"{where}: spatial factor {factor}={size} exceeds {binding.array}.{dimension}={dimensions[dimension]}"
            )
        spatial[dimension] = Loop(factor, factors.rank_of[factor], "spatial", size)

    temporal: list[Loop] = []
    placed = {loop.factor for loop in spatial.values()}
    loops_spec = dict(mapping.loops)
    if binding.loops is not None:
        loops_spec.update(binding.loops)
    for level in TEMPORAL_LEVELS:
        for factor in loops_spec.get(level, []):
            if factor not in own:
                continue
            if factor in placed:
                raise SpecError(f"{where}: factor {factor} is placed twice (loops.{level} and elsewhere)")
            placed.add(factor)
            temporal.append(Loop(factor, factors.rank_of[factor], level, factors.size[factor]))
    for factor in own:
        if factor not in placed:
            temporal.append(Loop(factor, factors.rank_of[factor], "global_buffer", factors.size[factor]))
    return LoopNest(temporal=tuple(temporal), spatial=spatial)


def buffer_footprint_words(cascade: Cascade, mapping: Mapping, factors: Factors, level: str = "global_buffer") -> dict[str, int]:
    """Words of each tensor kept at ``level``: its tile below the DRAM loops, capped at its size."""
    dram_factors = set(mapping.loops.get("dram", []))
    footprint: dict[str, int] = {}
    for tensor, levels in mapping.keep.items():
        if level not in levels:
            continue
        if tensor not in cascade.tensors:
            raise SpecError(f"{mapping.source}: keep.{tensor}: no tensor {tensor!r} in cascade {cascade.name}")
        words = 1
        for rank in cascade.tensor_ranks(tensor):
            below = prod(factors.size[f] for f in factors.factors_of(rank) if f not in dram_factors)
            words *= min(below, factors.rank_size[rank])
        footprint[tensor] = words
    return footprint


def buffer_need_words(cascade: Cascade, mapping: Mapping, factors: Factors) -> tuple[int, dict[str, int]]:
    """Global-buffer need in words: the largest sum, over schedule phases, of the tiles its Einsums use.

    Phases run one after another, so only the tensors one phase touches must
    be resident together.  Returns the need and the per-tensor footprints of
    the phase that sets it.
    """
    footprint = buffer_footprint_words(cascade, mapping, factors)
    phases: dict[str, set[str]] = {}
    for stage in mapping.schedule:
        touched = phases.setdefault(stage.phase, set())
        for name in stage.array2d + stage.array1d:
            einsum = cascade.einsum(name)
            touched.update(einsum.inputs)
            touched.add(einsum.name)
    best: dict[str, int] = {}
    for touched in phases.values():
        resident = {tensor: words for tensor, words in footprint.items() if tensor in touched}
        if sum(resident.values()) > sum(best.values()) or not best:
            best = resident
    return sum(best.values()), best
