"""The command line: JSON contract, reproduce outputs, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusemax.cli import main

REFERENCE = Path(__file__).parent / "reference"


def run_cli(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_evaluate_json_has_contract_keys(capsys):
    status, out, err = run_cli(
        capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K", "--json"
    )
    assert status == 0
    assert err == ""
    data = json.loads(out)
    for key in ("latency_s", "cycles", "traffic_bytes", "energy_pj", "utilization", "per_einsum", "buffer_bytes"):
        assert key in data
    assert data["traffic_bytes"] == 402653184
    assert set(data["utilization"]) == {"array2d", "array1d"}


def test_evaluate_flat_by_model(capsys):
    status, out, _ = run_cli(capsys, "evaluate", "--arch", "flat-cloud", "--mapping", "flat", "--model", "XLM", "--seq-len", "256K", "--json")
    assert status == 0
    assert json.loads(out)["per_einsum"]["QK"]["array"] == "array2d"


def test_evaluate_text_report(capsys):
    status, out, _ = run_cli(capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--shape", "B=1,H=2,E=64,F=64,M=1000,P=1000")
    assert status == 0
    assert "latency" in out
    assert "BQK" in out


def test_set_changes_the_array(capsys):
    argv = ["evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--shape", "B=1,H=1,E=64,F=64", "--seq-len", "4K", "--json"]
    _, base, _ = run_cli(capsys, *argv)
    _, changed, _ = run_cli(capsys, *argv, "--set", "arrays.array2d.rows=128", "--set", "arrays.array2d.cols=128", "--set", "arrays.array1d.lanes=128")
    assert json.loads(changed)["factors"]["M0"] == 128
    assert json.loads(changed)["cycles"] > json.loads(base)["cycles"]


def test_reproduce_writes_tables_summary_and_report(tmp_path, capsys):
    status, out, _ = run_cli(capsys, "reproduce", "--out", str(tmp_path))
    assert status == 0
    assert "speedup" in out
    for name in ("attn-binding.csv", "attn-flat.csv", "summary.json", "report.html"):
        assert (tmp_path / name).is_file(), name
    for table in ("attn-binding", "attn-flat"):
        with open(tmp_path / f"{table}.csv") as produced, open(REFERENCE / f"{table}.csv") as reference:
            assert next(csv.reader(produced)) == next(csv.reader(reference))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert round(summary["attention_speedup_vs_flat"], 1) == 6.7
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "GPT", "--seq-len", "1K"], "unknown model 'GPT'; models: BERT, TrXL, T5, XLM"),
        (["--shape", "B=64,H=12,E=0,F=64", "--seq-len", "1K"], "--shape E: length must be positive"),
        (["--shape", "B=64,H=-1,E=64,F=64", "--seq-len", "1K"], "--shape H: invalid length"),
        (["--shape", "B=64,H=12,E=64,F=64,Z=3", "--seq-len", "1K"], "unknown rank 'Z'"),
        (["--shape", "B=64,H=12,E=64,F=64"], "missing rank(s) M, P"),
        (["--shape", "B=1,H=1,E=64,F=64,M=2048,P=2048", "--seq-len", "1K"], "must agree"),
        (["--model", "BERT"], "--model needs --seq-len"),
        (["--model", "BERT", "--seq-len", "four"], "--seq-len: invalid length 'four'"),
        (["--model", "BERT", "--seq-len", "1K", "--set", "arrays.array2d.rows=-3"], "arrays.array2d.rows: Input should be greater than 0"),
        (["--model", "BERT", "--seq-len", "1K", "--set", "arrays.array2d.bogus=3"], "no key 'arrays.array2d.bogus'"),
        (["--model", "BERT", "--seq-len", "1K", "--set", "global_buffer.capacity_bytes=1024"], "too small for one tile"),
        (["--model", "BERT", "--seq-len", "1K", "--set", "mapping.loops.nothing=3"], "no key 'loops.nothing'"),
        (["--model", "BERT", "--seq-len", "1K", "--set", "noequals"], "expected PATH=VALUE"),
    ],
)
def test_evaluate_errors_are_one_line(capsys, argv, message):
    status, out, err = run_cli(capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert message in err


def test_flat_length_missing_from_table_lists_lengths(capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "flat-cloud", "--mapping", "flat", "--model", "BERT", "--seq-len", "3K")
    assert status == 2
    assert "available lengths: 512, 1K, 2K, 4K" in err


def test_flat_needs_a_model(capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "flat-cloud", "--mapping", "flat", "--shape", "B=1,H=1,E=64,F=64", "--seq-len", "1K")
    assert status == 2
    assert "use --model" in err


def test_bad_yaml_names_line_and_column(tmp_path, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\nclock_hz: [1, 2\n")
    status, _, err = run_cli(capsys, "evaluate", "--arch", str(spec), "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert err.startswith(f"error: {spec}:")
    assert "invalid YAML" in err


def test_unknown_key_lists_valid_keys(tmp_path, capsys):
    text = (Path(__file__).parents[1] / "archs" / "fusemax-cloud.yaml").read_text()
    spec = tmp_path / "extra.yaml"
    spec.write_text(text.replace("global_buffer:\n", "global_buffer:\n  colour: blue\n", 1))
    status, _, err = run_cli(capsys, "evaluate", "--arch", str(spec), "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert "global_buffer.colour: unknown key; valid keys: capacity_bytes" in err


def test_missing_spec_file(capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "nowhere/arch.yaml", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert "nowhere/arch.yaml: file not found" in err


def test_unknown_shipped_name_lists_shipped(capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "tpu", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert "shipped: " in err
    assert "fusemax-cloud" in err


def test_usage_error_exits_2():
    completed = subprocess.run([sys.executable, "-m", "fusemax.cli", "evaluate"], capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ")
    assert "Traceback" not in completed.stderr


def test_console_script_help():
    completed = subprocess.run([sys.executable, "-m", "fusemax.cli", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert "reproduce" in completed.stdout


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\nclock_hz: 1\nclock_hz: 2\n", ":3:1: invalid YAML: duplicate key 'clock_hz'"),
        ("", "the file is empty"),
        ("- 1\n- 2\n", "expected a YAML mapping at the top level"),
    ],
)
def test_yaml_structure_errors(tmp_path, capsys, yaml_text, message):
    spec = tmp_path / "arch.yaml"
    spec.write_text(yaml_text)
    status, _, err = run_cli(capsys, "evaluate", "--arch", str(spec), "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert message in err


def test_non_utf8_spec_is_one_line(tmp_path, capsys):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes("name: caf\xe9\n".encode("latin-1"))
    status, _, err = run_cli(capsys, "evaluate", "--arch", str(spec), "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert "not valid UTF-8" in err


def test_folder_as_spec(tmp_path, capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", str(tmp_path), "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "1K")
    assert status == 2
    assert "is a folder" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("arrays.array2d.rows=true", "--set arrays.array2d.rows: Input should be a valid integer"),
        ("arrays.array2d.rows=abc", "--set arrays.array2d.rows: Input should be a valid integer"),
        ("clock_hz=.inf", "--set clock_hz: Input should be a finite number"),
        ("mapping.tiling.P.sizes.P1=-4", "fusemax-binding.yaml: tiling.P.sizes.P1: size must be positive"),
        ("mapping.tiling.P.sizes.P1=100000", "need 17104896 bytes"),
        ("mapping.tiling.P.sizes.P1=maxfit", "unknown name 'maxfit'"),
    ],
)
def test_set_errors_name_the_setting(capsys, setting, message):
    status, _, err = run_cli(
        capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "BERT", "--seq-len", "64K", "--set", setting
    )
    assert status == 2
    assert message in err


def test_flat_rejects_other_buffer_sizes(capsys):
    status, _, err = run_cli(
        capsys, "evaluate", "--arch", "flat-cloud", "--mapping", "flat", "--model", "BERT", "--seq-len", "64K",
        "--set", "global_buffer.capacity_bytes=1048576",
    )
    assert status == 2
    assert "computed for global_buffer.capacity_bytes=33554432" in err


def test_duplicate_shape_rank(capsys):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--shape", "B=1,B=2,H=1,E=64,F=64", "--seq-len", "1K")
    assert status == 2
    assert "rank B is given twice" in err


def test_reproduce_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    status, _, err = run_cli(capsys, "reproduce", "--out", str(target))
    assert status == 2
    assert "is not a folder" in err


def test_json_names_sources_and_overrides(capsys):
    status, out, _ = run_cli(
        capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "fusemax-binding", "--model", "T5", "--seq-len", "1K",
        "--set", "dram.bandwidth_bytes_per_s=1e11", "--json",
    )
    data = json.loads(out)
    assert data["arch_source"] == "fusemax-cloud.yaml"
    assert data["overrides"] == ["dram.bandwidth_bytes_per_s=1e11"]
    assert data["model_variant"] == "paper"


def test_broken_pipe_is_quiet():
    completed = subprocess.run(
        f"{sys.executable} -m fusemax.cli evaluate --arch fusemax-cloud --mapping fusemax-binding --model BERT --seq-len 1K | head -c 10",
        shell=True, capture_output=True, text=True,
    )
    assert "Traceback" not in completed.stderr


def test_version():
    completed = subprocess.run([sys.executable, "-m", "fusemax.cli", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert completed.stdout.startswith("fusemax ")


def test_sizes_workload_for_any_cascade(capsys):
    status, out, _ = run_cli(capsys, "evaluate", "--arch", "fusemax-cloud", "--mapping", "linear", "--sizes", "K=768,M=65536,N=768", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["traffic_bytes"] == 2 * (768 * 65536 + 768 * 768 + 65536 * 768)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mapping", "linear", "--model", "BERT", "--seq-len", "1K"], "needs sizes for rank(s) K, N; give every rank with --sizes"),
        (["--mapping", "linear", "--sizes", "K=768,M=65536,N=768,Q=3"], "cascade matmul has no rank(s) Q"),
        (["--mapping", "linear", "--sizes", "K=768,K=3"], "rank K is given twice"),
        (["--mapping", "linear", "--sizes", "k=768"], "invalid rank name 'k'"),
        (["--mapping", "linear", "--sizes", "K=768", "--seq-len", "1K"], "--seq-len goes with --model or --shape"),
        (["--mapping", "linear", "--sizes", "K=768", "--model", "BERT"], "give exactly one of"),
    ],
)
def test_sizes_errors(capsys, argv, message):
    status, _, err = run_cli(capsys, "evaluate", "--arch", "fusemax-cloud", *argv)
    assert status == 2
    assert message in err


def test_unfused_text_lists_phases(capsys):
    status, out, _ = run_cli(capsys, "evaluate", "--arch", "flat-cloud", "--mapping", "unfused", "--model", "BERT", "--seq-len", "1K")
    assert status == 0
    assert "phases" in out
    assert "softmax" in out


def test_passes_dot_to_unwritable_path(capsys):
    status, _, err = run_cli(capsys, "passes", "attention-3pass", "--dot", "/nonexistent/folder/x.dot")
    assert status == 2
    assert "cannot write the file" in err


def test_cascade_check_rejects_negative_tolerance(capsys):
    status, _, err = run_cli(
        capsys, "cascade", "check", "attention-1pass", "--sizes", "B=1,H=1,E=8,F=8,M=100,P=50,M0=32", "--tolerance", "-1"
    )
    assert status == 2
    assert "--tolerance: must be a relative error of zero or more" in err
