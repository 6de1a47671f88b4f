"""``fusemax cascade``: show, run, check, rewrite and list, with one-line errors and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from einsum_cascades.library import library_names
from fusemax.cli import main
from fusemax.commands.cascade import parse_sizes
from einsum_cascades.errors import CascadeError

SIZES = "B=1,H=2,E=4,F=3,M=29,P=11,M0=8"


def run_cli(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_show_prints_cascade_and_counts(capsys):
    status, out, err = run_cli(capsys, "cascade", "show", "attention-1pass")
    assert status == 0
    assert err == ""
    assert "cascade attention-1pass" in out
    assert "  BQK[m1, m0, p] = Q[e, p] * BK[e, m1, m0]" in out
    assert "#   BQK        mac B*E*H*M*P" in out
    assert "#   RM         B*H*P*(M1 + 1)" in out
    assert "# where M1 = ceiling(M/M0)" in out


def test_show_unicode(capsys):
    status, out, _ = run_cli(capsys, "cascade", "show", "cascade3", "--unicode")
    assert status == 0
    assert "⋄ : i ≥ K" in out
    assert "RZ[i + 1] = RZ[i] × (RY[i + 1] ÷ RY[i]) + RY[i + 1] × A[i]" in out


def test_show_json(capsys):
    status, out, _ = run_cli(capsys, "cascade", "show", "attention-3pass", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["cascade"] == "attention-3pass"
    assert data["total"]["div"] == "B*H*M*P"
    assert [entry["name"] for entry in data["einsums"]] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert data["footprints"]["GM"] == "B*H*P"


def test_show_graph_dot(capsys):
    status, out, _ = run_cli(capsys, "cascade", "show", "attention-1pass", "--graph", "dot")
    assert status == 0
    assert out.startswith('digraph "attention-1pass" {')


def test_show_graph_json(capsys):
    status, out, _ = run_cli(capsys, "cascade", "show", "attention-1pass", "--graph", "json")
    assert status == 0
    assert json.loads(out)["graph"]["name"] == "attention-1pass"


def test_show_file(capsys, tmp_path):
    path = tmp_path / "dot.cascade"
    path.write_text("cascade dot\nranks K\ninput A[k], B[k]\noutput Y\neinsums:\n  Y = A[k] * B[k]\n", encoding="utf-8")
    status, out, _ = run_cli(capsys, "cascade", "show", str(path))
    assert status == 0
    assert "#   Y          mac K" in out


def test_run_writes_every_tensor(capsys, tmp_path):
    out_path = tmp_path / "out.npz"
    status, out, _ = run_cli(capsys, "cascade", "run", "attention-1pass", "--sizes", SIZES, "--output", str(out_path))
    assert status == 0
    assert "AV       shape (1, 2, 3, 11)" in out
    with np.load(out_path) as data:
        assert set(data.files) == {"Q", "K", "V", "BK", "BV", "RM", "RD", "RNV", "BQK", "LM", "SLN", "SLD", "SLNV",
                                   "PRM", "SPD", "SPNV", "AV"}
        assert data["RM"].shape == (1, 2, 5, 11)


def test_run_reads_inputs(capsys, tmp_path):
    first = tmp_path / "first.npz"
    run_cli(capsys, "cascade", "run", "attention-3pass", "--sizes", "B=1,H=1,E=2,F=2,M=5,P=3", "--output", str(first),
            "--seed", "4")
    second = tmp_path / "second.npz"
    status, _, _ = run_cli(capsys, "cascade", "run", "attention-3pass", "--sizes", "B=1,H=1,E=2,F=2,M=5,P=3",
                           "--inputs", str(first), "--output", str(second), "--seed", "9")
    assert status == 0
    with np.load(first) as a, np.load(second) as b:
        assert np.array_equal(a["AV"], b["AV"])


def test_run_json(capsys):
    status, out, _ = run_cli(capsys, "cascade", "run", "cascade3", "--sizes", "K=5", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["sizes"] == {"K": 5, "I": 5}
    assert data["outputs"]["Z"]["shape"] == []


def test_check_prints_relative_error(capsys):
    status, out, _ = run_cli(capsys, "cascade", "check", "attention-1pass-causal", "--sizes", "B=1,H=1,E=4,F=3,M=29,P=29,M0=8")
    assert status == 0
    assert out.startswith("attention-1pass-causal: relative error ‖AV − ref‖ / ‖ref‖ = ")
    assert "within tolerance 1e-10" in out


def test_check_json(capsys):
    status, out, _ = run_cli(capsys, "cascade", "check", "flash-attention-1", "--sizes", SIZES, "--json", "--scale", "30")
    assert status == 0
    data = json.loads(out)
    assert data["passed"] is True
    assert data["relative_error"] < 1e-10


def test_check_fails_above_tolerance(capsys):
    status, out, _ = run_cli(capsys, "cascade", "check", "attention-1pass", "--sizes", SIZES, "--tolerance", "0")
    assert status == 1
    assert "above tolerance 0" in out


@pytest.mark.parametrize("name", library_names())
def test_check_every_library_cascade(capsys, name):
    sizes = "B=1,H=2,G=2,R=2,E=4,F=3,M=13,P=13,M0=4,W=3,K=6,N=2"
    status, out, _ = run_cli(capsys, "cascade", "check", name, "--sizes", sizes, "--json")
    assert status == 0, out
    assert json.loads(out)["passed"] is True


def test_rewrite_to_one_pass(capsys):
    status, out, _ = run_cli(capsys, "cascade", "rewrite", "attention-3pass", "--passes", "1")
    assert status == 0
    assert "iterate m1 until m1 >= M1" in out
    assert "RM[m1 + 1, p] = max(RM[m1, p], LM[m1, p])" in out


def test_list(capsys):
    status, out, _ = run_cli(capsys, "cascade", "list", "--json")
    assert status == 0
    assert "attention-1pass" in json.loads(out)["cascades"]


# -- errors ------------------------------------------------------------------------


def test_error_in_file_is_one_line(capsys, tmp_path):
    path = tmp_path / "bad.cascade"
    path.write_text("cascade bad\nranks K\ninput A[k]\neinsums:\n  Y = A[k] + Y\n", encoding="utf-8")
    status, out, err = run_cli(capsys, "cascade", "show", str(path))
    assert status == 2
    assert out == ""
    assert err == (f"error: {path}:5:3: cycle Y -> Y does not run through an iterative rank; a tensor may depend on "
                   f"itself only through an earlier iterate, as RM[m1+1, p] = max(RM[m1, p], ...)\n")


def test_unknown_cascade(capsys):
    status, _, err = run_cli(capsys, "cascade", "show", "attention-0pass")
    assert status == 2
    assert err.startswith("error: unknown cascade 'attention-0pass'; library cascades: ")
    assert err.count("\n") == 1


def test_missing_file(capsys, tmp_path):
    status, _, err = run_cli(capsys, "cascade", "show", str(tmp_path / "none.cascade"))
    assert status == 2
    assert "not found" in err


def test_missing_size(capsys):
    status, _, err = run_cli(capsys, "cascade", "run", "attention-3pass", "--sizes", "B=1,H=1,E=2,F=2,M=5")
    assert status == 2
    assert err == "error: missing size for rank(s) P\n"


@pytest.mark.parametrize("text", ["M", "M=", "M=x", "=4", "M=0", "M=-1"])
def test_invalid_sizes(text):
    with pytest.raises(CascadeError, match="--sizes entry .* is invalid; write RANK=N with a positive integer N"):
        parse_sizes(text)


def test_sizes_with_suffix():
    assert parse_sizes("M=4K, P=100") == {"M": 4096, "P": 100}


def test_inputs_file_unreadable(capsys, tmp_path):
    path = tmp_path / "in.npz"
    path.write_text("not a zip", encoding="utf-8")
    status, _, err = run_cli(capsys, "cascade", "run", "cascade1", "--sizes", "K=3", "--inputs", str(path))
    assert status == 2
    assert err.startswith(f"error: cannot read --inputs file '{path}'")


def test_inputs_file_with_unknown_tensor(capsys, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, A=np.ones(3), Q=np.ones(3))
    status, _, err = run_cli(capsys, "cascade", "run", "cascade1", "--sizes", "K=3", "--inputs", str(path))
    assert status == 2
    assert err == "error: --inputs file contains Q, which cascade cascade1 does not have; its inputs: A, B\n"


def test_inputs_with_wrong_shape(capsys, tmp_path):
    path = tmp_path / "in.npz"
    np.savez(path, A=np.ones(4))
    status, _, err = run_cli(capsys, "cascade", "run", "cascade1", "--sizes", "K=3", "--inputs", str(path))
    assert status == 2
    assert err == "error: input A has shape (4,), but ranks K at these sizes need (3,)\n"


def test_check_without_reference(capsys, tmp_path):
    path = tmp_path / "plain.cascade"
    path.write_text("cascade plain\nranks K\ninput A[k]\noutput Y\neinsums:\n  Y = A[k]\n", encoding="utf-8")
    status, _, err = run_cli(capsys, "cascade", "check", str(path), "--sizes", "K=3")
    assert status == 2
    assert err == "error: cascade 'plain' declares no reference definition; add a 'reference' statement to its file\n"


def test_no_import_flag(capsys):
    status, _, err = run_cli(capsys, "cascade", "run", "rmsnorm", "--sizes", "E=3,P=2", "--no-import")
    assert status == 2
    assert "imports are disabled" in err


def test_missing_action(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cascade"])
    assert info.value.code == 2


def test_help_runs():
    completed = subprocess.run([sys.executable, "-m", "fusemax.cli", "cascade", "run", "--help"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0
    assert "--sizes" in completed.stdout


@pytest.mark.parametrize("name", library_names())
def test_show_every_library_cascade(capsys, name):
    status, out, _ = run_cli(capsys, "cascade", "show", name, "--json")
    assert status == 0
    data = json.loads(out)
    assert data["cascade"] == name
    assert data["total"]
