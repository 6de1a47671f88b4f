"""Checks of the cascade language: each error's message and its line and column."""

from __future__ import annotations

import pytest

from einsum_cascades.errors import CascadeError
from einsum_cascades.syntax import parse_cascade

HEADER = "cascade t\nranks K M\ninput A[k], B[k,m]\n"  # lines 1-3

ITERATIVE = (
    "cascade t\nranks M P\npartition M = M1 x M0\ninput X[m,p]\niterate m1 until m1 >= M1\n"  # lines 1-5
    "init:\n  R[m1 : m1 = 0, p] = 0\n"  # lines 6-7
    "einsums:\n  T[m1, m0, p] = X[m1*M0 + m0, p]\n"  # lines 8-9
)

CASES = [
    # -- syntax --------------------------------------------------------------
    pytest.param(HEADER + "einsums:\n  Y = A[k] ×× B[k]\n", "expected an expression, found '×'", 5, 13,
                 id="syntax-double-operator"),
    pytest.param(HEADER + "einsums:\n  Y = A[k /* never closed\n",
                 "block comment '/*' is never closed; add '*/'", 5, 11, id="syntax-unclosed-comment"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k, m1*m0]\n",
                 "a term of a rank expression may use one rank variable, but m1*m0 uses m1, m0; rank expressions "
                 "are affine, as m1*M0 + m0", 5, 15, id="syntax-non-affine"),
    pytest.param("cascade t\ncascade u\n", "duplicate cascade statement: a file contains one cascade, and it is already named", 2, 1,
                 id="syntax-second-cascade"),
    pytest.param("cascade t\nranks K K\n", "rank K is declared twice", 2, 9, id="syntax-rank-twice"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] · B[k,m]\n",
                 "'·' needs a map action that names its operator, as in ':: ∧_k ×(∩)'", 5, 15,
                 id="syntax-placeholder-without-map"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] · B[k,m] :: ∧_k exp(∩)\n",
                 "'·' combines two operands, but the map action names 'exp', which takes 1", 5, 27,
                 id="syntax-placeholder-unary-map"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] * B[k,m] :: ^_k max(&)\n",
                 "the map action names 'max', but the expression applies no 'max'", 5, 27,
                 id="syntax-map-action-absent-operator"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] * B[k,m] :: ^_z *(U)\n",
                 "the map action's rank variable z is not a rank variable of this Einsum", 5, 27,
                 id="syntax-map-action-variable"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] * B[k,m] :: ^_k pow(U)\n",
                 "unknown operator 'pow' in map action; valid: add, div, exp, max, min, mul, sigmoid, sub, sub_exp",
                 5, 31, id="syntax-map-action-unknown-operator"),
    pytest.param(HEADER + "einsums:\n  Y[m] = A[k] * A[k] * B[k,m] :: ^_k *(U)\n  Z[m] = (A[k] * B[k,m]) * (A[k] * A[k])\n",
                 None, None, None, id="syntax-map-action-sets-every-application"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m] :: max(k) sum(k)\n",
                 "one Einsum reduces with one operator, but this one names max and add; split it into two Einsums",
                 5, 27, id="reduce-two-operators"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m] :: max(z)\n",
                 "the reduction names z, but no operand on the right uses it; operands use k, m", 5, 20,
                 id="reduce-unused-variable"),
    pytest.param(HEADER + "einsums:\n  Y[m] exp= B[k,m]\n", "expected '=', found 'exp'", 5, 8, id="populate-unknown"),
    # -- undefined tensors and inconsistent ranks ----------------------------
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m] * Q[k]\n", "undefined tensor 'Q'; defined tensors: A, B, Y", 5, 19,
                 id="undefined-tensor"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[m]\n",
                 "tensor B has 2 rank(s) [K, M] but is accessed with 1 index(es)", 5, 10, id="rank-count"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m]\n  Z[k] = Y[k]\n",
                 None, None, None, id="reading-with-another-variable-is-allowed"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m]\n  Y[k] = A[k]\n",
                 "tensor Y written with ranks [K] but declared with [M]", 6, 3, id="rank-inconsistent-write"),
    pytest.param(HEADER + "einsums:\n  Y[m] = B[k,m]\n  Y[m] = A[k]\n",
                 "tensor Y is written by two Einsums of the cascade (line 5); give each its own tensor", 6, 3,
                 id="written-twice"),
    pytest.param(HEADER + "einsums:\n  A[k] = B[k,m]\n",
                 "input tensor A is written by an Einsum; inputs are read only, so write a new tensor", 5, 3,
                 id="input-written"),
    pytest.param(HEADER + "einsums:\n  M[m] = B[k,m]\n", "tensor M has the name of a rank; rename the tensor", 5, 3,
                 id="tensor-named-like-rank"),
    pytest.param(HEADER + "einsums:\n  Y[m, m] = B[k,m]\n",
                 "rank variable m indexes two positions of Y; each output index needs its own rank variable", 5, 3,
                 id="output-variable-twice"),
    # -- a rank on the right that is neither reduced nor on the left -----------
    pytest.param(ITERATIVE.replace("input X[m,p]", "input X[m,p], Z[m1,m0,p]")
                 + "  L[p] = Z[m1, m0, p] :: max(m0)\n  R[m1+1, p] = R[m1, p]\n",
                 "rank variable m1 is on the right but neither on the left nor reduced; add it to L's indices or "
                 "to the reduction, as in :: max(m0, m1)", 10, 10, id="rank-neither-reduced-nor-left"),
    pytest.param(HEADER + "einsums:\n  Y = B[k,m] :: ∨_k max(∪)\n",
                 "rank variable m is on the right but neither on the left nor reduced; add it to Y's indices or to "
                 "the reduction, as in :: max(k, m)", 5, 7, id="rank-neither-reduced-nor-left-paper-form"),
    # -- cycles -------------------------------------------------------------
    pytest.param(HEADER + "einsums:\n  Y[k] = A[k] + Z[k]\n  Z[k] = Y[k]\n",
                 "cycle Y -> Z -> Y does not run through an iterative rank; a tensor may depend on itself only "
                 "through an earlier iterate, as RM[m1+1, p] = max(RM[m1, p], ...)", 5, 3, id="cycle"),
    pytest.param(HEADER + "einsums:\n  Y[k] = A[k] + Y[k]\n",
                 "cycle Y -> Y does not run through an iterative rank; a tensor may depend on itself only through "
                 "an earlier iterate, as RM[m1+1, p] = max(RM[m1, p], ...)", 5, 3, id="cycle-self"),
    pytest.param(ITERATIVE + "  L[m1, p] = R[m1+1, p]\n  R[m1+1, p] = R[m1, p] + L[m1, p]\n",
                 "cycle L -> R -> L does not run through an iterative rank; a tensor may depend on itself only "
                 "through an earlier iterate, as RM[m1+1, p] = max(RM[m1, p], ...)", 10, 3,
                 id="cycle-within-one-iterate"),
    # -- iterative ranks without initialization or stop ------------------------
    pytest.param("cascade t\nranks K\ninput A[k]\neinsums:\n  S[k+1] = S[k] + A[k]\n",
                 "cycle S -> S is a recurrence over k, but k is not iterative; add a stopping condition, as "
                 "'iterate k until k >= K'", 5, 3, id="recurrence-without-stop"),
    pytest.param(ITERATIVE + "  R[m1+1, p] = R[m1, p] + S[p, m1]\n  S[p, m1+1] = S[p, m1]\n",
                 "recurrence S over m1 has no initialization; add an Einsum such as S[... m1 : m1 = 0 ...] = 0 "
                 "under 'init:'", 11, 3, id="recurrence-without-initialization"),
    pytest.param(ITERATIVE.replace("init:\n  R[m1 : m1 = 0, p] = 0\n", "") + "  R[m1+1, p] = R[m1, p] + 1\n",
                 "recurrence R over m1 has no initialization; add an Einsum such as R[... m1 : m1 = 0 ...] = 0 "
                 "under 'init:'", 8, 3, id="iterative-rank-without-initialization"),
    pytest.param(ITERATIVE + "  R[m1+1, p] = R[m1, p] + 1\n  S[p, m0+1] = S[p, m0]\n",
                 "cycle S -> S is a recurrence over m0, but m0 is not iterative; only one rank variable may be "
                 "iterative, and it is m1", 11, 3, id="second-iterative-variable"),
    pytest.param("cascade t\nranks K\ninput A[k]\neinsums:\n  Y = A[k]\n⋄ : k ≥ K\n",
                 "k is declared iterative, but no Einsum writes a next iterate such as X[k+1]", 6, 1,
                 id="stop-without-recurrence"),
    pytest.param("cascade t\nranks K\ninput A[k]\niterate k until k < K\ninit:\n  S[k : k = 0] = 0\n"
                 "einsums:\n  S[k+1] = S[k] + A[k]\n",
                 "a stopping condition has the form k >= N, k > N or k = N, not '<'", 4, 9, id="stop-form"),
    pytest.param("cascade t\nranks K M\ninput A[k]\niterate k until k >= m\ninit:\n  S[k : k = 0] = 0\n"
                 "einsums:\n  S[k+1] = S[k] + A[k]\n",
                 "the bound of a stopping condition uses rank sizes and integers only, not m", 4, 9, id="stop-bound"),
    pytest.param("cascade t\nranks K\ninput A[k]\niterate k until k >= K\niterate k until k >= K\n",
                 "a cascade has one iterative rank and it already has a stopping condition", 5, 1, id="stop-twice"),
    pytest.param(ITERATIVE + "  R[m1+2, p] = R[m1, p] + 1\n",
                 "a recurrence writes the next iterate, as R[..., m1+1, ...]; found m1+2", 10, 3, id="recurrence-step"),
    pytest.param(ITERATIVE + "  R[m1+1, p] = R[m1+2, p] + 1\n",
                 "R[m1 + 2, p] reads an iterate of R that R's Einsum has not written yet; a recurrence may read "
                 "the iterate it writes or earlier ones", 10, 16, id="recurrence-reads-ahead"),
    pytest.param(ITERATIVE + "  R[m1+1, p] = R[m1, p] + G[p]\n  G[p] = R[M1, p]\n",
                 "Einsum G reads the last iterate of a recurrence over m1 but feeds that recurrence; a recurrence "
                 "cannot depend on its own final value", 11, 3, id="final-iterate-feeds-recurrence"),
    pytest.param(ITERATIVE + "  R[m1+1, p] = R[m1, p] + G[p]\n  G[p] = R[m1, p]\n",
                 "Einsum G takes part in the recurrence over m1, so its output needs the index m1; it would "
                 "otherwise reduce or skip iterates", 11, 3, id="recurrence-reduces-iterative-rank"),
    pytest.param(ITERATIVE.replace("init:\n", "init:\n  W[p] = R[m1, p] :: max(m1)\n")
                 + "  R[m1+1, p] = R[m1, p] + 1\n",
                 "initialization Einsum W reads a tensor the recurrence over m1 computes; initialization runs "
                 "before the recurrence", 7, 3, id="initialization-reads-recurrence"),
    # -- operators -------------------------------------------------------------
    pytest.param("cascade t\noperator exp(x) charged as mul\n", "operator 'exp' is already defined", 2, 10,
                 id="operator-redefined"),
    pytest.param("cascade t\noperator f(x) charged as cosine\n",
                 "an operator is charged as built-in operators; 'cosine' is not one of add, div, exp, mac, max, min, "
                 "mul, sigmoid, sub, sub_exp", 2, 26, id="operator-charge"),
    pytest.param("cascade t\noperator f(x) charged as 0 mul\n", "a charge count is a positive integer, not '0'", 2, 26,
                 id="operator-charge-count"),
    pytest.param("cascade t\noperator f(x) charged as mul via sqrt\n",
                 "write the implementation as module:function, as numpy:sqrt, not 'sqrt'", 2, 30,
                 id="operator-implementation"),
    pytest.param("cascade t\noperator f(x) charged by mul\n", "expected 'as', found 'by'", 2, 23,
                 id="operator-charged-as"),
    pytest.param("cascade t\nranks K\noperator f(x, y) charged as mul\ninput A[k]\neinsums:\n  Y[k] = f(A[k])\n",
                 "f takes 2 argument(s), got 1", 6, 10, id="operator-arity"),
    pytest.param("cascade t\nranks K\noperator f(x, y) charged as mul\ninput A[k]\neinsums:\n  Y = A[k] :: f(k)\n",
                 "operator 'f' cannot reduce: a reduction needs a binary operator with an identity (add, max, min, "
                 "mul, or a user-defined operator declared with 'identity VALUE')", 6, 3, id="operator-reduce"),
    # -- references ------------------------------------------------------------
    pytest.param(HEADER + "reference Y = magic(A)\neinsums:\n  Y = A[k]\n",
                 "unknown reference function 'magic'; valid: contraction, dot_times_sum, layernorm, linear_attention, rmsnorm, "
                 "sigmoid_attention, softmax, softmax_attention", 4, 15, id="reference-unknown"),
    pytest.param(HEADER + "reference Y = softmax_attention(A, B)\neinsums:\n  Y = A[k]\n",
                 "softmax_attention takes 3 tensors (Q, K, V), got 2", 4, 15, id="reference-tensor-count"),
    pytest.param(HEADER + "reference Y = softmax(A, along=K)\neinsums:\n  Y = A[k]\n",
                 "softmax has no option 'along'; options: over", 4, 15, id="reference-option"),
    pytest.param(HEADER + "reference Y = softmax(A, over=Z)\neinsums:\n  Y = A[k]\n",
                 "option over=Z: 'Z' is not a rank; ranks: K M", 4, 15, id="reference-option-rank"),
    pytest.param(HEADER + "reference Y = softmax(A)\neinsums:\n  Y = A[k]\n",
                 "softmax needs the option over=...", 4, 15, id="reference-required-option"),
    pytest.param(HEADER + "reference Q = softmax(A, over=K)\neinsums:\n  Y = A[k]\n",
                 "the reference defines 'Q', which no Einsum writes", 4, 15, id="reference-output"),
    pytest.param(HEADER + "reference Y = softmax(C, over=K)\neinsums:\n  Y = A[k]\n",
                 "reference argument 'C' is not a tensor of the cascade", 4, 15, id="reference-tensor"),
    pytest.param(HEADER + "reference Y = softmax_attention(A, B, A, mask=upper)\neinsums:\n  Y = A[k]\n",
                 "option mask=upper: valid values are causal, none", 4, 15, id="reference-choice"),
    pytest.param(HEADER + "reference Y = layernorm(A, A, A, over=K, eps=tiny)\neinsums:\n  Y = A[k]\n",
                 "option eps=tiny: expected a number", 4, 15, id="reference-number"),
    pytest.param(HEADER + "reference Y = softmax(over=K, A)\neinsums:\n  Y = A[k]\n",
                 "tensor arguments come before options", 4, 31, id="reference-order"),
]


@pytest.mark.parametrize("text, reason, line, column", CASES)
def test_check_message_and_position(text, reason, line, column):
    if reason is None:
        parse_cascade(text, "bad.cascade")
        return
    with pytest.raises(CascadeError) as info:
        parse_cascade(text, "bad.cascade")
    error = info.value
    assert error.reason == reason
    assert error.position is not None
    assert (error.position.path, error.position.line, error.position.column) == ("bad.cascade", line, column)
    assert str(error) == f"bad.cascade:{line}:{column}: {reason}"


def test_map_action_merge_is_shared():
    cascade = parse_cascade(HEADER + "einsums:\n  Y[m] = A[k] * A[k] * B[k,m] :: ^_k *(U)\n")
    expr = cascade.einsum("Y").expr
    assert expr.merge == "union"
    assert expr.args[0].merge == "union"


def test_error_lists_one_line():
    with pytest.raises(CascadeError) as info:
        parse_cascade(HEADER + "einsums:\n  Y[k] = A[k] + Y[k]\n", "x.cascade")
    assert "\n" not in str(info.value)
