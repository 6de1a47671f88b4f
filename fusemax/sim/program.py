"""Turn a mapped cascade into phase programs for the pipeline kernel.

For each phase of the mapping's schedule this module decides

* the block loops: the DRAM-level loops of the phase's Einsums and their
  outermost global-buffer loop.  For FuseMax these are ``B, H, P2, M1, P1``,
  so one block is one M0 x P0 tile of keys and queries;
* each Einsum's cycles per block: its remaining temporal loops times its
  cycles per point, which splits the analytical compute cycles over blocks
  exactly, and the blocks it runs at;
* the dependencies between Einsums, including the loop-carried ones of the
  cascade's recurrence (``RNV[f, m1+1, p]`` read as ``RNV[f, m1, p]`` one M1
  step later), their transfer latencies and the lags (``lags.py``);
* the DRAM traffic (``traffic_plan.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from math import prod

import numpy as np

from einsum_cascades.ir import Access, Cascade
from fusemax.errors import SpecError
from fusemax.model.evaluate import Evaluation
from fusemax.model.loopnest import LoopNest, build_loop_nest, size_names
from fusemax.sim import layout as lay
from fusemax.sim.blocks import FREE
from fusemax.sim.lags import Dependency, nominal_positions, output_latency, solve_lags, transfer_latency
from fusemax.sim.ranks import rank_descriptors, register_words
from fusemax.sim.traffic_plan import PhaseTraffic, levels_of, plan_traffic
from fusemax.specs import evaluate_size

ARRAYS = ("array2d", "array1d")
WRITE_QUEUE = 4  # write-backs the DRAM queue holds before a finished block must wait


@dataclass
class PhasePlan:
    """One phase ready to simulate, with the choices behind it for reports."""

    name: str
    einsums: list[str]
    arrays: dict[str, str]
    program: np.ndarray
    block_loops: list[str]
    blocks: int
    lags: dict[str, int]
    dependencies: list[Dependency]
    occurrences: dict[str, int]
    traffic: PhaseTraffic
    register_words: dict[str, int] = field(default_factory=dict)


def plan_phases(evaluation: Evaluation, cascade: Cascade, row: dict[str, str] | None, fast_forward: bool = True) -> list[PhasePlan]:
    """Build one plan per phase of the mapping's schedule, in schedule order.

    Raises
    ------
    SpecError
        If the schedule cannot be simulated: Einsums of one phase with
        different block-loop orders, or dependencies that no lag satisfies.
    """
    mapping = evaluation.mapping
    names = size_names(evaluation.arch, evaluation.workload.sizes, row or {})
    spill = {tensor: float(evaluate_size(value, names, f"{mapping.source}: spill.{tensor}")) for tensor, value in mapping.spill.items()}
    groups: list[tuple[str, list]] = []
    for stage in mapping.schedule:
        if not groups or groups[-1][0] != stage.phase:
            groups.append((stage.phase, []))
        groups[-1][1].append(stage)
    return [_plan_phase(name, stages, evaluation, cascade, spill, fast_forward) for name, stages in groups]


def _path(levels: list[str]) -> str:
    on_chip = [level for level in levels if level != "dram"]
    if on_chip:
        return on_chip[-1]
    return "dram" if levels else "registers"


def _block_loops(names: list[str], nests: dict[str, LoopNest], mapping, sizes: dict[str, int], where: str) -> list[str]:
    """Merge the Einsums' DRAM loops, then add the mapping's outermost global-buffer loop, into block loops.

    The global-buffer loop is the mapping-wide one (``P1`` in the shipped
    mappings), even for an Einsum that orders its own global-buffer loops
    differently.  That Einsum's other loops run inside each block.
    """
    lists = [[loop.factor for loop in nests[name].temporal if loop.level == "dram"] for name in names]
    merged: list[str] = []
    for own in lists:
        for factor in own:
            if factor not in merged:
                merged.append(factor)
    for name, own in zip(names, lists):
        positions = [merged.index(factor) for factor in own]
        if positions != sorted(positions):
            raise SpecError(
                f"{where}: Einsum {name} orders its DRAM loops {', '.join(own)} unlike the other Einsums of the "
                f"phase ({', '.join(merged)}); give the Einsums of one phase the same DRAM loop order"
            )
    temporal = {loop.factor for name in names for loop in nests[name].temporal if loop.level == "global_buffer"}
    candidates = list(mapping.loops.get("global_buffer", []))
    for name in names:
        candidates += [loop.factor for loop in nests[name].temporal if loop.level == "global_buffer"][:1]
    for factor in candidates:
        if factor in temporal and factor not in merged:
            merged.append(factor)
            break
    return [factor for factor in merged if sizes[factor] > 1]


def _iteration_offset(access: Access, variable: str) -> int | None:
    """Return the offset ``c`` when an access indexes the iteration variable as ``m1 + c``."""
    for index in access.indices:
        offset = index.expr.offset_from(variable)
        if offset is not None:
            return offset
    return None


def _dependencies(cascade, names, mapping, arrays, block_loops, strides, lacks, arch, where) -> list[Dependency]:
    """List every (producer, consumer) pair of the phase with its block distance and transfer latency."""
    producers = {einsum.name: einsum for einsum in cascade.einsums if einsum.name in names}
    variable = cascade.iteration.variable if cascade.iteration is not None else None
    carried = block_loops.index(variable.upper()) if variable is not None and variable.upper() in block_loops else -1
    result = []
    for consumer in names:
        for access in cascade.einsum(consumer).accesses:
            producer = producers.get(access.tensor)
            if producer is None:
                continue
            iterations = 0
            if variable is not None:
                read = _iteration_offset(access, variable)
                written = _iteration_offset(producer.output, variable)
                if read is not None and written is not None:
                    iterations = written - read
            # A validated cascade reads only the iterate a recurrence writes or earlier
            # ones, so iterations >= 0.
            if iterations > 0 and carried < 0:
                continue  # the recurrence runs inside each block
            for loop, factor in enumerate(block_loops):
                if lacks[producer.name][loop] and not lacks[consumer][loop]:
                    raise SpecError(
                        f"{where}: Einsum {consumer} runs at every {factor} iteration but reads {access.tensor}, "
                        f"which {producer.name} writes once per {factor} loop; the simulator cannot order them"
                    )
            levels = levels_of(mapping, consumer, access.tensor) or levels_of(mapping, producer.name, access.tensor)
            path = _path(levels)
            result.append(
                Dependency(
                    producer=producer.name,
                    consumer=consumer,
                    tensor=access.tensor,
                    distance=iterations * strides[carried] if iterations > 0 else 0,
                    loop=carried if iterations > 0 else -1,
                    iterations=iterations,
                    latency=transfer_latency(arch, arrays[producer.name], arrays[consumer], path),
                    path=path,
                )
            )
    return result


def _plan_phase(name, stages, evaluation: Evaluation, cascade: Cascade, spill, fast_forward: bool) -> PhasePlan:
    arch = evaluation.arch
    mapping = evaluation.mapping
    factors = evaluation.factors
    where = f"{mapping.source}, phase {name}"
    names = [einsum for stage in stages for array in ARRAYS for einsum in getattr(stage, array)]
    arrays = {einsum: mapping.einsums[einsum].array for einsum in names}
    nests = {einsum: build_loop_nest(cascade, cascade.einsum(einsum), mapping, arch, factors) for einsum in names}

    # Blocks, and each Einsum's cycles per block and blocks it runs at.
    block_loops = _block_loops(names, nests, mapping, factors.size, where)
    bounds = [factors.size[loop] for loop in block_loops]
    strides = [prod(bounds[j + 1 :]) for j in range(len(bounds))]
    blocks = prod(bounds)
    lacks: dict[str, list[int]] = {}
    duration: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for einsum in names:
        own = {loop.factor for loop in nests[einsum].temporal}
        lacks[einsum] = [0 if loop in own else 1 for loop in block_loops]
        occurrences[einsum] = prod(bound for bound, lacked in zip(bounds, lacks[einsum]) if not lacked)
        inner = prod(loop.bound for loop in nests[einsum].temporal if loop.factor not in block_loops)
        duration[einsum] = inner * evaluation.per_einsum[einsum].cycles_per_point

    # Dependencies and lags.
    dependencies = _dependencies(cascade, names, mapping, arrays, block_loops, strides, lacks, arch, where)
    mean = {einsum: duration[einsum] * occurrences[einsum] / blocks for einsum in names}
    stage_lists = [{array: list(getattr(stage, array)) for array in ARRAYS} for stage in stages]
    positions, round_cycles = nominal_positions(stage_lists, mean)
    one_tile_at_a_time = any(stage.stall is not None for stage in stages)
    lags = solve_lags(names, dependencies, positions, round_cycles, not one_tile_at_a_time, where)

    # DRAM traffic, buffer ports and output latencies.
    producers = {dep.tensor: dep.producer for dep in dependencies}
    traffic = plan_traffic(names, cascade, evaluation, nests, block_loops, bounds, lacks, occurrences, producers, spill)
    # Each port moves one row per cycle, and a bank serves one port at a time.
    ports = min(arch.simulation.global_buffer_ports, arch.global_buffer.banks)
    port_words = ports * (arch.global_buffer.row_bits // arch.word_bits)
    stretch = {}
    out_latency = {}
    for einsum in names:
        result = evaluation.per_einsum[einsum]
        words = result.reads.get("global_buffer", 0.0) + result.writes.get("global_buffer", 0.0)
        stretch[einsum] = max(0, math.ceil(words / occurrences[einsum] / port_words - 1e-9) - duration[einsum])
        out_latency[einsum] = output_latency(arch, arrays[einsum], _path(levels_of(mapping, einsum, einsum)))

    program = _pack(
        names, arrays, stage_lists, lags, lacks, bounds, strides, duration, stretch, out_latency,
        dependencies, traffic, cascade, factors, mapping, block_loops, evaluation, fast_forward,
    )
    return PhasePlan(
        name=name,
        einsums=names,
        arrays=arrays,
        program=program,
        block_loops=block_loops,
        blocks=blocks,
        lags=lags,
        dependencies=dependencies,
        occurrences=occurrences,
        traffic=traffic,
        register_words=register_words(names, arrays, lags, dependencies, cascade, factors, block_loops, arch),
    )


def _service_cycles(nbytes: int, arch) -> int:
    """DRAM cycles to move ``nbytes`` at the DRAM bandwidth, rounded up per transfer."""
    if nbytes <= 0:
        return 0
    clock = Fraction(repr(float(arch.clock_hz)))
    bandwidth = Fraction(repr(float(arch.dram.bandwidth_bytes_per_s)))
    return math.ceil(nbytes * clock / bandwidth)


def _pack(names, arrays, stage_lists, lags, lacks, bounds, strides, duration, stretch, out_latency,
          dependencies, traffic, cascade, factors, mapping, block_loops, evaluation, fast_forward) -> np.ndarray:
    """Pack a phase into the kernel's program buffer (see ``layout.py``)."""
    arch = evaluation.arch
    index = {name: i for i, name in enumerate(names)}
    count = len(names)
    loops = len(bounds)

    order = np.full((2, count), -1, dtype=np.int64)
    order_len = [0, 0]
    for stage in stage_lists:
        for a, array in enumerate(ARRAYS):
            for name in stage[array]:
                order[a, order_len[a]] = index[name]
                order_len[a] += 1

    deps = sorted(dependencies, key=lambda dep: index[dep.consumer])
    dep_table = np.zeros((len(deps), lay.DEP_COLUMNS), dtype=np.int64)
    for d, dep in enumerate(deps):
        dep_table[d] = (index[dep.producer], dep.distance, dep.latency, dep.loop, dep.iterations)
    streams = sorted(traffic.streams, key=lambda stream: index[stream.reader])
    stream_table = np.zeros((len(streams), lay.STREAM_COLUMNS), dtype=np.int64)
    for i, stream in enumerate(streams):
        producer = index[stream.producer] if stream.producer in index else -1
        stream_table[i] = (
            stream.depth, stream.resident, stream.tile_bytes, _service_cycles(stream.tile_bytes, arch), producer, index[stream.reader]
        )

    descriptors = [rank_descriptors(cascade, name, factors, mapping.tiling, block_loops) for name in names]
    most_ranks = max([len(ranks) for _, ranks in descriptors] + [1])
    rank_table = np.zeros((count, most_ranks, 2 + loops), dtype=np.int64)
    einsum_table = np.zeros((count, lay.EINSUM_COLUMNS), dtype=np.int64)
    for e, name in enumerate(names):
        base, ranks = descriptors[e]
        for r, (size, inner, weights) in enumerate(ranks):
            rank_table[e, r, 0] = size
            rank_table[e, r, 1] = inner
            for loop, weight in weights.items():
                rank_table[e, r, 2 + loop] = weight
        row = einsum_table[e]
        row[lay.E_ARRAY] = ARRAYS.index(arrays[name])
        row[lay.E_DURATION] = duration[name]
        row[lay.E_STRETCH] = stretch[name]
        row[lay.E_LAG] = lags[name]
        row[lay.E_OUT_LATENCY] = out_latency[name]
        row[lay.E_TRANSFER_SERVICE] = _service_cycles(traffic.transfer_bytes[name], arch)
        row[lay.E_TRANSFER_BYTES] = traffic.transfer_bytes[name]
        row[lay.E_WRITE_SERVICE] = _service_cycles(traffic.write_bytes[name], arch)
        row[lay.E_WRITE_BYTES] = traffic.write_bytes[name]
        row[lay.E_POINT_BASE] = base
        row[lay.E_RANK_COUNT] = len(ranks)
        row[lay.E_DEP_START] = sum(1 for dep in deps if index[dep.consumer] < e)
        row[lay.E_DEP_END] = sum(1 for dep in deps if index[dep.consumer] <= e)
        row[lay.E_STREAM_START] = sum(1 for stream in streams if index[stream.reader] < e)
        row[lay.E_STREAM_END] = sum(1 for stream in streams if index[stream.reader] <= e)

    max_lag = max(lags.values(), default=0)
    max_distance = max((dep.distance for dep in dependencies), default=0)
    lead = 2 * max_lag + max_distance + 8
    back = lead + max_lag + max_distance + 1
    full = [name for name in names if not any(lacks[name])]
    # Fast-forward periods are strides of block loops, longest first. A loop is
    # constrained when it or an outer loop changes which Einsums run, which
    # tiles are fetched or released, whether a loop-carried dependency exists,
    # or how many points a partial tile has. A jump must then keep the loop's
    # index inside [2, bound - 2], so such a loop counts only when its interior
    # has room for the snapshot window and one more period.
    marks = [any(lacks[name][j] for name in names) for j in range(loops)]
    for stream in traffic.streams:
        marks = [mark or mode != FREE for mark, mode in zip(marks, stream.modes)]
    for dep in dependencies:
        if dep.loop >= 0:
            marks[dep.loop] = True
    for _, ranks in descriptors:
        for size, inner, weights in ranks:
            if size != inner * prod(bounds[loop] for loop in weights):
                for loop in weights:
                    marks[loop] = True  # a partial last tile has fewer points
    period_table = []
    for j in sorted(range(loops), key=lambda j: -strides[j]):
        constrained = any(marks[: j + 1])
        if not constrained and bounds[j] >= 3:
            period_table.append((j, 0))
        elif constrained and (bounds[j] - 8) * strides[j] >= 2 * back:
            period_table.append((j, 1))
    header = {
        lay.EINSUMS: count,
        lay.LOOPS: loops,
        lay.STREAMS: len(streams),
        lay.DEPS: len(deps),
        lay.RANKS: most_ranks,
        lay.CANDIDATES: len(period_table),
        lay.BLOCKS: prod(bounds),
        lay.LAST_ROUND: prod(bounds) - 1 + max_lag,
        lay.PREFETCH_BYTES: arch.global_buffer.capacity_bytes - traffic.static_bytes - traffic.resident_bytes(),
        lay.DRAM_LATENCY: arch.simulation.dram_latency_cycles,
        lay.WRITE_QUEUE: WRITE_QUEUE,
        lay.PREFETCH: 1 if mapping.overlap_memory else 0,
        lay.REFERENCE_ARRAY: ARRAYS.index(arrays[full[0] if full else names[0]]),
        lay.BACK: back,
        lay.LEAD: lead,
        lay.MAX_LATENCY: max((dep.latency for dep in dependencies), default=0),
        lay.FAST_FORWARD: 1 if fast_forward else 0,
        lay.ORDER_LEN_2D: order_len[0],
        lay.ORDER_LEN_1D: order_len[1],
    }
    tables = {
        lay.EINSUM_TABLE: einsum_table,
        lay.LACKS_TABLE: np.asarray([lacks[name] for name in names], dtype=np.int64).reshape(count, loops),
        lay.LOOP_TABLE: np.asarray([(b, st) for b, st in zip(bounds, strides)], dtype=np.int64).reshape(loops, 2),
        lay.ORDER_TABLE: order,
        lay.DEP_TABLE: dep_table,
        lay.STREAM_TABLE: stream_table,
        lay.MODE_TABLE: np.asarray([stream.modes for stream in streams], dtype=np.int64).reshape(len(streams), loops),
        lay.RANK_TABLE: rank_table,
        lay.PERIOD_TABLE: np.asarray(period_table, dtype=np.int64).reshape(len(period_table), 2),
    }
    return lay.pack_program(header, tables)
