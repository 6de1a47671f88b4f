"""Consequences of extra passes: live footprint, spill traffic and the length beyond which it spills."""

from __future__ import annotations

import pytest
import sympy

from einsum_cascades.errors import CascadeError
from einsum_cascades.library import load_library_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.passes_footprint import evaluate_words, largest_fitting_length, live_footprint, rank_symbol
from einsum_cascades.syntax import parse_cascade

B, H, E, F, M, P, K, M0, M1 = (rank_symbol(name) for name in ("B", "H", "E", "F", "M", "P", "K", "M0", "M1"))


def footprint_of(name: str, rank: str):
    cascade = load_library_cascade(name)
    return cascade, live_footprint(cascade, analyze_passes(cascade, rank).ranks[rank])


def test_three_pass_live_sets():
    _, footprint = footprint_of("attention-3pass", "M")
    assert [(live.boundary, live.tensors) for live in footprint.live] == [(1, ("QK",)), (2, ("SN",))]
    assert footprint.row_ranks == ("P",)
    assert footprint.per_row_words == M
    assert footprint.total_words == B * H * M * P


def test_three_pass_spill_traffic():
    _, footprint = footprint_of("attention-3pass", "M")
    # QK and SN are each written once and read back once.
    assert footprint.spill_by_tensor == {"QK": 2 * B * H * M * P, "SN": 2 * B * H * M * P}
    assert footprint.spill_words == 4 * B * H * M * P
    assert footprint.spill_words_per_row == 4 * M
    assert footprint.compulsory_words == B * H * E * M + B * H * E * P + B * H * F * M + B * H * F * P


def test_deferred_keeps_one_fiber():
    _, footprint = footprint_of("attention-3pass-deferred", "M")
    assert footprint.live[0].tensors == ("QK",)
    assert footprint.spill_words == 2 * B * H * M * P


def test_two_pass_family_keeps_summaries():
    _, footprint = footprint_of("attention-2pass", "M")
    # The best schedule forms the local denominators SLD in pass 2, so only
    # the numerator tile SLN and the local maxima LM stay live.
    assert set(footprint.live[0].tensors) == {"SLN", "LM"}
    assert sympy.expand(footprint.per_row_words - (M1 * M0 + M1)) == 0


def test_one_pass_tile_stays_in_registers():
    _, footprint = footprint_of("attention-1pass", "M0")
    assert footprint.live[0].tensors == ("BQK",)
    assert footprint.row_ranks == ("M1", "P")
    assert footprint.per_row_words == M0


def test_cascade1_rereads_input():
    _, footprint = footprint_of("cascade1", "K")
    assert footprint.live[0].tensors == ("A",)
    assert footprint.row_ranks == ()
    assert footprint.per_row_words == K
    # An input is not written back; re-reading it once is the whole cost.
    assert footprint.spill_words == K


def test_layernorm_rereads_input_and_centered():
    cascade, footprint = footprint_of("layernorm", "E")
    assert [live.tensors for live in footprint.live] == [("X",), ("XC",)]
    assert footprint.spill_by_tensor == {"X": E * P, "XC": 2 * E * P}


def test_single_pass_has_no_footprint():
    _, footprint = footprint_of("attention-1pass", "M")
    assert footprint.live == ()
    assert footprint.per_row_words == 0
    assert footprint.spill_words == 0


def test_evaluate_words_derives_tiles():
    cascade = load_library_cascade("attention-2pass")
    _, footprint = footprint_of("attention-2pass", "M")
    # 1000 keys in tiles of 256 is 4 tiles, the last one partial.
    assert evaluate_words(cascade, footprint.per_row_words, {"M": 1000, "M0": 256}) == 4 * 256 + 4


def test_evaluate_words_missing_size():
    cascade = load_library_cascade("attention-3pass")
    with pytest.raises(CascadeError, match=r"missing size for rank\(s\) M, P; give each as RANK=SIZE"):
        evaluate_words(cascade, M * P, {"B": 1})


def test_largest_fitting_length_linear():
    cascade = load_library_cascade("attention-3pass")
    assert largest_fitting_length(cascade, 2 * M, {}, ("M", "P"), 1000) == 500


def test_largest_fitting_length_never_and_always():
    cascade = load_library_cascade("attention-1pass")
    assert largest_fitting_length(cascade, M0, {"M0": 256}, ("M",), 1000) is None
    assert largest_fitting_length(cascade, M0, {"M0": 256}, ("M",), 100) == 0


def test_rows_are_common_ranks_of_live_tensors():
    cascade = parse_cascade(
        """
cascade two-live
ranks F M P
input X[m,p], V[f,m,p]
output Y[f,p]
einsums:
  XF[f,m,p] = V[f,m,p] * X[m,p]
  S[p] = XF[f,m,p]
  Y[f,p] = XF[f,m,p] * X[m,p] * S[p]
"""
    )
    footprint = live_footprint(cascade, analyze_passes(cascade, "M").ranks["M"])
    assert footprint.row_ranks == ("P",)
    assert set(footprint.live[0].tensors) == {"X", "XF"}
    assert footprint.per_row_words == M + F * M


def test_row_ranks_of_single_live_tensor():
    cascade = parse_cascade(
        """
cascade one-live
ranks F M P
input X[m,p], V[f,m,p]
output Y[f,p]
einsums:
  S[p] = X[m,p]
  XF[f,m,p] = V[f,m,p] * S[p]
  Y[f,p] = XF[f,m,p] * X[m,p]
"""
    )
    footprint = live_footprint(cascade, analyze_passes(cascade, "M").ranks["M"])
    # XF is made in pass 2, so only X waits between the passes.
    assert footprint.live[0].tensors == ("X",)
    assert footprint.row_ranks == ("P",)
