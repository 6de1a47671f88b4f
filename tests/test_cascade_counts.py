"""Symbolic counts: operators per Einsum and in total, footprints, filtered spaces, and the FuseMax energy model."""

from __future__ import annotations

import itertools

import pytest
import sympy

from einsum_cascades.counts import iteration_points, rank_sizes
from einsum_cascades.library import load_library_cascade
from einsum_cascades.points import count_points
from einsum_cascades.symbolic import symbolic_counts
from einsum_cascades.syntax import parse_cascade
from fusemax.arch import load_architecture
from fusemax.mapping import load_mapping
from fusemax.model.evaluate import evaluate
from fusemax.workloads import model_workload


def unit_actions(totals: dict, arch_name: str, array: str = "array1d") -> dict:
    """Apply an architecture's operator costs to operator counts: unit name -> actions."""
    operators = load_architecture(arch_name).array(array).operators
    actions: dict = {}
    for operator, count in totals.items():
        for unit, per_application in operators[operator].actions.items():
            actions[unit] = actions.get(unit, 0) + count * per_application
    return {unit: sympy.expand(value) for unit, value in actions.items()}


def fusemax_units(s):
    """Unit actions of the FuseMax cascade in the FuseMax energy model (closed form, 16-bit words)."""
    B, H, E, F, M, P, M1 = (s[r] for r in ("B", "H", "E", "F", "M", "P", "M1"))
    bhmp, bhm1p = B * H * M * P, B * H * M1 * P
    return {
        "mac": sympy.expand(bhmp * (E + F + 6) + bhm1p * (7 + F)),
        "max": sympy.expand(bhmp + bhm1p),
        "add": sympy.expand(2 * bhmp + bhm1p * (2 + F)),
        "divide": sympy.expand(B * H * P * F),
    }


def test_one_pass_counts_times_fusemax_costs():
    counts = symbolic_counts(load_library_cascade("attention-1pass"))
    assert unit_actions(counts.total_charged, "fusemax-cloud") == fusemax_units(counts.symbols)


def test_one_pass_counts_per_batch_element_times_bh():
    counts = symbolic_counts(load_library_cascade("attention-1pass"), batch=False)
    s = counts.symbols
    scaled = {op: count * s["B"] * s["H"] for op, count in counts.total_charged.items()}
    assert unit_actions(scaled, "fusemax-cloud") == fusemax_units(s)


def test_one_pass_counts_match_the_model_actions():
    arch = load_architecture("fusemax-cloud")
    mapping, row = load_mapping("fusemax-binding")
    workload = model_workload("BERT", 4096)
    result = evaluate(arch, mapping, workload, row)
    model_actions: dict = {}
    for einsum in result.per_einsum.values():
        for unit, count in einsum.actions.items():
            model_actions[unit] = model_actions.get(unit, 0) + count
    counts = symbolic_counts(load_library_cascade("attention-1pass"))
    sizes = {rank: result.factors.rank_size[rank] for rank in ("B", "H", "E", "F", "M", "P", "M0")}
    full = rank_sizes(counts.cascade, sizes)
    values = {counts.symbols[rank]: size for rank, size in full.items()}
    ours = {unit: int(expr.subs(values)) for unit, expr in unit_actions(counts.total_charged, "fusemax-cloud").items()}
    assert ours == {unit: int(count) for unit, count in model_actions.items()}


def test_three_pass_counts_times_flat_costs():
    counts = symbolic_counts(load_library_cascade("attention-3pass"))
    s = counts.symbols
    bhmp = s["B"] * s["H"] * s["M"] * s["P"]
    assert unit_actions(counts.total_charged, "flat-cloud") == {
        "mac": sympy.expand(bhmp * (s["E"] + s["F"])),
        "max": bhmp,
        "exponential": bhmp,
        "add": 2 * bhmp,
        "divide": bhmp,
    }


def test_per_einsum_counts():
    counts = symbolic_counts(load_library_cascade("attention-1pass"), batch=False)
    s = counts.symbols
    by_name = {(entry.name, entry.initialization): entry for entry in counts.einsums}
    assert by_name[("BQK", False)].operators == {"mac": s["E"] * s["M"] * s["P"]}
    assert by_name[("PRM", False)].operators == {"sub_exp": s["M1"] * s["P"]}
    assert by_name[("AV", False)].operators == {"div": s["F"] * s["P"]}
    assert by_name[("RM", True)].operators == {}
    assert by_name[("RM", True)].points == s["P"]
    assert counts.relations == {s["M1"]: sympy.ceiling(s["M"] / s["M0"])}


def test_footprints():
    counts = symbolic_counts(load_library_cascade("attention-1pass"), batch=False)
    s = counts.symbols
    assert counts.footprints["BQK"] == s["M"] * s["P"]
    assert counts.footprints["RM"] == (s["M1"] + 1) * s["P"]
    assert counts.footprints["RNV"] == s["F"] * (s["M1"] + 1) * s["P"]
    assert counts.footprints["SLNV"] == s["F"] * s["M1"] * s["P"]


def test_charged_user_operator():
    counts = symbolic_counts(load_library_cascade("linear-attention"), batch=False)
    s = counts.symbols
    assert counts.total["phi"] == s["E"] * s["M"] + s["E"] * s["P"]
    assert counts.total_charged["exp"] == s["E"] * s["M"] + s["E"] * s["P"]
    assert "phi" not in counts.total_charged


def test_iterative_rank_relation():
    counts = symbolic_counts(load_library_cascade("cascade3"))
    s = counts.symbols
    assert counts.relations == {s["I"]: s["K"]}
    assert counts.total_charged == {"add": 2 * s["I"], "mul": 3 * s["I"], "div": s["I"]}


def brute_force_points(cascade, einsum, sizes):
    """Count the points of ``einsum`` by visiting every coordinate."""
    variables = einsum.variables
    count = 0
    for coordinates in itertools.product(*(range(sizes[v.upper()]) for v in variables)):
        values = dict(zip(variables, coordinates)) | sizes
        if not all(_holds(condition, values) for condition in einsum.filters):
            continue
        if not all(_within(partition, values) for partition in cascade.partitions if
                   all(part.lower() in variables for part in partition.parts)):
            continue
        count += 1
    batch = 1
    for rank in cascade.batch_ranks:
        batch *= sizes[rank]
    return count * batch


def _holds(condition, values):
    left, right = condition.left.evaluate(values), condition.right.evaluate(values)
    return {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[condition.operator]


def _within(partition, values):
    coordinate = 0
    for part in partition.parts:
        coordinate = coordinate * values[part] + values[part.lower()]
    return coordinate < values[partition.rank]


FILTERED = [
    ("attention-1pass-causal", "BQK", dict(B=1, H=2, E=2, F=1, M=11, P=9, M0=4)),
    ("attention-1pass-causal", "BQK", dict(B=1, H=1, E=1, F=1, M=7, P=13, M0=3)),
    ("attention-sliding-window", "BQK", dict(B=1, H=1, E=1, F=1, M=13, P=13, M0=4, W=3)),
    ("attention-sliding-window", "BQK", dict(B=1, H=1, E=3, F=1, M=9, P=20, M0=5, W=7)),
    ("attention-1pass", "RM", dict(B=1, H=1, E=1, F=1, M=9, P=4, M0=4)),
]


@pytest.mark.parametrize("name, einsum_name, sizes", FILTERED)
def test_filtered_points(name, einsum_name, sizes):
    cascade = load_library_cascade(name)
    full = rank_sizes(cascade, sizes)
    einsum = cascade.einsum(einsum_name)
    expected = brute_force_points(cascade, einsum, full)
    assert count_points(cascade, einsum, full) == expected
    assert iteration_points(cascade, einsum, full) == expected
    counts = symbolic_counts(cascade)
    entry = next(e for e in counts.einsums if e.name == einsum_name and not e.initialization)
    values = {counts.symbols[rank]: size for rank, size in full.items()}
    assert int(entry.points.subs(values).doit()) == expected
    assert counts.evaluate(sizes)[einsum_name]["points"] == expected


@pytest.mark.parametrize(
    "filters",
    ["k <= m", "k < m", "k >= m", "k > m - 2", "k = m", "k != m", "2*k <= m + 1", "m - 3 < k <= m", "k != 2"],
)
def test_filtered_points_for_each_comparison(filters):
    cascade = parse_cascade(f"cascade t\nranks K M\ninput A[k]\neinsums:\n  S[m] = A[k : {filters}]\n")
    sizes = {"K": 6, "M": 8}
    einsum = cascade.einsum("S")
    expected = brute_force_points(cascade, einsum, sizes)
    assert count_points(cascade, einsum, sizes) == expected
    if "!=" not in filters:
        counts = symbolic_counts(cascade)
        values = {counts.symbols[r]: n for r, n in sizes.items()}
        assert int(counts.einsums[0].points.subs(values).doit()) == expected


def test_causal_points_at_one_million_tokens():
    cascade = load_library_cascade("attention-1pass-causal")
    sizes = rank_sizes(cascade, dict(B=1, H=1, E=1, F=1, M=2**20, P=2**20, M0=256))
    assert count_points(cascade, cascade.einsum("BQK"), sizes) == 2**20 * (2**20 + 1) // 2


def test_evaluate_totals():
    counts = symbolic_counts(load_library_cascade("attention-3pass"))
    values = counts.evaluate(dict(B=2, H=3, E=4, F=5, M=7, P=6))
    bhmp = 2 * 3 * 7 * 6
    assert values["total"] == {"mac": bhmp * 9, "max": bhmp, "sub_exp": bhmp, "add": bhmp, "div": bhmp}
    assert values["footprints"]["QK"] == bhmp
    assert values["AV"] == {"points": bhmp * 5, "mac": bhmp * 5}
