"""The FuseMax mapping off the paper's grid: other arrays, buffers, bandwidths, shapes and partial tiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusemax.arch import load_architecture
from fusemax.errors import SpecError
from fusemax.mapping import load_mapping
from fusemax.model.evaluate import evaluate
from fusemax.workloads import Workload


def run(shape: dict[str, int], arch_overrides=(), mapping_overrides=()):
    arch = load_architecture("fusemax-cloud", list(arch_overrides))
    mapping, row = load_mapping("fusemax-binding", list(mapping_overrides))
    return evaluate(arch, mapping, Workload(**shape), row)


def oracle_traffic_bytes(B, H, E, F, M, P, P2):
    """Q and AV once, K and V once per query super-tile (2-byte words)."""
    return 2 * (B * H * P * E + B * H * P * F + P2 * (B * H * M * E + B * H * M * F))


def oracle_p1(E, F, P, pe, capacity):
    """Largest divisor of the query tile count whose Q, RM, RD, RNV rows plus one K and one V tile fit."""
    tiles = math.ceil(P / pe)
    available = capacity - 2 * pe * E - 2 * pe * F
    best = min(available // (2 * (E + 1 + 1 + F) * pe), tiles)
    return max(d for d in range(1, tiles + 1) if tiles % d == 0 and d <= best)


@settings(max_examples=60, deadline=None)
@given(
    B=st.integers(1, 4),
    H=st.integers(1, 4),
    E=st.sampled_from([32, 64, 128]),
    tiles_m=st.integers(1, 40),
    tiles_p=st.integers(1, 40),
    pe=st.sampled_from([16, 64, 256]),
)
def test_full_tiles_match_closed_form(B, H, E, tiles_m, tiles_p, pe):
    F = E
    M, P = tiles_m * pe, tiles_p * pe
    overrides = [("arrays.array2d.rows", str(pe)), ("arrays.array2d.cols", str(pe)), ("arrays.array1d.lanes", str(pe))]
    result = run(dict(B=B, H=H, E=E, F=F, M=M, P=P), overrides)
    units = B * H * M * P / (pe * pe)
    compute_cycles = units * (max(E + 1, 1 + F + pe * F / M) + 1 + 8 + F)
    assert result.compute_cycles == pytest.approx(compute_cycles, rel=1e-12)
    p1 = oracle_p1(E, F, P, pe, 16 * 2**20)
    assert result.factors.size["P1"] == p1
    p2 = tiles_p // p1
    assert result.traffic_bytes == oracle_traffic_bytes(B, H, E, F, M, P, p2)


def test_partial_tiles_are_charged_exactly():
    result = run(dict(B=2, H=3, E=64, F=64, M=1000, P=1300))
    # 4 key tiles (the last has 232 keys) and 6 query tiles (the last has 20 queries).
    assert result.factors.size["M1"] == 4
    tiles = 6
    assert tiles % result.factors.size["P1"] == 0
    p2 = tiles // result.factors.size["P1"]
    assert result.traffic_bytes == oracle_traffic_bytes(2, 3, 64, 64, 1000, 1300, p2)
    # Multiply-accumulates of BQK count only existing keys and queries.
    assert result.per_einsum["BQK"].points == 2 * 3 * 1000 * 1300 * 64
    # A partial tile still occupies the whole array for a tile's time.
    assert result.per_einsum["BQK"].compute_cycles == 2 * 3 * 4 * tiles * 64
    assert result.utilization["array2d"] < 1


def test_p1_is_a_divisor_of_the_query_tiles():
    # 12 query tiles; with 1 MiB only some fit, and P1 must divide 12.
    result = run(dict(B=1, H=1, E=64, F=64, M=3072, P=3072), [("global_buffer.capacity_bytes", str(2**20 // 4))])
    p1 = result.factors.size["P1"]
    assert 12 % p1 == 0
    assert p1 == oracle_p1(64, 64, 3072, 256, 2**20 // 4)


def test_larger_array_changes_tiling():
    small = run(dict(B=1, H=1, E=64, F=64, M=4096, P=4096))
    large = run(dict(B=1, H=1, E=64, F=64, M=4096, P=4096), [("arrays.array2d.rows", "512"), ("arrays.array2d.cols", "512"), ("arrays.array1d.lanes", "512")])
    assert large.factors.size["M0"] == 512
    assert large.factors.size["P0"] == 512
    assert large.compute_cycles < small.compute_cycles


def test_lower_bandwidth_makes_it_memory_bound():
    result = run(dict(B=1, H=1, E=64, F=64, M=65536, P=65536), [("dram.bandwidth_bytes_per_s", "1e8")])
    assert result.latency_s == pytest.approx(result.memory_s)
    assert result.memory_s > result.compute_s


def test_head_dimension_from_shape():
    result = run(dict(B=1, H=1, E=128, F=128, M=4096, P=4096))
    assert result.per_einsum["BQK"].actions["mac"] == 4096 * 4096 * 128


def test_buffer_too_small_is_a_clear_error():
    with pytest.raises(SpecError, match=r"global_buffer.capacity_bytes: 4096 bytes is too small for one tile"):
        run(dict(B=1, H=1, E=64, F=64, M=1024, P=1024), [("global_buffer.capacity_bytes", "4096")])


def test_sequence_shorter_than_the_array():
    result = run(dict(B=1, H=1, E=64, F=64, M=100, P=37))
    assert result.factors.size["M1"] == 1
    assert result.traffic_bytes == oracle_traffic_bytes(1, 1, 64, 64, 100, 37, 1)


def test_no_int_overflow_at_one_million_tokens():
    result = run(dict(B=64, H=16, E=128, F=128, M=2**20, P=2**20))
    assert result.per_einsum["BQK"].actions["mac"] == 64 * 16 * 2**40 * 128
    assert isinstance(result.per_einsum["BQK"].actions["mac"], int)
