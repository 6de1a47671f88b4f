"""Memory layout of the pipeline kernel: one int64 buffer for a phase program, one for its state.

Numba refcounts every array a compiled function receives, so a kernel that
passed dozens of arrays to each helper spent most of its time on reference
counts.  The kernel therefore keeps everything in two flat int64 buffers:
``prog`` (read-only) and ``mem`` (mutable).  Each starts with a header whose
named entries give sizes, scalars and the offsets of tables.  A table stores
one row per Einsum, loop, dependency, stream, array, slot or queue entry, with
named columns.  Every count is int64, and a 1M-token attention layer needs
about 2e12 cycles and 5e16 iteration points, well inside int64's range.
"""

from __future__ import annotations

import numpy as np

INFINITY = np.int64(1) << np.int64(62)

# prog header: sizes, scalars and table offsets.
EINSUMS, LOOPS, STREAMS, DEPS, RANKS, CANDIDATES = range(6)
BLOCKS, LAST_ROUND, PREFETCH_BYTES, DRAM_LATENCY, WRITE_QUEUE, PREFETCH = range(6, 12)
REFERENCE_ARRAY, BACK, LEAD, MAX_LATENCY, FAST_FORWARD, ORDER_LEN_2D, ORDER_LEN_1D = range(12, 19)
EINSUM_TABLE, LACKS_TABLE, LOOP_TABLE, ORDER_TABLE, DEP_TABLE, STREAM_TABLE, MODE_TABLE, RANK_TABLE, PERIOD_TABLE = range(19, 28)
PROG_HEADER = 28

# Einsum table columns.
E_ARRAY, E_DURATION, E_STRETCH, E_LAG, E_OUT_LATENCY = range(5)
E_TRANSFER_SERVICE, E_TRANSFER_BYTES, E_WRITE_SERVICE, E_WRITE_BYTES = range(5, 9)
E_POINT_BASE, E_RANK_COUNT, E_DEP_START, E_DEP_END, E_STREAM_START, E_STREAM_END = range(9, 15)
EINSUM_COLUMNS = 15

# Loop table columns.
BOUND, STRIDE = range(2)

# Dependency table columns: the producer, how many blocks earlier its block is,
# the transfer latency, and for a loop-carried dependency the loop and the
# least index of that loop at which the dependency exists.
D_SOURCE, D_DISTANCE, D_LATENCY, D_LOOP, D_ITERATIONS = range(5)
DEP_COLUMNS = 5

# Stream table columns: tile slots, tiles one pass over the fixed loops keeps
# (fetches beyond these are prefetches, limited by buffer space), tile bytes,
# DRAM cycles per tile, producing Einsum or -1, reading Einsum.
S_DEPTH, S_RESIDENT, S_BYTES, S_SERVICE, S_PRODUCER, S_READER = range(6)
STREAM_COLUMNS = 6

# mem header: sizes and table offsets.
RING, DEPTH, QUEUE, TRACE_ROWS, SNAPSHOT, META_WIDTH = range(6)
SCALARS_AT, COUNTERS_AT, UNIT_AT, EINSUM_STATE_AT, DONE_BLOCK_AT, DONE_TIME_AT = range(6, 12)
STREAM_STATE_AT, SLOT_AT, QUEUE_AT, TRACE_AT, SNAP_AT, SNAP_META_AT, SCRATCH_AT = range(12, 19)
MEM_HEADER = 19

# Scalars.
OCCUPANCY, PEAK_OCCUPANCY, QUEUE_HEAD, QUEUE_LENGTH = range(4)
SERVER_ACTIVE, SERVER_KIND, SERVER_REF, SERVER_AUX, SERVER_END = range(4, 9)
WRITES_PENDING, END_TIME, TRACE_COUNT, CHECKPOINT_ROUND, CHECKPOINT_PENDING = range(9, 14)
SKIPPED_PERIODS, SKIPPED_ROUNDS, SKIPPED_CYCLES = range(14, 17)
SCALAR_COUNT = 17

# Counters: busy cycles of each array, stall cycles of each array by cause
# (four causes per array), DRAM busy cycles, bytes read and bytes written.
COUNTER_BUSY = 0
COUNTER_STALL = 2
COUNTER_DRAM_BUSY = 10
COUNTER_BYTES_READ = 11
COUNTER_BYTES_WRITTEN = 12
COUNTER_COUNT = 13

# Unit (array) state columns: the next task in its static order and the task in progress.
NEXT_ROUND, NEXT_INDEX, NEXT_EINSUM, NEXT_BLOCK, FINISHED = range(5)
CURRENT_EINSUM, CURRENT_BLOCK, CURRENT_ROUND, CURRENT_START, CURRENT_END = range(5, 10)
CURRENT_POINTS, CURRENT_TRANSFER, TRANSFER_READY = range(10, 13)
UNIT_COLUMNS = 13

# Einsum state columns; blocks below FLOOR ended long ago.
TASKS, POINTS, FLOOR = range(3)
EINSUM_STATE_COLUMNS = 3

# Stream state columns: the block of the next fetch, fetches issued, tiles
# allocated, and whether the buffer's capacity has held back the next fetch.
NEXT_FETCH, ISSUED, ALLOCATED_TILES, CAPACITY_BLOCKED = range(4)
STREAM_STATE_COLUMNS = 4

# Slot columns; DELAYED marks a fetch that waited for buffer space, so a block
# waiting for its data stalls because the buffer was full.
SLOT_ALLOCATED, SLOT_BLOCK, SLOT_READY, SLOT_DELAYED = range(4)
SLOT_COLUMNS = 4

# DRAM queue columns and entry kinds.
Q_KIND, Q_REF, Q_AUX, Q_SERVICE = range(4)
TILE_FETCH, TASK_TRANSFER, WRITE_BACK = range(3)

# Snapshot metadata of one fast-forward candidate: validity, round and cycle,
# then the counters, per-Einsum tasks and points, and per-stream fetches at
# that round.
META_VALID, META_ROUND, META_TIME = range(3)
META_COUNTERS = 3


def pack_program(header: dict[int, int], tables: dict[int, np.ndarray]) -> np.ndarray:
    """Concatenate header entries and tables into one buffer; table offsets go into the header."""
    parts = []
    offset = PROG_HEADER
    head = np.zeros(PROG_HEADER, dtype=np.int64)
    for key, value in header.items():
        head[key] = value
    for key, table in tables.items():
        flat = np.ascontiguousarray(table, dtype=np.int64).reshape(-1)
        head[key] = offset
        parts.append(flat)
        offset += flat.size
    return np.concatenate([head, *parts]) if parts else head


def snapshot_length(prog: np.ndarray) -> int:
    """Length of one fast-forward snapshot vector (see ``steady._write_snapshot``)."""
    window = int(prog[BACK] + prog[LEAD] + 1)
    depth = max_depth(prog)
    return 2 * 8 + int(prog[EINSUMS]) * window + int(prog[STREAMS]) * (3 + 4 * depth) + 1 + 6 + 4 * queue_capacity(prog) + 1


def max_depth(prog: np.ndarray) -> int:
    """Most tile slots of any stream (at least 1)."""
    streams = int(prog[STREAMS])
    start = int(prog[STREAM_TABLE])
    depths = [int(prog[start + s * STREAM_COLUMNS + S_DEPTH]) for s in range(streams)]
    return max(depths + [1])


def queue_capacity(prog: np.ndarray) -> int:
    """Entries the DRAM queue can hold: every tile slot, two task transfers and the write-backs."""
    streams = int(prog[STREAMS])
    start = int(prog[STREAM_TABLE])
    slots = sum(int(prog[start + s * STREAM_COLUMNS + S_DEPTH]) for s in range(streams))
    return slots + 2 + int(prog[WRITE_QUEUE]) + 2


def new_state(prog: np.ndarray, trace_limit: int) -> np.ndarray:
    """Return the state buffer of a phase before its first cycle."""
    einsums = int(prog[EINSUMS])
    streams = int(prog[STREAMS])
    window = int(prog[BACK] + prog[LEAD] + 1)
    ring = 1
    while ring < 2 * window + 64:
        ring *= 2
    depth = max_depth(prog)
    queue = queue_capacity(prog)
    trace_rows = max(int(trace_limit), 0)
    snapshot = snapshot_length(prog)
    candidates = max(int(prog[CANDIDATES]), 1)
    meta = 3 + COUNTER_COUNT + 2 * einsums + streams

    sizes = [
        (SCALARS_AT, SCALAR_COUNT),
        (COUNTERS_AT, COUNTER_COUNT),
        (UNIT_AT, 2 * UNIT_COLUMNS),
        (EINSUM_STATE_AT, einsums * EINSUM_STATE_COLUMNS),
        (DONE_BLOCK_AT, einsums * ring),
        (DONE_TIME_AT, einsums * ring),
        (STREAM_STATE_AT, streams * STREAM_STATE_COLUMNS),
        (SLOT_AT, streams * depth * SLOT_COLUMNS),
        (QUEUE_AT, queue * 4),
        (TRACE_AT, trace_rows * 4),
        (SNAP_AT, candidates * snapshot),
        (SNAP_META_AT, candidates * meta),
        (SCRATCH_AT, snapshot),
    ]
    total = MEM_HEADER + sum(size for _, size in sizes)
    mem = np.zeros(total, dtype=np.int64)
    mem[RING] = ring
    mem[DEPTH] = depth
    mem[QUEUE] = queue
    mem[TRACE_ROWS] = trace_rows
    mem[SNAPSHOT] = snapshot
    mem[META_WIDTH] = meta
    offset = MEM_HEADER
    for key, size in sizes:
        mem[key] = offset
        offset += size
    mem[mem[SCALARS_AT] + CHECKPOINT_ROUND] = -1
    done = mem[DONE_BLOCK_AT]
    mem[done : done + einsums * ring] = -1
    for a in range(2):
        base = mem[UNIT_AT] + a * UNIT_COLUMNS
        mem[base + NEXT_INDEX] = -1
        mem[base + NEXT_EINSUM] = -1
        mem[base + CURRENT_EINSUM] = -1
    slots = mem[SLOT_AT]
    for i in range(streams * depth):
        mem[slots + i * SLOT_COLUMNS + SLOT_READY] = -1
    return mem


def scalar(mem: np.ndarray, index: int) -> int:
    """Return one scalar of a state buffer as a Python int."""
    return int(mem[mem[SCALARS_AT] + index])


def counters(mem: np.ndarray) -> list[int]:
    """Return the counters of a state buffer as Python ints."""
    start = int(mem[COUNTERS_AT])
    return [int(value) for value in mem[start : start + COUNTER_COUNT]]


def einsum_counts(mem: np.ndarray, einsums: int, column: int) -> list[int]:
    """Return one column (TASKS or POINTS) of the Einsum state as Python ints."""
    start = int(mem[EINSUM_STATE_AT])
    return [int(mem[start + e * EINSUM_STATE_COLUMNS + column]) for e in range(einsums)]


def unit_field(mem: np.ndarray, array: int, column: int) -> int:
    """Return one column of an array's unit state as a Python int."""
    return int(mem[mem[UNIT_AT] + array * UNIT_COLUMNS + column])


def trace_rows(mem: np.ndarray) -> np.ndarray:
    """Return the recorded trace, one row per block: Einsum, block, start cycle, end cycle."""
    start = int(mem[TRACE_AT])
    count = scalar(mem, TRACE_COUNT)
    return mem[start : start + 4 * count].reshape(count, 4)
