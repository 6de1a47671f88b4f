"""Area of a spatial architecture from per-component areas in its spec.

Each processing element has a register file and the functional units its
array's operators charge; the 2D array adds a network per column, and the
global buffer's area comes from the spec's table (or a power-law fit to it).
"""

from __future__ import annotations

import math

import numpy as np

from fusemax.arch import Architecture
from fusemax.errors import SpecError


def register_file_area_um2(arch: Architecture, depth_words: int) -> float:
    """Area of one register file of ``depth_words`` words, in square micrometres."""
    model = _area_model(arch)
    address_bits = math.ceil(math.log2(depth_words)) if depth_words > 1 else 0
    return model.register_file_base_um2 + model.register_file_per_address_bit_um2 * address_bits


def processing_element_units_um2(arch: Architecture, array: str) -> float:
    """Area of the functional units of one processing element of ``array``."""
    units: set[str] = set()
    for cost in arch.array(array).operators.values():
        units.update(cost.actions)
    total = 0.0
    for name in sorted(units):
        unit = arch.units[name]
        if unit.area_included_in is None:
            total += unit.area_um2
    return total


def global_buffer_area_um2(arch: Architecture) -> float:
    """Area of the global buffer: a table entry for its row width and rows, else a power-law fit."""
    model = _area_model(arch)
    row_bits = arch.global_buffer.row_bits
    rows = arch.global_buffer.capacity_bytes * 8 // row_bits
    for entry in model.global_buffer_table:
        if entry.row_bits == row_bits and entry.rows == rows:
            return entry.area_um2
    # NOTE: sizes missing from the table are extrapolated by a power law; no CACTI run checks them.
    if len(model.global_buffer_table) < 2:
        raise SpecError(f"{arch.source}: area.global_buffer_table needs an entry for {row_bits}-bit x {rows} rows")
    bits = np.log([e.row_bits * e.rows for e in model.global_buffer_table])
    areas = np.log([e.area_um2 for e in model.global_buffer_table])
    slope, intercept = np.polyfit(bits, areas, 1)
    return float(np.exp(intercept + slope * math.log(row_bits * rows)))


def array2d_area_um2(arch: Architecture) -> float:
    """Area of the 2D array: its processing elements and its per-column network."""
    array = arch.arrays.array2d
    per_element = register_file_area_um2(arch, array.register_file.depth_words) + processing_element_units_um2(arch, "array2d")
    return array.cols * _area_model(arch).network_um2_per_array_line + array.rows * array.cols * per_element


def total_area_um2(arch: Architecture) -> float:
    """Area of the whole accelerator in square micrometres (DRAM excluded).

    Examples
    --------
    >>> from fusemax.arch import load_architecture
    >>> arch = load_architecture("fusemax-cloud", [("global_buffer.capacity_bytes", "16384"), ("global_buffer.row_bits", "256")])
    >>> round(global_buffer_area_um2(arch), 1)
    53846.2
    """
    array = arch.arrays.array1d
    per_lane = register_file_area_um2(arch, array.register_file.depth_words) + processing_element_units_um2(arch, "array1d")
    return array2d_area_um2(arch) + global_buffer_area_um2(arch) + _area_model(arch).fixed_um2 + array.lanes * per_lane


def _area_model(arch: Architecture):
    if arch.area is None:
        raise SpecError(f"{arch.source}: the spec has no 'area' section, so its area cannot be computed")
    return arch.area
