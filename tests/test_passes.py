"""Pass inference: the FuseMax paper's counts, every library cascade, its Table I, reasons and errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from einsum_cascades import passes_levels
from einsum_cascades.errors import CascadeError
from einsum_cascades.library import library_names, load_library_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.passes_ranks import rank_classes
from einsum_cascades.passes_reads import dependency_edges
from einsum_cascades.passes_taxonomy import TABLE_I, classify_published
from einsum_cascades.syntax import parse_cascade

# Passes over every rank of every library cascade, and why the counted rank has that many.
LIBRARY_PASSES = {
    "cascade1": ({"K": 2}, "Z re-reads A after the full reduction Y"),
    "cascade2": ({"K": 1}, "Z = Y * X touches no K, so nothing re-reads the fiber"),
    "cascade3": ({"K": 1, "I": 1}, "a recurrence reads only a prefix; Z reads the last iterate without sweeping"),
    "attention-3pass": ({"M": 3, "E": 1, "F": 1, "P": 1}, "SN waits for GM, A waits for SD"),
    "attention-3pass-deferred": ({"M": 2, "E": 1, "F": 1, "P": 1}, "AV = SNV / SD no longer sweeps M"),
    "attention-2pass": (
        {"M": 2, "M1": 2, "M0": 2, "E": 1, "F": 1, "P": 1},
        "SNV waits for CF, which needs the global max GM over all tiles",
    ),
    "attention-1pass": ({"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}, "SLN re-reads the BQK tile after LM"),
    "flash-attention-1": ({"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}, "the output is renormalized per tile"),
    "attention-1pass-causal": ({"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}, "a mask is a filter, not a pass"),
    "attention-sliding-window": ({"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}, "a window is a filter"),
    "attention-sink": ({"M": 1, "M1": 1, "M0": 2, "E": 1, "F": 1, "P": 1}, "a sink changes only the initialization"),
    "attention-gqa": (
        {"M": 1, "M1": 1, "M0": 2, "G": 1, "R": 1, "E": 1, "F": 1, "P": 1},
        "grouping the heads changes reuse, not passes",
    ),
    "online-softmax": ({"K": 2, "P": 1}, "Y re-reads X after the last iterates RM[K] and RD[K]"),
    "sigmoid-attention": (
        {"M": 1, "M1": 1, "M0": 1, "E": 1, "F": 1, "P": 1},
        "no reduction of M comes before another sweep",
    ),
    "linear-attention": ({"M": 1, "E": 1, "F": 1, "P": 1}, "the reductions of M feed Einsums without M"),
    "linear-attention-causal": ({"M": 1, "E": 1, "F": 1}, "prefix sums over an iterative rank"),
    "layernorm": ({"E": 3, "P": 1}, "mean, then variance, then normalize"),
    "rmsnorm": ({"E": 2, "P": 1}, "the sum of squares, then normalize"),
    "matmul": ({"K": 1, "M": 1, "N": 1}, "one reduction, read by nothing"),
}


@pytest.mark.parametrize("name", sorted(LIBRARY_PASSES))
def test_library_cascade_passes(name):
    expected, _reason = LIBRARY_PASSES[name]
    assert analyze_passes(load_library_cascade(name)).passes == expected


def test_every_library_cascade_has_count():
    assert set(library_names()) <= set(LIBRARY_PASSES)


def test_one_pass_json_order():
    passes = analyze_passes(load_library_cascade("attention-1pass")).passes
    assert list(passes) == ["M", "M1", "M0", "E", "F", "P"]


@pytest.mark.parametrize(
    ("name", "rank", "pass_lists"),
    [
        ("attention-3pass", "M", [("QK", "GM"), ("SN", "SD"), ("A", "AV")]),
        ("attention-3pass-deferred", "M", [("QK", "GM"), ("SN", "SD", "SNV")]),
        ("attention-2pass", "M", [("BQK", "LM", "SLN", "SLD"), ("SNV",)]),
        ("cascade1", "K", [("Y",), ("Z",)]),
        ("layernorm", "E", [("SX",), ("XC", "SQ"), ("Y",)]),
    ],
)
def test_einsums_in_each_pass(name, rank, pass_lists):
    cascade = load_library_cascade(name)
    result = analyze_passes(cascade, rank).ranks[rank]
    for number, names in enumerate(pass_lists, start=1):
        assert result.einsums_in_pass(number) == names


@pytest.mark.parametrize(
    ("name", "rank", "forced"),
    [
        ("attention-3pass", "M", [(2, "SN", "GM", "GM"), (3, "A", "SD", "SD")]),
        ("attention-3pass-deferred", "M", [(2, "SN", "GM", "GM")]),
        ("attention-2pass", "M", [(2, "SNV", "CF", "GM")]),
        ("attention-2pass", "M1", [(2, "CF", "GM", "GM")]),
        ("attention-1pass", "M0", [(2, "SLN", "RM", "LM")]),
        ("online-softmax", "K", [(2, "Y", "RM", "RM")]),
        ("cascade1", "K", [(2, "Z", "Y", "Y")]),
        ("layernorm", "E", [(2, "XC", "MU", "SX"), (3, "Y", "SD", "SQ")]),
    ],
)
def test_full_reduction_forcing_each_pass(name, rank, forced):
    result = analyze_passes(load_library_cascade(name), rank).ranks[rank]
    found = [(extra.number, extra.einsum, extra.waits_for, extra.reduction) for extra in result.extra_passes]
    assert found == forced


def test_reasons_name_the_reduction():
    result = analyze_passes(load_library_cascade("attention-3pass"), "M").ranks["M"]
    reasons = {level.einsum: level.reason for level in result.einsums}
    assert reasons["QK"] == "sweeps the M fiber in pass 1"
    assert "needs GM, complete only after pass 1" in reasons["SN"]
    assert "SD is complete only after pass 2" in reasons["SD"]
    assert str(result.extra_passes[1]).startswith("pass 3: A sweeps the fiber again because it needs SD")


def test_one_pass_levels_and_relayouts():
    result = analyze_passes(load_library_cascade("attention-1pass"), "M").ranks["M"]
    levels = {(level.einsum, level.initialization): level for level in result.einsums}
    assert levels[("BK", True)].relayout
    assert not levels[("BK", True)].sweeps
    assert levels[("RM", False)].level == 1
    assert not levels[("RM", False)].sweeps
    assert not levels[("RM", False)].after
    assert levels[("AV", False)].after
    assert "runs after pass 1 because it reads RNV" in levels[("AV", False)].reason


def test_tensor_fiber_passes():
    three = analyze_passes(load_library_cascade("attention-3pass"), "M").ranks["M"]
    assert three.tensor_passes == {"K": 1, "QK": 2, "SN": 2, "A": 1, "V": 1}
    tile = analyze_passes(load_library_cascade("attention-1pass"), "M0").ranks["M0"]
    assert tile.tensor_passes["BQK"] == 2
    assert tile.tensor_passes["SLN"] == 1


def test_terminal_iterate_is_not_a_fiber_touch():
    result = analyze_passes(load_library_cascade("online-softmax"), "K").ranks["K"]
    assert result.tensor_passes["RM"] == 1
    assert result.tensor_passes["X"] == 2


def test_table_one_classification():
    columns = {algorithm.name: passes for algorithm, passes in classify_published()}
    assert columns["PyTorch"] == 3
    assert columns["FLAT"] == 3
    assert columns["TileFlow"] == 2
    assert columns["FlashAttention-2"] == 1
    for algorithm, passes in classify_published():
        assert passes == algorithm.table_passes, algorithm.name


def test_rabe_staats_summaries_take_second_m1_pass():
    cascade = next(algorithm for algorithm in TABLE_I if algorithm.name == "Rabe and Staats").load()
    assert analyze_passes(cascade).passes == {"M": 1, "M1": 2, "M0": 2, "E": 1, "F": 1, "P": 1}


def test_two_pass_family_without_deferral():
    cascade = parse_cascade(
        """
cascade two-pass-normalized
ranks E F M P
partition M = M1 x M0
input Q[e,p], K[e,m], V[f,m]
output AV[f,p]
init:
  BK[e,m1,m0] = K[e, m1*M0+m0]
  BV[f,m1,m0] = V[f, m1*M0+m0]
einsums:
  BQK[m1,m0,p] = Q[e,p] * BK[e,m1,m0]
  LM[m1,p] = BQK[m1,m0,p] :: max(m0)
  SLN[m1,m0,p] = exp(BQK[m1,m0,p] - LM[m1,p])
  SLD[m1,p] = SLN[m1,m0,p]
  GM[p] = LM[m1,p] :: max(m1)
  CF[m1,p] = exp(LM[m1,p] - GM[p])
  SD[p] = SLD[m1,p] * CF[m1,p]
  SNC[m1,m0,p] = SLN[m1,m0,p] * CF[m1,p]
  A[m1,m0,p] = SNC[m1,m0,p] / SD[p]
  AV[f,p] = A[m1,m0,p] * BV[f,m1,m0]
"""
    )
    report = analyze_passes(cascade)
    assert report.passes["M"] == 2
    assert report.passes["M1"] == 3
    assert report.ranks["M"].einsums_in_pass(2) == ("SNC", "A", "AV")


def test_unknown_rank_rejected():
    with pytest.raises(CascadeError, match=r"unknown rank 'X'; ranks: E, F, M, P"):
        analyze_passes(load_library_cascade("attention-3pass"), "X")


def test_batch_rank_not_a_target():
    with pytest.raises(CascadeError, match="unknown rank 'B'"):
        analyze_passes(load_library_cascade("attention-3pass"), "B")


def test_cycle_outside_iterative_rank_rejected():
    cascade = load_library_cascade("attention-3pass")
    qk = cascade.einsum("QK")
    sn = cascade.einsum("SN")
    # QK made to read SN at the same coordinate closes a cycle QK -> GM -> SN -> QK.
    looped = replace(qk, expr=replace(qk.expr, args=(qk.expr.args[0], replace(sn.output, tensor="SN"))))
    cyclic = replace(cascade, einsums=(looped,) + cascade.einsums[1:])
    with pytest.raises(CascadeError, match="dependency cycle among Einsums QK, GM, SN") as error:
        analyze_passes(cyclic, "M")
    assert error.value.position == qk.position


def test_growing_recurrence_rejected():
    cascade = parse_cascade(
        """
cascade grows
ranks K I
input A[k]
output Z
iterate i until i >= K
init:
  X[i : i = 0] = 0
einsums:
  T[i] = A[k] * X[i]
  X[i+1] = T[i]
  Z = X[K]
"""
    )
    with pytest.raises(CascadeError, match="needs a complete sweep of the K fiber at every step") as error:
        analyze_passes(cascade, "K")
    assert error.value.position.line == 10


def test_unsettled_analysis_rejected(monkeypatch):
    original = passes_levels._einsum_state
    calls: dict[int, int] = {}

    def flipping(*args):
        state = original(*args)
        index = args[4]
        calls[index] = calls.get(index, 0) + 1
        return replace(state, after=bool(calls[index] % 2))

    monkeypatch.setattr(passes_levels, "_einsum_state", flipping)
    with pytest.raises(CascadeError, match="pass analysis of rank K did not settle"):
        analyze_passes(load_library_cascade("cascade1"), "K")


def test_docs_table_matches_analysis():
    text = (Path(__file__).parent.parent / "docs" / "passes.md").read_text(encoding="utf-8")
    section = text.split("## Every library cascade", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w-]+)` \| ([^|]+) \|", section, re.MULTILINE)
    documented = {name: counts.strip() for name, counts in rows}
    assert set(documented) == set(library_names())
    for name, counts in documented.items():
        passes = analyze_passes(load_library_cascade(name)).passes
        expected = dict(entry.split() for entry in counts.split(", "))
        assert {rank: int(count) for rank, count in expected.items()} == passes, name


def test_populate_reads_initial_value():
    cascade = parse_cascade(
        """
cascade accumulate
ranks K P
input A[k,p]
output Y[p]
init:
  Y[p] = 1
einsums:
  S[p] = A[k,p]
  Y[p] += A[k,p] * S[p]
"""
    )
    edges = dependency_edges(cascade, rank_classes(cascade))
    assert (0, 2, "Y", "plain") in edges
    assert analyze_passes(cascade).passes == {"K": 2, "P": 1}
