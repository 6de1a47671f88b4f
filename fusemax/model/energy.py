"""Energy of a mapped cascade: action counts times per-action energies, per component."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from fusemax.arch import Architecture

if TYPE_CHECKING:
    from fusemax.model.evaluate import EinsumResult


def energy_breakdown_pj(arch: Architecture, per_einsum: dict[str, EinsumResult]) -> dict[str, float]:
    """Energy per component in pJ: units, DRAM, global buffer, array buffer and register files."""
    breakdown: dict[str, float] = defaultdict(float)
    for result in per_einsum.values():
        for unit, count in result.actions.items():
            breakdown[unit] += count * arch.units[unit].energy_pj

    dram_bytes_per_access = arch.dram.access_bits / 8
    words_per_row = arch.global_buffer.energy_words_per_row or arch.global_buffer.row_bits // arch.word_bits
    for result in per_einsum.values():
        breakdown["dram"] += (
            result.traffic_read_words * arch.word_bytes / dram_bytes_per_access * arch.dram.read_energy_pj
            + result.traffic_write_words * arch.word_bytes / dram_bytes_per_access * arch.dram.write_energy_pj
        )
        breakdown["global_buffer"] += (
            result.reads.get("global_buffer", 0.0) * arch.global_buffer.read_energy_pj
            + result.writes.get("global_buffer", 0.0) * arch.global_buffer.write_energy_pj
        ) / words_per_row
        buffer = arch.arrays.array1d.buffer
        if buffer is not None:
            breakdown["array1d_buffer"] += (
                result.reads.get("array1d.buffer", 0.0) * buffer.read_energy_pj
                + result.writes.get("array1d.buffer", 0.0) * buffer.write_energy_pj
            )
        array = arch.array(result.array)
        instances = array.processing_elements if arch.energy_accounting.register_files == "one_instance" else 1
        breakdown[f"{result.array}_register_files"] += (
            result.reads.get(f"{result.array}.register_file", 0.0) * array.register_file.read_energy_pj
            + result.writes.get(f"{result.array}.register_file", 0.0) * array.register_file.write_energy_pj
        ) / instances
    return dict(breakdown)
