"""DRAM traffic of a simulated phase: prefetched tiles, per-block transfers and write-backs.

Byte counts follow the analytical model's loop-nest reuse rule
(``fusemax.model.traffic.count_accesses``), so the simulated traffic equals
the analytical traffic up to rounding each block's bytes up to whole bytes.

* A tensor kept in DRAM and in an on-chip level is prefetched as tiles.  A
  block loop changes the tile when it indexes the tensor or sits outside the
  innermost DRAM loop that does, as the reuse rule refetches.  Other loops
  keep it.  Each tile is fetched at the first block that needs it and released
  after the last, with twice the resident tiles in flight when the mapping
  overlaps memory and compute (double buffering).
* Other DRAM reads of a block (a tensor streamed straight from DRAM, the
  spilled share of an on-chip tensor, read-modify-write reads) stream while
  the block runs.
* DRAM writes of a block are written back when it ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import prod
from types import SimpleNamespace

from einsum_cascades.counts import access_ranks, extent
from einsum_cascades.ir import Access, Cascade
from fusemax.mapping import LEVELS
from fusemax.model.loopnest import LoopNest
from fusemax.model.traffic import count_accesses
from fusemax.sim.blocks import FIXED_FIRST, FIXED_LAST, FREE


@dataclass
class Stream:
    """Prefetched tiles of one tensor for one reading Einsum."""

    reader: str
    tensor: str
    modes: list[int]
    events: int
    depth: int
    resident: int
    tile_bytes: int = 0
    producer: str | None = None


@dataclass
class PhaseTraffic:
    """DRAM traffic of one phase, per block of each Einsum."""

    streams: list[Stream]
    transfer_bytes: dict[str, int]
    write_bytes: dict[str, int]
    static_bytes: int

    def resident_bytes(self) -> int:
        """Bytes of one pass of resident tiles of every stream, the part of the buffer need they take."""
        return sum(stream.resident * stream.tile_bytes for stream in self.streams)

    def total_bytes(self, occurrences: dict[str, int]) -> int:
        """Bytes the phase moves to and from DRAM."""
        total = sum(stream.tile_bytes * stream.events for stream in self.streams)
        for einsum, count in occurrences.items():
            total += (self.transfer_bytes[einsum] + self.write_bytes[einsum]) * count
        return total


def levels_of(mapping, einsum: str, tensor: str) -> list[str]:
    """Storage levels ``einsum`` reads or writes ``tensor`` at, outermost first."""
    keep = mapping.einsums[einsum].keep.get(tensor, mapping.keep.get(tensor, []))
    return [level for level in LEVELS if level in keep]


def _access_words(cascade: Cascade, access: Access, levels, nest: LoopNest, is_output: bool, spill: float, sizes) -> tuple[float, float]:
    """DRAM read and write words of one operand access."""
    scratch = SimpleNamespace(traffic_read_words=0.0, traffic_write_words=0.0, reads={}, writes={})
    relevant = set(access_ranks(cascade, access))
    elements = extent(cascade, tuple(dict.fromkeys(access_ranks(cascade, access))), sizes)
    count_accesses(scratch, access.tensor, levels, relevant, elements, nest, is_output, spill)
    return scratch.traffic_read_words, scratch.traffic_write_words


def _stream(einsum: str, access: Access, cascade: Cascade, factors, block_loops, bounds, lacks, dram_loops, overlap: bool) -> Stream:
    """Fetch pattern of one prefetched tensor: which block loops change its tile."""
    relevant_ranks = set(access_ranks(cascade, access))
    relevant = [factors.rank_of.get(loop, loop) in relevant_ranks for loop in block_loops]
    innermost = -1
    for j, loop in enumerate(block_loops):
        if loop in dram_loops and relevant[j]:
            innermost = j
    modes = []
    for j in range(len(block_loops)):
        if lacks[einsum][j]:
            modes.append(FIXED_LAST)
        elif j <= innermost or relevant[j]:
            modes.append(FREE)
        else:
            modes.append(FIXED_FIRST)
    events = prod(bound for bound, mode in zip(bounds, modes) if mode == FREE)
    resident = prod(bound for j, (bound, mode) in enumerate(zip(bounds, modes)) if mode == FREE and j > innermost)
    return Stream(einsum, access.tensor, modes, events, 2 * resident if overlap else resident, resident)


def plan_traffic(names, cascade, evaluation, nests, block_loops, bounds, lacks, occurrences, producers, spill) -> PhaseTraffic:
    """Split each Einsum's DRAM traffic into prefetched tiles, per-block transfers and write-backs."""
    mapping = evaluation.mapping
    factors = evaluation.factors
    word_bytes = evaluation.arch.word_bits // 8
    dram_loops = {loop.factor for nest in nests.values() for loop in nest.temporal if loop.level == "dram"}
    streams: list[Stream] = []
    transfer_words: dict[str, float] = {}
    write_words: dict[str, float] = {}
    streamed = set()
    for einsum in names:
        reads = 0.0
        writes = 0.0
        ir = cascade.einsum(einsum)
        for access, is_output in [(a, False) for a in ir.accesses] + [(ir.output, True)]:
            levels = levels_of(mapping, einsum, access.tensor)
            if not levels:
                continue
            fraction = spill.get(access.tensor, 0.0)
            read_words, written = _access_words(cascade, access, levels, nests[einsum], is_output, fraction, factors.rank_size)
            if not is_output and "dram" in levels and len(levels) > 1:
                full_reads, _ = _access_words(cascade, access, levels, nests[einsum], False, 0.0, factors.rank_size)
                share = full_reads * (1.0 - fraction)
                stream = _stream(einsum, access, cascade, factors, block_loops, bounds, lacks, dram_loops, mapping.overlap_memory)
                stream.producer = producers.get(access.tensor)
                stream.tile_bytes = math.ceil(share * word_bytes / stream.events - 1e-9) if share > 0 else 0
                if stream.tile_bytes > 0:
                    streams.append(stream)
                    streamed.add(access.tensor)
                read_words -= share
            reads += max(read_words, 0.0)
            writes += written
        transfer_words[einsum] = reads
        write_words[einsum] = writes

    transfer_bytes = {e: math.ceil(w * word_bytes / occurrences[e] - 1e-9) for e, w in transfer_words.items()}
    write_bytes = {e: math.ceil(w * word_bytes / occurrences[e] - 1e-9) for e, w in write_words.items()}
    # Tensors the buffer keeps for the whole phase; what does not fit spills.
    used = {access.tensor for einsum in names for access in cascade.einsum(einsum).accesses}
    used.update(names)
    static_words = 0.0
    for tensor, words in evaluation.buffer_tensors_words.items():
        if tensor in used and tensor not in streamed:
            static_words += words * (1.0 - spill.get(tensor, 0.0))
    static_bytes = min(math.ceil(static_words * word_bytes - 1e-9), evaluation.arch.global_buffer.capacity_bytes)
    return PhaseTraffic(streams, transfer_bytes, write_bytes, static_bytes)
