"""The FuseMax paper's attention evaluation: FuseMax against FLAT on four models and six lengths.

Each configuration is an (architecture, mapping) pair evaluated by the general
analytical model.  Results are written as tables with the FuseMax artifact's
columns and units (bytes, seconds, picojoules, fractions), a summary of the
headline ratios (arithmetic means over the 24 model x length pairs, which is
how the paper averages), and an offline HTML report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from fusemax.arch import load_architecture
from fusemax.mapping import load_mapping
from fusemax.model.evaluate import Evaluation, evaluate
from fusemax.report.html import write_report
from fusemax.workloads import MODELS, PAPER_LENGTHS, model_workload, parse_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Configuration:
    """One table of the study: the specs it evaluates and its per-Einsum columns.

    ``einsum_columns`` maps a column name of the artifact's table to the
    Einsum whose share of the run on the 2D array it reports.
    """

    table: str
    arch: str
    mapping: str
    einsum_columns: dict[str, str]


CONFIGURATIONS = (
    Configuration(
        table="attn-binding",
        arch="fusemax-cloud",
        mapping="fusemax-binding",
        einsum_columns={"QK": "BQK", "LM": "LM", "SLN": "SLN", "SLD": "SLD", "SLNV": "SLNV"},
    ),
    Configuration(
        table="attn-flat",
        arch="flat-cloud",
        mapping="flat",
        einsum_columns={"QK": "QK", "AV": "AV"},
    ),
)

BASE_COLUMNS = ["model", "seq_len", "traffic", "latency", "energy", "util_2d", "util_1d"]


def table_row(model: str, seq_len: str, result: Evaluation, einsum_columns: dict[str, str]) -> dict[str, object]:
    """One row of an attention table in the artifact's columns and units."""
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


def run_configuration(configuration: Configuration, models=MODELS, lengths=PAPER_LENGTHS) -> list[dict[str, object]]:
    """Evaluate one configuration on every model and length; returns the table rows."""
    arch = load_architecture(configuration.arch)
    rows = []
    for model in models:
        for label in lengths:
            mapping, config_row = load_mapping(configuration.mapping, model=model, length_label=label)
            result = evaluate(arch, mapping, model_workload(model, parse_length(label)), config_row)
            rows.append(table_row(model, label, result, configuration.einsum_columns))
    return rows


def summarize(tables: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    """Headline ratios: arithmetic means over the model x length pairs of per-pair ratios.

    Speedup is baseline latency / FuseMax latency; energy is FuseMax energy /
    baseline energy.
    """
    fusemax = {(r["model"], r["seq_len"]): r for r in tables["attn-binding"]}
    flat = {(r["model"], r["seq_len"]): r for r in tables["attn-flat"]}
    pairs = [key for key in fusemax if key in flat]
    return {
        "attention_speedup_vs_flat": fmean(flat[k]["latency"] / fusemax[k]["latency"] for k in pairs),
        "attention_energy_vs_flat": fmean(fusemax[k]["energy"] / flat[k]["energy"] for k in pairs),
        "pairs": len(pairs),
        "averaging": "arithmetic mean of per-pair ratios",
        "model_variant": "paper",
    }


INTEGER_COLUMNS = ("traffic",)


def format_value(column: str, value: object) -> str:
    """Write a value as the artifact's tables do: whole traffic counts bare, floats in shortest round-trip form."""
    if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and column not in INTEGER_COLUMNS:
        return str(float(value))
    return str(value)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def table_csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    """Render rows as CSV text with the given column order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(column, row[column]) for column in columns])
    return buffer.getvalue()


def reproduce(out: Path) -> dict[str, object]:
    """Run the attention study and write its tables, ``summary.json`` and ``report.html`` into ``out``.

    Returns the summary.
    """
    tables: dict[str, list[dict[str, object]]] = {}
    for configuration in CONFIGURATIONS:
        logger.info("evaluating %s on %s with %s", configuration.table, configuration.arch, configuration.mapping)
        rows = run_configuration(configuration)
        tables[configuration.table] = rows
        columns = BASE_COLUMNS + list(configuration.einsum_columns)
        write_atomic(out / f"{configuration.table}.csv", table_csv(rows, columns))
    summary = summarize(tables)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_report(out / "report.html", tables, summary)
    return {"summary": summary, "tables": tables}
