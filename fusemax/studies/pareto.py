"""The FuseMax paper's area-latency Pareto study at 256K tokens.

FuseMax with square PE arrays from 16 x 16 to 512 x 512: the global buffer
gets one row per PE_dim words and is sized for the minimum number of query
tiles the pipelined binding needs, doubled while the run is memory bound
(the sizing procedure of the FuseMax artifact's sweep); register files are
sized for that tile count.
"""

from __future__ import annotations

from fusemax.arch import load_architecture
from fusemax.mapping import load_mapping
from fusemax.model.area import array2d_area_um2, total_area_um2
from fusemax.model.evaluate import Evaluation, evaluate
from fusemax.workloads import MODELS, model_workload

PE_DIMS = (16, 32, 64, 128, 256, 512)
SEQ_LEN = 256 * 1024
COLUMNS = ["accel", "model", "PE_dim", "traffic", "mem_lat", "comp_2d_lat", "comp_1d_lat", "latency", "array_2d_area", "area"]


def sized_point(model: str, pe_dim: int, variant: str = "paper") -> tuple[Evaluation, float, float]:
    """Evaluate FuseMax with a PE_dim x PE_dim array and a buffer sized as the sweep sizes it.

    Returns the evaluation, the 2D array's area and the total area (square micrometres).
    """
    workload = model_workload(model, SEQ_LEN)
    min_tiles = 2 * max(1, pe_dim // workload.E)
    query_tiles = SEQ_LEN // pe_dim
    min_p1 = max(1, min_tiles // query_tiles)
    multiplier = 1
    mapping, row = load_mapping("fusemax-binding", variant=variant)
    while True:
        capacity = pe_dim * min_p1 * workload.E * 8 * 2 * multiplier
        overrides = [
            ("arrays.array2d.rows", str(pe_dim)),
            ("arrays.array2d.cols", str(pe_dim)),
            ("arrays.array1d.lanes", str(pe_dim)),
            ("global_buffer.capacity_bytes", str(capacity)),
            ("global_buffer.row_bits", str(pe_dim * 16)),
            ("arrays.array2d.register_file.depth_words", str(2 * min_tiles)),
            ("arrays.array1d.register_file.depth_words", str(8 * min_tiles)),
        ]
        arch = load_architecture("fusemax-cloud", overrides, variant)
        result = evaluate(arch, mapping, workload, row)
        if result.memory_s <= result.array_compute_s("array1d"):
            return result, array2d_area_um2(arch), total_area_um2(arch)
        multiplier *= 2


def run_pareto(variant: str = "paper") -> list[dict[str, object]]:
    """Rows of ``pareto.csv``: latency components (seconds) and areas (square micrometres)."""
    rows = []
    for model in MODELS:
        for pe_dim in PE_DIMS:
            result, array_area, area = sized_point(model, pe_dim, variant)
            rows.append(
                {
                    "accel": "proposal",
                    "model": model,
                    "PE_dim": pe_dim,
                    "traffic": result.traffic_bytes,
                    "mem_lat": result.memory_s,
                    "comp_2d_lat": result.array_compute_s("array2d"),
                    "comp_1d_lat": result.array_compute_s("array1d"),
                    "latency": result.latency_s,
                    "array_2d_area": array_area,
                    "area": area,
                }
            )
    return rows
