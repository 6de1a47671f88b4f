"""``fusemax simulate``: JSON contract, text report, trace file, GEMM mode and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest

from fusemax.cli import main


def run_cli(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_simulate_json_contract(capsys):
    status, out, err = run_cli(
        capsys, "simulate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "4K", "--json"
    )
    assert status == 0
    assert err == ""
    data = json.loads(out)
    for key in ("cycles", "latency_s", "utilization", "stall_cycles", "buffer_peak_bytes", "analytical_cycles", "relative_difference"):
        assert key in data
    assert isinstance(data["cycles"], int)
    assert abs(data["relative_difference"]) < 0.02
    assert data["trace_file"] is None


def test_simulate_text_report(capsys):
    status, out, _ = run_cli(
        capsys, "simulate", "--arch", "fusemax-cloud", "--mapping", "fusemax-arch", "--shape", "B=1,H=2,E=64,F=64", "--seq-len", "2K"
    )
    assert status == 0
    assert "simulated" in out
    assert "dependency" in out
    assert "phase main" in out


def test_simulate_set_overrides_simulation_parameters(capsys):
    argv = ["simulate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--shape", "B=1,H=2,E=64,F=64", "--seq-len", "4K", "--json"]
    _, base, _ = run_cli(capsys, *argv)
    _, slow, _ = run_cli(capsys, *argv, "--set", "simulation.dram_latency_cycles=900")
    assert json.loads(slow)["cycles"] > json.loads(base)["cycles"]


def test_simulate_writes_trace(tmp_path, capsys):
    trace = tmp_path / "trace.csv"
    status, out, _ = run_cli(
        capsys, "simulate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "T5", "--seq-len", "1K",
        "--trace", str(trace), "--trace-limit", "300", "--json",
    )
    assert status == 0
    assert json.loads(out)["trace_events"] == 300
    with trace.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300
    assert list(rows[0]) == ["phase", "einsum", "unit", "block", "start_cycle", "end_cycle"]
    assert rows[0]["einsum"] == "BQK"


def test_simulate_flat_by_model(capsys):
    status, out, _ = run_cli(capsys, "simulate", "--arch", "flat-cloud", "--mapping", "flat", "--model", "XLM", "--seq-len", "1K", "--json")
    assert status == 0
    assert abs(json.loads(out)["relative_difference"]) < 0.01


def test_gemm_json_matches_scalesim(capsys):
    status, out, _ = run_cli(
        capsys, "simulate", "--gemm", "M=1024,N=1024,K=64", "--array", "256x256", "--dataflow", "os", "--no-overlap", "--json"
    )
    assert status == 0
    data = json.loads(out)
    assert data["cycles"] == 9183
    assert data["overlap"] is False
    assert data["macs"] == 1024 * 1024 * 64


def test_gemm_text_report(capsys):
    status, out, _ = run_cli(capsys, "simulate", "--gemm", "M=100,N=333,K=17", "--array", "32x16", "--dataflow", "ws")
    assert status == 0
    assert "double-buffered folds" in out
    assert "cycles" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--gemm", "M=4,N=4,K=4", "--dataflow", "os"], "--gemm needs --array"),
        (["--gemm", "M=4,N=4,K=4", "--array", "4x4"], "--gemm needs --dataflow"),
        (["--gemm", "M=4,N=4", "--array", "4x4", "--dataflow", "os"], "--gemm: missing K"),
        (["--gemm", "M=4,N=4,K=4", "--array", "4", "--dataflow", "os"], "--array: invalid array size '4'"),
        (["--gemm", "M=4,N=4,K=4", "--array", "4x4", "--dataflow", "os", "--arch", "fusemax-cloud"], "drop --arch"),
        (["--arch", "fusemax-cloud", "--model", "BERT", "--seq-len", "1K"], "missing --mapping"),
        (["--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K"], "missing --arch"),
        (["--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K", "--array", "4x4"], "--array belongs to GEMM mode"),
        (["--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K", "--no-overlap"], "--no-overlap belongs to GEMM mode"),
        (["--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K", "--trace-limit", "0"], "--trace-limit must be a positive integer"),
        (["--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT"], "--model needs --seq-len"),
        (["--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K", "--set", "simulation.hop_latency_cycles=-1"], "simulation.hop_latency_cycles"),
    ],
)
def test_simulate_errors_are_one_line(capsys, argv, message):
    status, out, err = run_cli(capsys, "simulate", *argv)
    assert status == 2
    assert out == ""
    assert message in err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_unknown_dataflow_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--gemm", "M=4,N=4,K=4", "--array", "4x4", "--dataflow", "rs"])
    assert info.value.code == 2
    assert "invalid choice: 'rs'" in capsys.readouterr().err


def test_unwritable_trace_file(tmp_path, capsys):
    target = tmp_path / "missing" / "trace.csv"
    status, _, err = run_cli(
        capsys, "simulate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--shape", "B=1,H=1,E=64,F=64",
        "--seq-len", "1K", "--trace", str(target),
    )
    assert status == 2
    assert f"--trace {target}: cannot write the trace" in err
