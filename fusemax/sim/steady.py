"""Steady-state fast-forward of the pipeline kernel.

At the start of every round of the reference array, the kernel writes the
state relative to that round and cycle into a vector, the snapshot.  It holds
each array's position and task, which blocks near the round have ended and
when, the tile slots and the DRAM queue.  A candidate period is the stride
``p`` of a block loop.  Suppose the snapshot equals the one taken ``p``
rounds earlier, and the blocks ahead have the same occurrences, tile fetches
and dependencies as the blocks ``p`` earlier (for a constrained loop, its
index stays inside ``[2, bound - 2]``).  Then the next ``p`` rounds repeat
the last ``p`` rounds shifted in time, and the kernel adds ``k`` periods at
once: cycles, counters and positions advance by ``k`` times one period's
change.  Nothing is approximated, so the result equals stepping every cycle.

Tiles fetched far ahead (for a later iteration of an outer loop) keep their
absolute blocks, and a jump stops before the window reaches them.
"""

from __future__ import annotations

import numba
import numpy as np

from fusemax.sim import layout as lay
from fusemax.sim.blocks import bound, stride

OLD = np.int64(-(1 << 40))  # ended so long ago that every latency has passed
NOT_DONE = np.int64(-(1 << 41))
FAR = np.int64(1 << 41)  # a tile block past the window ahead
PAST = np.int64(-(1 << 43))  # a tile block before the window, fetched for an earlier outer iteration
PENDING = np.int64(-(1 << 42))


@numba.njit(cache=True)
def _near(prog, block, round_, horizon):
    """Return whether a tile block lies in the window that moves with a jump."""
    return -prog[lay.BACK] <= block - round_ <= horizon


@numba.njit(cache=True)
def _relative_block(prog, block, round_, horizon):
    if block >= prog[lay.BLOCKS]:
        return FAR + 1
    if block - round_ > horizon:
        return FAR
    if block - round_ < -prog[lay.BACK]:
        return PAST
    return block - round_


@numba.njit(cache=True)
def _done_value(prog, mem, einsum, block, t):
    """When ``einsum`` ended ``block``, relative to t: OLD, NOT_DONE or the (negative) age."""
    if block < mem[mem[lay.EINSUM_STATE_AT] + einsum * lay.EINSUM_STATE_COLUMNS + lay.FLOOR]:
        return OLD
    ring = mem[lay.RING]
    address = einsum * ring + (block & (ring - 1))
    stored = mem[mem[lay.DONE_BLOCK_AT] + address]
    if stored == block:
        age = mem[mem[lay.DONE_TIME_AT] + address] - t
        if age + prog[lay.MAX_LATENCY] <= 0:
            return OLD
        return age
    if stored > block:
        return OLD
    return NOT_DONE


@numba.njit(cache=True)
def _recent_slot(prog, mem, s, i):
    """Slot of stream ``s``'s ``i``-th most recent fetch."""
    depth = prog[prog[lay.STREAM_TABLE] + s * lay.STREAM_COLUMNS + lay.S_DEPTH]
    issued = mem[mem[lay.STREAM_STATE_AT] + s * lay.STREAM_STATE_COLUMNS + lay.ISSUED]
    return (issued - 1 - i) % depth


@numba.njit(cache=True)
def _slot(mem, s, slot, column):
    return mem[lay.SLOT_AT] + (s * mem[lay.DEPTH] + slot) * lay.SLOT_COLUMNS + column


@numba.njit(cache=True)
def _write_snapshot(prog, mem, round_, t, horizon, out):
    """Write the state relative to (round_, t) into ``out``; returns False when the arrays are too far apart."""
    lead = prog[lay.LEAD]
    back = prog[lay.BACK]
    scalars = mem[lay.SCALARS_AT]
    n = 0
    for a in range(2):
        row = mem[lay.UNIT_AT] + a * lay.UNIT_COLUMNS
        finished = mem[row + lay.FINISHED]
        if not finished and abs(mem[row + lay.NEXT_ROUND] - round_) > lead:
            return False
        current = mem[row + lay.CURRENT_EINSUM]
        busy = current >= 0
        out[n] = finished
        out[n + 1] = mem[row + lay.NEXT_ROUND] - round_ if not finished else 0
        out[n + 2] = mem[row + lay.NEXT_INDEX]
        out[n + 3] = current
        out[n + 4] = mem[row + lay.CURRENT_BLOCK] - round_ if busy else 0
        out[n + 5] = mem[row + lay.CURRENT_END] - t if busy else 0
        out[n + 6] = mem[row + lay.CURRENT_TRANSFER] if busy else 0
        out[n + 7] = mem[row + lay.TRANSFER_READY] - t if busy and mem[row + lay.CURRENT_TRANSFER] == 2 else 0
        n += 8

    for e in range(prog[lay.EINSUMS]):
        for block in range(round_ - back, round_ + lead + 1):
            out[n] = _done_value(prog, mem, e, block, t)
            n += 1

    depth = mem[lay.DEPTH]
    for s in range(prog[lay.STREAMS]):
        state = mem[lay.STREAM_STATE_AT] + s * lay.STREAM_STATE_COLUMNS
        own_depth = prog[prog[lay.STREAM_TABLE] + s * lay.STREAM_COLUMNS + lay.S_DEPTH]
        out[n] = _relative_block(prog, mem[state + lay.NEXT_FETCH], round_, horizon)
        out[n + 1] = mem[state + lay.ALLOCATED_TILES]
        out[n + 2] = mem[state + lay.CAPACITY_BLOCKED]
        n += 3
        for i in range(depth):
            out[n] = 0
            out[n + 1] = 0
            out[n + 2] = 0
            out[n + 3] = 0
            if i < own_depth and i < mem[state + lay.ISSUED]:
                slot = _recent_slot(prog, mem, s, i)
                if mem[_slot(mem, s, slot, lay.SLOT_ALLOCATED)]:
                    ready = mem[_slot(mem, s, slot, lay.SLOT_READY)]
                    out[n] = 1
                    out[n + 1] = _relative_block(prog, mem[_slot(mem, s, slot, lay.SLOT_BLOCK)], round_, horizon)
                    if ready < 0:
                        out[n + 2] = PENDING
                    elif ready <= t:
                        out[n + 2] = OLD
                    else:
                        out[n + 2] = ready - t
                    out[n + 3] = mem[_slot(mem, s, slot, lay.SLOT_DELAYED)]
            n += 4

    out[n] = mem[scalars + lay.OCCUPANCY]
    n += 1
    active = mem[scalars + lay.SERVER_ACTIVE]
    fetch = active and mem[scalars + lay.SERVER_KIND] == lay.TILE_FETCH
    out[n] = active
    out[n + 1] = mem[scalars + lay.SERVER_END] - t if active else 0
    out[n + 2] = mem[scalars + lay.SERVER_KIND] if active else 0
    out[n + 3] = mem[scalars + lay.SERVER_REF] if active else 0
    out[n + 4] = _relative_block(prog, mem[scalars + lay.SERVER_AUX], round_, horizon) if fetch else 0
    out[n + 5] = mem[scalars + lay.QUEUE_LENGTH]
    n += 6

    capacity = mem[lay.QUEUE]
    for i in range(capacity):
        out[n] = 0
        out[n + 1] = 0
        out[n + 2] = 0
        out[n + 3] = 0
        if i < mem[scalars + lay.QUEUE_LENGTH]:
            entry = mem[lay.QUEUE_AT] + ((mem[scalars + lay.QUEUE_HEAD] + i) % capacity) * 4
            kind = mem[entry + lay.Q_KIND]
            out[n] = kind
            out[n + 1] = mem[entry + lay.Q_REF]
            out[n + 2] = _relative_block(prog, mem[entry + lay.Q_AUX], round_, horizon) if kind == lay.TILE_FETCH else 0
            out[n + 3] = mem[entry + lay.Q_SERVICE]
        n += 4
    out[n] = mem[scalars + lay.WRITES_PENDING]
    return True


@numba.njit(cache=True)
def _far_limit(block, high, period, blocks):
    """Periods a jump may take before the window's far end reaches ``block``."""
    if block >= blocks:
        return lay.INFINITY
    return (block - high - 1) // period


@numba.njit(cache=True)
def _meta(mem, candidate, index):
    """Address of entry ``index`` of a candidate's snapshot metadata."""
    return mem[lay.SNAP_META_AT] + candidate * mem[lay.META_WIDTH] + index


@numba.njit(cache=True)
def _allowed_periods(prog, mem, candidate, loop, constrained, round_, horizon):
    """Return the whole periods the state may jump forward from ``round_``, 0 when it may not.

    For a constrained loop, every block from one period before the window to
    the window's far end after the jump must keep the loop's index inside
    ``[2, bound - 2]`` (see ``fast_forward``).
    """
    period = stride(prog, loop)
    iterations = bound(prog, loop)
    blocks = prog[lay.BLOCKS]
    low = round_ - period - prog[lay.BACK]
    high = round_ + horizon
    if low < 0:
        return 0
    periods = (blocks - 1 - high) // period
    if constrained:
        if iterations < 5 or low // (period * iterations) != high // (period * iterations):
            return 0
        first = (low // period) % iterations
        last = (high // period) % iterations
        if first < 2 or last > iterations - 2:
            return 0
        periods = min(periods, iterations - 2 - last)
    einsums = prog[lay.EINSUMS]
    depth = mem[lay.DEPTH]
    for s in range(prog[lay.STREAMS]):
        state = mem[lay.STREAM_STATE_AT] + s * lay.STREAM_STATE_COLUMNS
        issued = mem[state + lay.ISSUED] - mem[_meta(mem, candidate, lay.META_COUNTERS + lay.COUNTER_COUNT + 2 * einsums + s)]
        far = False
        following = mem[state + lay.NEXT_FETCH]
        if following < blocks and following - round_ > horizon:
            far = True
            periods = min(periods, _far_limit(following, high, period, blocks))
        for slot in range(depth):
            block = mem[_slot(mem, s, slot, lay.SLOT_BLOCK)]
            if mem[_slot(mem, s, slot, lay.SLOT_ALLOCATED)] and block - round_ > horizon:
                far = True
                periods = min(periods, _far_limit(block, high, period, blocks))
        if far and issued != 0:
            return 0
    scalars = mem[lay.SCALARS_AT]
    capacity = mem[lay.QUEUE]
    for i in range(mem[scalars + lay.QUEUE_LENGTH]):
        entry = mem[lay.QUEUE_AT] + ((mem[scalars + lay.QUEUE_HEAD] + i) % capacity) * 4
        if mem[entry + lay.Q_KIND] == lay.TILE_FETCH and mem[entry + lay.Q_AUX] - round_ > horizon:
            periods = min(periods, _far_limit(mem[entry + lay.Q_AUX], high, period, blocks))
    if mem[scalars + lay.SERVER_ACTIVE] and mem[scalars + lay.SERVER_KIND] == lay.TILE_FETCH:
        if mem[scalars + lay.SERVER_AUX] - round_ > horizon:
            periods = min(periods, _far_limit(mem[scalars + lay.SERVER_AUX], high, period, blocks))
    return max(periods, 0)


@numba.njit(cache=True)
def _shift_block(prog, block, round_, horizon, shift):
    return block + shift if _near(prog, block, round_, horizon) else block


@numba.njit(cache=True)
def _jump(prog, mem, candidate, periods, round_, t, horizon):
    """Advance the state by ``periods`` periods of the candidate; returns the new cycle."""
    elapsed = t - mem[_meta(mem, candidate, lay.META_TIME)]
    shift = periods * (round_ - mem[_meta(mem, candidate, lay.META_ROUND)])
    delay = periods * elapsed
    back = prog[lay.BACK]
    lead = prog[lay.LEAD]
    einsums = prog[lay.EINSUMS]
    scalars = mem[lay.SCALARS_AT]

    # Counts grow by `periods` times their growth over the last period.
    for i in range(lay.COUNTER_COUNT):
        address = mem[lay.COUNTERS_AT] + i
        mem[address] += periods * (mem[address] - mem[_meta(mem, candidate, lay.META_COUNTERS + i)])
    for e in range(einsums):
        row = mem[lay.EINSUM_STATE_AT] + e * lay.EINSUM_STATE_COLUMNS
        base = lay.META_COUNTERS + lay.COUNTER_COUNT
        mem[row + lay.TASKS] += periods * (mem[row + lay.TASKS] - mem[_meta(mem, candidate, base + e)])
        mem[row + lay.POINTS] += periods * (mem[row + lay.POINTS] - mem[_meta(mem, candidate, base + einsums + e)])

    for a in range(2):
        row = mem[lay.UNIT_AT] + a * lay.UNIT_COLUMNS
        if not mem[row + lay.FINISHED]:
            mem[row + lay.NEXT_ROUND] += shift
            mem[row + lay.NEXT_BLOCK] += shift
        if mem[row + lay.CURRENT_EINSUM] >= 0:
            mem[row + lay.CURRENT_BLOCK] += shift
            mem[row + lay.CURRENT_ROUND] += shift
            mem[row + lay.CURRENT_START] += delay
            mem[row + lay.CURRENT_END] += delay
            if mem[row + lay.CURRENT_TRANSFER] == 2:
                mem[row + lay.TRANSFER_READY] += delay

    # Ended blocks near the round move with the window; older ones stay ended.
    window = back + lead + 1
    saved = np.empty(window, dtype=np.int64)
    ring = mem[lay.RING]
    for e in range(einsums):
        for i in range(window):
            saved[i] = _done_value(prog, mem, e, round_ - back + i, t)
        start = e * ring
        for i in range(ring):
            mem[mem[lay.DONE_BLOCK_AT] + start + i] = -1
        mem[mem[lay.EINSUM_STATE_AT] + e * lay.EINSUM_STATE_COLUMNS + lay.FLOOR] = round_ - back + shift
        for i in range(window):
            if saved[i] == NOT_DONE:
                continue
            block = round_ - back + i + shift
            address = start + (block & (ring - 1))
            mem[mem[lay.DONE_BLOCK_AT] + address] = block
            if saved[i] == OLD:
                mem[mem[lay.DONE_TIME_AT] + address] = t + delay - prog[lay.MAX_LATENCY] - 1
            else:
                mem[mem[lay.DONE_TIME_AT] + address] = t + saved[i] + delay

    # Tile slots keep their order of issue; near tiles move with the window.
    for s in range(prog[lay.STREAMS]):
        state = mem[lay.STREAM_STATE_AT] + s * lay.STREAM_STATE_COLUMNS
        depth = prog[prog[lay.STREAM_TABLE] + s * lay.STREAM_COLUMNS + lay.S_DEPTH]
        issued = mem[state + lay.ISSUED]
        grown = periods * (issued - mem[_meta(mem, candidate, lay.META_COUNTERS + lay.COUNTER_COUNT + 2 * einsums + s)])
        count = min(issued, depth)
        allocated = np.empty(count, dtype=np.int64)
        blocks_ = np.empty(count, dtype=np.int64)
        ready = np.empty(count, dtype=np.int64)
        delayed = np.empty(count, dtype=np.int64)
        for i in range(count):
            slot = _recent_slot(prog, mem, s, i)
            block = mem[_slot(mem, s, slot, lay.SLOT_BLOCK)]
            near = _near(prog, block, round_, horizon)
            allocated[i] = mem[_slot(mem, s, slot, lay.SLOT_ALLOCATED)]
            delayed[i] = mem[_slot(mem, s, slot, lay.SLOT_DELAYED)]
            blocks_[i] = block + shift if near else block
            ready[i] = mem[_slot(mem, s, slot, lay.SLOT_READY)]
            if near and ready[i] > t:
                ready[i] += delay
        mem[state + lay.ISSUED] = issued + grown
        for i in range(count):
            slot = _recent_slot(prog, mem, s, i)
            mem[_slot(mem, s, slot, lay.SLOT_ALLOCATED)] = allocated[i]
            mem[_slot(mem, s, slot, lay.SLOT_BLOCK)] = blocks_[i]
            mem[_slot(mem, s, slot, lay.SLOT_READY)] = ready[i]
            mem[_slot(mem, s, slot, lay.SLOT_DELAYED)] = delayed[i]
        if mem[state + lay.NEXT_FETCH] < prog[lay.BLOCKS]:
            mem[state + lay.NEXT_FETCH] = _shift_block(prog, mem[state + lay.NEXT_FETCH], round_, horizon, shift)

    capacity = mem[lay.QUEUE]
    for i in range(mem[scalars + lay.QUEUE_LENGTH]):
        entry = mem[lay.QUEUE_AT] + ((mem[scalars + lay.QUEUE_HEAD] + i) % capacity) * 4
        if mem[entry + lay.Q_KIND] == lay.TILE_FETCH:
            mem[entry + lay.Q_AUX] = _shift_block(prog, mem[entry + lay.Q_AUX], round_, horizon, shift)
    if mem[scalars + lay.SERVER_ACTIVE]:
        mem[scalars + lay.SERVER_END] += delay
        if mem[scalars + lay.SERVER_KIND] == lay.TILE_FETCH:
            mem[scalars + lay.SERVER_AUX] = _shift_block(prog, mem[scalars + lay.SERVER_AUX], round_, horizon, shift)
    mem[scalars + lay.END_TIME] += delay
    mem[scalars + lay.CHECKPOINT_ROUND] += shift
    mem[scalars + lay.SKIPPED_PERIODS] += periods
    mem[scalars + lay.SKIPPED_ROUNDS] += shift
    mem[scalars + lay.SKIPPED_CYCLES] += delay
    return t + delay


@numba.njit(cache=True)
def _remember(prog, mem, candidate, round_, t):
    """Store the scratch snapshot and the counts at (round_, t) for a candidate."""
    size = mem[lay.SNAPSHOT]
    stored = mem[lay.SNAP_AT] + candidate * size
    for i in range(size):
        mem[stored + i] = mem[mem[lay.SCRATCH_AT] + i]
    mem[_meta(mem, candidate, lay.META_VALID)] = 1
    mem[_meta(mem, candidate, lay.META_ROUND)] = round_
    mem[_meta(mem, candidate, lay.META_TIME)] = t
    for i in range(lay.COUNTER_COUNT):
        mem[_meta(mem, candidate, lay.META_COUNTERS + i)] = mem[mem[lay.COUNTERS_AT] + i]
    einsums = prog[lay.EINSUMS]
    base = lay.META_COUNTERS + lay.COUNTER_COUNT
    for e in range(einsums):
        row = mem[lay.EINSUM_STATE_AT] + e * lay.EINSUM_STATE_COLUMNS
        mem[_meta(mem, candidate, base + e)] = mem[row + lay.TASKS]
        mem[_meta(mem, candidate, base + einsums + e)] = mem[row + lay.POINTS]
    for s in range(prog[lay.STREAMS]):
        mem[_meta(mem, candidate, base + 2 * einsums + s)] = mem[mem[lay.STREAM_STATE_AT] + s * lay.STREAM_STATE_COLUMNS + lay.ISSUED]


@numba.njit(cache=True)
def _same_as_stored(mem, candidate):
    size = mem[lay.SNAPSHOT]
    stored = mem[lay.SNAP_AT] + candidate * size
    scratch = mem[lay.SCRATCH_AT]
    for i in range(size):
        if mem[stored + i] != mem[scratch + i]:
            return False
    return True


@numba.njit(cache=True)
def fast_forward(prog, mem, t):
    """At the start of a reference round, skip whole periods if the state has become periodic.

    Candidates are tried from the longest period to the shortest, and at most
    one jump happens per call.  Returns the cycle after any jump.
    """
    round_ = mem[mem[lay.SCALARS_AT] + lay.CHECKPOINT_ROUND]
    scratch = mem[lay.SCRATCH_AT]
    size = mem[lay.SNAPSHOT]
    for candidate in range(prog[lay.CANDIDATES]):
        loop = prog[prog[lay.PERIOD_TABLE] + 2 * candidate]
        constrained = prog[prog[lay.PERIOD_TABLE] + 2 * candidate + 1]
        period = stride(prog, loop)
        if round_ % period != 0:
            continue
        horizon = prog[lay.BACK] + 2 * period
        if not _write_snapshot(prog, mem, round_, t, horizon, mem[scratch : scratch + size]):
            mem[_meta(mem, candidate, lay.META_VALID)] = 0
            continue
        repeats = (
            mem[_meta(mem, candidate, lay.META_VALID)] == 1
            and mem[_meta(mem, candidate, lay.META_ROUND)] == round_ - period
            and _same_as_stored(mem, candidate)
        )
        if repeats:
            periods = _allowed_periods(prog, mem, candidate, loop, constrained, round_, horizon)
            if periods > 0:
                # The jump reproduces stepping exactly, so the snapshots of the
                # other candidates, taken at earlier rounds, stay valid.
                t = _jump(prog, mem, candidate, periods, round_, t, horizon)
                _remember(prog, mem, candidate, round_ + periods * period, t)
                return t
        _remember(prog, mem, candidate, round_, t)
    return t
