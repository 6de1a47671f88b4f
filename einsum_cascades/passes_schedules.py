"""Schedules that make the minimum number of passes, and what each keeps live between passes.

A schedule places every Einsum at one position of the timeline of
:class:`einsum_cascades.passes_levels.EinsumState` (pass k at ``2k``, the gap
after it at ``2k + 1``), between its earliest and latest position and after
the Einsums it needs.  The footprint bounds take the best schedule, so they
hold for every mapping that makes the minimum number of passes and computes
each Einsum once.
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.passes import RankPasses

# Enumeration stops beyond this many schedules; the footprint then falls back
# to the tensors that every schedule keeps live.
MAX_SCHEDULES = 20000


@dataclass(frozen=True)
class Touch:
    """One read or write of a fiber tensor: the phase it happens in (pass k and the gap before it are phase k)."""

    earliest: int
    latest: int
    writes: bool


def phase(time: int) -> int:
    """Pass k (time 2k) and the gap before it (time 2k - 1) form phase k."""
    return (time + 1) // 2


def minimum_pass_schedules(passes: RankPasses, limit: int = MAX_SCHEDULES) -> list[dict[int, int]] | None:
    """Positions of the Einsums that touch a fiber tensor, in every minimum-pass schedule.

    Returns None when there are more than ``limit`` schedules.  The other
    Einsums only order these ones: an Einsum that must precede another
    through a chain of them, strictly once per strict link, keeps that order.
    Relayout copies are views and touch no fiber themselves.
    """
    states = {state.index: state for state in passes.states}
    nodes = sorted(
        (state.index for state in passes.states if state.fiber_tensors and not state.relayout),
        key=lambda index: (states[index].time, index),
    )
    gaps = _longest_gaps(states)
    found: list[dict[int, int]] = []
    chosen: dict[int, int] = {}

    def candidates(index: int) -> list[int]:
        state = states[index]
        low, high = state.time, state.latest_time
        for other, value in chosen.items():
            if (other, index) in gaps:
                low = max(low, value + gaps[(other, index)])
            if (index, other) in gaps:
                high = min(high, value - gaps[(index, other)])
        return [value for value in range(low, high + 1) if not state.sweeps or value % 2 == 0]

    def place(position: int) -> bool:
        if position == len(nodes):
            found.append(dict(chosen))
            return len(found) <= limit
        index = nodes[position]
        for value in candidates(index):
            chosen[index] = value
            if not place(position + 1):
                return False
        chosen.pop(index, None)
        return True

    if not place(0):
        return None
    return found


def _longest_gaps(states: dict) -> dict[tuple[int, int], int]:
    """For each ordered pair of Einsums linked by a chain of needs, the most strict links on one chain."""
    edges = [(writer, state.index, int(strict)) for state in states.values() for writer, strict in state.needs]
    gaps: dict[tuple[int, int], int] = {}
    for source in states:
        best = {source: 0}
        # Chains have at most len(states) links; a cycle adds no strict link in a feasible cascade.
        for _ in range(len(states)):
            changed = False
            for writer, reader, weight in edges:
                if writer in best and best[writer] + weight > best.get(reader, -1):
                    best[reader] = min(best[writer] + weight, 2 * len(states))
                    changed = True
            if not changed:
                break
        for target, gap in best.items():
            if target != source:
                gaps[(source, target)] = gap
    return gaps


def scheduled_touches(passes: RankPasses, schedule: dict[int, int]) -> dict[str, list[Touch]]:
    """Phase of every read and write of each fiber tensor under one schedule."""
    touches: dict[str, list[Touch]] = {}
    for state in passes.states:
        if state.relayout:
            continue
        if state.index not in schedule:
            continue
        at = phase(schedule[state.index])
        for tensor in state.fiber_tensors:
            touches.setdefault(tensor, []).append(Touch(at, at, tensor == state.writes))
    return touches


def forced_touches(passes: RankPasses) -> dict[str, list[Touch]]:
    """Phase span of every read and write of each fiber tensor over all minimum-pass schedules."""
    touches: dict[str, list[Touch]] = {}
    for state in passes.states:
        if state.relayout:
            continue
        earliest, latest = phase(state.time), phase(state.latest_time)
        for tensor in state.fiber_tensors:
            touches.setdefault(tensor, []).append(Touch(earliest, latest, tensor == state.writes))
    return touches


def crosses(touches: list[Touch], boundary: int) -> bool:
    """Whether one touch must come at or before pass ``boundary`` and another after it."""
    before = any(touch.latest <= boundary for touch in touches)
    after = any(touch.earliest > boundary for touch in touches)
    return before and after


def spill_transfers(touches: list[Touch]) -> int:
    """Whole-tensor transfers to and from memory when a tensor spills at every boundary it crosses.

    An intermediate is written once and read back in each later phase that
    needs it; an input is only read again.
    """
    writes = [touch for touch in touches if touch.writes]
    if writes:
        written_by = min(touch.latest for touch in writes)
        later = [touch for touch in touches if not touch.writes and touch.earliest > written_by]
        reads = stabbing_number(later)
        return 1 + reads if reads else 0
    return max(stabbing_number(touches) - 1, 0)


def stabbing_number(touches: list[Touch]) -> int:
    """Return the minimum number of phases that meet every touch's (earliest, latest) span."""
    count = 0
    last = None
    for touch in sorted(touches, key=lambda item: item.latest):
        if last is None or touch.earliest > last:
            count += 1
            last = touch.latest
    return count
