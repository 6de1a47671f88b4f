"""The FuseMax paper's evaluation: five attention configurations, end-to-end inference and Pareto.

Every configuration is an (architecture, mapping) pair evaluated by the
general analytical model on four models and six sequence lengths.  Results
are written as tables with the FuseMax artifact's columns and units (bytes,
seconds, picojoules, fractions, square micrometres), a summary of the
headline ratios (arithmetic means over the 24 model x length pairs, which is
how the paper averages), energy and area breakdowns, and an offline HTML
report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from fusemax.arch import load_architecture
from fusemax.mapping import load_mapping
from fusemax.model.area import array2d_area_um2, global_buffer_area_um2, total_area_um2
from fusemax.model.evaluate import Evaluation, evaluate, evaluate_best
from fusemax.files import write_atomic
from fusemax.studies.output import table_csv
from fusemax.studies.pareto import COLUMNS as PARETO_COLUMNS
from fusemax.studies.pareto import run_pareto
from fusemax.workloads import MODELS, PAPER_LENGTHS, linear_layers, model_workload, parse_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Configuration:
    """One attention table of the study: the specs it evaluates and its per-Einsum columns.

    ``einsum_columns`` maps a column name of the artifact's table to the
    Einsum whose share of the run on the 2D array it reports.
    """

    table: str
    label: str
    arch: str
    mapping: str
    einsum_columns: dict[str, str] = field(default_factory=dict)
    trailing_empty_column: bool = False


CONFIGURATIONS = (
    Configuration("attn-unfused", "Unfused", "flat-cloud", "unfused", trailing_empty_column=True),
    Configuration("attn-flat", "FLAT", "flat-cloud", "flat", {"QK": "QK", "AV": "AV"}),
    Configuration("attn-cascade", "+Cascade", "cascade-cloud", "fusemax-cascade", {"QK": "BQK", "SLNV": "SLNV"}),
    Configuration(
        "attn-arch", "+Architecture", "fusemax-cloud", "fusemax-arch",
        {"QK": "BQK", "LM": "LM", "SLN": "SLN", "SLD": "SLD", "SLNV": "SLNV"},
    ),
    Configuration(
        "attn-binding", "+Binding (FuseMax)", "fusemax-cloud", "fusemax-binding",
        {"QK": "BQK", "LM": "LM", "SLN": "SLN", "SLD": "SLD", "SLNV": "SLNV"},
    ),
)

# The linear layers of one block, per platform; attention tables pair with them for end-to-end numbers.
END_TO_END = {"end2end-flat": "flat-linear-cloud", "end2end-proposal": "fusemax-cloud"}
END_TO_END_PAIRING = {
    "attn-unfused": "end2end-flat",
    "attn-flat": "end2end-flat",
    "attn-cascade": "end2end-flat",
    "attn-arch": "end2end-proposal",
    "attn-binding": "end2end-proposal",
}

BASE_COLUMNS = ["model", "seq_len", "traffic", "latency", "energy", "util_2d", "util_1d"]
END_TO_END_COLUMNS = ["model", "seq_len", "traffic", "latency", "energy"]


def table_row(model: str, seq_len: str, result: Evaluation, einsum_columns: dict[str, str]) -> dict[str, object]:
    """Build one row of an attention table in the artifact's columns and units."""
    row: dict[str, object] = {
        "model": model,
        "seq_len": seq_len,
        "traffic": result.traffic_bytes,
        "latency": result.latency_s,
        "energy": result.energy_pj,
        "util_2d": result.utilization["array2d"],
        "util_1d": result.utilization["array1d"],
    }
    for column, einsum in einsum_columns.items():
        row[column] = result.per_einsum[einsum].utilization
    return row


def evaluate_configuration(
    configuration: Configuration, model: str, label: str, variant: str = "paper"
) -> Evaluation:
    """Evaluate one configuration at one model and sequence length."""
    arch = load_architecture(configuration.arch, variant=variant)
    mapping, config_row = load_mapping(configuration.mapping, model=model, length_label=label, variant=variant)
    return evaluate(arch, mapping, model_workload(model, parse_length(label)), config_row)


def run_configuration(
    configuration: Configuration, models=MODELS, lengths=PAPER_LENGTHS, variant: str = "paper", breakdowns: list | None = None
) -> list[dict[str, object]]:
    """Evaluate one configuration on every model and length; returns the table rows."""
    rows = []
    for model in models:
        for label in lengths:
            result = evaluate_configuration(configuration, model, label, variant)
            rows.append(table_row(model, label, result, configuration.einsum_columns))
            if breakdowns is not None:
                for component, energy in sorted(result.energy_breakdown_pj.items()):
                    breakdowns.append(
                        {"table": configuration.table, "model": model, "seq_len": label, "component": component, "energy_pj": energy}
                    )
    return rows


def run_end_to_end(table: str, models=MODELS, lengths=PAPER_LENGTHS, variant: str = "paper") -> list[dict[str, object]]:
    """Evaluate the six linear layers of one transformer block on one platform, per model and length."""
    arch = load_architecture(END_TO_END[table], variant=variant)
    mapping, _ = load_mapping("linear", variant=variant)
    rows = []
    for model in models:
        for label in lengths:
            traffic = latency = energy = 0.0
            for layer in linear_layers(model_workload(model, parse_length(label))):
                result = evaluate_best(arch, mapping, layer.workload)
                traffic += layer.count * result.traffic_bytes
                latency += layer.count * result.latency_s
                energy += layer.count * result.energy_pj
            rows.append({"model": model, "seq_len": label, "traffic": traffic, "latency": latency, "energy": energy})
    return rows


def _pairs(tables, fusemax: str, baseline: str) -> list[tuple[dict, dict]]:
    index = {(r["model"], r["seq_len"]): r for r in tables[baseline]}
    return [(row, index[(row["model"], row["seq_len"])]) for row in tables[fusemax] if (row["model"], row["seq_len"]) in index]


def summarize(tables: dict[str, list[dict[str, object]]], variant: str = "paper") -> dict[str, object]:
    """Headline ratios: arithmetic means over the model x length pairs of per-pair ratios.

    Speedup is baseline latency / FuseMax latency; energy is FuseMax energy /
    baseline energy. End-to-end values add the block's linear layers to
    attention (no overlap).
    """
    summary: dict[str, object] = {}
    for baseline, key in (("attn-flat", "flat"), ("attn-unfused", "unfused")):
        if baseline not in tables or "attn-binding" not in tables:
            continue
        pairs = _pairs(tables, "attn-binding", baseline)
        summary[f"attention_speedup_vs_{key}"] = fmean(b["latency"] / f["latency"] for f, b in pairs)
        summary[f"attention_energy_vs_{key}"] = fmean(f["energy"] / b["energy"] for f, b in pairs)
        summary["pairs"] = len(pairs)
        if all(name in tables for name in END_TO_END):
            linear_fusemax = {(r["model"], r["seq_len"]): r for r in tables[END_TO_END_PAIRING["attn-binding"]]}
            linear_baseline = {(r["model"], r["seq_len"]): r for r in tables[END_TO_END_PAIRING[baseline]]}
            speedups, energies = [], []
            for f, b in pairs:
                key_pair = (f["model"], f["seq_len"])
                speedups.append(
                    (b["latency"] + linear_baseline[key_pair]["latency"]) / (f["latency"] + linear_fusemax[key_pair]["latency"])
                )
                energies.append(
                    (f["energy"] + linear_fusemax[key_pair]["energy"]) / (b["energy"] + linear_baseline[key_pair]["energy"])
                )
            summary[f"end2end_speedup_vs_{key}"] = fmean(speedups)
            summary[f"end2end_energy_vs_{key}"] = fmean(energies)
    summary["averaging"] = "arithmetic mean of per-pair ratios"
    summary["model_variant"] = variant
    return summary


def area_breakdown(variant: str = "paper") -> list[dict[str, object]]:
    """Area per component of each attention configuration's architecture, in square micrometres."""
    rows = []
    seen: set[str] = set()
    for configuration in CONFIGURATIONS:
        if configuration.arch in seen:
            continue
        seen.add(configuration.arch)
        arch = load_architecture(configuration.arch, variant=variant)
        if arch.area is None:
            continue
        total = total_area_um2(arch)
        parts = {"array2d": array2d_area_um2(arch), "global_buffer": global_buffer_area_um2(arch)}
        parts["array1d_and_other"] = total - sum(parts.values())
        for component, area in parts.items():
            rows.append({"arch": arch.name, "component": component, "area_um2": area})
    return rows


def reproduce(out: Path, variant: str = "paper") -> dict[str, object]:
    """Run the whole evaluation and write its tables, summary, breakdowns and report into ``out``.

    Returns the summary and the tables.
    """
    from fusemax.report.html import write_report

    tables: dict[str, list[dict[str, object]]] = {}
    breakdowns: list[dict[str, object]] = []
    for configuration in CONFIGURATIONS:
        logger.info("evaluating %s on %s with %s", configuration.table, configuration.arch, configuration.mapping)
        rows = run_configuration(configuration, variant=variant, breakdowns=breakdowns)
        tables[configuration.table] = rows
        columns = BASE_COLUMNS + list(configuration.einsum_columns)
        write_atomic(out / f"{configuration.table}.csv", [table_csv(rows, columns, configuration.trailing_empty_column)])
    for table in END_TO_END:
        logger.info("evaluating %s", table)
        tables[table] = run_end_to_end(table, variant=variant)
        write_atomic(out / f"{table}.csv", [table_csv(tables[table], END_TO_END_COLUMNS)])
    logger.info("evaluating the Pareto sweep")
    tables["pareto"] = run_pareto(variant)
    write_atomic(out / "pareto.csv", [table_csv(tables["pareto"], PARETO_COLUMNS)])

    write_atomic(out / "energy-breakdown.csv", [table_csv(breakdowns, ["table", "model", "seq_len", "component", "energy_pj"])])
    areas = area_breakdown(variant)
    write_atomic(out / "area-breakdown.csv", [table_csv(areas, ["arch", "component", "area_um2"])])
    summary = summarize(tables, variant)
    write_atomic(out / "summary.json", [json.dumps(summary, indent=2) + "\n"])
    write_report(
        out / "report.html", tables, summary, {"energy": breakdowns, "area": areas}, figures_dir=out / "figures"
    )
    return {"summary": summary, "tables": tables, "energy_breakdown": breakdowns, "area_breakdown": areas}
