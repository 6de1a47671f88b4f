"""GEMM mode: cycle counts against SCALE-Sim 3.0.0, overlap, fast-forward and argument errors."""

from __future__ import annotations

import pytest

from fusemax.errors import SpecError
from fusemax.sim.gemm import parse_array, parse_gemm, simulate_gemm

# Outputs of SCALE-Sim 3.0.0 (pip package scalesim==3.0.0, run with -i gemm, CALC
# bandwidth mode, large SRAMs) recorded for this project: dataflow, array rows,
# array columns, M, N, K, its "Total Cycles" (compute cycles, zero stall cycles)
# and, where recorded, its overall utilization and mapping efficiency in percent.
SCALESIM = [
    ('is', 4, 4, 4, 4, 4, 13),
    ('is', 4, 4, 8, 8, 8, 71),
    ('is', 4, 4, 10, 7, 5, 101),
    ('is', 4, 4, 3, 9, 13, 75),
    ('is', 4, 4, 16, 4, 9, 167),
    ('is', 4, 4, 1, 1, 1, 10),
    ('is', 4, 4, 7, 13, 2, 45),
    ('is', 4, 4, 12, 12, 12, 197),
    ('is', 4, 8, 4, 4, 4, 17),
    ('is', 4, 8, 8, 8, 8, 43),
    ('is', 4, 8, 10, 7, 5, 83),
    ('is', 4, 8, 3, 9, 13, 91),
    ('is', 4, 8, 16, 4, 9, 107),
    ('is', 4, 8, 1, 1, 1, 14),
    ('is', 4, 8, 7, 13, 2, 26),
    ('is', 4, 8, 12, 12, 12, 155),
    ('is', 5, 3, 4, 4, 4, 29),
    ('is', 5, 3, 8, 8, 8, 113),
    ('is', 5, 3, 10, 7, 5, 71),
    ('is', 5, 3, 3, 9, 13, 59),
    ('is', 5, 3, 16, 4, 9, 179),
    ('is', 5, 3, 1, 1, 1, 11),
    ('is', 5, 3, 7, 13, 2, 71),
    ('is', 5, 3, 12, 12, 12, 275),
    ('is', 8, 4, 4, 4, 4, 21),
    ('is', 8, 4, 8, 8, 8, 51),
    ('is', 8, 4, 10, 7, 5, 74),
    ('is', 8, 4, 3, 9, 13, 53),
    ('is', 8, 4, 16, 4, 9, 175),
    ('is', 8, 4, 1, 1, 1, 18),
    ('is', 8, 4, 7, 13, 2, 61),
    ('is', 8, 4, 12, 12, 12, 179),
    ('is', 16, 32, 300, 200, 70, 13099, 62.62405527139477, 82.03125),
    ('is', 16, 32, 128, 64, 256, 8063, 50.799950390673445, 100.0),
    ('is', 16, 32, 100, 333, 17, 3159, 35.00044515669516, 41.50390625),
    ('is', 32, 16, 300, 200, 70, 15845, 51.771063426948565, 71.95723684210526),
    ('is', 32, 16, 128, 64, 256, 9087, 45.07538241443821, 100.0),
    ('is', 32, 16, 100, 333, 17, 2876, 38.44450843184979, 47.433035714285715),
    ('is', 64, 64, 300, 200, 70, 3899, 26.298810592459606, 51.26953125),
    ('is', 64, 64, 128, 64, 256, 2031, 25.209256523879862, 100.0),
    ('is', 64, 64, 100, 333, 17, 1045, 13.22564668062201, 20.751953125),
    ('is', 256, 256, 1024, 1024, 64, 7159, 14.303673697443777, 25.0),
    ('os', 4, 4, 4, 4, 4, 9),
    ('os', 4, 4, 8, 8, 8, 55),
    ('os', 4, 4, 10, 7, 5, 65),
    ('os', 4, 4, 3, 9, 13, 56),
    ('os', 4, 4, 16, 4, 9, 59),
    ('os', 4, 4, 1, 1, 1, 6),
    ('os', 4, 4, 7, 13, 2, 63),
    ('os', 4, 4, 12, 12, 12, 161),
    ('os', 4, 8, 4, 4, 4, 13),
    ('os', 4, 8, 8, 8, 8, 35),
    ('os', 4, 8, 10, 7, 5, 44),
    ('os', 4, 8, 3, 9, 13, 45),
    ('os', 4, 8, 16, 4, 9, 75),
    ('os', 4, 8, 1, 1, 1, 10),
    ('os', 4, 8, 7, 13, 2, 47),
    ('os', 4, 8, 12, 12, 12, 131),
    ('os', 5, 3, 4, 4, 4, 19),
    ('os', 5, 3, 8, 8, 8, 83),
    ('os', 5, 3, 10, 7, 5, 65),
    ('os', 5, 3, 3, 9, 13, 56),
    ('os', 5, 3, 16, 4, 9, 119),
    ('os', 5, 3, 1, 1, 1, 6),
    ('os', 5, 3, 7, 13, 2, 79),
    ('os', 5, 3, 12, 12, 12, 215),
    ('os', 8, 4, 4, 4, 4, 13),
    ('os', 8, 4, 8, 8, 8, 35),
    ('os', 8, 4, 10, 7, 5, 59),
    ('os', 8, 4, 3, 9, 13, 68),
    ('os', 8, 4, 16, 4, 9, 37),
    ('os', 8, 4, 1, 1, 1, 10),
    ('os', 8, 4, 7, 13, 2, 47),
    ('os', 8, 4, 12, 12, 12, 131),
    ('os', 16, 32, 300, 200, 70, 15427, 53.173818629675246, 88.1109022556391),
    ('os', 16, 32, 128, 64, 256, 4831, 84.78575864210309, 100.0),
    ('os', 16, 32, 100, 333, 17, 4850, 22.797197164948454, 84.46631493506493),
    ('os', 32, 16, 300, 200, 70, 15079, 54.40098812918629, 90.14423076923077),
    ('os', 32, 16, 128, 64, 256, 4831, 84.78575864210309, 100.0),
    ('os', 32, 16, 100, 333, 17, 5291, 20.897071678321677, 77.42745535714286),
    ('os', 64, 64, 300, 200, 70, 3919, 26.16459874968104, 73.2421875),
    ('os', 64, 64, 128, 64, 256, 763, 67.10353866317169, 100.0),
    ('os', 64, 64, 100, 333, 17, 1715, 8.05877596574344, 67.7490234375),
    ('os', 128, 256, 1000, 1000, 100, 15423, 19.787057073850743, 95.367431640625),
    ('ws', 4, 4, 4, 4, 4, 13),
    ('ws', 4, 4, 8, 8, 8, 71),
    ('ws', 4, 4, 10, 7, 5, 79),
    ('ws', 4, 4, 3, 9, 13, 155),
    ('ws', 4, 4, 16, 4, 9, 77),
    ('ws', 4, 4, 1, 1, 1, 10),
    ('ws', 4, 4, 7, 13, 2, 67),
    ('ws', 4, 4, 12, 12, 12, 197),
    ('ws', 4, 8, 4, 4, 4, 17),
    ('ws', 4, 8, 8, 8, 8, 43),
    ('ws', 4, 8, 10, 7, 5, 47),
    ('ws', 4, 8, 3, 9, 13, 135),
    ('ws', 4, 8, 16, 4, 9, 89),
    ('ws', 4, 8, 1, 1, 1, 14),
    ('ws', 4, 8, 7, 13, 2, 41),
    ('ws', 4, 8, 12, 12, 12, 155),
    ('ws', 5, 3, 4, 4, 4, 29),
    ('ws', 5, 3, 8, 8, 8, 113),
    ('ws', 5, 3, 10, 7, 5, 62),
    ('ws', 5, 3, 3, 9, 13, 125),
    ('ws', 5, 3, 16, 4, 9, 107),
    ('ws', 5, 3, 1, 1, 1, 11),
    ('ws', 5, 3, 7, 13, 2, 89),
    ('ws', 5, 3, 12, 12, 12, 275),
    ('ws', 8, 4, 4, 4, 4, 21),
    ('ws', 8, 4, 8, 8, 8, 51),
    ('ws', 8, 4, 10, 7, 5, 55),
    ('ws', 8, 4, 3, 9, 13, 125),
    ('ws', 8, 4, 16, 4, 9, 67),
    ('ws', 8, 4, 1, 1, 1, 18),
    ('ws', 8, 4, 7, 13, 2, 99),
    ('ws', 8, 4, 12, 12, 12, 179),
    ('ws', 16, 32, 300, 200, 70, 12669, 64.74958560265215, 78.125),
    ('ws', 16, 32, 128, 64, 256, 6079, 67.37950320776443, 100.0),
    ('ws', 16, 32, 100, 333, 17, 3563, 31.03182886612405, 50.25745738636363),
    ('ws', 32, 16, 300, 200, 70, 14741, 55.64836171223119, 70.11217948717949),
    ('ws', 32, 16, 128, 64, 256, 6591, 62.14534971931422, 100.0),
    ('ws', 32, 16, 100, 333, 17, 3737, 29.58694306930693, 52.65066964285714),
    ('ws', 64, 64, 300, 200, 70, 3919, 26.16459874968104, 42.724609375),
    ('ws', 64, 64, 128, 64, 256, 1271, 40.28324154209284, 100.0),
    ('ws', 64, 64, 100, 333, 17, 1739, 7.947556515957447, 23.03466796875),
    ('ws', 256, 256, 1024, 1024, 64, 7159, 14.303673697443777, 25.0),
]


@pytest.mark.parametrize("case", SCALESIM, ids=lambda c: "-".join(map(str, c[:6])))
def test_no_overlap_matches_scalesim(case):
    dataflow, rows, cols, M, N, K, cycles = case[:7]
    result = simulate_gemm(M, N, K, rows, cols, dataflow, overlap=False)
    assert result.cycles == cycles
    assert result.macs == M * N * K
    if len(case) > 7:
        assert result.utilization * 100 == pytest.approx(case[7], rel=1e-9)
        assert result.mapping_efficiency * 100 == pytest.approx(case[8], rel=1e-9)


def test_scalesim_headline_number():
    assert simulate_gemm(1024, 1024, 64, 256, 256, "os", overlap=False).cycles == 9183


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("case", SCALESIM[::3], ids=lambda c: "-".join(map(str, c[:6])))
def test_fast_forward_equals_every_cycle(case, overlap):
    dataflow, rows, cols, M, N, K = case[:6]
    fast = simulate_gemm(M, N, K, rows, cols, dataflow, overlap=overlap)
    slow = simulate_gemm(M, N, K, rows, cols, dataflow, overlap=overlap, fast_forward=False)
    assert slow.fast_forward_folds == 0
    assert (fast.cycles, fast.macs, fast.active_cycles) == (slow.cycles, slow.macs, slow.active_cycles)


def test_fast_forward_skips_folds():
    result = simulate_gemm(4096, 4096, 64, 256, 256, "os")
    assert result.fast_forward_folds > 200
    assert result.macs == 4096 * 4096 * 64


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_overlap_is_never_slower(dataflow):
    for M, N, K in [(1024, 1024, 64), (300, 200, 70), (5, 700, 3)]:
        back_to_back = simulate_gemm(M, N, K, 64, 32, dataflow, overlap=False)
        overlapped = simulate_gemm(M, N, K, 64, 32, dataflow, overlap=True)
        assert overlapped.cycles <= back_to_back.cycles
        assert overlapped.macs == back_to_back.macs


def test_overlap_closed_form():
    # Output stationary: folds stream back to back, plus one skew across the array.
    assert simulate_gemm(1024, 1024, 64, 256, 256, "os").cycles == 16 * 64 + 256 + 256 - 2 - 1
    # Weight stationary with T < rows: the next preload (rows cycles) paces the folds.
    assert simulate_gemm(64, 1024, 1024, 256, 256, "ws").cycles == 256 + 15 * 256 + 64 + 256 + 256 - 2 - 1


def test_single_fold_single_pe():
    result = simulate_gemm(1, 1, 1, 1, 1, "os", overlap=False)
    assert (result.cycles, result.macs, result.folds) == (0, 1, 1)


def test_huge_gemm_counts_are_exact():
    # 2^20 x 2^20 x 2^14 MACs is past float64's exact integers (2^53).
    M = N = 1 << 20
    K = 1 << 14
    result = simulate_gemm(M, N, K, 256, 256, "os")
    assert result.macs == M * N * K
    assert isinstance(result.macs, int)
    assert int(float(M * N * K + 1)) != M * N * K + 1
    assert result.cycles == (M // 256) * (N // 256) * K + 510 - 1


def test_parse_gemm():
    assert parse_gemm(" M=4, N=5 ,K=6") == (4, 5, 6)


@pytest.mark.parametrize(
    "text, message",
    [
        ("M=4,N=5", "missing K"),
        ("M=4,N=5,K=0", "invalid K=0; sizes must be positive integers"),
        ("M=4,N=5,K=x", "invalid entry 'K=x'"),
        ("M=4,N=5,K=6,Q=1", "invalid entry 'Q=1'"),
    ],
)
def test_parse_gemm_errors(text, message):
    with pytest.raises(SpecError, match=message):
        parse_gemm(text)


@pytest.mark.parametrize("text", ["256", "0x4", "4x", "axb", "4x-4"])
def test_parse_array_errors(text):
    with pytest.raises(SpecError, match="--array: invalid array size"):
        parse_array(text)


def test_unknown_dataflow():
    with pytest.raises(SpecError, match="--dataflow: unknown dataflow 'rs'; dataflows: os, ws, is"):
        simulate_gemm(4, 4, 4, 4, 4, "rs")
