"""The printer: printed cascades parse back equal, for the library and for generated cascades."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from einsum_cascades.builder import CascadeBuilder, Node, as_expr, exp, maximum, minimum, sigmoid
from einsum_cascades.ir import Call
from einsum_cascades.operators import default_merge
from einsum_cascades.library import library_names, load_library_cascade
from einsum_cascades.printer import format_affine, format_cascade, format_einsum, format_expr
from einsum_cascades.syntax import parse_cascade


@pytest.mark.parametrize("unicode", [False, True], ids=["ascii", "unicode"])
@pytest.mark.parametrize("name", library_names())
def test_library_round_trip(name, unicode):
    cascade = load_library_cascade(name)
    text = format_cascade(cascade, unicode)
    assert parse_cascade(text) == cascade


def test_unicode_spelling_of_one_pass():
    text = format_cascade(load_library_cascade("attention-1pass"), unicode=True)
    assert "⋄ : m1 ≥ M1" in text
    assert "SLN[m1, m0, p] = e^{BQK[m1, m0, p] − RM[m1 + 1, p]}" in text
    assert "LM[m1, p] = BQK[m1, m0, p] :: ∨_m0 max(∪)" in text
    assert "BK[e, m1, m0] = K[e, m1×M0 + m0]" in text
    assert "RM[m1 : m1 = 0, p] = −∞" in text
    assert "partition M = M1 × M0" in text


def test_ascii_spelling_of_one_pass():
    text = format_cascade(load_library_cascade("attention-1pass"), unicode=False)
    assert "iterate m1 until m1 >= M1" in text
    assert "SLN[m1, m0, p] = exp(BQK[m1, m0, p] - RM[m1 + 1, p])" in text
    assert "LM[m1, p] = BQK[m1, m0, p] :: max(m0)" in text
    assert "RM[m1 : m1 = 0, p] = -inf" in text


def test_window_filter_prints_chained():
    text = format_cascade(load_library_cascade("attention-sliding-window"), unicode=True)
    assert "BK[e, m1, m0 : p − W < m1×M0 + m0 ≤ p]" in text


def test_explicit_merge_prints_map_action():
    cascade = load_library_cascade("sigmoid-attention")
    assert format_einsum(cascade.einsum("S")) == "S[m1, m0, p] = sigmoid(BQK[m1, m0, p] + BIAS) :: ^_m1 +(&)"
    assert format_einsum(cascade.einsum("S"), unicode=True) == "S[m1, m0, p] = σ(BQK[m1, m0, p] + BIAS) :: ∧_m1 +(∩)"


def test_operator_and_reference_statements():
    text = format_cascade(load_library_cascade("linear-attention"))
    assert "operator phi(x) charged as exp + add via einsum_cascades.operators:elu_plus_one" in text
    assert "reference O = linear_attention(Q, K, V, feature=phi)" in text


def test_parentheses_kept_where_needed():
    cascade = parse_cascade(
        "cascade t\nranks K\ninput A[k], B[k]\neinsums:\n"
        "  Y[k] = A[k] - (B[k] - A[k])\n  Z[k] = (A[k] + B[k]) * A[k] / (B[k] * A[k])\n  W[k] = A[k] - B[k] - A[k]\n"
    )
    assert format_expr(cascade.einsum("Y").expr) == "A[k] - (B[k] - A[k])"
    assert format_expr(cascade.einsum("Z").expr) == "(A[k] + B[k]) * A[k] / (B[k] * A[k])"
    assert format_expr(cascade.einsum("W").expr) == "A[k] - B[k] - A[k]"


def test_affine_negative_terms():
    cascade = parse_cascade("cascade t\nranks K M\ninput A[k]\neinsums:\n  Y[m] = A[-m + 2*K - 1]\n")
    assert format_affine(cascade.einsum("Y").accesses[0].indices[0].expr) == "-m + 2*K - 1"


def test_description_round_trip():
    cascade = parse_cascade("# One.\n#\n# Three.\ncascade t\nranks K\ninput A[k]\neinsums:\n  Y = A[k]\n")
    assert cascade.description == "One.\n\nThree."
    assert parse_cascade(format_cascade(cascade)) == cascade


# -- generated cascades ----------------------------------------------------------

BASE_RANKS = ["K", "N", "P"]
WORDS = st.text(alphabet="abcdefghij .,()-", min_size=1, max_size=20).map(str.strip).filter(bool)
CONSTANTS = st.one_of(
    st.integers(-5, 9),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([math.inf, -math.inf, 1e-05, 0.5]),
)
MERGES = ["intersection", "union", "one_sided", "pass_through"]


@st.composite
def cascades(draw):
    """Valid cascades built with the builder: random ranks, inputs, expressions, filters and actions."""
    description = "\n".join(draw(st.lists(WORDS, max_size=3)))
    c = CascadeBuilder("generated-" + draw(st.sampled_from(["a", "b1", "x-y"])), description)
    ranks = draw(st.lists(st.sampled_from(BASE_RANKS), min_size=1, max_size=3, unique=True))
    c.ranks(ranks)
    if draw(st.booleans()):
        c.ranks("B")
        c.batch("B")
    partitioned = draw(st.booleans())
    if partitioned:
        c.ranks("M")
        c.partition("M", "M1", "M0")
    phi = None
    if draw(st.booleans()):
        phi = c.operator("phi", None, charged_as={"exp": 1, "add": 2},
                         implementation=draw(st.sampled_from([None, "numpy:tanh"])))
    reductions = [None, "max", "min", "mul"]
    if draw(st.booleans()):
        c.operator("biggest", None, parameters=("a", "b"), charged_as="max", identity=-math.inf)
        reductions.append("biggest")

    available: dict[str, tuple[str, ...]] = {}
    for position in range(draw(st.integers(1, 3))):
        tensor_ranks = tuple(draw(st.lists(st.sampled_from(ranks), max_size=2, unique=True)))
        name = f"IN{position}"
        c.inputs(f"{name}[{','.join(r.lower() for r in tensor_ranks)}]")
        available[name] = tensor_ranks
    if partitioned:
        c.inputs("X[m]")
        available["X"] = ("M",)

    for number in range(draw(st.integers(1, 4))):
        used: list[str] = []

        def leaf():
            kind = draw(st.sampled_from(["access", "access", "constant", "size"]))
            if kind == "constant":
                return Node(as_expr(draw(CONSTANTS)))
            if kind == "size":
                return c.size(draw(st.sampled_from(ranks)))
            name = draw(st.sampled_from(sorted(available)))
            indices = []
            for rank in available[name]:
                if rank == "M":
                    indices.append("m1*M0 + m0")
                    used.extend(["m1", "m0"])
                    continue
                variable = rank.lower()
                used.append(variable)
                offset = draw(st.sampled_from(["", " + 1", " - 2"]))
                condition = draw(st.sampled_from(["", " : {v} <= {w}", " : {w} - 2 < {v} <= {w}", " : {v} != 1"]))
                indices.append(variable + offset + condition.format(v=variable, w=draw(st.sampled_from(
                    [variable] + [u for u in used if u != variable]))))
            handle = c.tensors(name)[0]
            return handle[tuple(indices)] if indices else handle.access()

        def expression(depth):
            if depth == 0 or draw(st.integers(0, 2)) == 0:
                return leaf()
            kind = draw(st.sampled_from(["+", "-", "*", "/", "max", "min", "exp", "sub_exp", "sigmoid", "phi"]))
            if kind in ("exp", "sigmoid"):
                return (exp if kind == "exp" else sigmoid)(expression(depth - 1))
            if kind == "phi" and phi is not None:
                return phi(expression(depth - 1))
            left, right = expression(depth - 1), expression(depth - 1)
            if kind == "sub_exp":
                return Node(Call("sub_exp", (as_expr(left), as_expr(right))))
            functions = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                         "/": lambda a, b: a / b, "max": maximum, "min": minimum}
            return functions.get(kind, maximum)(left, right)

        expr = expression(3)
        merge_for: dict[str, str] = {}
        expr = Node(_remerge(expr.expr, merge_for, draw))
        variables = list(dict.fromkeys(used))
        kept = draw(st.permutations(variables)) if variables else []
        kept = kept[: draw(st.integers(0, len(kept)))] if kept else []
        output_name = f"T{number}"
        output = c.tensors(output_name)[0]
        output_access = output[tuple(kept)] if kept else output
        reduced = [v for v in variables if v not in kept]
        reduce = draw(st.sampled_from(reductions)) if reduced else None
        populate = draw(st.sampled_from([None, None, "+=", "max="]))
        c.einsum(output_access, expr, reduce=reduce, populate=populate)
        available[output_name] = tuple(v.upper() for v in kept)

    if "K" in ranks and draw(st.booleans()):
        # A recurrence over k: its initialization, a step that reads the previous iterate, and the last iterate.
        c.iterate("k", until=draw(st.sampled_from(["k >= K", "k > K - 1"])))
        running, final = c.tensors("R FINAL")
        c.init(running["k : k = 0"], draw(CONSTANTS))
        step = running["k"] * 0.5 + 1 if draw(st.booleans()) else exp(running["k"] - 1)
        scalars = sorted(name for name, tensor_ranks in available.items() if not tensor_ranks)
        if scalars and draw(st.booleans()):
            step = maximum(step, c.tensors(draw(st.sampled_from(scalars)))[0].access())
        c.einsum(running["k+1"], step)
        c.einsum(final, running["K"])
    return c.build()


def _remerge(expr, merge_for, draw):
    """Give some operators a non-default merge, the same for every application of one operator."""
    if not isinstance(expr, Call):
        return expr
    args = tuple(_remerge(arg, merge_for, draw) for arg in expr.args)
    if expr.operator not in merge_for:
        merge_for[expr.operator] = draw(st.sampled_from([None, None, *MERGES]))
    merge = merge_for[expr.operator]
    return Call(expr.operator, args, None if merge == default_merge(expr.operator) else merge)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cascade=cascades(), unicode=st.booleans())
def test_generated_cascades_round_trip(cascade, unicode):
    text = format_cascade(cascade, unicode)
    assert parse_cascade(text) == cascade
    assert format_cascade(parse_cascade(text), unicode) == text
