"""Analytical model of a mapped cascade: cycles, DRAM traffic, energy, utilization and buffer need.

For each Einsum the model reads its iteration space, operand projections and
operator counts from the cascade, its loop nest and array from the mapping,
and operator costs, sizes and energies from the architecture:

* compute cycles = product of temporal loop bounds x cycles per iteration point
  (the sum over the Einsum's operators of their cycle cost on the bound array);
* accesses per storage level by the loop-nest reuse rule (see ``loopnest``);
* DRAM traffic from the tensors kept in DRAM, with a fraction of each on-chip
  tensor's buffer accesses spilled to DRAM when the mapping declares a spill fraction;
* energy = action counts x per-action energies.

The mapping's schedule combines Einsum compute times: stages run back to
back, the two arrays overlap within a stage, and latency is the maximum of
compute and memory time when the mapping overlaps them.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from pathlib import Path
from dataclasses import dataclass, field

from einsum_cascades.counts import access_ranks, extent, iteration_points, operator_counts
from einsum_cascades.ir import Cascade, Einsum
from einsum_cascades.library import resolve_cascade
from fusemax.arch import Architecture
from fusemax.errors import SpecError
from fusemax.mapping import LEVELS, Mapping
from fusemax.model.loopnest import (
    Factors,
    LoopNest,
    buffer_need_words,
    build_loop_nest,
    max_fit_candidates,
    resolve_factors,
    size_names,
)
from fusemax.model.energy import energy_breakdown_pj
from fusemax.model.traffic import count_accesses
from fusemax.specs import evaluate_size
from fusemax.workloads import RankSizes, Workload

logger = logging.getLogger(__name__)


@dataclass
class EinsumResult:
    """Per-Einsum results; ``work_cycles`` is busy time if the whole array worked on it."""

    name: str
    array: str
    points: int
    cycles_per_point: int
    compute_cycles: int
    work_cycles: float
    actions: dict[str, int]
    reads: dict[str, float] = field(default_factory=dict)
    writes: dict[str, float] = field(default_factory=dict)
    traffic_read_words: float = 0.0
    traffic_write_words: float = 0.0
    utilization: float = 0.0


@dataclass
class Evaluation:
    """The analytical result of one architecture, mapping and workload."""

    arch: Architecture
    mapping: Mapping
    workload: Workload
    factors: Factors
    per_einsum: dict[str, EinsumResult]
    compute_cycles: int
    memory_s: float
    latency_s: float
    traffic_bytes: float
    energy_pj: float
    energy_breakdown_pj: dict[str, float]
    utilization: dict[str, float]
    buffer_bytes: int
    buffer_tensors_words: dict[str, int]
    phases: list["Phase"]

    @property
    def compute_s(self) -> float:
        return self.compute_cycles / self.arch.clock_hz

    @property
    def cycles(self) -> float:
        """Latency in clock cycles (fractional when memory time dominates)."""
        return self.latency_s * self.arch.clock_hz

    def array_compute_s(self, array: str) -> float:
        """Sum of the compute times of the Einsums bound to ``array``, in seconds."""
        return sum(r.compute_cycles for r in self.per_einsum.values() if r.array == array) / self.arch.clock_hz

    def to_json(self) -> dict:
        """Return the result as the JSON object of ``fusemax evaluate --json``."""
        return {
            "arch": self.arch.name,
            "mapping": self.mapping.name,
            "cascade": self.mapping.cascade,
            "workload": {**self.workload.sizes, "model": self.workload.model},
            "latency_s": self.latency_s,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "traffic_bytes": self.traffic_bytes,
            "energy_pj": self.energy_pj,
            "energy_breakdown_pj": self.energy_breakdown_pj,
            "utilization": self.utilization,
            "buffer_bytes": self.buffer_bytes,
            "buffer_capacity_bytes": self.arch.global_buffer.capacity_bytes,
            "factors": {f: s for f, s in self.factors.size.items() if f not in self.factors.rank_size or f in self.mapping.partition_sizes},
            "per_einsum": {
                name: {
                    "array": r.array,
                    "points": r.points,
                    "cycles": r.compute_cycles,
                    "latency_s": r.compute_cycles / self.arch.clock_hz,
                    "utilization": r.utilization,
                    "actions": r.actions,
                    "traffic_bytes": (r.traffic_read_words + r.traffic_write_words) * self.arch.word_bytes,
                }
                for name, r in self.per_einsum.items()
            },
        }


def evaluate(arch: Architecture, mapping: Mapping, workload: Workload, row: dict[str, str] | None = None) -> Evaluation:
    """Evaluate a mapped cascade analytically.

    Parameters
    ----------
    arch, mapping : validated specs
    workload : rank sizes of one attention layer
    row : the configuration-table row the mapping was resolved with, if any

    Raises
    ------
    SpecError
        If the mapping does not fit the cascade or the architecture, or the
        global buffer cannot hold even one tile.

    Examples
    --------
    >>> from fusemax.arch import load_architecture
    >>> from fusemax.mapping import load_mapping
    >>> from fusemax.workloads import model_workload
    >>> mapping, _ = load_mapping("fusemax-binding")
    >>> result = evaluate(load_architecture("fusemax-cloud"), mapping, model_workload("BERT", 1024))
    >>> round(result.latency_s, 9), int(result.traffic_bytes)
    (0.00201314, 402653184)
    """
    cascade = _cascade(mapping.cascade)
    _check_binding(cascade, mapping)
    _check_sizes(cascade, mapping, workload)
    names = size_names(arch, workload.sizes, row or {})
    factors = _choose_factors(cascade, mapping, arch, names, workload)
    need_words, footprint = buffer_need_words(cascade, mapping, factors)
    buffer_bytes = int(need_words * arch.word_bytes)

    _check_configuration_applies(arch, mapping)
    if buffer_bytes > arch.global_buffer.capacity_bytes and not mapping.spill:
        detail = ", ".join(f"{t} {_plain(w * arch.word_bytes)}" for t, w in footprint.items())
        raise SpecError(
            f"{mapping.source}: the tiles kept in the global buffer need {buffer_bytes} bytes ({detail}) but "
            f"global_buffer.capacity_bytes is {arch.global_buffer.capacity_bytes}; use smaller tiles or 'max-fit'"
        )
    spill = {t: float(evaluate_size(v, names, f"{mapping.source}: spill.{t}")) for t, v in mapping.spill.items()}
    per_einsum: dict[str, EinsumResult] = {}
    for einsum in cascade.einsums:
        nest = build_loop_nest(cascade, einsum, mapping, arch, factors)
        per_einsum[einsum.name] = _evaluate_einsum(cascade, einsum, mapping, arch, factors, nest, spill)

    phases = _schedule_phases(mapping, per_einsum, names)
    compute_cycles = sum(phase.compute_cycles for phase in phases)
    traffic_words = sum(r.traffic_read_words + r.traffic_write_words for r in per_einsum.values())
    traffic_bytes = traffic_words * arch.word_bytes
    memory_s = traffic_bytes / arch.dram.bandwidth_bytes_per_s
    latency_s = 0.0
    for phase in phases:
        phase.compute_s = phase.compute_cycles / arch.clock_hz
        phase.memory_s = phase.traffic_words * arch.word_bytes / arch.dram.bandwidth_bytes_per_s
        if mapping.overlap_memory:
            phase.latency_s = max(phase.compute_s, phase.memory_s)
        else:
            phase.latency_s = phase.compute_s + phase.memory_s
        latency_s += phase.latency_s

    latency_cycles = latency_s * arch.clock_hz
    utilization: dict[str, float] = defaultdict(float)
    for result in per_einsum.values():
        result.utilization = result.work_cycles / latency_cycles
        utilization[result.array] += result.utilization
    for array in ("array2d", "array1d"):
        utilization.setdefault(array, 0.0)

    breakdown = energy_breakdown_pj(arch, per_einsum)
    return Evaluation(
        arch=arch,
        mapping=mapping,
        workload=workload,
        factors=factors,
        per_einsum=per_einsum,
        compute_cycles=compute_cycles,
        memory_s=memory_s,
        latency_s=latency_s,
        traffic_bytes=traffic_bytes,
        energy_pj=sum(breakdown.values()),
        energy_breakdown_pj=breakdown,
        utilization=dict(utilization),
        buffer_bytes=buffer_bytes,
        buffer_tensors_words=footprint,
        phases=phases,
    )


def _cascade(name_or_path: str) -> Cascade:
    """Load a cascade once per process for a library name, or per file version for a path."""
    path = Path(name_or_path)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _cascade_cached(name_or_path, stamp)


@functools.lru_cache(maxsize=64)
def _cascade_cached(name_or_path: str, stamp: int | None) -> Cascade:
    return resolve_cascade(name_or_path)


def evaluate_best(arch: Architecture, mapping: Mapping, workload: Workload, row: dict[str, str] | None = None) -> Evaluation:
    """Evaluate every candidate of a mapping (see ``Mapping.alternatives``) and return the best.

    The best has the lowest latency; ties go to the lowest energy.  A
    candidate whose tile does not fit the buffer is skipped, unless none fits.
    """
    results: list[Evaluation] = []
    first_error: SpecError | None = None
    for candidate in mapping.candidates():
        try:
            results.append(evaluate(arch, candidate, workload, row))
        except SpecError as error:
            first_error = first_error or error
    if not results:
        assert first_error is not None
        raise first_error
    return min(results, key=lambda result: (result.latency_s, result.energy_pj))


def _plain(value: float) -> str:
    """Format a number for messages: whole values without a fraction or exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_configuration_applies(arch: Architecture, mapping: Mapping) -> None:
    """Reject an architecture that differs from the one a mapping's configuration table was computed for."""
    if mapping.configuration is None:
        return
    values = arch.size_names()
    for key, expected in mapping.configuration.valid_for.items():
        if values.get(key) != expected:
            raise SpecError(
                f"{mapping.source}: its configuration table {mapping.configuration.file} was computed for "
                f"{key}={_plain(expected)}, but {arch.source} has {key}={values.get(key)}; its dataflow choices and spill "
                f"fractions do not apply to other sizes"
            )


def _check_sizes(cascade: Cascade, mapping: Mapping, workload) -> None:
    """Require a size for every rank of the cascade that the mapping does not size itself."""
    derived = {partition.parts[0] for partition in cascade.partitions} | set(mapping.partition_sizes)
    needed = [rank for rank in cascade.ranks if rank not in derived]
    missing = [rank for rank in needed if rank not in workload.sizes]
    if missing:
        example = ",".join(f"{rank}=..." for rank in needed)
        raise SpecError(
            f"cascade {cascade.name} of {mapping.source} needs sizes for rank(s) {', '.join(missing)}; "
            f"give every rank with --sizes {example}"
        )
    if isinstance(workload, RankSizes):
        unknown = [rank for rank in workload.sizes if rank not in needed]
        if unknown:
            raise SpecError(
                f"--sizes: cascade {cascade.name} has no rank(s) {', '.join(unknown)}; its ranks: {', '.join(needed)}"
            )


def _check_binding(cascade: Cascade, mapping: Mapping) -> None:
    names = [e.name for e in cascade.einsums]
    unbound = [n for n in names if n not in mapping.einsums]
    unknown = [n for n in mapping.einsums if n not in names]
    if unbound or unknown:
        raise SpecError(
            f"{mapping.source}: einsums must bind exactly the Einsums of cascade {cascade.name} "
            f"({', '.join(names)}); unbound: {', '.join(unbound) or 'none'}; unknown: {', '.join(unknown) or 'none'}"
        )
    scheduled = [n for stage in mapping.schedule for n in stage.array2d + stage.array1d]
    for name in names:
        if scheduled.count(name) != 1:
            raise SpecError(f"{mapping.source}: schedule must list Einsum {name} exactly once")
    for stage in mapping.schedule:
        for array in ("array2d", "array1d"):
            for name in getattr(stage, array):
                if name in mapping.einsums and mapping.einsums[name].array != array:
                    raise SpecError(
                        f"{mapping.source}: schedule puts {name} on {array} but einsums.{name}.array is "
                        f"{mapping.einsums[name].array}"
                    )


def _choose_factors(cascade: Cascade, mapping: Mapping, arch: Architecture, names: dict, workload: Workload) -> Factors:
    """Resolve factor sizes, picking the largest ``max-fit`` size whose buffer need fits."""
    factors = resolve_factors(cascade, mapping, names, workload.sizes)
    search = max_fit_candidates(mapping, factors, names)
    if search is None:
        return factors
    factor, candidates = search
    capacity = arch.global_buffer.capacity_bytes
    for candidate in candidates:
        trial = resolve_factors(cascade, mapping, names, workload.sizes, max_fit=candidate)
        need = buffer_need_words(cascade, mapping, trial)[0] * arch.word_bytes
        if need <= capacity:
            logger.debug("chose %s=%d (buffer need %d of %d bytes)", factor, candidate, need, capacity)
            return trial
    smallest = resolve_factors(cascade, mapping, names, workload.sizes, max_fit=1)
    need_words = buffer_need_words(cascade, mapping, smallest)[1]
    need = int(sum(need_words.values()) * arch.word_bytes)
    detail = ", ".join(f"{t} {_plain(w * arch.word_bytes)}" for t, w in need_words.items())
    raise SpecError(
        f"global_buffer.capacity_bytes: {capacity} bytes is too small for one tile of {mapping.source}: "
        f"it needs {need} bytes with {factor}=1 ({detail}); use at least {need} bytes or a smaller array"
    )


def _evaluate_einsum(
    cascade: Cascade,
    einsum: Einsum,
    mapping: Mapping,
    arch: Architecture,
    factors: Factors,
    nest: LoopNest,
    spill: dict[str, float],
) -> EinsumResult:
    binding = mapping.einsums[einsum.name]
    array = arch.array(binding.array)
    counts = operator_counts(einsum)
    cycles_per_point = 0
    actions: dict[str, int] = defaultdict(int)
    points = iteration_points(cascade, einsum, factors.rank_size)
    for operator, count in counts.items():
        cost = array.operators.get(operator)
        if cost is None:
            raise SpecError(
                f"{arch.source}: Einsum {einsum.name} of {mapping.source} needs operator {operator!r}, which "
                f"{binding.array} cannot run; it runs: {', '.join(array.operators)}"
            )
        cycles_per_point += count * cost.cycles_per_application
        for unit, per_application in cost.actions.items():
            actions[unit] += points * count * per_application

    result = EinsumResult(
        name=einsum.name,
        array=binding.array,
        points=points,
        cycles_per_point=cycles_per_point,
        compute_cycles=nest.temporal_iterations * cycles_per_point,
        work_cycles=points * cycles_per_point / array.processing_elements,
        actions=dict(actions),
    )

    operands = [(access, False) for access in einsum.accesses] + [(einsum.output, True)]
    register_reads = points * len(einsum.accesses)
    result.reads[f"{binding.array}.register_file"] = register_reads
    result.writes[f"{binding.array}.register_file"] = points
    for access, is_output in operands:
        keep = binding.keep.get(access.tensor, mapping.keep.get(access.tensor, []))
        levels = [level for level in LEVELS if level in keep]
        if not levels:
            continue
        ranks = tuple(dict.fromkeys(access_ranks(cascade, access)))
        if is_output and binding.accumulate_across:
            ranks = tuple(rank for rank in ranks if rank not in binding.accumulate_across)
        relevant = set(ranks)
        elements = extent(cascade, ranks, factors.rank_size)
        count_accesses(result, access.tensor, levels, relevant, elements, nest, is_output, spill.get(access.tensor, 0.0))
    return result


@dataclass
class Phase:
    """Stages that share one overlap of compute and DRAM time."""

    name: str
    einsums: list[str]
    compute_cycles: int = 0
    traffic_words: float = 0.0
    compute_s: float = 0.0
    memory_s: float = 0.0
    latency_s: float = 0.0


def _schedule_phases(mapping: Mapping, per_einsum: dict[str, EinsumResult], names: dict) -> list[Phase]:
    """Group the schedule's stages into phases and add up their compute cycles and traffic."""
    phases: list[Phase] = []
    for index, stage in enumerate(mapping.schedule):
        if not phases or phases[-1].name != stage.phase:
            phases.append(Phase(stage.phase, []))
        phase = phases[-1]
        busy_2d = sum(per_einsum[name].compute_cycles for name in stage.array2d)
        busy_1d = sum(per_einsum[name].compute_cycles for name in stage.array1d)
        phase.compute_cycles += max(busy_2d, busy_1d)
        if stage.stall is not None:
            if stage.stall.einsum not in per_einsum:
                raise SpecError(f"{mapping.source}: schedule.{index}.stall.einsum: unknown Einsum {stage.stall.einsum!r}")
            times = evaluate_size(stage.stall.times, names, f"{mapping.source}: schedule.{index}.stall.times")
            phase.compute_cycles += int(times * per_einsum[stage.stall.einsum].compute_cycles)
        for name in stage.array2d + stage.array1d:
            phase.einsums.append(name)
            phase.traffic_words += per_einsum[name].traffic_read_words + per_einsum[name].traffic_write_words
    return phases
