"""Cycle-level pipeline simulator: agreement with the analytical model, fast-forward, exact counts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fusemax.arch import load_architecture
from fusemax.errors import SpecError
from fusemax.mapping import load_mapping
from fusemax.sim import layout as lay
from fusemax.sim.lags import Dependency, Position, solve_lags
from fusemax.sim.simulator import simulate
from fusemax.workloads import MODELS, PAPER_LENGTHS, model_workload, parse_length, parse_shape


def run(mapping_name, workload, arch_name="fusemax-cloud", overrides=(), **options):
    arch = load_architecture(arch_name, list(overrides))
    mapping, row = load_mapping(mapping_name, [], workload.model, workload.length_label)
    return simulate(arch, mapping, workload, row, **options)


def counts(result):
    return (
        result.cycles,
        result.busy_cycles,
        result.stall_cycles_by_unit,
        result.points,
        result.buffer_peak_bytes,
        result.traffic_bytes,
        [phase.cycles for phase in result.phases],
    )


@pytest.mark.parametrize("length", PAPER_LENGTHS)
@pytest.mark.parametrize("model", MODELS)
def test_binding_paper_points_within_two_percent(model, length):
    result = run("fusemax-binding", model_workload(model, parse_length(length)))
    assert abs(result.relative_difference) < 0.02
    # Fill and drain only add cycles; the 1D array, the bottleneck, is busy exactly as long as in the model.
    assert result.cycles >= result.analytical_cycles
    one_d = sum(r.compute_cycles for r in result.evaluation.per_einsum.values() if r.array == "array1d")
    assert result.busy_cycles["array1d"] == one_d
    assert result.stall_cycles["buffer_full"] == 0


def test_counts_exact_at_one_million_tokens():
    result = run("fusemax-binding", model_workload("BERT", parse_length("1M")))
    evaluation = result.evaluation
    for name, einsum in evaluation.per_einsum.items():
        assert result.points[name] == einsum.points
        assert isinstance(result.points[name], int)
    for array in ("array2d", "array1d"):
        expected = sum(r.compute_cycles for r in evaluation.per_einsum.values() if r.array == array)
        assert result.busy_cycles[array] == expected
    # B*H*M*P*E is past float64's exact integers, so a float on the way would show.
    bqk = result.points["BQK"]
    assert bqk == 64 * 12 * (1 << 20) * (1 << 20) * 64
    assert bqk > 2**53
    assert int(float(bqk + 1)) != bqk + 1
    assert result.points["BQK"] + 1 == evaluation.per_einsum["BQK"].points + 1
    assert result.traffic_bytes == evaluation.traffic_bytes
    assert result.cycles > 2**40


def test_traffic_equals_analytical_model():
    for mapping in ("fusemax-binding", "fusemax-arch", "unfused"):
        result = run(mapping, parse_shape("B=2,H=3,E=64,F=64", 4096))
        assert result.traffic_bytes == result.evaluation.traffic_bytes


def test_flat_traffic_and_latency():
    result = run("flat", model_workload("BERT", parse_length("16K")), arch_name="flat-cloud")
    assert abs(result.relative_difference) < 0.01
    assert result.traffic_bytes == pytest.approx(result.evaluation.traffic_bytes, rel=1e-6)


@pytest.mark.slow
def test_flat_memory_bound_point():
    result = run("flat", model_workload("BERT", parse_length("256K")), arch_name="flat-cloud")
    assert abs(result.relative_difference) < 0.01
    assert result.stall_cycles["dram"] > 0


FAST_FORWARD_CASES = [
    ("fusemax-binding", "B=1,H=2,E=64,F=64", 4096),
    ("fusemax-binding", "B=7,H=1,E=64,F=64", 8192),
    ("fusemax-binding", "B=2,H=3,E=128,F=64", 3000),
    ("fusemax-arch", "B=3,H=5,E=64,F=64", 2048),
    ("fusemax-cascade", "B=2,H=3,E=64,F=64", 2048),
    ("unfused", "B=2,H=3,E=128,F=64", 3000),
    ("unfused", "B=1,H=1,E=64,F=128", 1000),
]


@pytest.mark.parametrize("mapping, shape, length", FAST_FORWARD_CASES)
def test_fast_forward_equals_every_cycle(mapping, shape, length):
    workload = parse_shape(shape, length)
    fast = run(mapping, workload)
    events = run(mapping, workload, fast_forward=False)
    stepped = run(mapping, workload, fast_forward=False, every_cycle=True)
    assert counts(fast) == counts(events)
    assert counts(events) == counts(stepped)


def test_fast_forward_skips_most_blocks():
    result = run("fusemax-binding", parse_shape("B=7,H=1,E=64,F=64", 8192))
    phase = result.phases[0]
    assert phase.skipped_rounds > phase.plan.blocks // 2


@pytest.mark.parametrize("model, length", [("BERT", "1K"), ("XLM", "4K")])
def test_flat_fast_forward_equals_stepping(model, length):
    workload = model_workload(model, parse_length(length))
    fast = run("flat", workload, arch_name="flat-cloud")
    events = run("flat", workload, arch_name="flat-cloud", fast_forward=False)
    assert counts(fast) == counts(events)


def test_state_memory_independent_of_length():
    from einsum_cascades.library import resolve_cascade
    from fusemax.model.evaluate import evaluate
    from fusemax.sim.program import plan_phases

    arch = load_architecture("fusemax-cloud")
    mapping, row = load_mapping("fusemax-binding")
    sizes = []
    for length in ("256K", "1M"):
        evaluation = evaluate(arch, mapping, model_workload("BERT", parse_length(length)), row)
        plan = plan_phases(evaluation, resolve_cascade(mapping.cascade), row)[0]
        sizes.append((plan.program.size, lay.new_state(plan.program, 0).size))
    assert sizes[0] == sizes[1]
    assert sizes[1][1] * 8 < 2**20  # the whole state is under a mebibyte


def test_one_tile_at_a_time_shows_exposed_transfers():
    workload = model_workload("BERT", parse_length("4K"))
    pipelined = run("fusemax-binding", workload)
    one_tile = run("fusemax-arch", workload)
    assert one_tile.cycles > 2 * pipelined.cycles
    assert one_tile.stall_cycles["dependency"] > 10 * pipelined.stall_cycles["dependency"]
    # Only the Einsums listed before their producers in the schedule work on the previous tile.
    assert {name for name, lag in one_tile.phases[0].plan.lags.items() if lag} == {"RD", "AV"}
    assert pipelined.phases[0].plan.lags["SLN"] >= 2


def test_unfused_runs_phases_back_to_back():
    result = run("unfused", parse_shape("B=2,H=3,E=64,F=64", 4096))
    assert [phase.name for phase in result.phases] == ["qk", "softmax", "av"]
    assert result.cycles == sum(phase.cycles for phase in result.phases)


def test_dram_latency_only_moves_fill_and_drain():
    workload = model_workload("BERT", parse_length("16K"))
    base = run("fusemax-binding", workload)
    slow = run("fusemax-binding", workload, overrides=[("simulation.dram_latency_cycles", "1000")])
    assert 0 < slow.cycles - base.cycles < 2000


def test_low_dram_bandwidth_gives_dram_stalls():
    workload = parse_shape("B=1,H=4,E=64,F=64", 4096)
    result = run("fusemax-binding", workload, overrides=[("dram.bandwidth_bytes_per_s", "4294967296")])
    assert result.stall_cycles["dram"] > 0.5 * result.cycles


def test_few_buffer_ports_stretch_blocks():
    workload = parse_shape("B=1,H=4,E=64,F=64", 4096)
    result = run("fusemax-binding", workload, overrides=[("simulation.global_buffer_ports", "1")])
    assert result.stall_cycles["buffer_port"] > 0


def test_one_bank_serves_one_port():
    workload = parse_shape("B=1,H=4,E=64,F=64", 4096)
    result = run("fusemax-binding", workload, overrides=[("global_buffer.banks", "1")])
    assert result.stall_cycles["buffer_port"] > 0


def test_full_buffer_blocks_prefetch():
    workload = parse_shape("B=1,H=4,E=64,F=64", 4096)
    roomy = run("fusemax-binding", workload)
    need = roomy.evaluation.buffer_bytes
    tight = run("fusemax-binding", workload, overrides=[("global_buffer.capacity_bytes", str(need))])
    assert tight.stall_cycles["buffer_full"] > 0
    assert tight.buffer_peak_bytes <= need
    assert roomy.buffer_peak_bytes > need


def test_buffer_peak_within_capacity():
    result = run("fusemax-binding", model_workload("XLM", parse_length("64K")))
    assert result.evaluation.buffer_bytes <= result.buffer_peak_bytes <= 16 * 2**20


def test_trace_is_bounded_and_starts_at_block_zero():
    result = run("fusemax-binding", model_workload("BERT", parse_length("1K")), trace_limit=500)
    assert len(result.trace) == 500
    assert result.trace_truncated
    first = result.trace[0]
    assert (first.einsum, first.unit, first.block) == ("BQK", "array2d", 0)
    for event in result.trace:
        assert event.end_cycle > event.start_cycle
    bqk = [event.block for event in result.trace if event.einsum == "BQK"]
    assert bqk == list(range(len(bqk)))


def test_trace_covers_small_run():
    result = run("fusemax-binding", parse_shape("B=1,H=1,E=64,F=64", 1024), trace_limit=10_000)
    assert not result.trace_truncated
    assert len(result.trace) == sum(result.phases[0].tasks.values())
    assert max(event.end_cycle for event in result.trace) <= result.cycles


def test_partial_tiles_count_exact_points():
    result = run("fusemax-binding", parse_shape("B=2,H=3,E=64,F=64,M=1000,P=3000", None))
    for name, einsum in result.evaluation.per_einsum.items():
        assert result.points[name] == einsum.points


def test_to_json_contract():
    data = run("fusemax-binding", model_workload("T5", parse_length("1K"))).to_json()
    for key in ("cycles", "latency_s", "utilization", "stall_cycles", "buffer_peak_bytes", "analytical_cycles", "relative_difference"):
        assert key in data
    assert set(data["stall_cycles"]) == {"dependency", "dram", "buffer_full", "buffer_port"}
    assert set(data["utilization"]) == {"array2d", "array1d"}


def test_solve_lags_rejects_a_same_block_cycle():
    dependencies = [
        Dependency("A", "B", "A", 0, -1, 0, 0, "registers"),
        Dependency("B", "A", "B", 0, -1, 0, 0, "registers"),
    ]
    positions = {"A": Position(0, 1), "B": Position(1, 2)}
    with pytest.raises(SpecError, match="mapping.yaml: the schedule cannot run"):
        solve_lags(["A", "B"], dependencies, positions, 2.0, True, "mapping.yaml")


def test_loop_order_mismatch_is_rejected(tmp_path):
    path = tmp_path / "order.yaml"
    path.write_text(
        "name: order-mismatch\nextends: fusemax-binding\n"
        "einsums:\n  RM: {array: array1d, keep: {LM: []}, loops: {dram: [B, H, M1, P2]}}\n"
    )
    arch = load_architecture("fusemax-cloud")
    mapping, row = load_mapping(str(path))
    with pytest.raises(SpecError, match="Einsum RM orders its DRAM loops B, H, M1, P2 unlike the other Einsums"):
        simulate(arch, mapping, model_workload("BERT", parse_length("64K")), row)


LACKING_CASCADE = """\
cascade lackdemo
ranks M P
partition M = M1 x M0
input A[m,p]
output C[m1,m0,p]
iterate m1 until m1 >= M1

init:
  BA[m1,m0,p] = A[m1*M0+m0, p]
  R[m1:m1=0, p] = 0

einsums:
  S[m1,p] = BA[m1,m0,p]
  R[m1+1,p] = R[m1,p] + S[m1,p]
  T[p] = R[M1,p]
  C[m1,m0,p] = BA[m1,m0,p] * T[p]
"""

LACKING_MAPPING = """\
name: lackdemo
cascade: {cascade}
partition_sizes: {{M0: arrays.array2d.rows}}
tiling:
  P: {{factors: [P1, P0], sizes: {{P0: arrays.array2d.cols}}}}
loops: {{dram: [M1], global_buffer: [P1]}}
spatial: {{array2d: {{rows: M0, cols: P0}}, array1d: {{lanes: P0}}}}
keep: {{BA: [dram, global_buffer], C: [dram]}}
einsums: {{S: {{array: array2d}}, R: {{array: array1d}}, T: {{array: array1d}}, C: {{array: array2d}}}}
schedule:
  - {{array2d: [S, C], array1d: [R, T]}}
"""


def test_lacking_producer_is_rejected(tmp_path):
    cascade = tmp_path / "lack.cascade"
    cascade.write_text(LACKING_CASCADE)
    path = tmp_path / "lack.yaml"
    path.write_text(LACKING_MAPPING.format(cascade=cascade))
    from fusemax.workloads import parse_sizes

    arch = load_architecture("fusemax-cloud")
    mapping, row = load_mapping(str(path))
    with pytest.raises(SpecError, match="Einsum C runs at every M1 iteration but reads T, which T writes once per M1 loop"):
        simulate(arch, mapping, parse_sizes("M=1024,P=512"), row)


def test_deadlock_is_reported(monkeypatch):
    import fusemax.sim.simulator as module

    real = module.plan_phases

    def broken(*args, **kwargs):
        plans = real(*args, **kwargs)
        plan = plans[0]
        program = plan.program
        # Make LM run five tiles late: SLN then waits for an RM that waits for LM,
        # which the 2D array only reaches after SLN.
        e = plan.einsums.index("LM")
        program[program[lay.EINSUM_TABLE] + e * lay.EINSUM_COLUMNS + lay.E_LAG] = 5
        program[lay.LAST_ROUND] += 5
        return plans

    monkeypatch.setattr(module, "plan_phases", broken)
    with pytest.raises(SpecError, match="the simulated schedule of phase main deadlocks .*array2d waits to run SLN"):
        run("fusemax-binding", parse_shape("B=1,H=1,E=64,F=64", 2048))


def test_layout_header_round_trip():
    program = lay.pack_program({lay.EINSUMS: 2}, {lay.EINSUM_TABLE: np.arange(6).reshape(2, 3)})
    assert program[lay.EINSUMS] == 2
    start = program[lay.EINSUM_TABLE]
    assert list(program[start : start + 6]) == list(range(6))
