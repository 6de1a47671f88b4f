"""Cycle-level simulation of a mapped cascade: the public entry point and its result.

``simulate`` evaluates the point analytically (for tile sizes, loop nests and
traffic), plans each phase of the schedule (``program.py``) and steps it with
the numba kernel (``pipeline.py``).  Phases run one after another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from einsum_cascades.library import resolve_cascade
from fusemax.arch import Architecture
from fusemax.errors import SpecError
from fusemax.mapping import Mapping
from fusemax.model.evaluate import Evaluation, evaluate_best
from fusemax.sim import layout as lay
from fusemax.sim.kernel_cache import refresh_kernel_cache
from fusemax.sim.pipeline import DEADLOCK, STALL_CAUSES, run_phase
from fusemax.sim.program import ARRAYS, PhasePlan, plan_phases
from fusemax.workloads import Workload

logger = logging.getLogger(__name__)

DEFAULT_TRACE_LIMIT = 100_000


@dataclass
class TraceEvent:
    """One block of one Einsum: its unit, block index and start and end cycle (end exclusive)."""

    phase: str
    einsum: str
    unit: str
    block: int
    start_cycle: int
    end_cycle: int


@dataclass
class PhaseResult:
    """Cycle counts of one phase; every count is an exact integer."""

    name: str
    cycles: int
    busy_cycles: dict[str, int]
    stall_cycles: dict[str, dict[str, int]]
    buffer_peak_bytes: int
    traffic_bytes: int
    points: dict[str, int]
    tasks: dict[str, int]
    skipped_periods: int
    skipped_rounds: int
    skipped_cycles: int
    plan: PhasePlan


@dataclass
class SimulationResult:
    """Result of simulating one architecture, mapping and workload cycle by cycle."""

    evaluation: Evaluation
    phases: list[PhaseResult]
    trace: list[TraceEvent] | None = None
    trace_truncated: bool = False
    cycles: int = 0
    busy_cycles: dict[str, int] = field(default_factory=dict)
    stall_cycles: dict[str, int] = field(default_factory=dict)
    stall_cycles_by_unit: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cycles = sum(phase.cycles for phase in self.phases)
        self.busy_cycles = {unit: sum(p.busy_cycles[unit] for p in self.phases) for unit in (*ARRAYS, "dram")}
        self.stall_cycles_by_unit = {
            array: {cause: sum(p.stall_cycles[array][cause] for p in self.phases) for cause in STALL_CAUSES}
            for array in ARRAYS
        }
        self.stall_cycles = {cause: sum(self.stall_cycles_by_unit[a][cause] for a in ARRAYS) for cause in STALL_CAUSES}

    @property
    def latency_s(self) -> float:
        """Simulated latency in seconds."""
        return self.cycles / self.evaluation.arch.clock_hz

    @property
    def analytical_cycles(self) -> float:
        """The analytical model's latency in cycles."""
        return self.evaluation.cycles

    @property
    def relative_difference(self) -> float:
        """(simulated - analytical) / analytical cycles."""
        return (self.cycles - self.analytical_cycles) / self.analytical_cycles

    @property
    def points(self) -> dict[str, int]:
        """Iteration-space points each Einsum computed."""
        return {name: count for phase in self.phases for name, count in phase.points.items()}

    @property
    def utilization(self) -> dict[str, float]:
        """Per array: points x cycles per point / processing elements / simulated cycles."""
        arch = self.evaluation.arch
        work = {array: 0.0 for array in ARRAYS}
        for name, points in self.points.items():
            result = self.evaluation.per_einsum[name]
            work[result.array] += points * result.cycles_per_point / arch.array(result.array).processing_elements
        return {array: work[array] / self.cycles if self.cycles else 0.0 for array in ARRAYS}

    @property
    def buffer_peak_bytes(self) -> int:
        """Most global-buffer bytes in use at once: resident tensors plus tiles in flight."""
        return max((phase.buffer_peak_bytes for phase in self.phases), default=0)

    @property
    def traffic_bytes(self) -> int:
        """Bytes moved to and from DRAM."""
        return sum(phase.traffic_bytes for phase in self.phases)

    def to_json(self) -> dict:
        """Return the result as the JSON object of ``fusemax simulate --json``."""
        evaluation = self.evaluation
        return {
            "arch": evaluation.arch.name,
            "mapping": evaluation.mapping.name,
            "cascade": evaluation.mapping.cascade,
            "workload": {**evaluation.workload.sizes, "model": evaluation.workload.model},
            "cycles": self.cycles,
            "latency_s": self.latency_s,
            "analytical_cycles": self.analytical_cycles,
            "analytical_latency_s": evaluation.latency_s,
            "relative_difference": self.relative_difference,
            "utilization": self.utilization,
            "busy_cycles": self.busy_cycles,
            "stall_cycles": self.stall_cycles,
            "stall_cycles_by_unit": self.stall_cycles_by_unit,
            "buffer_peak_bytes": self.buffer_peak_bytes,
            "buffer_capacity_bytes": evaluation.arch.global_buffer.capacity_bytes,
            "traffic_bytes": self.traffic_bytes,
            "analytical_traffic_bytes": evaluation.traffic_bytes,
            "points": self.points,
            "phases": [
                {
                    "name": phase.name,
                    "cycles": phase.cycles,
                    "block_loops": {loop: evaluation.factors.size[loop] for loop in phase.plan.block_loops},
                    "lags": phase.plan.lags,
                    "register_words_needed": phase.plan.register_words,
                    "fast_forward": {
                        "periods": phase.skipped_periods,
                        "rounds": phase.skipped_rounds,
                        "cycles": phase.skipped_cycles,
                    },
                }
                for phase in self.phases
            ],
            "trace_events": len(self.trace) if self.trace is not None else 0,
            "trace_truncated": self.trace_truncated,
        }


def simulate(
    arch: Architecture,
    mapping: Mapping,
    workload: Workload,
    row: dict[str, str] | None = None,
    *,
    fast_forward: bool = True,
    every_cycle: bool = False,
    trace_limit: int = 0,
) -> SimulationResult:
    """Simulate a mapped cascade cycle by cycle.

    Parameters
    ----------
    arch, mapping : Architecture, Mapping
        Validated specs.
    workload : Workload or RankSizes
        Rank sizes of one attention layer, or of any cascade.
    row : dict, optional
        The configuration-table row the mapping was resolved with.
    fast_forward : bool
        Skip whole periods once the schedule is periodic.  The result is the same.
    every_cycle : bool
        Step one cycle at a time instead of from event to event.  The result
        is the same, only slower.
    trace_limit : int
        Record at most this many blocks, each with its start and end cycle.

    Returns
    -------
    SimulationResult
        Cycles, busy and stall cycles per unit, buffer peak and traffic, all
        exact integers, next to the analytical model's cycles.

    Raises
    ------
    SpecError
        If the analytical model rejects the point, or the schedule cannot be
        simulated (see ``plan_phases``) or deadlocks.

    Examples
    --------
    >>> from fusemax.arch import load_architecture
    >>> from fusemax.mapping import load_mapping
    >>> from fusemax.workloads import model_workload
    >>> mapping, _ = load_mapping("fusemax-binding")
    >>> result = simulate(load_architecture("fusemax-cloud"), mapping, model_workload("BERT", 1024))
    >>> abs(result.relative_difference) < 0.02
    True
    """
    refresh_kernel_cache()
    evaluation = evaluate_best(arch, mapping, workload, row)
    cascade = resolve_cascade(evaluation.mapping.cascade)
    plans = plan_phases(evaluation, cascade, row, fast_forward)
    phases: list[PhaseResult] = []
    trace: list[TraceEvent] | None = [] if trace_limit > 0 else None
    offset = 0
    truncated = False
    for plan in plans:
        remaining = max(trace_limit - len(trace), 0) if trace is not None else 0
        state = lay.new_state(plan.program, remaining)
        status = run_phase(plan.program, state, every_cycle)
        if status == DEADLOCK:
            raise SpecError(_deadlock_message(mapping, plan, state))
        result = _phase_result(plan, state)
        phases.append(result)
        if trace is not None:
            for row_ in lay.trace_rows(state):
                einsum = plan.einsums[int(row_[0])]
                trace.append(
                    TraceEvent(plan.name, einsum, plan.arrays[einsum], int(row_[1]), offset + int(row_[2]), offset + int(row_[3]))
                )
            truncated = truncated or sum(result.tasks.values()) > lay.scalar(state, lay.TRACE_COUNT)
        offset += result.cycles
        logger.info("phase %s: %d cycles, %d periods fast-forwarded", plan.name, result.cycles, result.skipped_periods)
    return SimulationResult(evaluation=evaluation, phases=phases, trace=trace, trace_truncated=truncated)


def _phase_result(plan: PhasePlan, state) -> PhaseResult:
    counters = lay.counters(state)
    stalls = {
        array: {cause: counters[lay.COUNTER_STALL + 4 * a + c] for c, cause in enumerate(STALL_CAUSES)}
        for a, array in enumerate(ARRAYS)
    }
    einsums = len(plan.einsums)
    return PhaseResult(
        name=plan.name,
        cycles=lay.scalar(state, lay.END_TIME),
        busy_cycles={
            "array2d": counters[lay.COUNTER_BUSY],
            "array1d": counters[lay.COUNTER_BUSY + 1],
            "dram": counters[lay.COUNTER_DRAM_BUSY],
        },
        stall_cycles=stalls,
        buffer_peak_bytes=plan.traffic.static_bytes + lay.scalar(state, lay.PEAK_OCCUPANCY),
        traffic_bytes=counters[lay.COUNTER_BYTES_READ] + counters[lay.COUNTER_BYTES_WRITTEN],
        points=dict(zip(plan.einsums, lay.einsum_counts(state, einsums, lay.POINTS))),
        tasks=dict(zip(plan.einsums, lay.einsum_counts(state, einsums, lay.TASKS))),
        skipped_periods=lay.scalar(state, lay.SKIPPED_PERIODS),
        skipped_rounds=lay.scalar(state, lay.SKIPPED_ROUNDS),
        skipped_cycles=lay.scalar(state, lay.SKIPPED_CYCLES),
        plan=plan,
    )


def _deadlock_message(mapping: Mapping, plan: PhasePlan, state) -> str:
    waiting = []
    for a, array in enumerate(ARRAYS):
        einsum = lay.unit_field(state, a, lay.NEXT_EINSUM)
        if not lay.unit_field(state, a, lay.FINISHED) and einsum >= 0:
            block = lay.unit_field(state, a, lay.NEXT_BLOCK)
            waiting.append(f"{array} waits to run {plan.einsums[einsum]} on block {block}")
    return (
        f"{mapping.source}: the simulated schedule of phase {plan.name} deadlocks ({'; '.join(waiting) or 'no task ready'}); "
        "check that every Einsum's producers run before it in the schedule"
    )
