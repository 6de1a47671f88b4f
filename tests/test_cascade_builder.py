"""The Python builder makes the same IR as the text language, and reports errors at the calling line."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest

from einsum_cascades.builder import CascadeBuilder, exp, maximum, sigmoid
from einsum_cascades.errors import CascadeError
from einsum_cascades.execute import execute
from einsum_cascades.library import load_library_cascade
from einsum_cascades.operators import elu_plus_one


def one_pass_builder(window: bool = False) -> CascadeBuilder:
    c = CascadeBuilder("attention-sliding-window" if window else "attention-1pass")
    c.ranks("B H E F M P W" if window else "B H E F M P")
    c.batch("B H")
    c.partition("M", "M1", "M0")
    Q, K, V = c.inputs("Q[e,p]", "K[e,m]", "V[f,m]")
    c.outputs("AV[f,p]")
    c.iterate("m1", until="m1 >= M1")
    c.reference("AV", "softmax_attention", "Q", "K", "V", **({"window": "W"} if window else {}))
    BK, BV, RM, RD, RNV = c.tensors("BK BV RM RD RNV")
    BQK, LM, SLN, SLD, SLNV, PRM, SPD, SPNV, AV = c.tensors("BQK LM SLN SLD SLNV PRM SPD SPNV AV")
    m1, m0, p = c.variables("m1 m0 p")
    (M0, W) = c.variables("M0 W")

    c.init(BK["e", "m1", "m0"], K["e", m1 * M0 + m0])
    c.init(BV["f", "m1", "m0"], V["f", "m1*M0 + m0"])
    c.init(RM["m1 : m1 = 0", "p"], -math.inf)
    c.init(RD[m1.where(m1.eq(0)), "p"], 0)
    c.init(RNV["f", "m1 : m1 = 0", "p"], 0)

    key = m0.where(p - W < m1 * M0 + m0, m1 * M0 + m0 <= p) if window else "m0"
    c.einsum(BQK["m1", "m0", "p"], Q["e", "p"] * BK["e", "m1", key])
    c.einsum(LM["m1", "p"], BQK["m1", "m0", "p"], reduce="max")
    c.einsum(RM["m1+1", "p"], maximum(RM["m1", "p"], LM["m1", "p"]))
    c.einsum(SLN["m1", "m0", "p"], exp(BQK["m1", "m0", "p"] - RM["m1+1", "p"]))
    c.einsum(SLD["m1", "p"], SLN["m1", "m0", "p"])
    c.einsum(SLNV["f", "m1", "p"], SLN["m1", "m0", "p"] * BV["f", "m1", "m0"])
    c.einsum(PRM["m1", "p"], exp(RM["m1", "p"] - RM["m1+1", "p"]))
    c.einsum(SPD["m1", "p"], RD["m1", "p"] * PRM["m1", "p"])
    c.einsum(RD["m1+1", "p"], SLD["m1", "p"] + SPD["m1", "p"])
    c.einsum(SPNV["f", "m1", "p"], RNV["f", "m1", "p"] * PRM["m1", "p"])
    c.einsum(RNV["f", "m1+1", "p"], SLNV["f", "m1", "p"] + SPNV["f", "m1", "p"])
    c.einsum(AV["f", "p"], RNV["f", "M1", "p"] / RD["M1", "p"])
    return c


def test_builder_one_pass_equals_library():
    built = one_pass_builder().build()
    library = load_library_cascade("attention-1pass")
    assert built.einsums == library.einsums
    assert built.initialization == library.initialization
    assert built.iteration == library.iteration
    assert built.reference == library.reference
    assert built.tensors == library.tensors


def test_builder_window_equals_library_einsums():
    built = one_pass_builder(window=True).build()
    library = load_library_cascade("attention-sliding-window")
    assert built.einsums == library.einsums
    assert built.reference == library.reference


def test_builder_linear_attention_equals_library():
    c = CascadeBuilder("linear-attention")
    c.ranks("B H E F M P")
    c.batch("B H")
    phi = c.operator("phi", elu_plus_one, charged_as={"exp": 1, "add": 1})
    Q, K, V = c.inputs("Q[e,p]", "K[e,m]", "V[f,m]")
    c.outputs("O[f,p]")
    c.reference("O", "linear_attention", "Q", "K", "V", feature="phi")
    KF, QF, KV, Z, N, D, O = c.tensors("KF QF KV Z N D O")
    c.einsum(KF["e", "m"], phi(K["e", "m"]))
    c.einsum(QF["e", "p"], phi(Q["e", "p"]))
    c.einsum(KV["e", "f"], KF["e", "m"] * V["f", "m"])
    c.einsum(Z["e"], KF["e", "m"])
    c.einsum(N["f", "p"], QF["e", "p"] * KV["e", "f"])
    c.einsum(D["p"], QF["e", "p"] * Z["e"])
    c.einsum(O["f", "p"], N["f", "p"] / D["p"])
    built = c.build()
    library = load_library_cascade("linear-attention")
    assert built.operators == library.operators
    assert built.operators[0].implementation == "einsum_cascades.operators:elu_plus_one"
    assert built == library.__class__(**{**library.__dict__, "description": built.description, "name": built.name})


def test_builder_runs_with_python_function():
    c = CascadeBuilder("scaled")
    c.ranks("K")
    twice = c.operator("twice", lambda x: 2 * x, charged_as="mul")
    (A,) = c.inputs("A[k]")
    (Y,) = c.tensors("Y")
    c.einsum(Y["k"], twice(A["k"]) + 1)
    cascade = c.build()
    assert cascade.operators[0].implementation is None
    result = execute(cascade, {"K": 3}, {"A": np.array([1.0, 2.0, 3.0])})
    assert np.array_equal(result.tensor("Y"), [3.0, 5.0, 7.0])


def test_builder_merge_and_populate():
    c = CascadeBuilder("merge")
    c.ranks("K")
    A, BIAS = c.inputs("A[k]", "BIAS")
    S, T = c.tensors("S T")
    c.init(T, 1)
    c.einsum(S["k"], sigmoid((A["k : k <= 1"] + BIAS.access()).merge("∩")))
    c.einsum(T, A["k"], reduce="max", populate="max=")
    cascade = c.build()
    assert cascade.einsum("S").expr.args[0].merge == "intersection"
    assert cascade.einsum("T").populate == "max"
    assert cascade.einsum("T").reduce_operator == "max"


def test_builder_rank_size_value():
    c = CascadeBuilder("mean")
    c.ranks("K")
    (A,) = c.inputs("A[k]")
    S, Y = c.tensors("S Y")
    c.einsum(S, A["k"])
    c.einsum(Y, S.access() / c.size("K"))
    result = execute(c.build(), {"K": 4}, {"A": np.array([1.0, 2.0, 3.0, 6.0])})
    assert float(result.tensor("Y")) == 3.0


def line_of(marker: str) -> int:
    source, _ = inspect.getsourcelines(inspect.getmodule(line_of))
    for offset, line in enumerate(source):
        if marker in line and "line_of(" not in line:
            return offset + 1
    raise AssertionError(marker)


def test_builder_error_points_at_call():
    c = CascadeBuilder("bad")
    c.ranks("K M")
    A, B = c.inputs("A[k]", "B[k,m]")
    (Y,) = c.tensors("Y")
    c.einsum(Y["m"], B["k", "m"] * Q_missing(c)["k"])  # marker: undefined-tensor
    with pytest.raises(CascadeError) as info:
        c.build()
    assert info.value.reason == "undefined tensor 'Q'; defined tensors: A, B, Y"
    assert info.value.position.path == __file__
    assert info.value.position.line == line_of("marker: undefined-tensor")


def Q_missing(c):
    return c.tensors("Q")[0]


def test_builder_reduction_error_is_immediate():
    c = CascadeBuilder("bad")
    c.ranks("K M")
    (B,) = c.inputs("B[k,m]")
    (Y,) = c.tensors("Y")
    with pytest.raises(CascadeError) as info:
        c.einsum(Y, B["k", "m"], reduce=("max", ["k"]))  # marker: not-reduced
    assert info.value.reason.startswith("rank variable m is on the right but neither on the left nor reduced")
    assert info.value.position.line == line_of("marker: not-reduced")


def test_builder_index_syntax_error():
    c = CascadeBuilder("bad")
    c.ranks("K")
    (A,) = c.inputs("A[k]")
    with pytest.raises(CascadeError) as info:
        A["k +"]  # marker: index-syntax
    assert info.value.reason == "in index 'k +': unexpected end of line"
    assert info.value.position.line == line_of("marker: index-syntax")


def test_builder_cycle_error():
    c = CascadeBuilder("bad")
    c.ranks("K")
    (A,) = c.inputs("A[k]")
    Y, Z = c.tensors("Y Z")
    c.einsum(Y["k"], A["k"] + Z["k"])  # marker: cycle
    c.einsum(Z["k"], Y["k"])
    with pytest.raises(CascadeError, match=r"^.*: cycle Y -> Z -> Y does not run through an iterative rank") as info:
        c.build()
    assert info.value.position.line == line_of("marker: cycle")


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda c: c.ranks("k"), "rank 'k' must start with an upper-case letter"),
        (lambda c: c.ranks("K"), "rank K is declared twice"),
        (lambda c: c.batch("Z"), "undeclared rank 'Z'; declared ranks: K"),
        (lambda c: c.partition("K", "K1"), "a partition needs at least two sub-ranks"),
        (lambda c: c.inputs("A[z]"), "rank variable 'z' has no declared rank 'Z'; declared ranks: K"),
        (lambda c: c.iterate("k", until="k >= K and k >= 1"), "a stopping condition is one comparison"),
        (lambda c: c.variables("k")[0] * c.variables("k")[0], "a rank expression is affine"),
        (lambda c: c.variables("k")[0] + 1.5, "a rank expression combines rank variables"),
        (lambda c: c.einsum(c.tensors("Y")[0], "text"), "an expression is a tensor access, a number"),
        (lambda c: c.einsum(c.tensors("Y")[0], math.nan), "a constant may not be NaN"),
        (lambda c: c.einsum(c.tensors("Y")[0], 1, populate="*="), "unknown populate action '*='"),
        (lambda c: c.einsum(exp(1), 1), "the left-hand side of an Einsum is one tensor access"),
        (lambda c: c.tensors("Y")[0][1.5], "an index is a rank expression"),
        (lambda c: exp(1).merge("sideways").expr, "unknown merge 'sideways'"),
        (lambda c: c.tensors("Y")[0].access().merge("union"), "only an operator application has a merge"),
    ],
)
def test_builder_argument_errors(action, message):
    c = CascadeBuilder("bad")
    c.ranks("K")
    with pytest.raises(CascadeError, match=re.escape(message)) as info:
        action(c)
    assert info.value.position.path == __file__
