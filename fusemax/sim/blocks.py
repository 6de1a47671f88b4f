"""Block indices of a simulated phase: loop indices, occurrences, DRAM tile fetches and exact points.

A block is one iteration of the phase's block loops (the mapping's DRAM-level
loops and the outermost global-buffer loop).  Blocks are numbered in loop
order, so block ``b`` has index ``(b // stride[j]) % bound[j]`` in loop ``j``.

An Einsum that lacks a block loop (it does not iterate that loop's rank) runs
once per iteration of the other loops, at the lacking loop's last index: it
consumes the final value of a recurrence, as ``AV`` consumes ``RNV[M1]``.

A DRAM stream fetches the tiles of one tensor for one reading Einsum, and
each block loop has a mode per stream.  ``FREE`` loops change the tile,
because they index the tensor or sit outside the innermost DRAM loop that
does, so the tile is fetched again.  ``FIXED_FIRST`` loops keep the tile, so
it is fetched at their first index and released after their last.
``FIXED_LAST`` loops are ones the reader lacks, so the reader only runs at
their last index.
"""

from __future__ import annotations

import numba

from fusemax.sim.layout import (
    BOUND,
    EINSUM_COLUMNS,
    EINSUM_TABLE,
    E_POINT_BASE,
    E_RANK_COUNT,
    LACKS_TABLE,
    LOOP_TABLE,
    LOOPS,
    MODE_TABLE,
    RANK_TABLE,
    RANKS,
    STRIDE,
)

FREE = 0
FIXED_FIRST = 1
FIXED_LAST = 2


@numba.njit(cache=True)
def bound(prog, loop):
    """Return the iterations of block loop ``loop``."""
    return prog[prog[LOOP_TABLE] + 2 * loop + BOUND]


@numba.njit(cache=True)
def stride(prog, loop):
    """Return the blocks between consecutive iterations of block loop ``loop``."""
    return prog[prog[LOOP_TABLE] + 2 * loop + STRIDE]


@numba.njit(cache=True)
def loop_index(prog, block, loop):
    """Return the index of ``block`` in block loop ``loop``."""
    return (block // stride(prog, loop)) % bound(prog, loop)


@numba.njit(cache=True)
def occurs(prog, einsum, block):
    """Return whether ``einsum`` runs at ``block``: every loop it lacks must be at its last index."""
    loops = prog[LOOPS]
    lacks = prog[LACKS_TABLE] + einsum * loops
    for loop in range(loops):
        if prog[lacks + loop] and loop_index(prog, block, loop) != bound(prog, loop) - 1:
            return False
    return True


@numba.njit(cache=True)
def _mode(prog, stream, loop):
    return prog[prog[MODE_TABLE] + stream * prog[LOOPS] + loop]


@numba.njit(cache=True)
def tile_event_block(prog, stream, block):
    """Return the block at which the tile that ``block`` uses in ``stream`` is fetched."""
    result = block
    for loop in range(prog[LOOPS]):
        mode = _mode(prog, stream, loop)
        if mode == FIXED_FIRST:
            result -= loop_index(prog, block, loop) * stride(prog, loop)
        elif mode == FIXED_LAST:
            result += (bound(prog, loop) - 1 - loop_index(prog, block, loop)) * stride(prog, loop)
    return result


@numba.njit(cache=True)
def releases_tile(prog, stream, block):
    """Return whether ``block`` is the last block that uses its tile in ``stream``."""
    for loop in range(prog[LOOPS]):
        if _mode(prog, stream, loop) != FREE and loop_index(prog, block, loop) != bound(prog, loop) - 1:
            return False
    return True


@numba.njit(cache=True)
def next_event(prog, stream, event_block, blocks):
    """Return the block of the fetch after the one at ``event_block``, or ``blocks`` when there is none.

    The free loops count up like the digits of a mixed-radix number; the
    others keep their fixed index.
    """
    result = event_block
    for loop in range(prog[LOOPS] - 1, -1, -1):
        if _mode(prog, stream, loop) != FREE:
            continue
        index = loop_index(prog, event_block, loop)
        if index + 1 < bound(prog, loop):
            return result + stride(prog, loop)
        result -= index * stride(prog, loop)
    return blocks


@numba.njit(cache=True)
def block_points(prog, einsum, block):
    """Exact iteration-space points of ``einsum`` in ``block``, with partial last tiles.

    A rank whose factors include block loops covers coordinates
    ``[start, start + inner)`` of its size, where ``start`` is ``inner`` times
    the block's position along that rank.  Only coordinates that exist count.
    """
    loops = prog[LOOPS]
    row = prog[EINSUM_TABLE] + einsum * EINSUM_COLUMNS
    points = prog[row + E_POINT_BASE]
    width = 2 + loops
    for rank in range(prog[row + E_RANK_COUNT]):
        entry = prog[RANK_TABLE] + (einsum * prog[RANKS] + rank) * width
        size = prog[entry]
        inner = prog[entry + 1]
        position = 0
        for loop in range(loops):
            weight = prog[entry + 2 + loop]
            if weight != 0:
                position += loop_index(prog, block, loop) * weight
        covered = min(max(size - position * inner, 0), inner)
        points *= covered
    return points
