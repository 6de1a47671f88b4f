"""Pass-reducing rewrites: derived cascades, their passes, their extra compute and their results."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sympy

from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import execute, random_inputs
from einsum_cascades.library import load_library_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.passes_footprint import rank_symbol
from einsum_cascades.passes_iterative import iterative_construction
from einsum_cascades.passes_softmax import find_softmax_attention, plain_indices
from einsum_cascades.printer import format_cascade
from einsum_cascades.rewrite import defer_division, operation_counts, plan_rewrites, rewrite_to_passes
from einsum_cascades.syntax import parse_cascade

F, M, M1, P = (rank_symbol(name) for name in ("F", "M", "M1", "P"))

CAUSAL_3PASS = """
cascade causal-3pass
ranks B H E F M P
batch B H
input Q[e,p], K[e,m], V[f,m]
output AV[f,p]
reference AV = softmax_attention(Q, K, V, mask=causal)
einsums:
  QK[m,p] = Q[e,p] * K[e, m : m <= p]
  GM[p] = QK[m,p] :: max(m)
  SN[m,p] = exp(QK[m,p] - GM[p])
  SD[p] = SN[m,p]
  A[m,p] = SN[m,p] / SD[p]
  AV[f,p] = A[m,p] * V[f,m]
"""

# Scores centered by their mean: one more pass before the softmax.
CENTERED_4PASS = """
cascade centered
ranks E F M P
input Q[e,p], K[e,m], V[f,m]
output AV[f,p]
einsums:
  QK[m,p] = Q[e,p] * K[e,m]
  MU[p] = QK[m,p]
  S[m,p] = QK[m,p] - MU[p]
  GM[p] = S[m,p] :: max(m)
  SN[m,p] = exp(S[m,p] - GM[p])
  SD[p] = SN[m,p]
  A[m,p] = SN[m,p] / SD[p]
  AV[f,p] = A[m,p] * V[f,m]
"""


def relative_error(out, ref):
    return np.linalg.norm(out - ref) / np.linalg.norm(ref)


def test_plan_from_three_pass():
    plan = plan_rewrites(load_library_cascade("attention-3pass"))
    assert plan.rank == "M"
    assert plan.passes == 3
    assert [(step.technique, step.passes_before, step.passes_after) for step in plan.steps] == [
        ("division deferral", 3, 2),
        ("iterative construction", 2, 1),
    ]
    assert plan.blocked is None


def test_deferral_saves_divisions():
    plan = plan_rewrites(load_library_cascade("attention-3pass"))
    assert plan.steps[0].extra_operations == {"div": F * P - M * P}


def test_iterative_construction_costs():
    plan = plan_rewrites(load_library_cascade("attention-3pass"))
    extra = plan.steps[1].extra_operations
    # PRM's exponential and RM's max once per tile and row; SPD, RD, SPNV and RNV rescale and add.
    assert extra["sub_exp"] == M1 * P
    assert extra["max"] == M1 * P
    assert sympy.expand(extra["mul"] - (F + 1) * M1 * P) == 0
    assert sympy.expand(extra["add"] - (F + 1) * M1 * P) == 0
    assert set(extra) == {"sub_exp", "max", "mul", "add"}


def test_two_pass_derivation_equals_library():
    derived = rewrite_to_passes(load_library_cascade("attention-3pass"), 2)
    library = load_library_cascade("attention-3pass-deferred")
    assert derived.name == "attention-3pass-to-2pass"
    assert derived.einsums == library.einsums
    assert derived.tensors == library.tensors


def test_one_pass_derivation_equals_cascade5():
    derived = rewrite_to_passes(load_library_cascade("attention-3pass"), 1)
    library = load_library_cascade("attention-1pass")
    assert derived.name == "attention-3pass-to-1pass"
    assert replace(derived, name=library.name, description=library.description) == library


def test_one_pass_reaches_bound():
    derived = rewrite_to_passes(load_library_cascade("attention-3pass"), 1)
    assert analyze_passes(derived).passes == {"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}


@pytest.mark.parametrize("passes", [2, 1])
def test_derived_prints_and_parses_back(passes):
    derived = rewrite_to_passes(load_library_cascade("attention-3pass"), passes)
    assert parse_cascade(format_cascade(derived)) == derived


@pytest.mark.parametrize(("scale", "sizes"), [(1.0, {"M0": 4}), (1e4, {"M0": 4}), (1.0, {"M0": 11})])
def test_derived_cascades_compute_same_result(scale, sizes):
    original = load_library_cascade("attention-3pass")
    base = {"B": 2, "H": 1, "E": 4, "F": 3, "M": 11, "P": 5}
    inputs = random_inputs(original, base, seed=7, scale=scale)
    reference = execute(original, base, inputs).output()
    for passes in (2, 1):
        derived = rewrite_to_passes(original, passes)
        run_sizes = dict(base, **sizes) if passes == 1 else base
        result = execute(derived, run_sizes, inputs).output()
        assert np.all(np.isfinite(result))
        assert relative_error(result, reference) < 1e-12


def test_causal_rewrite_keeps_mask():
    original = parse_cascade(CAUSAL_3PASS)
    derived = rewrite_to_passes(original, 1)
    score = derived.einsum("BQK")
    assert "m1*M0 + m0 <= p" in format_cascade(derived)
    assert score.accesses[1].tensor == "BK"
    sizes = {"B": 1, "H": 2, "E": 3, "F": 2, "M": 9, "P": 9}
    inputs = random_inputs(original, sizes, seed=2, scale=3.0)
    reference = execute(original, sizes, inputs).output()
    result = execute(derived, dict(sizes, M0=4), inputs).output()
    assert relative_error(result, reference) < 1e-12


def test_deferred_library_rewrites_to_one_pass():
    original = load_library_cascade("attention-3pass-deferred")
    plan = plan_rewrites(original)
    assert [step.technique for step in plan.steps] == ["iterative construction"]
    derived = rewrite_to_passes(original, 1)
    assert derived.name == "attention-3pass-deferred-to-1pass"
    assert analyze_passes(derived, "M").passes["M"] == 1


def test_same_pass_count_returns_cascade():
    cascade = load_library_cascade("attention-3pass")
    assert rewrite_to_passes(cascade, 3) is cascade


def test_more_passes_rejected():
    message = r"makes 2 pass\(es\) over M; a rewrite only removes passes, so --passes must be between 1 and 2"
    with pytest.raises(CascadeError, match=message):
        rewrite_to_passes(load_library_cascade("attention-3pass-deferred"), 3)


@pytest.mark.parametrize("passes", [0, -1, True, 1.5])
def test_invalid_pass_count_rejected(passes):
    with pytest.raises(CascadeError, match="--passes must be a positive integer"):
        rewrite_to_passes(load_library_cascade("attention-3pass"), passes)


@pytest.mark.parametrize("name", ["online-softmax", "layernorm", "attention-1pass", "sigmoid-attention"])
def test_outside_family_rejected(name):
    with pytest.raises(CascadeError, match=f"cascade {name} is not in the softmax-attention family"):
        rewrite_to_passes(load_library_cascade(name), 1)


def test_blocked_iterative_construction_reported():
    cascade = parse_cascade(CENTERED_4PASS)
    assert analyze_passes(cascade, "M").passes["M"] == 4
    plan = plan_rewrites(cascade)
    assert [step.passes_after for step in plan.steps] == [3]
    assert "needs MU to keep m" in plan.blocked
    assert analyze_passes(rewrite_to_passes(cascade, 3), "M").passes["M"] == 3
    with pytest.raises(CascadeError, match=r"no rewrite of centered makes 2 pass\(es\) over M; the rewrites reach 3; "
                       r"iterative construction is not possible: .*needs MU to keep m"):
        rewrite_to_passes(cascade, 2)


def test_denominator_along_m_rejected():
    cascade = parse_cascade(CAUSAL_3PASS.replace("A[m,p] = SN[m,p] / SD[p]", "A[m,p] = SN[m,p] / SD[m]"))
    with pytest.raises(CascadeError, match="division deferral needs the denominator SD to be constant along m") as error:
        rewrite_to_passes(cascade, 2)
    assert error.value.position.line == 13


def test_iterative_needs_deferral_first():
    cascade = load_library_cascade("attention-3pass")
    with pytest.raises(CascadeError, match="iterative construction needs the division deferred first"):
        iterative_construction(cascade, find_softmax_attention(cascade))


def test_iterative_rejects_partitioned_rank():
    text = CAUSAL_3PASS.replace("batch B H\n", "batch B H\npartition M = M1 x M0\n")
    cascade = parse_cascade(text)
    deferred = defer_division(cascade, find_softmax_attention(cascade))
    with pytest.raises(CascadeError, match="rank M of cascade causal-3pass-to-2pass is already partitioned"):
        iterative_construction(deferred, find_softmax_attention(deferred))


def test_iterative_rejects_shifted_index():
    cascade = parse_cascade(CAUSAL_3PASS.replace("K[e, m : m <= p]", "K[e, m + 1]"))
    deferred = defer_division(cascade, find_softmax_attention(cascade))
    with pytest.raises(CascadeError, match="needs K to be read at m itself, not at an expression of it"):
        iterative_construction(deferred, find_softmax_attention(deferred))


def test_weighted_sum_of_expression_rejected():
    cascade = parse_cascade(CAUSAL_3PASS.replace("AV[f,p] = A[m,p] * V[f,m]", "AV[f,p] = A[m,p] * (V[f,m] + Q[f,p])"))
    with pytest.raises(CascadeError, match="the weighted sum AV must multiply the weights by one tensor"):
        rewrite_to_passes(cascade, 2)


def test_softmax_output_kept_is_outside_family():
    cascade = parse_cascade(CAUSAL_3PASS.replace("output AV[f,p]", "output AV[f,p], A[m,p]"))
    with pytest.raises(CascadeError, match="is not in the softmax-attention family"):
        find_softmax_attention(cascade)


def test_operation_counts_of_one_pass():
    counts = operation_counts(load_library_cascade("attention-1pass"))
    B, H, E, M0 = (rank_symbol(name) for name in ("B", "H", "E", "M0"))
    assert sympy.expand(counts["mac"] - B * H * (E * M1 * M0 * P + F * M1 * M0 * P)) == 0
    assert counts["div"] == B * H * F * P
    assert sympy.expand(counts["sub_exp"] - B * H * (M1 * M0 * P + M1 * P)) == 0


DEFERRED_GROUPS = """
cascade grouped
ranks E F G M P
input Q[g,e,p], K[g,e,m], V[g,f,m]
output AV[g,f,p]
einsums:
  QK[g,m,p] = Q[g,e,p] * K[g,e,m]
  GM[g,p] = QK[g,m,p] :: max(m)
  SN[g,m,p] = exp(QK[g,m,p] - GM[g,p])
  SD[g,p] = SN[g,m,p]
  SNV[g,f,p] = SN[g,m,p] * V[g,f,m]
  AV[g,f,p] = SNV[g,f,p] / SD[g,p]
"""


def test_grouped_rows_rewrite_to_one_pass():
    original = parse_cascade(DEFERRED_GROUPS)
    derived = rewrite_to_passes(original, 1)
    text = format_cascade(derived)
    assert "RNV[g, f, m1 + 1, p] = SLNV[g, f, m1, p] + SPNV[g, f, m1, p]" in text
    assert "RM[g, m1 + 1, p] = max(RM[g, m1, p], LM[g, m1, p])" in text
    assert "AV[g, f, p] = RNV[g, f, M1, p] / RD[g, M1, p]" in text
    sizes = {"E": 3, "F": 2, "G": 2, "M": 7, "P": 3}
    inputs = random_inputs(original, sizes, seed=5)
    reference = execute(original, sizes, inputs).output()
    assert relative_error(execute(derived, dict(sizes, M0=3), inputs).output(), reference) < 1e-12


def test_max_and_denominator_indices_must_agree():
    cascade = parse_cascade(DEFERRED_GROUPS.replace("SD[g,p] = SN", "SD[p,g] = SN").replace("/ SD[g,p]", "/ SD[p,g]"))
    with pytest.raises(
        CascadeError,
        match=r"^no rewrite of grouped makes 1 pass\(es\) over M; iterative construction is not possible: "
        r"<string>:10:3: iterative construction needs the max GM and the denominator SD to have the same indices$",
    ):
        rewrite_to_passes(cascade, 1)


def test_iterative_rejects_initialization():
    cascade = parse_cascade(DEFERRED_GROUPS.replace("einsums:", "init:\n  C[p] = 0\neinsums:"))
    with pytest.raises(CascadeError, match="cascade grouped already has an iterative rank or initialization Einsums"):
        iterative_construction(cascade, find_softmax_attention(cascade))


def test_plain_indices_rejects_filter():
    cascade = parse_cascade(CAUSAL_3PASS)
    access = cascade.einsum("QK").accesses[1]
    with pytest.raises(CascadeError, match="the rewrite needs every index of the keys K to be one rank variable without a filter"):
        plain_indices(access, "the keys")


def test_grouped_query_rewrite_equals_library():
    three_pass = parse_cascade(
        """
cascade gqa-3pass
ranks B G R E F M P
batch B
input Q[g,r,e,p], K[g,e,m], V[g,f,m]
output AV[g,r,f,p]
reference AV = softmax_attention(Q, K, V)
einsums:
  QK[g,r,m,p] = Q[g,r,e,p] * K[g,e,m]
  GM[g,r,p] = QK[g,r,m,p] :: max(m)
  SN[g,r,m,p] = exp(QK[g,r,m,p] - GM[g,r,p])
  SD[g,r,p] = SN[g,r,m,p]
  A[g,r,m,p] = SN[g,r,m,p] / SD[g,r,p]
  AV[g,r,f,p] = A[g,r,m,p] * V[g,f,m]
"""
    )
    library = load_library_cascade("attention-gqa")
    derived = rewrite_to_passes(three_pass, 1)
    assert replace(derived, name=library.name, description=library.description) == library
