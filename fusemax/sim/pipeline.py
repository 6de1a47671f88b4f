"""The numba kernel that steps one phase of a mapped cascade cycle by cycle.

Two arrays (index 0 is the 2D array, 1 the 1D array) each issue the tasks of
their Einsums in a fixed order: round ``r`` runs the array's Einsums in
schedule order, Einsum ``e`` working on block ``r - lag[e]``.  A task occupies
its array for its issue cycles, and its results reach a consumer
``latency`` cycles after it ends.  A task issues when its array is free,
every producer block it reads has ended and its results have arrived, and
the DRAM tiles it reads are in the global buffer.  One DRAM channel serves
tile fetches, per-task transfers and write-backs, first come, first served.

Stall cycles are recorded by cause.  ``dependency`` waits for a producer,
``dram`` for a transfer, and ``buffer_full`` for a tile fetch that the full
global buffer held back.  ``buffer_port`` counts the cycles a task needs
beyond its compute cycles because it moves more words than the buffer ports
carry.

Nothing changes between events, so the kernel jumps from one event to the
next.  With ``every_cycle`` it steps one cycle at a time instead, with the
same result.  Fast-forward (``steady.py``) compares the state at round
starts and skips whole periods once it repeats.  State lives in the flat
buffers described in ``layout.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from fusemax.sim.blocks import block_points, loop_index, next_event, occurs, releases_tile, tile_event_block
from fusemax.sim import layout as lay
from fusemax.sim.address import counter, einsum_field, einsum_state, scalar, slot_address, stream_field, stream_state, unit
from fusemax.sim.steady import fast_forward

STALL_CAUSES = ("dependency", "dram", "buffer_full", "buffer_port")
DEPENDENCY = 0
DRAM = 1
BUFFER_FULL = 2
BUFFER_PORT = 3

DEADLOCK = 1


@numba.njit(cache=True)
def _next_task(prog, mem, a):
    """Move array ``a``'s pointer to its next task; returns False when it has none left."""
    blocks = prog[lay.BLOCKS]
    round_ = mem[unit(mem, a, lay.NEXT_ROUND)]
    index = mem[unit(mem, a, lay.NEXT_INDEX)] + 1
    length = prog[lay.ORDER_LEN_2D + a]
    order = prog[lay.ORDER_TABLE] + a * prog[lay.EINSUMS]
    while round_ <= prog[lay.LAST_ROUND]:
        while index < length:
            einsum = prog[order + index]
            block = round_ - einsum_field(prog, einsum, lay.E_LAG)
            if 0 <= block < blocks and occurs(prog, einsum, block):
                mem[unit(mem, a, lay.NEXT_ROUND)] = round_
                mem[unit(mem, a, lay.NEXT_INDEX)] = index
                mem[unit(mem, a, lay.NEXT_EINSUM)] = einsum
                mem[unit(mem, a, lay.NEXT_BLOCK)] = block
                return True
            index += 1
        round_ += 1
        index = 0
    mem[unit(mem, a, lay.NEXT_ROUND)] = prog[lay.LAST_ROUND] + 1
    mem[unit(mem, a, lay.NEXT_INDEX)] = -1
    mem[unit(mem, a, lay.NEXT_EINSUM)] = -1
    return False


@numba.njit(cache=True)
def producer_ready(mem, producer, block, latency):
    """Cycle at which ``producer``'s results for ``block`` reach a consumer, or lay.INFINITY before it ends."""
    if block < mem[einsum_state(mem, producer, lay.FLOOR)]:
        return np.int64(0)
    ring = mem[lay.RING]
    address = producer * ring + (block & (ring - 1))
    stored = mem[mem[lay.DONE_BLOCK_AT] + address]
    if stored == block:
        return mem[mem[lay.DONE_TIME_AT] + address] + latency
    if stored > block:
        return np.int64(0)
    return lay.INFINITY


@numba.njit(cache=True)
def find_slot(mem, stream, depth, event):
    """Return the slot of ``stream`` with the tile fetched at ``event``, or -1."""
    for slot in range(depth):
        if mem[slot_address(mem, stream, slot, lay.SLOT_ALLOCATED)] and mem[slot_address(mem, stream, slot, lay.SLOT_BLOCK)] == event:
            return slot
    return -1


@numba.njit(cache=True)
def _gate(prog, mem, einsum, block, t):
    """Check whether task (einsum, block) can issue at cycle t; returns (stall cause or -1, cycle of next change)."""
    for d in range(einsum_field(prog, einsum, lay.E_DEP_START), einsum_field(prog, einsum, lay.E_DEP_END)):
        row = prog[lay.DEP_TABLE] + d * lay.DEP_COLUMNS
        loop = prog[row + lay.D_LOOP]
        if loop >= 0 and loop_index(prog, block, loop) < prog[row + lay.D_ITERATIONS]:
            continue  # the consumer reads the recurrence's initial value
        ready = producer_ready(mem, prog[row + lay.D_SOURCE], block - prog[row + lay.D_DISTANCE], prog[row + lay.D_LATENCY])
        if ready > t:
            return np.int64(DEPENDENCY), np.int64(ready)
    for s in range(einsum_field(prog, einsum, lay.E_STREAM_START), einsum_field(prog, einsum, lay.E_STREAM_END)):
        event = tile_event_block(prog, s, block)
        if event >= mem[stream_state(mem, s, lay.NEXT_FETCH)]:
            return np.int64(BUFFER_FULL), np.int64(lay.INFINITY)
        slot = find_slot(mem, s, stream_field(prog, s, lay.S_DEPTH), event)
        if slot < 0:
            return np.int64(BUFFER_FULL), np.int64(lay.INFINITY)
        ready = mem[slot_address(mem, s, slot, lay.SLOT_READY)]
        cause = BUFFER_FULL if mem[slot_address(mem, s, slot, lay.SLOT_DELAYED)] else DRAM
        if ready < 0:
            return np.int64(cause), np.int64(lay.INFINITY)
        if ready > t:
            return np.int64(cause), np.int64(ready)
    return np.int64(-1), np.int64(t)


@numba.njit(cache=True)
def _enqueue(mem, kind, ref, aux, service):
    capacity = mem[lay.QUEUE]
    tail = (mem[scalar(mem, lay.QUEUE_HEAD)] + mem[scalar(mem, lay.QUEUE_LENGTH)]) % capacity
    entry = mem[lay.QUEUE_AT] + tail * 4
    mem[entry + lay.Q_KIND] = kind
    mem[entry + lay.Q_REF] = ref
    mem[entry + lay.Q_AUX] = aux
    mem[entry + lay.Q_SERVICE] = service
    mem[scalar(mem, lay.QUEUE_LENGTH)] += 1


@numba.njit(cache=True)
def _complete(prog, mem, a, t):
    """End array ``a``'s current task at cycle t: record it, release its tiles, queue its write-back."""
    einsum = mem[unit(mem, a, lay.CURRENT_EINSUM)]
    block = mem[unit(mem, a, lay.CURRENT_BLOCK)]
    ring = mem[lay.RING]
    address = einsum * ring + (block & (ring - 1))
    mem[mem[lay.DONE_BLOCK_AT] + address] = block
    mem[mem[lay.DONE_TIME_AT] + address] = t
    end = scalar(mem, lay.END_TIME)
    mem[end] = max(mem[end], t + einsum_field(prog, einsum, lay.E_OUT_LATENCY))

    for s in range(einsum_field(prog, einsum, lay.E_STREAM_START), einsum_field(prog, einsum, lay.E_STREAM_END)):
        if releases_tile(prog, s, block):
            slot = find_slot(mem, s, stream_field(prog, s, lay.S_DEPTH), tile_event_block(prog, s, block))
            if slot >= 0:
                mem[slot_address(mem, s, slot, lay.SLOT_ALLOCATED)] = 0
                mem[stream_state(mem, s, lay.ALLOCATED_TILES)] -= 1
                mem[scalar(mem, lay.OCCUPANCY)] -= stream_field(prog, s, lay.S_BYTES)
    service = einsum_field(prog, einsum, lay.E_WRITE_SERVICE)
    if service > 0:
        _enqueue(mem, lay.WRITE_BACK, a, block, service)
        mem[scalar(mem, lay.WRITES_PENDING)] += 1
        mem[counter(mem, lay.COUNTER_BYTES_WRITTEN)] += einsum_field(prog, einsum, lay.E_WRITE_BYTES)

    row = mem[scalar(mem, lay.TRACE_COUNT)]
    if row < mem[lay.TRACE_ROWS]:
        entry = mem[lay.TRACE_AT] + row * 4
        mem[entry] = einsum
        mem[entry + 1] = block
        mem[entry + 2] = mem[unit(mem, a, lay.CURRENT_START)]
        mem[entry + 3] = t
        mem[scalar(mem, lay.TRACE_COUNT)] += 1
    mem[einsum_state(mem, einsum, lay.TASKS)] += 1
    mem[einsum_state(mem, einsum, lay.POINTS)] += mem[unit(mem, a, lay.CURRENT_POINTS)]
    mem[unit(mem, a, lay.CURRENT_EINSUM)] = -1


@numba.njit(cache=True)
def blocked(prog, mem, a, t):
    """Why array ``a`` cannot act at cycle t: (stall cause or -1, cycle at which that may change).

    A task whose compute has ended may still wait for its streamed transfer
    or for room in the write-back queue, and an idle array waits for its next
    task's gate.  Returns (-1, t) when the array can act now and (-1, end of
    compute) while it computes.
    """
    if mem[unit(mem, a, lay.FINISHED)]:
        return np.int64(-1), np.int64(lay.INFINITY)
    einsum = mem[unit(mem, a, lay.CURRENT_EINSUM)]
    if einsum >= 0:
        if mem[unit(mem, a, lay.CURRENT_END)] > t:
            return np.int64(-1), np.int64(mem[unit(mem, a, lay.CURRENT_END)])
        transfer = mem[unit(mem, a, lay.CURRENT_TRANSFER)]
        if transfer == 1:
            return np.int64(DRAM), np.int64(lay.INFINITY)
        if transfer == 2 and mem[unit(mem, a, lay.TRANSFER_READY)] > t:
            return np.int64(DRAM), np.int64(mem[unit(mem, a, lay.TRANSFER_READY)])
        if einsum_field(prog, einsum, lay.E_WRITE_SERVICE) > 0 and mem[scalar(mem, lay.WRITES_PENDING)] >= prog[lay.WRITE_QUEUE]:
            return np.int64(DRAM), np.int64(lay.INFINITY)
        return np.int64(-1), np.int64(t)
    return _gate(prog, mem, mem[unit(mem, a, lay.NEXT_EINSUM)], mem[unit(mem, a, lay.NEXT_BLOCK)], t)


@numba.njit(cache=True)
def _step_array(prog, mem, a, t):
    """Complete array ``a``'s task and issue its next one, when it can at cycle t."""
    if mem[unit(mem, a, lay.CURRENT_EINSUM)] >= 0:
        cause, until = blocked(prog, mem, a, t)
        if cause >= 0 or until > t:
            return
        _complete(prog, mem, a, t)
        if not _next_task(prog, mem, a):
            mem[unit(mem, a, lay.FINISHED)] = 1
            return
    if mem[unit(mem, a, lay.FINISHED)]:
        return
    einsum = mem[unit(mem, a, lay.NEXT_EINSUM)]
    block = mem[unit(mem, a, lay.NEXT_BLOCK)]
    cause, until = _gate(prog, mem, einsum, block, t)
    if cause >= 0:
        return

    # Issue: the array computes for `duration` cycles, then waits `stretch`
    # more cycles for the buffer ports.
    duration = einsum_field(prog, einsum, lay.E_DURATION)
    stretch = einsum_field(prog, einsum, lay.E_STRETCH)
    mem[unit(mem, a, lay.CURRENT_EINSUM)] = einsum
    mem[unit(mem, a, lay.CURRENT_BLOCK)] = block
    mem[unit(mem, a, lay.CURRENT_ROUND)] = mem[unit(mem, a, lay.NEXT_ROUND)]
    mem[unit(mem, a, lay.CURRENT_START)] = t
    mem[unit(mem, a, lay.CURRENT_END)] = t + duration + stretch
    mem[unit(mem, a, lay.CURRENT_POINTS)] = block_points(prog, einsum, block)
    mem[counter(mem, lay.COUNTER_BUSY + a)] += duration
    mem[counter(mem, lay.COUNTER_STALL + 4 * a + BUFFER_PORT)] += stretch
    mem[unit(mem, a, lay.CURRENT_TRANSFER)] = 0
    service = einsum_field(prog, einsum, lay.E_TRANSFER_SERVICE)
    if service > 0:
        _enqueue(mem, lay.TASK_TRANSFER, a, block, service)
        mem[unit(mem, a, lay.CURRENT_TRANSFER)] = 1
        mem[counter(mem, lay.COUNTER_BYTES_READ)] += einsum_field(prog, einsum, lay.E_TRANSFER_BYTES)
    current_round = mem[unit(mem, a, lay.CURRENT_ROUND)]
    if a == prog[lay.REFERENCE_ARRAY] and current_round > mem[scalar(mem, lay.CHECKPOINT_ROUND)]:
        mem[scalar(mem, lay.CHECKPOINT_ROUND)] = current_round
        mem[scalar(mem, lay.CHECKPOINT_PENDING)] = 1


@numba.njit(cache=True)
def _fetch_allowed(prog, mem, s, t):
    event = mem[stream_state(mem, s, lay.NEXT_FETCH)]
    if event >= prog[lay.BLOCKS]:
        return False
    depth = stream_field(prog, s, lay.S_DEPTH)
    if mem[slot_address(mem, s, mem[stream_state(mem, s, lay.ISSUED)] % depth, lay.SLOT_ALLOCATED)]:
        return False
    # One pass of resident tiles per stream is part of the mapping's buffer need
    # and always has room. Tiles beyond it are prefetches and share what the
    # buffer has left, so a full buffer slows a stream to single buffering.
    if mem[stream_state(mem, s, lay.ALLOCATED_TILES)] >= stream_field(prog, s, lay.S_RESIDENT):
        prefetched = stream_field(prog, s, lay.S_BYTES)
        for other in range(prog[lay.STREAMS]):
            extra = mem[stream_state(mem, other, lay.ALLOCATED_TILES)] - stream_field(prog, other, lay.S_RESIDENT)
            if extra > 0:
                prefetched += extra * stream_field(prog, other, lay.S_BYTES)
        if prefetched > prog[lay.PREFETCH_BYTES]:
            mem[stream_state(mem, s, lay.CAPACITY_BLOCKED)] = 1
            return False
    producer = stream_field(prog, s, lay.S_PRODUCER)
    if producer >= 0 and producer_ready(mem, producer, event, 0) > t:
        return False
    if not prog[lay.PREFETCH]:
        reader = stream_field(prog, s, lay.S_READER)
        position = mem[unit(mem, einsum_field(prog, reader, lay.E_ARRAY), lay.NEXT_ROUND)] - einsum_field(prog, reader, lay.E_LAG)
        if position < event:
            return False
    return True


@numba.njit(cache=True)
def _issue_fetches(prog, mem, t):
    """Queue every tile fetch that may start, earliest block first."""
    while True:
        best = -1
        for s in range(prog[lay.STREAMS]):
            if _fetch_allowed(prog, mem, s, t):
                if best < 0 or mem[stream_state(mem, s, lay.NEXT_FETCH)] < mem[stream_state(mem, best, lay.NEXT_FETCH)]:
                    best = s
        if best < 0:
            return
        s = best
        depth = stream_field(prog, s, lay.S_DEPTH)
        nbytes = stream_field(prog, s, lay.S_BYTES)
        slot = mem[stream_state(mem, s, lay.ISSUED)] % depth
        event = mem[stream_state(mem, s, lay.NEXT_FETCH)]
        mem[slot_address(mem, s, slot, lay.SLOT_ALLOCATED)] = 1
        mem[slot_address(mem, s, slot, lay.SLOT_BLOCK)] = event
        mem[slot_address(mem, s, slot, lay.SLOT_READY)] = -1
        mem[slot_address(mem, s, slot, lay.SLOT_DELAYED)] = mem[stream_state(mem, s, lay.CAPACITY_BLOCKED)]
        mem[stream_state(mem, s, lay.CAPACITY_BLOCKED)] = 0
        mem[stream_state(mem, s, lay.ALLOCATED_TILES)] += 1
        mem[scalar(mem, lay.OCCUPANCY)] += nbytes
        peak = scalar(mem, lay.PEAK_OCCUPANCY)
        mem[peak] = max(mem[peak], mem[scalar(mem, lay.OCCUPANCY)])
        mem[stream_state(mem, s, lay.ISSUED)] += 1
        mem[stream_state(mem, s, lay.NEXT_FETCH)] = next_event(prog, s, event, prog[lay.BLOCKS])
        _enqueue(mem, lay.TILE_FETCH, s, event, stream_field(prog, s, lay.S_SERVICE))
        mem[counter(mem, lay.COUNTER_BYTES_READ)] += nbytes


@numba.njit(cache=True)
def _finish_transfer(prog, mem, t):
    """End the DRAM entry in service at cycle t; its data is usable after the DRAM latency."""
    ready = t + prog[lay.DRAM_LATENCY]
    kind = mem[scalar(mem, lay.SERVER_KIND)]
    ref = mem[scalar(mem, lay.SERVER_REF)]
    if kind == lay.TILE_FETCH:
        slot = find_slot(mem, ref, stream_field(prog, ref, lay.S_DEPTH), mem[scalar(mem, lay.SERVER_AUX)])
        if slot >= 0:
            mem[slot_address(mem, ref, slot, lay.SLOT_READY)] = ready
    elif kind == lay.TASK_TRANSFER:
        mem[unit(mem, ref, lay.CURRENT_TRANSFER)] = 2
        mem[unit(mem, ref, lay.TRANSFER_READY)] = ready
    else:
        mem[scalar(mem, lay.WRITES_PENDING)] -= 1
        end = scalar(mem, lay.END_TIME)
        mem[end] = max(mem[end], ready)
    mem[scalar(mem, lay.SERVER_ACTIVE)] = 0


@numba.njit(cache=True)
def _start_transfer(mem, t):
    head = mem[scalar(mem, lay.QUEUE_HEAD)]
    entry = mem[lay.QUEUE_AT] + head * 4
    mem[scalar(mem, lay.SERVER_KIND)] = mem[entry + lay.Q_KIND]
    mem[scalar(mem, lay.SERVER_REF)] = mem[entry + lay.Q_REF]
    mem[scalar(mem, lay.SERVER_AUX)] = mem[entry + lay.Q_AUX]
    mem[scalar(mem, lay.SERVER_END)] = t + mem[entry + lay.Q_SERVICE]
    mem[scalar(mem, lay.SERVER_ACTIVE)] = 1
    mem[scalar(mem, lay.QUEUE_HEAD)] = (head + 1) % mem[lay.QUEUE]
    mem[scalar(mem, lay.QUEUE_LENGTH)] -= 1
    mem[counter(mem, lay.COUNTER_DRAM_BUSY)] += mem[entry + lay.Q_SERVICE]


@numba.njit(cache=True)
def run_phase(prog, mem, every_cycle):
    """Step one phase from cycle 0 until every task has ended and DRAM is idle.

    One iteration of the main loop handles one cycle at which something can
    change, and counts the cycles until the next such cycle in one go.
    Returns 0, or ``DEADLOCK`` when no task can ever issue again.
    """
    t = np.int64(0)
    causes = np.full(2, -1, dtype=np.int64)
    for a in range(2):
        if not _next_task(prog, mem, a):
            mem[unit(mem, a, lay.FINISHED)] = 1
    while True:
        if mem[scalar(mem, lay.SERVER_ACTIVE)] and mem[scalar(mem, lay.SERVER_END)] == t:
            _finish_transfer(prog, mem, t)
        for a in range(2):
            _step_array(prog, mem, a, t)
        _issue_fetches(prog, mem, t)
        if not mem[scalar(mem, lay.SERVER_ACTIVE)] and mem[scalar(mem, lay.QUEUE_LENGTH)] > 0:
            _start_transfer(mem, t)

        if mem[scalar(mem, lay.CHECKPOINT_PENDING)]:
            mem[scalar(mem, lay.CHECKPOINT_PENDING)] = 0
            # A requested trace covers the first blocks without gaps, so fast-forward
            # waits until the trace is full.
            if prog[lay.FAST_FORWARD] and mem[scalar(mem, lay.TRACE_COUNT)] >= mem[lay.TRACE_ROWS]:
                t = fast_forward(prog, mem, t)

        idle = not mem[scalar(mem, lay.SERVER_ACTIVE)] and mem[scalar(mem, lay.QUEUE_LENGTH)] == 0
        if mem[unit(mem, 0, lay.FINISHED)] and mem[unit(mem, 1, lay.FINISHED)] and idle:
            end = scalar(mem, lay.END_TIME)
            mem[end] = max(mem[end], t)
            return 0

        # The cycle's stall causes and the next cycle at which anything can
        # change come from the state after every update of this cycle.
        following = lay.INFINITY
        if mem[scalar(mem, lay.SERVER_ACTIVE)]:
            following = min(following, mem[scalar(mem, lay.SERVER_END)])
        for a in range(2):
            cause, until = blocked(prog, mem, a, t)
            causes[a] = cause
            following = min(following, until)
        if following >= lay.INFINITY:
            return DEADLOCK
        if following <= t or every_cycle:
            following = t + 1
        for a in range(2):
            if causes[a] >= 0:
                mem[counter(mem, lay.COUNTER_STALL + 4 * a + causes[a])] += following - t
        t = following
