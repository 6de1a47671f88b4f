"""Every library cascade against its declared reference, in float64, including the numerical edge cases."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from einsum_cascades.counts import rank_sizes
from einsum_cascades.execute import execute, random_inputs
from einsum_cascades.library import library_names, load_library_cascade
from einsum_cascades.references import REFERENCES, attention_logits
from einsum_cascades.verify import check_against_reference, relative_error

ATTENTION_REFERENCES = ("softmax_attention", "sigmoid_attention", "linear_attention")
TOLERANCE = 1e-10

# M = P = 37 keys and queries in tiles of M0 = 8, so the last of M1 = 5 tiles has 5 keys.
SIZES = dict(B=2, H=2, G=2, R=3, E=8, F=6, M=37, P=37, M0=8, W=6, K=11, N=5)

EXPECTED_LIBRARY = [
    "attention-1pass",
    "attention-1pass-causal",
    "attention-2pass",
    "attention-3pass",
    "attention-3pass-deferred",
    "attention-gqa",
    "attention-sink",
    "attention-sliding-window",
    "cascade1",
    "cascade2",
    "cascade3",
    "flash-attention-1",
    "layernorm",
    "linear-attention",
    "linear-attention-causal",
    "online-softmax",
    "rmsnorm",
    "sigmoid-attention",
]


def sizes_for(cascade, **changes):
    chosen = {**SIZES, **changes}
    return {rank: chosen[rank] for rank in cascade.ranks if rank in chosen}


def attention_names():
    names = []
    for name in library_names():
        cascade = load_library_cascade(name)
        if cascade.reference is not None and cascade.reference.function in ATTENTION_REFERENCES:
            names.append(name)
    return names


def test_library_holds_every_listed_cascade():
    assert set(EXPECTED_LIBRARY) <= set(library_names())


def test_attention_family_is_found():
    assert len(attention_names()) == 12


@pytest.mark.parametrize("name", EXPECTED_LIBRARY)
def test_library_file_has_header(name):
    text = (resources.files("einsum_cascades.library") / f"{name}.cascade").read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert len(header) >= 3
    assert any("Source:" in line for line in header)
    assert any("Reference:" in line for line in header)
    assert text.splitlines()[0].startswith("# ")


@pytest.mark.parametrize("name", library_names())
def test_library_cascade_declares_reference(name):
    cascade = load_library_cascade(name)
    assert cascade.reference is not None
    assert cascade.reference.function in REFERENCES
    assert cascade.reference.output in cascade.outputs


@pytest.mark.parametrize("name", library_names())
def test_library_cascade_matches_reference(name):
    cascade = load_library_cascade(name)
    result = check_against_reference(cascade, sizes_for(cascade), seed=1)
    assert result.relative_error < TOLERANCE


@pytest.mark.parametrize("name", attention_names())
def test_attention_partial_last_tile(name):
    cascade = load_library_cascade(name)
    sizes = sizes_for(cascade, M=29, P=29, M0=8)
    full = rank_sizes(cascade, sizes)
    assert full["M"] % 8 != 0
    result = check_against_reference(cascade, sizes, seed=2)
    assert result.relative_error < TOLERANCE


@pytest.mark.parametrize("name", attention_names())
def test_attention_queries_differ_from_keys(name):
    cascade = load_library_cascade(name)
    sizes = sizes_for(cascade, M=23, P=9, M0=4)
    result = check_against_reference(cascade, sizes, seed=3)
    assert result.relative_error < TOLERANCE


def scaled_inputs(cascade, sizes, largest_logit, seed):
    """Random inputs with Q scaled so that the largest |Q·K| logit equals ``largest_logit``."""
    inputs = random_inputs(cascade, sizes, seed)
    logits = attention_logits(cascade, inputs, rank_sizes(cascade, sizes))
    inputs["Q"] = inputs["Q"] * (largest_logit / np.max(np.abs(logits)))
    return inputs


@pytest.mark.parametrize("name", attention_names())
def test_attention_large_logits(name):
    cascade = load_library_cascade(name)
    sizes = sizes_for(cascade, M=29, P=29, M0=8)
    inputs = scaled_inputs(cascade, sizes, 1e4, seed=4)
    result = check_against_reference(cascade, sizes, inputs=inputs)
    output = result.execution.tensor(result.output)
    assert np.all(np.isfinite(output))
    assert result.relative_error < TOLERANCE


def test_large_logits_reach_1e4():
    cascade = load_library_cascade("attention-3pass")
    sizes = sizes_for(cascade)
    result = execute(cascade, sizes, scaled_inputs(cascade, sizes, 1e4, seed=4))
    assert np.max(np.abs(result.tensor("QK"))) == pytest.approx(1e4)


@pytest.mark.parametrize("name", ["attention-1pass-causal", "attention-sliding-window"])
def test_masked_cascades_at_longer_sequences(name):
    cascade = load_library_cascade(name)
    sizes = sizes_for(cascade, M=70, P=70, M0=16, W=9)
    result = check_against_reference(cascade, sizes, seed=5)
    assert result.relative_error < TOLERANCE


# -- numerical edge cases --------------------------------------------------------


def run_one_pass(name, **changes):
    cascade = load_library_cascade(name)
    return execute(cascade, sizes_for(cascade, **changes), seed=6)


def test_first_iteration_correction_is_zero():
    result = run_one_pass("attention-1pass")
    assert np.all(result.values["RM"][:, :, 0, :] == -np.inf)
    assert np.all(result.tensor("PRM")[:, :, 0, :] == 0.0)
    assert np.all(result.tensor("SPD")[:, :, 0, :] == 0.0)


@pytest.mark.parametrize("name", ["attention-1pass", "attention-1pass-causal", "attention-sliding-window",
                                  "attention-sink", "attention-gqa", "flash-attention-1"])
def test_no_nan_in_any_tensor(name):
    result = run_one_pass(name)
    for tensor, values in result.values.items():
        present = result.present[tensor]
        assert not np.any(np.isnan(values[present])), tensor


def test_sliding_window_fully_masked_first_tiles():
    # The window of query row 30 is keys 25..30, so tiles 0 to 2 (keys 0..23) are entirely masked for it.
    result = run_one_pass("attention-sliding-window", M=37, P=37, M0=8, W=6)
    row = 30
    assert not result.present["LM"][0, 0, 0, row]
    assert not result.present["LM"][0, 0, 2, row]
    assert result.present["LM"][0, 0, 3, row]
    assert np.all(result.values["RM"][0, 0, 0:4, row] == -np.inf)
    assert np.all(result.tensor("PRM")[0, 0, 0:4, row] == 0.0)
    assert np.all(result.tensor("RD")[0, 0, 0:4, row] == 0.0)
    assert np.isfinite(result.values["RM"][0, 0, 4, row])


def test_causal_tiles_above_diagonal_carry_state():
    # Query row 3 may read keys 0..3 in tile 0. Tiles 1..4 are entirely masked, so RD stays the same.
    result = run_one_pass("attention-1pass-causal", M=37, P=37, M0=8)
    row = 3
    assert not np.any(result.present["SLN"][0, 0, 1:, :, row])
    assert np.all(result.tensor("PRM")[0, 0, 1:, row] == 1.0)
    rd = result.tensor("RD")[0, 0, :, row]
    assert np.all(rd[2:] == rd[1])


def test_partial_tile_adds_no_terms():
    result = run_one_pass("attention-1pass", M=29, M0=8)
    present = result.present["SLN"]
    assert present[:, :, 3, :5, :].all()
    assert not present[:, :, 3, 5:, :].any()
    assert result.present["BK"].sum() == SIZES["B"] * SIZES["H"] * SIZES["E"] * 29


def test_zero_padded_keys_would_differ():
    cascade = load_library_cascade("attention-1pass")
    sizes = sizes_for(cascade, M=29, M0=8)
    inputs = random_inputs(cascade, sizes, seed=7)
    exact = execute(cascade, sizes, inputs).output()
    padded_inputs = dict(inputs)
    padded_inputs["K"] = np.concatenate([inputs["K"], np.zeros(inputs["K"].shape[:-1] + (3,))], axis=-1)
    padded_inputs["V"] = np.concatenate([inputs["V"], np.zeros(inputs["V"].shape[:-1] + (3,))], axis=-1)
    padded = execute(cascade, sizes_for(cascade, M=32, M0=8), padded_inputs).output()
    assert relative_error(padded, exact) > 1e-3


def test_cascade3_first_step_skips_zero_divisor():
    cascade = load_library_cascade("cascade3")
    result = execute(cascade, {"K": 3}, {"A": np.array([2.0, 3.0, 5.0]), "B": np.array([1.0, 1.0, 1.0])})
    # RY[1] / RY[0] divides by zero, so the quotient is empty and RZ[1] = RY[1] * A[0].
    assert not result.present["RY"][0] or result.values["RY"][0] == 0.0
    assert result.values["RZ"][1] == 2.0 * 2.0
    assert float(result.output()) == pytest.approx(10.0 * 10.0)


def test_online_softmax_rows_sum_to_one():
    cascade = load_library_cascade("online-softmax")
    result = execute(cascade, {"K": 13, "P": 4}, seed=8)
    assert np.allclose(result.output().sum(axis=0), 1.0, rtol=0, atol=1e-14)


def test_sink_at_minus_infinity_is_plain_attention():
    sink = load_library_cascade("attention-sink")
    plain = load_library_cascade("attention-1pass")
    sizes = sizes_for(plain)
    inputs = random_inputs(sink, sizes_for(sink), seed=9)
    inputs["S"] = np.full(inputs["S"].shape, -np.inf)
    without = execute(sink, sizes_for(sink), inputs)
    assert relative_error(without.output(), execute(plain, sizes, inputs).output()) < TOLERANCE
