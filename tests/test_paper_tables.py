"""The general model against every table the FuseMax artifact publishes.

Exact columns must match within 1e-9 relative.  Energy is reproducible only
up to the accuracy of the fitted per-access energies and, at long sequences,
up to extra buffer reads in the artifact's Timeloop runs that this model does
not reproduce; docs/validation.md explains each tolerance below row by row.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from fusemax.studies.pareto import run_pareto
from fusemax.studies.reproduce import CONFIGURATIONS, END_TO_END, run_configuration, run_end_to_end, summarize

REFERENCE = Path(__file__).parent / "reference"
EXACT = 1e-9
LONG = {"256K", "1M"}

# (table, sequence lengths) -> energy tolerance, where the artifact's long-sequence extra reads apply.
ENERGY_TOLERANCE = {
    "attn-binding": lambda label: 0.01,
    "attn-arch": lambda label: 0.01,
    "attn-flat": lambda label: 0.03 if label in {"64K", "256K", "1M"} else 0.01,
    "attn-cascade": lambda label: 0.072 if label in LONG else 0.01,
    "attn-unfused": lambda label: 0.05,
}


def reference_rows(table: str) -> dict[tuple[str, str], dict[str, str]]:
    with open(REFERENCE / f"{table}.csv", newline="") as handle:
        return {(row["model"], row.get("seq_len") or row["PE_dim"]): row for row in csv.DictReader(handle)}


@cache
def computed_tables() -> dict[str, list[dict]]:
    tables = {configuration.table: run_configuration(configuration) for configuration in CONFIGURATIONS}
    for table in END_TO_END:
        tables[table] = run_end_to_end(table)
    return tables


def computed(table: str, key: tuple[str, str]) -> dict:
    return {(r["model"], r["seq_len"]): r for r in computed_tables()[table]}[key]


def attention_cases():
    for configuration in CONFIGURATIONS:
        for key in reference_rows(configuration.table):
            yield pytest.param(configuration.table, key, id=f"{configuration.table}-{key[0]}-{key[1]}")


@pytest.mark.parametrize(("table", "key"), list(attention_cases()))
def test_attention_row_matches_reference(table, key):
    expected = reference_rows(table)[key]
    row = computed(table, key)
    exact_columns = [c for c in expected if c not in ("model", "seq_len", "energy", "")]
    # The unfused baseline's mapper chose non-compulsory tilings at 256K and 1M.
    tolerance = 0.005 if table == "attn-unfused" and key[1] in LONG else EXACT
    for column in exact_columns:
        assert row[column] == pytest.approx(float(expected[column]), rel=tolerance), column
    assert row["energy"] == pytest.approx(float(expected["energy"]), rel=ENERGY_TOLERANCE[table](key[1]))


@pytest.mark.parametrize("table", list(END_TO_END))
def test_end_to_end_matches_reference(table):
    expected = reference_rows(table)
    for row in computed_tables()[table]:
        reference = expected[(row["model"], row["seq_len"])]
        assert row["latency"] == pytest.approx(float(reference["latency"]), rel=EXACT)
        assert row["energy"] == pytest.approx(float(reference["energy"]), rel=0.05)
        if row["model"] == "XLM":
            # 32 MiB of FFN weights do not fit; our tiling search beats the artifact's mapper.
            assert row["traffic"] <= float(reference["traffic"])
        else:
            assert row["traffic"] == pytest.approx(float(reference["traffic"]), rel=EXACT)


def test_pareto_matches_reference():
    expected = reference_rows("pareto")
    rows = run_pareto()
    assert len(rows) == len(expected) == 24
    for row in rows:
        reference = expected[(row["model"], str(row["PE_dim"]))]
        for column in ("traffic", "mem_lat", "comp_2d_lat", "comp_1d_lat", "latency", "array_2d_area", "area"):
            assert row[column] == pytest.approx(float(reference[column]), rel=EXACT), (row["model"], row["PE_dim"], column)


def test_every_reference_row_is_computed():
    for table in [c.table for c in CONFIGURATIONS] + list(END_TO_END):
        computed_keys = {(r["model"], r["seq_len"]) for r in computed_tables()[table]}
        assert computed_keys == set(reference_rows(table))


def test_summary_headline_ratios():
    summary = summarize(computed_tables())
    assert summary["pairs"] == 24
    assert round(summary["attention_speedup_vs_flat"], 1) == 6.7
    assert summary["attention_energy_vs_flat"] == pytest.approx(0.79, abs=0.01)
    assert round(summary["end2end_speedup_vs_flat"], 1) == 5.3
    assert summary["end2end_energy_vs_flat"] == pytest.approx(0.84, abs=0.005)
    assert round(summary["attention_speedup_vs_unfused"]) == 10
    assert round(summary["end2end_speedup_vs_unfused"], 1) == 7.6


def test_fusemax_energy_close_to_artifact_fit():
    # Below 256K the artifact's FuseMax energies are free of long-sequence terms, so the
    # fitted per-access energies reproduce them closely.
    expected = reference_rows("attn-binding")
    for row in computed_tables()["attn-binding"]:
        if row["seq_len"] in ("1K", "4K", "16K", "64K"):
            reference = float(expected[(row["model"], row["seq_len"])]["energy"])
            assert abs(row["energy"] / reference - 1) < 1e-5
