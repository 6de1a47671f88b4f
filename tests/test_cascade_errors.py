"""Error paths outside the parser's checks: loading, operators, references, counting, execution and the CLI."""

from __future__ import annotations

import argparse
import re
import sys

import numpy as np
import pytest

from einsum_cascades.builder import CascadeBuilder
from einsum_cascades.counts import iteration_count, rank_sizes
from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import execute
from einsum_cascades.library import load_library_cascade, resolve_cascade
from einsum_cascades.operators import import_function
from einsum_cascades.points import count_points
from einsum_cascades.references import attention_logits, evaluate_reference
from einsum_cascades.symbolic import symbolic_counts
from einsum_cascades.syntax import load_cascade, parse_cascade
from einsum_cascades.verify import relative_error
from fusemax.cli import main

HEADER = "cascade t\nranks K M\ninput A[k], B[k,m]\n"


def reason_and_place(text):
    with pytest.raises(CascadeError) as info:
        parse_cascade(text, "e.cascade")
    return info.value.reason, (info.value.position.line, info.value.position.column)


@pytest.mark.parametrize(
    "text, reason, place",
    [
        ("cascade t\noperator f(x) charged as mul with numpy:sqrt\n", "expected 'via' or 'identity', found 'with'", (2, 30)),
        ("cascade t\noperator f(a, b) charged as max identity K\n",
         "the identity of an operator is a number, such as 0 or -inf", (2, 33)),
        (HEADER + "reference Y = softmax(A, over=[)\neinsums:\n  Y = A[k]\n",
         "an option value is a name or a number, not '['", (4, 31)),
        (HEADER + "reference Y = softmax(A, over=K)\nreference Y = softmax(A, over=K)\neinsums:\n  Y = A[k]\n",
         "a cascade declares one reference", (5, 1)),
        (HEADER + "einsums:\n  Y[m] = B[k,m] :: ∨ max(∪)\n",
         "expected '_' and the rank variable after '∨', as in ∨_m0", (5, 22)),
        (HEADER + "einsums:\n  Y[m] = A[k] * B[k,m] :: ∧_k (∩)\n",
         "expected the operator of the map action, found '('", (5, 31)),
        ("cascade t\nranks K\niterate k till k >= K\n", "expected 'until', found 'till'", (3, 11)),
    ],
)
def test_statement_errors(text, reason, place):
    assert reason_and_place(text) == (reason, place)


def test_body_reads_later_iterate_of_standard_tensor():
    text = (
        "cascade t\nranks M P\npartition M = M1 x M0\ninput X[m,p]\niterate m1 until m1 >= M1\n"
        "init:\n  R[m1 : m1 = 0, p] = 0\neinsums:\n  S[m1, p] = R[m1, p] * 2\n  R[m1+1, p] = S[m1+1, p]\n"
    )
    assert reason_and_place(text) == (
        "Einsum R reads S[m1 + 1, p], an iterate of m1 that S computes later", (10, 3)
    )


def test_load_cascade_invalid_utf8(tmp_path):
    path = tmp_path / "latin.cascade"
    path.write_bytes(b"cascade t\n# caf\xe9\n")
    with pytest.raises(CascadeError, match=r"cannot read cascade file .*latin.cascade"):
        load_cascade(path)


def test_resolve_missing_file(tmp_path):
    with pytest.raises(CascadeError, match=r"cascade file '.*none.cascade' not found"):
        resolve_cascade(str(tmp_path / "none.cascade"))


def test_import_function_errors():
    with pytest.raises(CascadeError, match="must be written module:function"):
        import_function("numpy.sqrt")
    with pytest.raises(CascadeError, match="'numpy:pi' is not callable"):
        import_function("numpy:pi")


def test_builder_implementation_without_colon():
    c = CascadeBuilder("bad")
    c.ranks("K")
    f = c.operator("f", None, implementation="numpy.sqrt")
    (A,) = c.inputs("A[k]")
    (Y,) = c.tensors("Y")
    c.einsum(Y["k"], f(A["k"]))
    with pytest.raises(CascadeError, match="must be written module:function"):
        execute(c.build(), {"K": 2})


def test_evaluate_reference_without_reference():
    cascade = parse_cascade(HEADER + "einsums:\n  Y = A[k]\n")
    with pytest.raises(CascadeError, match="declares no reference; add a 'reference' statement"):
        evaluate_reference(cascade, {}, {"K": 1, "M": 1})


def test_attention_logits_of_non_attention():
    with pytest.raises(CascadeError, match="declares no attention reference"):
        attention_logits(load_library_cascade("layernorm"), {}, {})


def test_relative_error_cases():
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(np.array([3.0, 4.0]), np.zeros(2)) == 5.0
    assert relative_error(np.array([np.nan, 1.0]), np.ones(2)) == float("inf")
    with pytest.raises(CascadeError, match=r"output shape \(2,\) differs from the reference shape \(3,\)"):
        relative_error(np.zeros(2), np.zeros(3))


def test_iteration_count_errors():
    with pytest.raises(CascadeError, match="has no iterative rank"):
        iteration_count(load_library_cascade("attention-3pass"), {})
    cascade = parse_cascade(
        "cascade t\nranks K\ninput A[k]\niterate k until k >= K - 5\ninit:\n  S[k : k = 0] = 0\n"
        "einsums:\n  S[k+1] = S[k] + A[k]\n"
    )
    with pytest.raises(CascadeError, match=r"allows no iterate at these sizes \(-2\)"):
        rank_sizes(cascade, {"K": 3})


def test_count_points_too_many_combinations():
    cascade = parse_cascade("cascade t\nranks K M N\ninput A[k]\neinsums:\n  S[m, n] = A[k : k <= m + n]\n")
    with pytest.raises(CascadeError, match="too many coordinate combinations"):
        count_points(cascade, cascade.einsum("S"), {"K": 2**21, "M": 2**21, "N": 2**21})


@pytest.mark.parametrize("filters", ["k != m", "2*k = m"])
def test_symbolic_count_unsupported_filter(filters):
    cascade = parse_cascade(f"cascade t\nranks K M\ninput A[k]\neinsums:\n  S[m] = A[k : {filters}]\n")
    with pytest.raises(CascadeError, match="cannot count the filtered points of S symbolically"):
        symbolic_counts(cascade)


def test_unknown_inputs_are_ignored():
    cascade = parse_cascade(HEADER + "einsums:\n  Y = A[k]\n")
    result = execute(cascade, {"K": 2, "M": 1}, {"A": np.ones(2), "B": np.ones((2, 1)), "Z": np.ones(3)})
    assert float(result.tensor("Y")) == 2.0


def test_cli_rewrite_without_module(monkeypatch):
    from fusemax.commands.cascade import _rewrite

    monkeypatch.setitem(sys.modules, "einsum_cascades.rewrite", None)
    arguments = argparse.Namespace(cascade="attention-3pass", passes=1, unicode=False)
    with pytest.raises(CascadeError) as info:
        _rewrite(arguments)
    assert str(info.value) == "cascade rewriting is not available: module einsum_cascades.rewrite is missing"


def test_cli_output_not_writable(capsys, tmp_path):
    target = tmp_path / "missing" / "out.npz"
    status = main(["cascade", "run", "cascade1", "--sizes", "K=3", "--output", str(target)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"error: cannot write --output file '{target}'")


def _user_operator_cascade(tmp_path, function_name):
    (tmp_path / "userops.py").write_text(
        "import numpy as np\n"
        "def bad(x):\n    raise ValueError('boom')\n"
        "def wrongshape(x):\n    return np.zeros(3)\n"
        "def square(x):\n    return x * x\n"
    )
    path = tmp_path / "user.cascade"
    path.write_text(
        "cascade user\nranks K\n"
        f"operator g(x) charged as mul via userops:{function_name}\n"
        "input A[k]\noutput Y[k]\neinsums:\n  Y[k] = g(A[k])\n"
    )
    return path


def test_user_operator_module_beside_cascade(tmp_path):
    from einsum_cascades import execute, load_cascade

    result = execute(load_cascade(_user_operator_cascade(tmp_path, "square")), {"K": 4}, seed=1)
    assert result is not None


@pytest.mark.parametrize(
    ("function_name", "message"),
    [("bad", "user-defined operator 'g' failed: ValueError: boom"), ("wrongshape", "returned shape (3,)")],
)
def test_user_operator_failure_is_cascade_error(tmp_path, function_name, message):
    from einsum_cascades import execute, load_cascade

    with pytest.raises(CascadeError, match=re.escape(message)):
        execute(load_cascade(_user_operator_cascade(tmp_path, function_name)), {"K": 4}, seed=1)
