"""Transfer latencies between Einsums and the tile lag of each Einsum in a software-pipelined schedule.

The simulator runs a phase as rounds: in round ``r`` each array runs its
Einsums in schedule order, Einsum ``e`` working on block ``r - lag[e]``.  The
lags make every dependency point backwards in the schedule's nominal
timeline, where round ``r`` starts at ``r x T`` and each Einsum sits at its
stage position (stages back to back, the two arrays side by side, mean block
durations).  For a producer ``p`` read by ``e`` at a distance of ``d``
blocks with transfer latency ``L``:

    lag[e] >= lag[p] - d + ceil((end[p] + L - start[e]) / T)

A pipelined schedule takes ``L`` from the array geometry, so it runs far
enough ahead to hide transfers.  A schedule with a stall (the
one-tile-at-a-time schedule) uses ``L = 0``, which leaves transfers exposed
for the cycle view to show.  The lags are the least solution of these inequalities
(Bellman-Ford on the dependency graph).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from fusemax.arch import Architecture
from fusemax.errors import SpecError

logger = logging.getLogger(__name__)

ON_CHIP = ("global_buffer", "array1d.buffer")


@dataclass(frozen=True)
class Dependency:
    """Einsum ``consumer`` reads ``tensor`` written by ``producer`` ``distance`` blocks earlier."""

    producer: str
    consumer: str
    tensor: str
    distance: int
    loop: int
    iterations: int
    latency: int
    path: str


def transfer_latency(arch: Architecture, producer_array: str, consumer_array: str, path: str) -> int:
    """Cycles from a producer's last issue cycle until its results are usable by the consumer.

    ``path`` is the storage level the data passes through: ``registers`` (read
    in place by the next Einsum on the same array), ``array1d.buffer``,
    ``global_buffer`` or ``dram``.  The 2D array is systolic: a result leaves
    it through every row of its column (``rows`` hops) into the 1D array's
    buffer, and a whole output tile reaches the global buffer after the
    skew across the array (``rows + cols - 2`` hops).  The 1D array's lanes
    are independent, so its results need one hop.
    """
    timing = arch.simulation
    hop = timing.hop_latency_cycles
    rows = arch.arrays.array2d.rows
    cols = arch.arrays.array2d.cols
    if path == "registers" and producer_array == consumer_array:
        return 0
    if producer_array == "array2d":
        drain = rows * hop if path in ("registers", "array1d.buffer") else (rows + cols - 2) * hop
    else:
        drain = hop if producer_array != consumer_array else 0
    if path == "global_buffer":
        return drain + 2 * timing.global_buffer_latency_cycles
    if path == "dram":
        return drain + 2 * timing.global_buffer_latency_cycles + 2 * timing.dram_latency_cycles
    return drain


def output_latency(arch: Architecture, array: str, path: str) -> int:
    """Cycles for an Einsum's results to reach their own storage level after its last issue cycle."""
    if path == "registers":
        return 0
    if path == "array1d.buffer":
        return arch.arrays.array2d.rows * arch.simulation.hop_latency_cycles if array == "array2d" else 0
    return transfer_latency(arch, array, "", "global_buffer") - arch.simulation.global_buffer_latency_cycles


@dataclass(frozen=True)
class Position:
    """Nominal start and end of an Einsum within a round, in cycles."""

    start: float
    end: float


def nominal_positions(stages: list[dict[str, list[str]]], mean_cycles: dict[str, float]) -> tuple[dict[str, Position], float]:
    """Place each Einsum in the nominal round: stages back to back, the arrays side by side."""
    positions: dict[str, Position] = {}
    stage_start = 0.0
    for stage in stages:
        length = 0.0
        for array in ("array2d", "array1d"):
            clock = stage_start
            for name in stage.get(array, []):
                positions[name] = Position(clock, clock + mean_cycles[name])
                clock += mean_cycles[name]
            length = max(length, clock - stage_start)
        stage_start += length
    return positions, max(stage_start, 1.0)


def solve_lags(
    einsums: list[str],
    dependencies: list[Dependency],
    positions: dict[str, Position],
    round_cycles: float,
    hide_latency: bool,
    where: str,
) -> dict[str, int]:
    """Return the least lags that make every dependency point backwards in the nominal timeline.

    Raises
    ------
    SpecError
        If the dependencies form a cycle that no lag satisfies, as when an
        Einsum reads its own result of the same block.
    """
    for hide in ((True, False) if hide_latency else (False,)):
        lags = {name: 0 for name in einsums}
        for _ in range(len(einsums) * (len(dependencies) + 1) + 1):
            changed = False
            for dep in dependencies:
                latency = dep.latency if hide else 0
                gap = positions[dep.producer].end + latency - positions[dep.consumer].start
                needed = lags[dep.producer] - dep.distance + math.ceil(gap / round_cycles - 1e-9)
                if dep.distance == 0:
                    needed = max(needed, lags[dep.producer])
                if needed > lags[dep.consumer]:
                    lags[dep.consumer] = needed
                    changed = True
            if not changed:
                return lags
        if hide:
            logger.info("%s: transfer latencies cannot all be hidden; lags follow the schedule order only", where)
    raise SpecError(
        f"{where}: the schedule cannot run: some Einsum depends on its own block's result through a cycle of "
        "dependencies; list each producer in an earlier stage, or earlier on its array, than its consumers"
    )
