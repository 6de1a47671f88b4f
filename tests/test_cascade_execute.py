"""Semantics of the reference executor on small cascades: merges, filters, partitions, populate, operators."""

from __future__ import annotations

import numpy as np
import pytest

from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import execute, random_inputs, tensor_shape
from einsum_cascades.graph import schedule
from einsum_cascades.library import load_library_cascade
from einsum_cascades.counts import rank_sizes
from einsum_cascades.operators import sigmoid, sub_exp
from einsum_cascades.syntax import parse_cascade

A = np.array([1.0, -2.0, 3.0, 0.5])
B = np.array([2.0, 0.0, -1.0, 4.0])


def run(body: str, header: str = "ranks K M\ninput A[k], B[k]\n", sizes=None, inputs=None, **options):
    cascade = parse_cascade(f"cascade t\n{header}einsums:\n" + body)
    return execute(cascade, sizes or {"K": 4, "M": 3}, {"A": A, "B": B} if inputs is None else inputs, **options)


def test_dot_product():
    result = run("  Y = A[k] * B[k]\n")
    assert float(result.tensor("Y")) == pytest.approx(float(A @ B))


def test_max_reduction():
    result = run("  Y = A[k] :: max(k)\n")
    assert float(result.tensor("Y")) == 3.0


def test_mul_reduction():
    result = run("  Y = A[k] :: mul(k)\n")
    assert float(result.tensor("Y")) == pytest.approx(np.prod(A))


def test_broadcast_to_new_rank():
    result = run("  Y[k, m] = A[k] + M\n")
    assert result.tensor("Y").shape == (4, 3)
    assert np.all(result.tensor("Y") == A[:, None] + 3)


def test_filter_restricts_operand():
    # A[k : k <= m]: the prefix sums of A, one per m.
    result = run("  S[m] = A[k : k <= m]\n")
    assert np.allclose(result.tensor("S"), np.cumsum(A)[:3])


def test_window_filter():
    result = run("  S[m] = A[k : m - 1 <= k <= m + 1]\n")
    expected = [A[0] + A[1], A[0] + A[1] + A[2], A[1] + A[2] + A[3]]
    assert np.allclose(result.tensor("S"), expected)


def test_filter_with_and():
    result = run("  S[m] = A[k : k >= m and k != 2]\n")
    expected = [A[0] + A[1] + A[3], A[1] + A[3], A[3]]
    assert np.allclose(result.tensor("S"), expected)


def test_union_merge_reads_empty_as_zero():
    # The filtered operand is empty for k > m; add (union) still visits those points.
    result = run("  S[k, m] = A[k : k <= m] + B[k]\n")
    expected = np.where(np.arange(4)[:, None] <= np.arange(3)[None, :], A[:, None], 0.0) + B[:, None]
    assert np.allclose(result.tensor("S"), expected)
    assert result.present["S"].all()


def test_intersection_merge_skips_empty():
    result = run("  S[k, m] = A[k : k <= m] * B[k]\n")
    mask = np.arange(4)[:, None] <= np.arange(3)[None, :]
    assert np.array_equal(result.present["S"], mask)


def test_explicit_intersection_on_add():
    result = run("  S[k, m] = A[k : k <= m] + B[k] :: ^_k +(&)\n")
    mask = np.arange(4)[:, None] <= np.arange(3)[None, :]
    assert np.array_equal(result.present["S"], mask)


def test_generic_map_placeholder():
    result = run("  S[k] = A[k] · B[k] :: ∧_k max(∪)\n")
    assert np.array_equal(result.tensor("S"), np.maximum(A, B))


def test_one_sided_division_skips_zero_divisor():
    result = run("  S[k] = A[k] / B[k]\n")
    assert np.array_equal(result.present["S"], B != 0)
    assert np.allclose(result.tensor("S")[B != 0], (A / np.where(B == 0, 1, B))[B != 0])


def test_pass_through_merge_visits_every_point():
    result = run("  S[k, m] = exp(A[k : k <= m]) :: ^_k exp(1)\n")
    assert result.present["S"].all()
    assert result.tensor("S")[3, 0] == 1.0


def test_empty_reduction_stays_empty():
    result = run("  S[m] = A[k : k > m + 5]\n")
    assert not result.present["S"].any()
    assert np.all(result.tensor("S") == 0.0)


def test_rank_size_value():
    result = run("  MEAN = A[k]\n  Y = MEAN / K\n")
    assert float(result.tensor("Y")) == pytest.approx(A.mean())


def test_sub_exp_of_two_minus_infinities():
    assert float(sub_exp(np.float64(-np.inf), np.float64(-np.inf))) == 0.0
    assert float(sub_exp(np.float64(1.0), np.float64(1.0))) == 1.0


def test_sigmoid_is_stable():
    values = sigmoid(np.array([-1e4, 0.0, 1e4]))
    assert np.array_equal(values, [0.0, 0.5, 1.0])


def test_populate_add():
    header = "ranks K\ninput A[k]\n"
    cascade = parse_cascade(f"cascade t\n{header}init:\n  Y = 10\neinsums:\n  Y += A[k]\n")
    result = execute(cascade, {"K": 4}, {"A": A})
    assert float(result.tensor("Y")) == pytest.approx(10 + A.sum())


def test_populate_max():
    header = "ranks K\ninput A[k]\n"
    cascade = parse_cascade(f"cascade t\n{header}init:\n  Y[k] = 1\neinsums:\n  Y[k] max= A[k]\n")
    result = execute(cascade, {"K": 4}, {"A": A})
    assert np.array_equal(result.tensor("Y"), np.maximum(A, 1))


def test_user_operator_supplied():
    text = "cascade t\nranks K\noperator twice(x) charged as mul\ninput A[k]\neinsums:\n  Y[k] = twice(A[k])\n"
    cascade = parse_cascade(text)
    result = execute(cascade, {"K": 4}, {"A": A}, operators={"twice": lambda x: 2 * x})
    assert np.array_equal(result.tensor("Y"), 2 * A)


def test_user_operator_imported():
    text = "cascade t\nranks K\noperator root(x) charged as div via numpy:sqrt\ninput A[k]\neinsums:\n  Y[k] = root(A[k])\n"
    result = execute(parse_cascade(text), {"K": 2}, {"A": np.array([4.0, 9.0])})
    assert np.array_equal(result.tensor("Y"), [2.0, 3.0])


def test_user_operator_import_refused():
    text = "cascade t\nranks K\noperator root(x) charged as div via numpy:sqrt\ninput A[k]\neinsums:\n  Y[k] = root(A[k])\n"
    with pytest.raises(CascadeError, match="would import 'numpy:sqrt', and imports are disabled"):
        execute(parse_cascade(text), {"K": 2}, allow_import=False)


def test_user_operator_without_implementation():
    text = "cascade t\nranks K\noperator twice(x) charged as mul\ninput A[k]\neinsums:\n  Y[k] = twice(A[k])\n"
    with pytest.raises(CascadeError, match=r"operator 'twice' has no implementation; pass operators=") as info:
        execute(parse_cascade(text), {"K": 2})
    assert info.value.position.line == 3


def test_user_operator_missing_module():
    text = "cascade t\nranks K\noperator f(x) charged as mul via no_such_module_xyz:f\ninput A[k]\neinsums:\n  Y[k] = f(A[k])\n"
    with pytest.raises(CascadeError, match="cannot import module 'no_such_module_xyz'"):
        execute(parse_cascade(text), {"K": 2})


def test_user_operator_missing_function():
    text = "cascade t\nranks K\noperator f(x) charged as mul via numpy:no_such_function\ninput A[k]\neinsums:\n  Y[k] = f(A[k])\n"
    with pytest.raises(CascadeError, match="module 'numpy' has no function 'no_such_function'"):
        execute(parse_cascade(text), {"K": 2})


def test_user_reduction_operator():
    text = (
        "cascade t\nranks K\noperator biggest(a, b) charged as max identity -inf\ninput A[k]\n"
        "einsums:\n  Y = A[k] :: biggest(k)\n"
    )
    result = execute(parse_cascade(text), {"K": 4}, {"A": A}, operators={"biggest": np.maximum})
    assert float(result.tensor("Y")) == 3.0


def test_partition_past_end_does_not_exist():
    text = (
        "cascade t\nranks M\npartition M = M1 x M0\ninput A[m]\n"
        "einsums:\n  T[m1, m0] = A[m1*M0 + m0]\n  C[m1, m0] = 1\n  S = T[m1, m0]\n"
    )
    result = execute(parse_cascade(text), {"M": 5, "M0": 2}, {"A": np.arange(5.0)})
    assert result.tensor("T").shape == (3, 2)
    assert result.present["T"].sum() == 5
    assert result.present["C"].sum() == 5
    assert float(result.tensor("S")) == 10.0


def test_write_past_end_raises():
    with pytest.raises(CascadeError, match=r"Einsum S writes coordinate 4 of rank K, past its last coordinate 3") as info:
        run("  S[k + 1] = A[k]\n")
    assert info.value.position.line == 5


def test_input_with_wrong_shape():
    with pytest.raises(CascadeError, match=r"input A has shape \(3,\), but ranks K at these sizes need \(4,\)"):
        run("  Y = A[k]\n", inputs={"A": np.zeros(3), "B": B})


def test_missing_inputs_are_drawn():
    cascade = parse_cascade("cascade t\nranks K\ninput A[k], B[k]\neinsums:\n  Y = A[k] * B[k]\n")
    drawn = random_inputs(cascade, {"K": 4}, seed=5)
    result = execute(cascade, {"K": 4}, {"A": drawn["A"]}, seed=5)
    assert np.array_equal(result.tensor("B"), drawn["B"])


def test_float32_execution():
    result = run("  Y = A[k] * B[k]\n", dtype=np.float32)
    assert result.values["Y"].dtype == np.float32


def test_recurrence_tensor_holds_every_iterate():
    cascade = load_library_cascade("attention-1pass")
    full = rank_sizes(cascade, dict(B=1, H=2, E=4, F=3, M=10, P=5, M0=4))
    assert tensor_shape(cascade, "RM", full) == (1, 2, 4, 5)
    assert tensor_shape(cascade, "LM", full) == (1, 2, 3, 5)


def test_schedule_of_one_pass():
    order = schedule(load_library_cascade("attention-1pass"))
    assert [e.name for e in order.pre] == ["BK", "BV", "RM", "RD", "RNV", "BQK", "LM"]
    assert [e.name for e in order.body] == ["RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV"]
    assert [e.name for e in order.post] == ["AV"]


def test_schedule_of_online_softmax():
    order = schedule(load_library_cascade("online-softmax"))
    assert [e.name for e in order.body] == ["RM", "RD"]
    assert [e.name for e in order.post] == ["Y"]


def test_execution_arrays_hold_every_tensor():
    cascade = load_library_cascade("attention-3pass")
    result = execute(cascade, dict(B=1, H=1, E=2, F=2, M=3, P=2))
    assert set(result.arrays()) == set(cascade.tensors)


def test_output_without_declared_outputs():
    cascade = parse_cascade("cascade t\nranks K\ninput A[k]\neinsums:\n  Y = A[k]\n")
    with pytest.raises(CascadeError, match="declares no output"):
        execute(cascade, {"K": 2}).output()


def test_invalid_size():
    with pytest.raises(CascadeError, match="size of rank K must be a positive integer, got 0"):
        run("  Y = A[k]\n", sizes={"K": 0, "M": 1})


def test_iterative_rank_size_must_match_stop():
    cascade = load_library_cascade("cascade3")
    with pytest.raises(CascadeError, match=r"iterative rank I has size 5, but its stopping condition"):
        execute(cascade, {"K": 4, "I": 5})


@pytest.mark.parametrize("name", ["attention-1pass-causal", "attention-sliding-window", "attention-2pass", "cascade3"])
def test_contraction_path_matches_general_path(name, monkeypatch):
    from einsum_cascades import numeric

    cascade = load_library_cascade(name)
    sizes = {rank: size for rank, size in dict(B=1, H=2, E=3, F=2, M=19, P=19, M0=4, W=5, K=6).items()
             if rank in cascade.ranks}
    fast = execute(cascade, sizes, seed=11)
    monkeypatch.setattr(numeric, "_factors", lambda expr: None)
    general = execute(cascade, sizes, seed=11)
    for tensor in cascade.tensors:
        assert np.array_equal(fast.present[tensor], general.present[tensor]), tensor
        assert np.allclose(fast.tensor(tensor), general.tensor(tensor), rtol=1e-13, atol=0), tensor
