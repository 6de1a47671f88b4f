"""Tests for the cascade text language: parsing, errors with positions, and counts."""

from __future__ import annotations

import math
from importlib import resources

import pytest

from einsum_cascades.counts import iteration_points, operator_counts, rank_sizes, tensor_elements
from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Condition,
    Constant,
    Index,
    Iteration,
    Partition,
    RankSize,
    Term,
)
from einsum_cascades.library import library_names, load_library_cascade
from einsum_cascades.syntax import load_cascade, parse_cascade


def library_text(name: str) -> str:
    return (resources.files("einsum_cascades.library") / f"{name}.cascade").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def one_pass():
    return load_library_cascade("attention-1pass")


@pytest.fixture(scope="module")
def three_pass():
    return load_library_cascade("attention-3pass")


# -- structure of the library cascades ----------------------------------------


def test_library_lists_both_attention_cascades():
    assert "attention-1pass" in library_names()
    assert "attention-3pass" in library_names()


def test_three_pass_declarations(three_pass):
    assert three_pass.name == "attention-3pass"
    assert three_pass.source == "attention-3pass.cascade"
    assert three_pass.description.startswith("The 3-pass attention cascade")
    assert three_pass.ranks == ("B", "H", "E", "F", "M", "P")
    assert three_pass.batch_ranks == ("B", "H")
    assert three_pass.partitions == ()
    assert three_pass.iteration is None
    assert three_pass.inputs == ("Q", "K", "V")
    assert three_pass.outputs == ("AV",)
    assert three_pass.initialization == ()


def test_three_pass_einsum_order(three_pass):
    assert [einsum.name for einsum in three_pass.einsums] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert not any(einsum.initialization for einsum in three_pass.einsums)


THREE_PASS_REDUCTIONS = {
    "QK": (("e",), "add"),
    "GM": (("m",), "max"),
    "SN": ((), "add"),
    "SD": (("m",), "add"),
    "A": ((), "add"),
    "AV": (("m",), "add"),
}


@pytest.mark.parametrize("name", sorted(THREE_PASS_REDUCTIONS))
def test_three_pass_reductions(three_pass, name):
    reduced, operator = THREE_PASS_REDUCTIONS[name]
    einsum = three_pass.einsum(name)
    assert einsum.reduced_variables == reduced
    assert einsum.reduce_operator == operator


def test_three_pass_tensor_ranks(three_pass):
    assert three_pass.tensors == {
        "Q": ("E", "P"),
        "K": ("E", "M"),
        "V": ("F", "M"),
        "QK": ("M", "P"),
        "GM": ("P",),
        "SN": ("M", "P"),
        "SD": ("P",),
        "A": ("M", "P"),
        "AV": ("F", "P"),
    }
    assert three_pass.tensor_ranks("QK") == ("B", "H", "M", "P")


def test_three_pass_expressions(three_pass):
    qk = three_pass.einsum("QK").expr
    assert isinstance(qk, Call)
    assert qk.operator == "mul"
    assert [arg.tensor for arg in qk.args] == ["Q", "K"]

    av = three_pass.einsum("AV").expr
    assert isinstance(av, Call)
    assert av.operator == "mul"
    assert [arg.tensor for arg in av.args] == ["A", "V"]

    sn = three_pass.einsum("SN").expr
    assert isinstance(sn, Call)
    assert sn.operator == "sub_exp"
    assert [arg.tensor for arg in sn.args] == ["QK", "GM"]

    a = three_pass.einsum("A").expr
    assert isinstance(a, Call)
    assert a.operator == "div"
    assert [arg.tensor for arg in a.args] == ["SN", "SD"]

    m_index = Index(AffineExpr((Term(1, ("m",)),)))
    p_index = Index(AffineExpr((Term(1, ("p",)),)))
    assert three_pass.einsum("GM").expr == Access("QK", (m_index, p_index))
    assert three_pass.einsum("SD").inputs == ("SN",)


def test_one_pass_declarations(one_pass):
    assert one_pass.name == "attention-1pass"
    assert one_pass.source == "attention-1pass.cascade"
    assert one_pass.description.startswith("The 1-pass attention cascade")
    assert one_pass.ranks == ("B", "H", "E", "F", "M", "P", "M1", "M0")
    assert one_pass.batch_ranks == ("B", "H")
    assert one_pass.partitions == (Partition("M", ("M1", "M0")),)
    assert one_pass.partition_of("M0") == Partition("M", ("M1", "M0"))
    assert one_pass.partition_of("P") is None
    assert one_pass.inputs == ("Q", "K", "V")
    assert one_pass.outputs == ("AV",)


def test_one_pass_iteration(one_pass):
    assert one_pass.iteration == Iteration("m1", Condition("m1", ">=", AffineExpr((Term(1, ("M1",)),))))


def test_one_pass_einsum_order(one_pass):
    assert [einsum.name for einsum in one_pass.initialization] == ["BK", "BV", "RM", "RD", "RNV"]
    assert [einsum.name for einsum in one_pass.einsums] == [
        "BQK", "LM", "RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV", "AV",
    ]
    assert all(einsum.initialization for einsum in one_pass.initialization)
    assert not any(einsum.initialization for einsum in one_pass.einsums)


ONE_PASS_REDUCTIONS = {
    "BQK": (("e",), "add"),
    "LM": (("m0",), "max"),
    "RM": ((), "add"),
    "SLN": ((), "add"),
    "SLD": (("m0",), "add"),
    "SLNV": (("m0",), "add"),
    "PRM": ((), "add"),
    "SPD": ((), "add"),
    "RD": ((), "add"),
    "SPNV": ((), "add"),
    "RNV": ((), "add"),
    "AV": ((), "add"),
}


@pytest.mark.parametrize("name", sorted(ONE_PASS_REDUCTIONS))
def test_one_pass_reductions(one_pass, name):
    reduced, operator = ONE_PASS_REDUCTIONS[name]
    einsum = one_pass.einsum(name)
    assert einsum.reduced_variables == reduced
    assert einsum.reduce_operator == operator


@pytest.mark.parametrize("name", ["BQK", "SLNV"])
def test_one_pass_sum_of_products(one_pass, name):
    expr = one_pass.einsum(name).expr
    assert isinstance(expr, Call)
    assert expr.operator == "mul"


def test_one_pass_tensor_ranks(one_pass):
    assert one_pass.tensors == {
        "Q": ("E", "P"),
        "K": ("E", "M"),
        "V": ("F", "M"),
        "BK": ("E", "M1", "M0"),
        "BV": ("F", "M1", "M0"),
        "RM": ("M1", "P"),
        "RD": ("M1", "P"),
        "RNV": ("F", "M1", "P"),
        "BQK": ("M1", "M0", "P"),
        "LM": ("M1", "P"),
        "SLN": ("M1", "M0", "P"),
        "SLD": ("M1", "P"),
        "SLNV": ("F", "M1", "P"),
        "PRM": ("M1", "P"),
        "SPD": ("M1", "P"),
        "SPNV": ("F", "M1", "P"),
        "AV": ("F", "P"),
    }
    assert one_pass.tensor_ranks("BQK") == ("B", "H", "M1", "M0", "P")


def test_one_pass_initialization(one_pass):
    bk, bv, rm, rd, rnv = one_pass.initialization

    m1_times_m0_plus_m0 = AffineExpr((Term(1, ("m1", "M0")), Term(1, ("m0",))))
    assert bk.expr == Access("K", (Index(AffineExpr((Term(1, ("e",)),))), Index(m1_times_m0_plus_m0)))
    assert bv.inputs == ("V",)
    assert bk.reduced_variables == ()

    first_tile = Condition("m1", "=", AffineExpr((Term(0, ()),)))
    assert rm.output.indices[0] == Index(AffineExpr((Term(1, ("m1",)),)), first_tile)
    assert isinstance(rm.expr, Constant)
    assert rm.expr.value == -math.inf
    assert rm.expr.text == "-inf"
    assert rd.expr == Constant(0.0, "0")
    assert rnv.output.indices[1].condition == first_tile
    assert rnv.expr == Constant(0.0, "0")


def test_one_pass_recurrence_indices(one_pass):
    next_tile = Index(AffineExpr((Term(1, ("m1",)), Term(1, ()))))
    assert one_pass.einsum("RM").output.indices[0] == next_tile
    assert one_pass.einsum("RD").output.indices[0] == next_tile
    assert one_pass.einsum("RNV").output.indices[1] == next_tile

    rm = one_pass.einsum("RM").expr
    assert isinstance(rm, Call)
    assert rm.operator == "max"
    assert [arg.tensor for arg in rm.args] == ["RM", "LM"]

    # AV reads the last iterate, so its index is the rank size M1.
    av = one_pass.einsum("AV")
    assert av.expr.operator == "div"
    assert av.expr.args[0].indices[1] == Index(AffineExpr((Term(1, ("M1",)),)))
    assert av.variables == ("f", "p")


def test_einsum_lookup_unknown_name(one_pass):
    with pytest.raises(KeyError, match="has no Einsum 'QK'"):
        one_pass.einsum("QK")


# -- operator counts ------------------------------------------------------------

ONE_PASS_COUNTS = {
    "BQK": {"mac": 1},
    "LM": {"max": 1},
    "RM": {"max": 1},
    "SLN": {"sub_exp": 1},
    "SLD": {"add": 1},
    "SLNV": {"mac": 1},
    "PRM": {"sub_exp": 1},
    "SPD": {"mul": 1},
    "RD": {"add": 1},
    "SPNV": {"mul": 1},
    "RNV": {"add": 1},
    "AV": {"div": 1},
}

THREE_PASS_COUNTS = {
    "QK": {"mac": 1},
    "GM": {"max": 1},
    "SN": {"sub_exp": 1},
    "SD": {"add": 1},
    "A": {"div": 1},
    "AV": {"mac": 1},
}


@pytest.mark.parametrize("name", list(ONE_PASS_COUNTS))
def test_one_pass_operator_counts(one_pass, name):
    assert operator_counts(one_pass.einsum(name)) == ONE_PASS_COUNTS[name]


@pytest.mark.parametrize("name", list(THREE_PASS_COUNTS))
def test_three_pass_operator_counts(three_pass, name):
    assert operator_counts(three_pass.einsum(name)) == THREE_PASS_COUNTS[name]


def test_count_tables_cover_every_einsum(one_pass, three_pass):
    assert [einsum.name for einsum in one_pass.einsums] == list(ONE_PASS_COUNTS)
    assert [einsum.name for einsum in three_pass.einsums] == list(THREE_PASS_COUNTS)


def test_initialization_costs_nothing(one_pass):
    for einsum in one_pass.initialization:
        assert operator_counts(einsum) == {}, einsum.name


def test_counts_of_nested_expression():
    cascade = parse_cascade(
        "cascade nested\n"
        "ranks K M\n"
        "input A[k], B[k,m]\n"
        "output Y[m], Z[m]\n"
        "einsums:\n"
        "  Y[m] = (A[k] + B[k,m]) * B[k,m]\n"
        "  Z[m] = sigmoid(A[k] * B[k,m]) :: max(k)\n"
    )
    # A sum-reduced product is one mac, and the add inside its operand counts apart.
    assert operator_counts(cascade.einsum("Y")) == {"mac": 1, "add": 1}
    # A max reduction does not fuse with the multiply.
    assert operator_counts(cascade.einsum("Z")) == {"sigmoid": 1, "mul": 1, "max": 1}


# -- rank sizes and exact iteration-space counts --------------------------------

# M is not a multiple of the tile M0, so the last of M1 = 4 tiles is partial.
SIZES = dict(B=2, H=3, E=64, F=32, M=1000, P=100, M0=256)
BATCH = SIZES["B"] * SIZES["H"]
E, F, M, P = SIZES["E"], SIZES["F"], SIZES["M"], SIZES["P"]
M1 = 4


def test_rank_sizes_partial_tile(one_pass):
    assert rank_sizes(one_pass, SIZES) == {**SIZES, "M1": M1}


@pytest.mark.parametrize("length, tiles", [(1, 1), (255, 1), (256, 1), (257, 2), (1000, 4), (1024, 4), (1025, 5)])
def test_rank_sizes_ceiling_division(one_pass, length, tiles):
    assert rank_sizes(one_pass, {**SIZES, "M": length})["M1"] == tiles


def test_rank_sizes_keeps_input(one_pass):
    sizes = dict(SIZES)
    rank_sizes(one_pass, sizes)
    assert "M1" not in sizes


def test_rank_sizes_without_partition(three_pass):
    sizes = dict(B=1, H=1, E=64, F=64, M=1000, P=1000)
    assert rank_sizes(three_pass, sizes) == sizes


@pytest.mark.parametrize("value", [0, -1, 2.5, "256", True, None])
def test_rank_sizes_rejects_invalid_size(one_pass, value):
    with pytest.raises(CascadeError, match=r"size of rank M0 must be a positive integer, got ") as info:
        rank_sizes(one_pass, {**SIZES, "M0": value})
    assert info.value.position is None


def test_rank_sizes_rejects_missing_tile(one_pass):
    sizes = {rank: size for rank, size in SIZES.items() if rank != "M0"}
    with pytest.raises(CascadeError, match=r"^partition M = M1 x M0 needs sizes for M0$"):
        rank_sizes(one_pass, sizes)


def test_rank_sizes_rejects_missing_whole_rank(one_pass):
    sizes = {rank: size for rank, size in SIZES.items() if rank != "M"}
    with pytest.raises(CascadeError, match=r"^partition M = M1 x M0 needs sizes for M$"):
        rank_sizes(one_pass, sizes)


def test_rank_sizes_rejects_missing_rank(three_pass):
    with pytest.raises(CascadeError, match=r"^missing size for rank\(s\) F, P$"):
        rank_sizes(three_pass, dict(B=1, H=1, E=64, M=1000))


ONE_PASS_POINTS = {
    "BK": BATCH * E * M,
    "BV": BATCH * F * M,
    "BQK": BATCH * M * P * E,
    "LM": BATCH * M * P,
    "RM": BATCH * M1 * P,
    "SLN": BATCH * M * P,
    "SLD": BATCH * M * P,
    "SLNV": BATCH * F * M * P,
    "PRM": BATCH * M1 * P,
    "SPD": BATCH * M1 * P,
    "RD": BATCH * M1 * P,
    "SPNV": BATCH * F * M1 * P,
    "RNV": BATCH * F * M1 * P,
    "AV": BATCH * F * P,
}


@pytest.mark.parametrize("name", list(ONE_PASS_POINTS))
def test_one_pass_iteration_points(one_pass, name):
    sizes = rank_sizes(one_pass, SIZES)
    einsums = {einsum.name: einsum for einsum in one_pass.einsums}
    einsums.setdefault("BK", one_pass.initialization[0])
    einsums.setdefault("BV", one_pass.initialization[1])
    assert iteration_points(one_pass, einsums[name], sizes) == ONE_PASS_POINTS[name]


def test_partial_tile_not_padded(one_pass):
    sizes = rank_sizes(one_pass, SIZES)
    points = iteration_points(one_pass, one_pass.einsum("BQK"), sizes)
    assert points == 2 * 3 * 1000 * 100 * 64
    assert points != 2 * 3 * 1024 * 100 * 64


THREE_PASS_POINTS = {
    "QK": BATCH * M * P * E,
    "GM": BATCH * M * P,
    "SN": BATCH * M * P,
    "SD": BATCH * M * P,
    "A": BATCH * M * P,
    "AV": BATCH * F * M * P,
}


@pytest.mark.parametrize("name", list(THREE_PASS_POINTS))
def test_three_pass_iteration_points(three_pass, name):
    sizes = rank_sizes(three_pass, SIZES)
    assert iteration_points(three_pass, three_pass.einsum(name), sizes) == THREE_PASS_POINTS[name]


ONE_PASS_ELEMENTS = {
    "Q": BATCH * E * P,
    "K": BATCH * E * M,
    "V": BATCH * F * M,
    "BK": BATCH * E * M,
    "BV": BATCH * F * M,
    "BQK": BATCH * M * P,
    "LM": BATCH * M1 * P,
    "SLN": BATCH * M * P,
    "SLNV": BATCH * F * M1 * P,
    "AV": BATCH * F * P,
}


@pytest.mark.parametrize("tensor", list(ONE_PASS_ELEMENTS))
def test_one_pass_tensor_elements(one_pass, tensor):
    sizes = rank_sizes(one_pass, SIZES)
    assert tensor_elements(one_pass, tensor, sizes) == ONE_PASS_ELEMENTS[tensor]


THREE_PASS_ELEMENTS = {
    "Q": BATCH * E * P,
    "K": BATCH * E * M,
    "QK": BATCH * M * P,
    "GM": BATCH * P,
    "SD": BATCH * P,
    "A": BATCH * M * P,
    "AV": BATCH * F * P,
}


@pytest.mark.parametrize("tensor", list(THREE_PASS_ELEMENTS))
def test_three_pass_tensor_elements(three_pass, tensor):
    sizes = rank_sizes(three_pass, SIZES)
    assert tensor_elements(three_pass, tensor, sizes) == THREE_PASS_ELEMENTS[tensor]


# -- Unicode and ASCII spellings ------------------------------------------------

SPELLING_HEADER = "cascade spelling\nranks K M\ninput A[k], B[k,m]\noutput Y[m]\neinsums:\n"


def parse_einsum(line: str):
    return parse_cascade(SPELLING_HEADER + line + "\n").einsum("Y")


@pytest.mark.parametrize(
    "unicode, ascii",
    [
        pytest.param("Y[m] = A[k] × B[k,m]", "Y[m] = A[k] * B[k,m]", id="times"),
        pytest.param("Y[m] = B[k,m] ÷ A[k]", "Y[m] = B[k,m] / A[k]", id="divide"),
        pytest.param("Y[m] = e^{B[k,m] - A[k]}", "Y[m] = exp(B[k,m] - A[k])", id="sub-exp"),
        pytest.param("Y[m] = e^(B[k,m] - A[k])", "Y[m] = exp(B[k,m] - A[k])", id="sub-exp-parentheses"),
        pytest.param("Y[m] = e^{B[k,m]}", "Y[m] = exp(B[k,m])", id="exp"),
        pytest.param("Y[m] = B[k,m] :: ∨_k max(∪)", "Y[m] = B[k,m] :: max(k)", id="max-reduce"),
        pytest.param("Y[m] = B[k,m] :: v_k max(U)", "Y[m] = B[k,m] :: max(k)", id="max-reduce-ascii-paper-form"),
        pytest.param("Y[m] = B[k,m] :: ∨_k +(∪)", "Y[m] = B[k,m]", id="sum-reduce"),
        pytest.param("Y[m] = B[k,m] :: +(k)", "Y[m] = B[k,m] :: sum(k)", id="plus-reduce"),
        pytest.param("Y[m] = B[k,m] :: add(k)", "Y[m] = B[k,m]", id="add-reduce"),
        pytest.param("Y[m] = B[k, m×1]", "Y[m] = B[k, m*1]", id="times-in-index"),
    ],
)
def test_spellings_parse_equal(unicode, ascii):
    assert parse_einsum(unicode) == parse_einsum(ascii)


def test_sub_exp_is_fused():
    expr = parse_einsum("Y[m] = e^{B[k,m] - A[k]}").expr
    assert isinstance(expr, Call)
    assert expr.operator == "sub_exp"
    assert [arg.tensor for arg in expr.args] == ["B", "A"]


def test_exp_of_sum_not_fused():
    expr = parse_einsum("Y[m] = exp(B[k,m] + A[k])").expr
    assert isinstance(expr, Call)
    assert expr.operator == "exp"
    assert expr.args[0].operator == "add"


def to_unicode(text: str) -> str:
    """Rewrite the statements of a cascade with ×, ÷, e^{a - b} and ∨_r max(∪), leaving comments alone."""
    lines = []
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            line = line.replace(" * ", " × ").replace(" / ", " ÷ ").replace("*", "×")
            line = line.replace("M1 x M0", "M1 × M0")
            line = line.replace(":: max(m0)", ":: ∨_m0 max(∪)").replace(":: max(m)", ":: ∨_m max(∪)")
            if "exp(" in line:
                line = line.replace("exp(", "e^{")
                line = line[: line.rindex(")")] + "}" + line[line.rindex(")") + 1 :]
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", ["attention-1pass", "attention-3pass"])
def test_library_in_unicode_parses_equal(name):
    ascii_text = library_text(name)
    unicode_text = to_unicode(ascii_text)
    assert "×" in unicode_text
    assert "÷" in unicode_text
    assert "e^{" in unicode_text
    assert "∨_m" in unicode_text
    assert "exp(" not in unicode_text.split("einsums:")[1]

    path = f"{name}.cascade"
    assert parse_cascade(unicode_text, path) == parse_cascade(ascii_text, path)


# -- small cases the parser accepts -----------------------------------------------


def test_scalar_output_dot_product():
    cascade = parse_cascade("cascade dot\nranks K\ninput A[k], B[k]\noutput Y\neinsums:\n  Y = A[k] * B[k]\n")
    assert cascade.tensors["Y"] == ()
    assert cascade.einsum("Y").reduced_variables == ("k",)


def test_index_minus_without_spaces():
    einsum = parse_einsum("Y[m] = B[k, m-1]")
    assert einsum.accesses[0].indices[1].expr == AffineExpr((Term(1, ("m",)), Term(-1, ())))


def test_hyphenated_cascade_name():
    cascade = parse_cascade("cascade causal-2pass-v1\nranks K\ninput A[k]\noutput Y\neinsums:\n  Y = A[k]\n")
    assert cascade.name == "causal-2pass-v1"


def test_einsum_on_section_line():
    cascade = parse_cascade("cascade t\nranks K\ninput A[k]\noutput Y\neinsums: Y = A[k]\n")
    assert [einsum.name for einsum in cascade.einsums] == ["Y"]


def test_description_from_leading_comments():
    text = (
        "# First line.\n#   Second line.\ncascade t\n# not part of it\n"
        "ranks K\ninput A[k]\noutput Y\neinsums:\n  Y = A[k]\n"
    )
    cascade = parse_cascade(text)
    assert cascade.description == "First line.\nSecond line."


def test_filtered_input_access():
    text = (
        "cascade prefix\nranks K I\ninput A[k]\noutput S[i]\n"
        "einsums:\n  S[i] = A[k: k <= i]\n"
    )
    access = parse_cascade(text).einsum("S").accesses[0]
    assert access.indices[0].condition == Condition("k", "<=", AffineExpr((Term(1, ("i",)),)))


def test_negative_constant():
    expr = parse_einsum("Y[m] = B[k,m] * -2.5").expr
    assert expr.args[1] == Constant(-2.5, "-2.5")


def test_load_cascade_from_file(tmp_path):
    path = tmp_path / "attention-3pass.cascade"
    path.write_text(library_text("attention-3pass"), encoding="utf-8")
    cascade = load_cascade(path)
    assert cascade.source == str(path)
    assert cascade == parse_cascade(library_text("attention-3pass"), str(path))


def test_load_unknown_library_cascade():
    with pytest.raises(CascadeError, match=r"unknown cascade 'attention-0pass'; library cascades: .*attention-1pass"):
        load_library_cascade("attention-0pass")


# -- error paths: message, line and column ----------------------------------------

HEADER = "cascade t\nranks K M\ninput A[k], B[k,m]\noutput Y[m]\n"


def einsum_line(line: str) -> str:
    """Return a cascade whose first Einsum, ``line``, is on line 6."""
    return HEADER + "einsums:\n" + line + "\n"


def init_line(line: str) -> str:
    """Return a cascade whose first initialization Einsum, ``line``, is on line 6."""
    return HEADER + "init:\n" + line + "\neinsums:\n  Y[m] = B[k,m]\n"


ERROR_CASES = [
    pytest.param(
        einsum_line("  Y[m] = A[k] $ B[k,m]"),
        "unexpected character '$'; expected a name, a number or an operator", 6, 15,
        id="unexpected-character",
    ),
    pytest.param(
        einsum_line("\tY[m] = B[k,m] @ 1"),
        "unexpected character '@'; expected a name, a number or an operator", 6, 16,
        id="unexpected-character-after-tab",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] ÷ A[k] ;"),
        "unexpected character ';'; expected a name, a number or an operator", 6, 24,
        id="unexpected-character-after-unicode",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] ? # a comment"),
        "unexpected character '?'; expected a name, a number or an operator", 6, 17,
        id="unexpected-character-before-comment",
    ),
    pytest.param(einsum_line("  Y[m] = B[k,"), "unexpected end of line", 6, 14, id="unexpected-end-of-line"),
    pytest.param(einsum_line("  Y[m] B[k,m]"), "expected '=', found 'B'", 6, 8, id="missing-equals"),
    pytest.param(
        einsum_line("  Y[m] = max(B[k,m], A[k]"), "expected ')', found end of line", 6, 26, id="unclosed-call"
    ),
    pytest.param(
        "cascade t\nranks K\ninput A[k], 3\n", "expected a tensor name, found '3'", 3, 13, id="expected-name"
    ),
    pytest.param("cascade t extra\n", "unexpected 'extra' at end of statement", 1, 11, id="trailing-token"),
    pytest.param("cascade\n", "expected a cascade name, found end of line", 1, 8, id="cascade-without-name"),
    pytest.param(
        "ranks K\ninput A[k]\noutput Y\neinsums:\n  Y = A[k]\n",
        "missing 'cascade NAME' statement", 1, 1,
        id="missing-cascade",
    ),
    pytest.param(HEADER, "the cascade has no Einsums; add an 'einsums:' section", 1, 1, id="no-einsums"),
    pytest.param(
        HEADER + "init:\n  Y[m] = B[k,m]\n",
        "the cascade has no Einsums; add an 'einsums:' section", 1, 1,
        id="only-initialization",
    ),
    pytest.param(
        HEADER + "  Y[m] = B[k,m]\n",
        "Einsum outside a section; write 'init:' or 'einsums:' before it", 5, 3,
        id="einsum-outside-section",
    ),
    pytest.param(
        "cascade t\nranks K m\n", "rank 'm' must start with an upper-case letter", 2, 9, id="lower-case-rank"
    ),
    pytest.param(
        "cascade t\nranks K\npartition M = M1 x M0\n",
        "undeclared rank 'M'; declared ranks: K", 3, 11,
        id="partition-undeclared-rank",
    ),
    pytest.param(
        "cascade t\nranks M\npartition M = M1 + M0\n",
        "expected 'x' between sub-ranks, found '+'", 3, 18,
        id="partition-separator",
    ),
    pytest.param(
        "cascade t\nranks M\npartition M = M1\n",
        "a partition needs at least two sub-ranks, as in 'M = M1 x M0'", 3, 11,
        id="partition-one-part",
    ),
    pytest.param(
        "cascade t\nranks K M\nbatch B\n", "undeclared rank 'B'; declared ranks: K M", 3, 7, id="batch-undeclared-rank"
    ),
    pytest.param(
        "cascade t\nranks K\ninput A[k, z]\n",
        "rank variable 'z' has no declared rank 'Z'; declared ranks: K", 3, 12,
        id="input-unknown-rank-variable",
    ),
    pytest.param(
        "cascade t\nranks K M\niterate m until k >= K\n",
        "the stopping condition must test 'm' alone on its left side, as in m >= N", 3, 17,
        id="iterate-tests-other-variable",
    ),
    pytest.param(
        "cascade t\nranks K M\ninput A[k], B[k,m]\noutput Y[m]\niterate z until z >= K\neinsums:\n  Y[m] = B[k,m]\n",
        "z is declared iterative, but no Einsum writes a next iterate such as X[z+1]", 5, 9,
        id="iterate-without-recurrence",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: prod(k)"),
        "unknown reduction operator 'prod'; valid: *, +, add, max, min, mul, sum", 6, 20,
        id="unknown-reduction-operator",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: ∨_k prod(∪)"),
        "unknown reduction operator 'prod'; valid: *, +, add, max, min, mul, sum", 6, 24,
        id="unknown-reduction-operator-paper-form",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: ∨_ k max(∪)"),
        "write the reduced rank after the underscore with no space, as in ∨_m0", 6, 20,
        id="reduction-space-after-underscore",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: ∨_k max(∩)"),
        "a reduction merges the values of one output coordinate with ∪ (or U), not '∩'", 6, 28,
        id="reduction-intersection-merge",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: ∨_k max(x)"),
        "unknown merge operator 'x'; use ∩ (or &), ∪ (or U), ← (or <-) or 1", 6, 28,
        id="unknown-merge-operator",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: max(m)"),
        "rank variable m is on the left of Y, so it cannot be reduced", 6, 20,
        id="reduction-list-wrong-rank",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] :: max()"),
        "rank variable k is on the right but neither on the left nor reduced; add it to Y's indices or to the "
        "reduction, as in :: max(k)", 6, 10,
        id="reduction-list-empty",
    ),
    pytest.param(
        einsum_line("  Y[k] = A[k] :: max(k)"),
        "rank variable k is on the left of Y, so it cannot be reduced", 6, 18,
        id="reduction-list-nothing-reduced",
    ),
    pytest.param(
        einsum_line("  Y[m] = log(B[k,m])"),
        "unknown operator 'log'; valid: add, div, exp, max, min, mul, sigmoid, sub, sub_exp, + - * /", 6, 10,
        id="unknown-function",
    ),
    pytest.param(einsum_line("  Y[m] = max(B[k,m])"), "max takes 2 argument(s), got 1", 6, 10, id="max-arity"),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] + exp(B[k,m], A[k])"), "exp takes 1 argument(s), got 2", 6, 19, id="exp-arity"
    ),
    pytest.param(
        einsum_line("  Y[m] = -B[k,m]"), "negation applies only to constants; write 0 - x", 6, 10, id="negated-tensor"
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m] *"), "expected an expression, found end of line", 6, 18, id="missing-operand"
    ),
    pytest.param(einsum_line("  Y[m] = )"), "expected an expression, found ')'", 6, 10, id="operator-as-operand"),
    pytest.param(
        init_line("  Y[m:m+0] = 0"),
        "expected a comparison (=, <, <=, >, >=, !=), found ']'", 6, 10,
        id="filter-without-comparison",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,1.5]"), "rank expressions take integers, not '1.5'", 6, 14, id="non-integer-index"
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,(m)]"),
        "expected a rank variable, a rank size or an integer, found '('", 6, 14,
        id="parenthesis-in-index",
    ),
    pytest.param(
        einsum_line("  Y[m] = C[k,m]"), "undefined tensor 'C'; defined tensors: A, B, Y", 6, 10, id="undefined-tensor"
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k]"),
        "tensor B has 2 rank(s) [K, M] but is accessed with 1 index(es)", 6, 10,
        id="wrong-index-count",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m]\n  Y[k] = A[k]"),
        "tensor Y written with ranks [K] but declared with [M]", 7, 3,
        id="inconsistent-write",
    ),
    pytest.param(
        einsum_line("  A[m] = B[k,m]\n  Y[m] = B[k,m]"),
        "tensor A written with ranks [M] but declared with [K]", 6, 3,
        id="input-written-with-other-ranks",
    ),
    pytest.param(
        einsum_line("  Z[m] = B[k,m]"), "output 'Y' is never written by an Einsum", 4, 8, id="output-never-written"
    ),
    pytest.param(
        einsum_line("  Y[k] = A[k]"),
        "output Y declared with ranks [M] but written with [K]", 4, 8,
        id="output-written-with-other-ranks",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,z]"), "unknown rank variable 'z'; rank variables: k, m", 6, 10, id="unknown-variable"
    ),
    pytest.param(
        init_line("  Y[m:z=0] = 0"),
        "rank variable z appears only in a filter; a filter may test the rank variables that index the output "
        "or an operand (m)", 6, 3,
        id="filter-only-variable",
    ),
    pytest.param(
        einsum_line("  Y[m] = B[k,m*Z]"), "unknown rank size 'Z'; ranks: K, M", 6, 10, id="unknown-rank-size"
    ),
    pytest.param(
        einsum_line("  Y[0] = B[k,m]"),
        "each output index must use exactly one rank variable (such as m1 or m1+1); write one fixed coordinate "
        "as a filter, as RM[m1 : m1 = 0, p]", 6, 3,
        id="output-index-constant",
    ),
    pytest.param(
        einsum_line("  Y[m+k] = B[k,m]"),
        "each output index must use exactly one rank variable (such as m1 or m1+1); write one fixed coordinate "
        "as a filter, as RM[m1 : m1 = 0, p]", 6, 3,
        id="output-index-two-variables",
    ),
]


@pytest.mark.parametrize("text, reason, line, column", ERROR_CASES)
def test_parse_error_position(text, reason, line, column):
    with pytest.raises(CascadeError) as info:
        parse_cascade(text, "bad.cascade")
    error = info.value
    assert error.reason == reason
    assert error.position is not None
    assert error.position.path == "bad.cascade"
    assert error.position.line == line
    assert error.position.column == column
    assert str(error).startswith(f"bad.cascade:{line}:{column}: ")
    assert str(error).endswith(reason)


def test_load_cascade_error_names_file(tmp_path):
    path = tmp_path / "broken.cascade"
    path.write_text(HEADER + "einsums:\n  Y[m] = B[k,m] :: prod(k)\n", encoding="utf-8")
    with pytest.raises(CascadeError) as info:
        load_cascade(path)
    assert str(info.value).startswith(f"{path}:6:20: unknown reduction operator 'prod'")


# -- more spellings: the FuseMax paper's Unicode symbols and their ASCII forms --------

FILTER_HEADER = "cascade spelling\nranks K M\ninput A[k], B[k,m]\noutput Y[m]\neinsums:\n"


@pytest.mark.parametrize(
    "unicode, ascii",
    [
        pytest.param("Y[m] = A[k] · B[k,m] :: ∧_k ×(∩)", "Y[m] = A[k] . B[k,m] :: ^_k *(&)", id="generic-map"),
        pytest.param("Y[m] = A[k] · B[k,m] :: ∧_k ×(∩)", "Y[m] = A[k] * B[k,m]", id="generic-map-is-multiply"),
        pytest.param("Y[m] = A[k] · B[k,m] :: ∧_k max(∪)", "Y[m] = max(A[k], B[k,m])", id="generic-map-max"),
        pytest.param("Y[m] = B[k,m] · A[k] :: ∧_k ÷(←)", "Y[m] = B[k,m] / A[k]", id="generic-map-divide"),
        pytest.param("Y[m] = A[k] + B[k,m] :: ∧_k +(∩)", "Y[m] = A[k] + B[k,m] :: ^_k +(&)", id="map-intersection"),
        pytest.param("Y[m] = A[k] × B[k,m] :: ∧_k ×(∪)", "Y[m] = A[k] * B[k,m] :: ^_k *(U)", id="map-union"),
        pytest.param("Y[m] = A[k] + B[k,m] :: ∧_k +(←)", "Y[m] = A[k] + B[k,m] :: ^_k +(<-)", id="map-one-sided"),
        pytest.param("Y[m] = e^{B[k,m]} :: ∧_k exp(1)", "Y[m] = exp(B[k,m]) :: ^ exp(1)", id="map-pass-through"),
        pytest.param("Y[m] = A[k : k ≤ m] − B[k,m]", "Y[m] = A[k : k <= m] - B[k,m]", id="less-equal-minus"),
        pytest.param("Y[m] = A[k : k ≥ m and k ≠ 2]", "Y[m] = A[k : k >= m and k != 2]", id="greater-not-equal"),
        pytest.param("Y[m] = A[k : m − 2 < k ≤ m]", "Y[m] = A[k : m - 2 < k and k <= m]", id="window-chained"),
        pytest.param("Y[m] = A[k : k == m]", "Y[m] = A[k : k = m]", id="double-equals"),
        pytest.param("Y[m] = σ(B[k,m])", "Y[m] = sigmoid(B[k,m])", id="sigmoid"),
        pytest.param("Y[m] = max(B[k,m], −∞)", "Y[m] = max(B[k,m], -inf)", id="infinity"),
        pytest.param("Y[m] = B[k,m] :: ∨_{k} max(∪)", "Y[m] = B[k,m] :: v_{k} max(U)", id="braced-subscript"),
        pytest.param("Y[m] = B[k,m] :: ∨_k ×(∪)", "Y[m] = B[k,m] :: mul(k)", id="product-reduce"),
        pytest.param("Y[m] = B[k,m] /* a comment */ × A[k]", "Y[m] = B[k,m] * A[k]", id="block-comment"),
        pytest.param("Y[m] = A[k] × B[k,m] # comment", "Y[m] = mul(A[k], B[k,m])", id="function-form"),
        pytest.param("Y[m] = e^{A[k] − B[k,m]}", "Y[m] = sub_exp(A[k], B[k,m])", id="sub-exp-function"),
    ],
)
def test_more_spellings_parse_equal(unicode, ascii):
    def einsum(line):
        return parse_cascade(FILTER_HEADER + "  " + line + "\n").einsum("Y")

    assert einsum(unicode) == einsum(ascii)


def test_paper_sections_and_diamond():
    paper = (
        "cascade s\nranks K\ninput A[k]\noutput Z\nInitialization:\n  S[i : i = 0] = 0\n"
        "Extended Einsums:\n  S[i+1] = S[i] + A[i]\n  Z = S[K]\n  ⋄ : i ≥ K\n"
    )
    ascii = (
        "cascade s\nranks K\ninput A[k]\noutput Z\niterate i until i >= K\ninit:\n  S[i : i = 0] = 0\n"
        "einsums:\n  S[i+1] = S[i] + A[i]\n  Z = S[K]\n"
    )
    assert parse_cascade(paper) == parse_cascade(ascii)
    assert parse_cascade(paper).ranks == ("K", "I")


def test_multiline_block_comment_keeps_positions():
    text = "cascade t\n/* one\n   two */ ranks K\ninput A[k]\neinsums:\n  Y = A[k] + Q\n"
    with pytest.raises(CascadeError) as info:
        parse_cascade(text, "c.cascade")
    assert (info.value.position.line, info.value.position.column) == (6, 14)


def test_populate_spellings():
    cascade = parse_cascade(FILTER_HEADER + "  Y[m] += B[k,m]\n  Z[m] min= B[k,m]\n")
    assert cascade.einsum("Y").populate == "add"
    assert cascade.einsum("Z").populate == "min"


def test_rank_size_as_value():
    cascade = parse_cascade(FILTER_HEADER + "  Y[m] = B[k,m] / K\n")
    assert cascade.einsum("Y").expr.args[1] == RankSize("K")


def test_einsum_cascades_imports_nothing_from_fusemax():
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, einsum_cascades\n"
        "for info in pkgutil.walk_packages(einsum_cascades.__path__, 'einsum_cascades.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m == 'fusemax' or m.startswith('fusemax.')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
