"""Addresses in the kernel's program and state buffers (see ``layout.py``).

The ``*_field`` functions read a program value.  The others return the index
of a state value, so that the kernel can read and write it in place.
"""

from __future__ import annotations

import numba

from fusemax.sim import layout as lay


@numba.njit(cache=True)
def einsum_field(prog, einsum, column):
    """Value of column ``column`` of an Einsum's row in the program."""
    return prog[prog[lay.EINSUM_TABLE] + einsum * lay.EINSUM_COLUMNS + column]


@numba.njit(cache=True)
def stream_field(prog, stream, column):
    """Value of column ``column`` of a stream's row in the program."""
    return prog[prog[lay.STREAM_TABLE] + stream * lay.STREAM_COLUMNS + column]


@numba.njit(cache=True)
def unit(mem, a, column):
    """Address of column ``column`` of array ``a``'s state."""
    return mem[lay.UNIT_AT] + a * lay.UNIT_COLUMNS + column


@numba.njit(cache=True)
def scalar(mem, index):
    """Address of a scalar of the state."""
    return mem[lay.SCALARS_AT] + index


@numba.njit(cache=True)
def counter(mem, index):
    """Address of a counter of the state."""
    return mem[lay.COUNTERS_AT] + index


@numba.njit(cache=True)
def slot_address(mem, stream, slot, column):
    """Address of column ``column`` of a tile slot of a stream."""
    return mem[lay.SLOT_AT] + (stream * mem[lay.DEPTH] + slot) * lay.SLOT_COLUMNS + column


@numba.njit(cache=True)
def stream_state(mem, stream, column):
    """Address of column ``column`` of a stream's state."""
    return mem[lay.STREAM_STATE_AT] + stream * lay.STREAM_STATE_COLUMNS + column


@numba.njit(cache=True)
def einsum_state(mem, einsum, column):
    """Address of column ``column`` of an Einsum's state."""
    return mem[lay.EINSUM_STATE_AT] + einsum * lay.EINSUM_STATE_COLUMNS + column
