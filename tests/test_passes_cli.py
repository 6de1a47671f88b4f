"""The ``fusemax passes`` command: JSON contract, readable report, spill lengths, DOT output and errors."""

from __future__ import annotations

import json
import re

import pytest

from fusemax.cli import main

TWO_LIVE = """
cascade two-live
ranks F M P
input X[m,p], V[f,m,p]
output Y[f,p]
einsums:
  XF[f,m,p] = V[f,m,p] * X[m,p]
  S[p] = XF[f,m,p]
  Y[f,p] = XF[f,m,p] * X[m,p] * S[p]
"""


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys, *argv):
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    assert err == ""
    return json.loads(out)


def test_json_contract_of_one_pass(capsys):
    data = run_json(capsys, "passes", "attention-1pass")
    assert data["cascade"] == "attention-1pass"
    assert data["passes"] == {"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}
    assert data["rewrites"] == []


def test_json_levels_and_reasons(capsys):
    data = run_json(capsys, "passes", "attention-3pass")
    levels = {entry["einsum"]: entry for entry in data["ranks"]["M"]["einsums"]}
    assert levels["SN"]["level"] == 2
    assert levels["SN"]["sweeps"] is True
    assert "needs GM" in levels["SN"]["reason"]
    assert data["ranks"]["M"]["extra_passes"][0] == {"pass": 2, "einsum": "SN", "waits_for": "GM", "reduction": "GM"}
    assert data["ranks"]["M"]["tensors"]["QK"] == 2


def test_json_footprint_and_rewrites(capsys):
    data = run_json(capsys, "passes", "attention-3pass")
    footprint = data["ranks"]["M"]["footprint"]
    assert footprint["per_row_words"] == "M"
    assert footprint["total_words"] == "B*H*M*P"
    assert footprint["spill_traffic_words"] == "4*B*H*M*P"
    assert [step["passes_after"] for step in data["rewrites"]] == [2, 1]
    assert data["rewrites"][0]["extra_operations"] == {"div": "F*P - M*P"}


def test_rank_option_limits_report(capsys):
    data = run_json(capsys, "passes", "attention-1pass", "--rank", "M0")
    assert data["passes"] == {"M0": 2}
    assert data["ranks"]["M0"]["footprint"]["per_row_words"] == "M0"


def test_spill_length_on_fusemax_cloud(capsys):
    data = run_json(capsys, "passes", "attention-3pass", "--arch", "fusemax-cloud", "--model", "BERT", "--seq-len", "4K")
    spill = data["ranks"]["M"]["spill"]
    # One query row's QK fiber fits in 16 MiB of 16-bit words up to 8M keys.
    assert spill["fits_up_to"] == 8 * 1024 * 1024
    # All 64 x 12 x M rows at once: 768 * M * M words <= 8M words up to M = 104.
    assert spill["all_rows_fit_up_to"] == 104
    assert spill["per_row_bytes"] == 8192
    assert spill["spills"] is False
    assert spill["length_ranks"] == ["M", "P"]
    assert spill["spill_traffic_bytes"] == 4 * 64 * 12 * 4096 * 4096 * 2
    assert data["arch"] == {"name": "fusemax-cloud", "capacity_bytes": 16777216, "word_bits": 16}


def test_rows_and_set_change_spill_length(capsys):
    base = ["passes", "attention-3pass", "--arch", "fusemax-cloud", "--model", "BERT"]
    rows = run_json(capsys, *base, "--rows", "4")
    assert rows["ranks"]["M"]["spill"]["fits_up_to"] == 2 * 1024 * 1024
    smaller = run_json(capsys, *base, "--set", "global_buffer.capacity_bytes=8388608")
    assert smaller["ranks"]["M"]["spill"]["fits_up_to"] == 4 * 1024 * 1024


def test_spill_without_length_has_no_sizes_at_length(capsys):
    data = run_json(capsys, "passes", "attention-3pass", "--arch", "fusemax-cloud", "--model", "BERT")
    spill = data["ranks"]["M"]["spill"]
    assert spill["per_row_words"] is None
    assert spill["fits_up_to"] == 8 * 1024 * 1024


def test_two_pass_tile_from_array_rows(capsys):
    data = run_json(capsys, "passes", "attention-2pass", "--arch", "fusemax-cloud", "--shape", "B=1,H=1,E=64,F=64", "--seq-len", "4K")
    spill = data["ranks"]["M"]["spill"]
    assert spill["sizes"]["M0"] == 256
    # The SLN fiber (16 tiles of 256) and the 16 local maxima.
    assert spill["per_row_words"] == 16 * 256 + 16
    tiled = run_json(
        capsys, "passes", "attention-2pass", "--arch", "fusemax-cloud", "--shape", "B=1,H=1,E=64,F=64", "--seq-len", "4K",
        "--sizes", "M0=128",
    )
    assert tiled["ranks"]["M"]["spill"]["per_row_words"] == 32 * 128 + 32


def test_shape_with_unequal_lengths_varies_key_rank_only(capsys):
    data = run_json(capsys, "passes", "attention-3pass", "--arch", "fusemax-cloud", "--shape", "B=1,H=1,E=64,F=64,M=4096,P=1")
    assert data["ranks"]["M"]["spill"]["length_ranks"] == ["M"]


def test_norm_without_workload(capsys):
    data = run_json(capsys, "passes", "layernorm", "--arch", "fusemax-cloud")
    spill = data["ranks"]["E"]["spill"]
    assert spill["length_ranks"] == ["E"]
    assert spill["fits_up_to"] == 8 * 1024 * 1024


def test_one_pass_has_no_spill(capsys):
    data = run_json(capsys, "passes", "attention-1pass", "--arch", "fusemax-cloud", "--model", "XLM", "--seq-len", "1M")
    assert "spill" not in data["ranks"]["M"]
    assert data["ranks"]["M0"]["spill"]["fits_up_to"] is None


def test_text_report(capsys):
    status, out, err = run(capsys, "passes", "attention-3pass", "--arch", "fusemax-cloud", "--model", "BERT", "--seq-len", "4K")
    assert status == 0
    assert err == ""
    assert "attention-3pass: minimum passes over each rank, valid for every mapping" in out
    assert "  pass 2: SN, SD" in out
    assert "pass 3 is forced: A needs SD, complete only after pass 2 because SD needs the whole fiber" in out
    assert "after pass 1: QK = M" in out
    assert "fits up to M = P = 8388608; beyond that every mapping spills" in out
    assert "division deferral: 3 -> 2 passes; extra operations per batch and head: div F*P - M*P" in out


def test_text_report_single_rank(capsys):
    status, out, _ = run(capsys, "passes", "attention-1pass", "--rank", "M")
    assert status == 0
    assert "M: 1 pass(es)" in out
    assert "init BK" in out


def test_text_report_blocked_rewrite(tmp_path, capsys):
    path = tmp_path / "centered.cascade"
    path.write_text(
        "cascade centered\nranks E F M P\ninput Q[e,p], K[e,m], V[f,m]\noutput AV[f,p]\neinsums:\n"
        "  QK[m,p] = Q[e,p] * K[e,m]\n  MU[p] = QK[m,p]\n  S[m,p] = QK[m,p] - MU[p]\n  GM[p] = S[m,p] :: max(m)\n"
        "  SN[m,p] = exp(S[m,p] - GM[p])\n  SD[p] = SN[m,p]\n  SNV[f,p] = SN[m,p] * V[f,m]\n  AV[f,p] = SNV[f,p] / SD[p]\n",
        encoding="utf-8",
    )
    status, out, _ = run(capsys, "passes", str(path))
    assert status == 0
    assert "iterative construction is not possible" in out


def test_dot_file(tmp_path, capsys):
    path = tmp_path / "graph.dot"
    status, out, _ = run(capsys, "passes", "attention-3pass", "--dot", str(path))
    assert status == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith('digraph "attention-3pass" {')
    assert text.rstrip().endswith("}")
    assert '"A" [label="A\\npass 3 over M", style=filled, fillcolor="#fbb4ae"];' in text
    assert "attention-3pass: minimum passes" in out


def test_dot_edges_name_declared_nodes(capsys):
    status, out, _ = run(capsys, "passes", "attention-1pass", "--rank", "M0", "--dot", "-")
    assert status == 0
    nodes = set(re.findall(r'^  "([^"]+)" \[', out, re.MULTILINE))
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"', out, re.MULTILINE)
    assert edges
    for source, target in edges:
        assert source in nodes
        assert target in nodes
    assert '"init:RM" -> "RM" [style=dotted, label="first iterate"];' in out
    assert '"RNV" -> "AV" [style=bold, label="last iterate"];' in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dot", "-", "--json"], "--dot - and --json both print on standard output"),
        (["--rows", "0"], "--rows must be a positive integer, got 0"),
        (["--set", "global_buffer.capacity_bytes=1"], "--set needs --arch"),
        (["--arch", "fusemax-cloud", "--set", "capacity"], "--set 'capacity': expected PATH=VALUE"),
        (["--model", "BERT", "--shape", "B=1,H=1,E=1,F=1,M=1,P=1"], "give at most one of --model NAME or --shape"),
        (["--sizes", "M0"], "--sizes: invalid entry 'M0'; write RANK=SIZE, as M0=256"),
        (["--sizes", "m0=4"], "--sizes: invalid rank 'm0'; rank names start with an upper-case letter"),
        (["--sizes", "M0=big"], "--sizes M0: invalid length 'big'"),
        (["--rank", "Z"], "unknown rank 'Z'; ranks: E, F, M, P"),
        (["--model", "GPT"], "--model: unknown model 'GPT'"),
    ],
)
def test_user_errors(capsys, argv, message):
    status, out, err = run(capsys, "passes", "attention-3pass", *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1


def test_spill_length_needs_sizes(tmp_path, capsys):
    path = tmp_path / "two-live.cascade"
    path.write_text(TWO_LIVE, encoding="utf-8")
    status, out, err = run(capsys, "passes", str(path), "--arch", "fusemax-cloud", "--seq-len", "1K")
    assert status == 2
    assert "the spill length over M needs the size of rank(s) F; give --model, --shape or --sizes F=N" in err
    status, out, _ = run(capsys, "passes", str(path), "--arch", "fusemax-cloud", "--seq-len", "1K", "--sizes", "F=2", "--json")
    assert status == 0
    # One row keeps X (M words) and XF (F x M words) live: 3M words fit up to M = 8M / 3.
    assert json.loads(out)["ranks"]["M"]["spill"]["fits_up_to"] == (8 * 1024 * 1024) // 3


def test_unknown_cascade(capsys):
    status, _, err = run(capsys, "passes", "no-such-cascade")
    assert status == 2
    assert "unknown cascade 'no-such-cascade'" in err


def test_text_report_without_length(capsys):
    status, out, _ = run(capsys, "passes", "attention-3pass", "--model", "BERT")
    assert status == 0
    assert "  at B=64, H=12, E=64, F=64:" in out
    assert "the live footprint needs more rank sizes; give --seq-len, --shape or --sizes" in out
