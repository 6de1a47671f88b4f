"""Reads and writes per storage level, and DRAM traffic, of one operand of a mapped Einsum.

Accesses follow the loop-nest reuse rule (see ``loopnest``).  An output also
counts read-modify-write reads at its innermost level and drains to the
levels above.  DRAM traffic comes from the tensors kept in DRAM, plus the
spilled fraction of an on-chip tensor's buffer accesses.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from fusemax.mapping import LEVELS
from fusemax.model.loopnest import LoopNest

if TYPE_CHECKING:
    from fusemax.model.evaluate import EinsumResult


def count_accesses(
    result: EinsumResult,
    tensor: str,
    levels: list[str],
    relevant: set[str],
    elements: int,
    nest: LoopNest,
    is_output: bool,
    spill_fraction: float,
) -> None:
    """Add one operand's reads and writes per level, and its DRAM traffic, to ``result``."""
    reads: dict[str, float] = defaultdict(float)
    writes: dict[str, float] = defaultdict(float)
    innermost = levels[-1]
    served = elements * nest.refetches(relevant)
    if is_output:
        writes[innermost] += served
        reads[innermost] += max(0, served - elements)
    else:
        reads[innermost] += served
    for child, parent in zip(reversed(levels[1:]), reversed(levels[:-1])):
        above = tuple(LEVELS[: LEVELS.index(child)])
        moved = elements * nest.refetches(relevant, above)
        if is_output:
            writes[parent] += moved
            reads[child] += moved
        else:
            writes[child] += moved
            reads[parent] += moved

    # DRAM traffic, with the FuseMax artifact's elision: reads equal to updates are first reads of
    # a read-write tensor that never happen, so they are not counted.
    on_chip = "global_buffer" in levels
    if "dram" in levels:
        dram_reads = reads["dram"] if reads["dram"] != writes["dram"] else 0.0
        share = 1.0 - spill_fraction if on_chip else 1.0
        result.traffic_read_words += dram_reads * share
        result.traffic_write_words += writes["dram"] * share
    if on_chip and spill_fraction > 0:
        # The spilled share of an on-chip tensor's reads and updates goes to DRAM instead of the
        # buffer. An input's buffer fills are not added, because they are DRAM reads already.
        buffer_reads = reads["global_buffer"] if reads["global_buffer"] != writes["global_buffer"] else 0.0
        buffer_writes = writes["global_buffer"] if is_output else 0.0
        result.traffic_read_words += buffer_reads * spill_fraction
        result.traffic_write_words += buffer_writes * spill_fraction

    for level, count in reads.items():
        result.reads[level] = result.reads.get(level, 0.0) + count
    for level, count in writes.items():
        result.writes[level] = result.writes.get(level, 0.0) + count
