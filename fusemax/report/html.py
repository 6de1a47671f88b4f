"""Render the FuseMax-vs-FLAT attention comparison as one offline HTML file.

The report inlines the plotly.js bundle, so it opens without network access.
"""

from __future__ import annotations

import html
import logging
import math
import os
import secrets
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

logger = logging.getLogger(__name__)

MODELS = ("BERT", "TrXL", "T5", "XLM")
SEQ_LENS = ("1K", "4K", "16K", "64K", "256K", "1M")

# Display names for the table names that the reproduce step produces.
# A table with a name not listed here appears under its own name.
CONFIG_LABELS = {
    "attn-binding": "FuseMax",
    "attn-flat": "FLAT",
    "attn-unfused": "Unfused",
    "attn-cascade": "Cascade",
    "attn-arch": "Architecture",
}
FUSEMAX_TABLE = "attn-binding"
FLAT_TABLE = "attn-flat"

SEQ_LEN_AXIS_TITLE = "Sequence length (tokens)"
UTILIZATION_AXIS_TITLE = "Utilization (fraction of cycles busy)"

SUMMARY_LABELS = {
    "attention_speedup_vs_flat": "Attention speedup over FLAT (x, arithmetic mean)",
    "attention_energy_vs_flat": "Attention energy relative to FLAT (FuseMax / FLAT, arithmetic mean)",
}

GENERATOR = "fusemax reproduce"


def _value(row: dict, key: str) -> float | None:
    """Return ``row[key]`` as a finite float, or None when it is absent or not a finite number."""
    raw = row.get(key)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return value


def _index_rows(name: str, rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Map each ``(model, seq_len)`` pair of a table to its row."""
    indexed = {}
    for row in rows:
        if "model" not in row or "seq_len" not in row:
            raise ValueError(
                f"table {name!r} has a row with a missing 'model' or 'seq_len' column: {row!r}. "
                "Check the columns of the CSV file that the table was read from."
            )
        key = (str(row["model"]), str(row["seq_len"]))
        if key in indexed:
            logger.warning("table %r has more than one row for %s, so the last row is used", name, key)
        indexed[key] = row
    return indexed


def _ordered(found: list[str], canonical: tuple[str, ...]) -> list[str]:
    """Order values as in ``canonical``, then append unknown values in the order found."""
    known = [value for value in canonical if value in found]
    unknown = [value for value in dict.fromkeys(found) if value not in canonical]
    return known + unknown


def _panel_figure(models: list[str], seq_lens: list[str], title: str, y_title: str) -> go.Figure:
    """Create an empty figure with one bar-chart panel per model, side by side."""
    figure = make_subplots(rows=1, cols=len(models), subplot_titles=models, shared_yaxes=True)
    figure.update_layout(title_text=title, barmode="group", template="plotly_white")
    figure.update_xaxes(
        title_text=SEQ_LEN_AXIS_TITLE,
        type="category",
        categoryorder="array",
        categoryarray=seq_lens,
    )
    figure.update_yaxes(title_text=y_title, row=1, col=1)
    return figure


def _ratio_figure(
    binding: dict, flat: dict, models: list[str], seq_lens: list[str], metric: str, title: str, y_title: str
) -> go.Figure | None:
    """Build a bar figure of a FuseMax/FLAT ratio per model, or None when no pair has both values.

    ``metric`` is ``"latency"`` for the speedup (FLAT / FuseMax) or ``"energy"`` for the
    energy ratio (FuseMax / FLAT).
    """
    figure = _panel_figure(models, seq_lens, title, y_title)
    skipped = 0
    drawn = 0

    for column, model in enumerate(models, start=1):
        x_values = []
        y_values = []
        for seq_len in seq_lens:
            fusemax_row = binding.get((model, seq_len))
            flat_row = flat.get((model, seq_len))
            if fusemax_row is None or flat_row is None:
                continue
            fusemax_value = _value(fusemax_row, metric)
            flat_value = _value(flat_row, metric)
            if fusemax_value is None or flat_value is None or fusemax_value <= 0 or flat_value <= 0:
                skipped += 1
                continue
            if metric == "latency":
                ratio = flat_value / fusemax_value
            else:
                ratio = fusemax_value / flat_value
            x_values.append(seq_len)
            y_values.append(ratio)

        if x_values:
            figure.add_trace(go.Bar(x=x_values, y=y_values, name=model, showlegend=False), row=1, col=column)
            drawn += len(x_values)

    if skipped:
        logger.warning("skipped %d pairs with a missing or non-positive %s in figure %r", skipped, metric, title)
    if drawn == 0:
        return None
    figure.add_hline(y=1.0, line_dash="dot", line_color="gray", row="all", col="all")
    return figure


def _utilization_figure(
    indexed: dict[str, dict], models: list[str], seq_lens: list[str], metric: str, title: str
) -> go.Figure | None:
    """Build grouped bars of one utilization column, one bar per configuration, or None when empty."""
    figure = _panel_figure(models, seq_lens, title, UTILIZATION_AXIS_TITLE)
    drawn = 0

    for name, rows in indexed.items():
        label = CONFIG_LABELS.get(name, name)
        for column, model in enumerate(models, start=1):
            x_values = []
            y_values = []
            for seq_len in seq_lens:
                row = rows.get((model, seq_len))
                value = None if row is None else _value(row, metric)
                if value is not None:
                    x_values.append(seq_len)
                    y_values.append(value)
            if not x_values:
                continue
            trace = go.Bar(x=x_values, y=y_values, name=label, legendgroup=label, showlegend=column == 1)
            figure.add_trace(trace, row=1, col=column)
            drawn += len(x_values)

    if drawn == 0:
        return None
    figure.update_yaxes(range=[0.0, 1.05])
    return figure


def build_figures(tables: dict[str, list[dict]], summary: dict[str, float]) -> dict[str, go.Figure]:
    """Build the report figures from the comparison tables.

    Parameters
    ----------
    tables : dict[str, list[dict]]
        Rows per table name, for example ``"attn-binding"`` (FuseMax) and ``"attn-flat"`` (FLAT).
        Each row has ``model``, ``seq_len``, ``latency`` (s), ``energy`` (pJ), ``util_1d``
        and ``util_2d`` (fractions of cycles busy).
    summary : dict[str, float]
        Summary numbers. ``attention_speedup_vs_flat`` and ``attention_energy_vs_flat``,
        where present, appear in the figure titles.

    Returns
    -------
    dict[str, plotly.graph_objects.Figure]
        Figures by name, in report order: ``"speedup"`` and ``"energy"`` when both the FuseMax
        and FLAT tables are present, then ``"utilization_1d"`` and ``"utilization_2d"`` when
        any table has the column. A figure without data is left out.
    """
    indexed = {name: _index_rows(name, rows) for name, rows in tables.items()}

    pairs = [pair for rows in indexed.values() for pair in rows]
    models = _ordered([model for model, _ in pairs], MODELS)
    seq_lens = _ordered([seq_len for _, seq_len in pairs], SEQ_LENS)
    figures: dict[str, go.Figure] = {}
    if not models:
        logger.warning("no table rows to plot, so the report has no figures")
        return figures

    if FUSEMAX_TABLE in indexed and FLAT_TABLE in indexed:
        binding = indexed[FUSEMAX_TABLE]
        flat = indexed[FLAT_TABLE]

        title = "Attention speedup of FuseMax over FLAT (FLAT latency / FuseMax latency)"
        if "attention_speedup_vs_flat" in summary:
            title += f", mean {summary['attention_speedup_vs_flat']:.3g}x"
        speedup = _ratio_figure(binding, flat, models, seq_lens, "latency", title, "Speedup over FLAT (x)")
        if speedup is not None:
            figures["speedup"] = speedup

        title = "Attention energy of FuseMax relative to FLAT"
        if "attention_energy_vs_flat" in summary:
            title += f", mean {summary['attention_energy_vs_flat']:.3g}"
        y_title = "Energy relative to FLAT (FuseMax / FLAT)"
        energy = _ratio_figure(binding, flat, models, seq_lens, "energy", title, y_title)
        if energy is not None:
            figures["energy"] = energy
    else:
        logger.info("speedup and energy figures skipped because they need both %r and %r", FUSEMAX_TABLE, FLAT_TABLE)

    for metric, title in (("util_1d", "1D-array utilization"), ("util_2d", "2D-array utilization")):
        figure = _utilization_figure(indexed, models, seq_lens, metric, title)
        if figure is not None:
            figures[f"utilization_{metric.removeprefix('util_')}"] = figure
        else:
            logger.info("%s figure skipped because no table has the %r column", title, metric)

    return figures


def _summary_table(summary: dict[str, float]) -> str:
    """Render the summary numbers as an HTML table."""
    lines = ["<table>", "<tr><th>Quantity</th><th>Value</th></tr>"]
    for key, value in summary.items():
        label = html.escape(SUMMARY_LABELS.get(key, key))
        number = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        lines.append(f"<tr><td>{label}</td><td>{html.escape(number)}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _header() -> str:
    """Render the document head and the introductory paragraph."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FuseMax vs FLAT attention report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: 0.3em 0.8em; text-align: left; }}
</style>
</head>
<body>
<h1>FuseMax vs FLAT attention comparison</h1>
<p>This report compares the FuseMax attention accelerator (MICRO 2024) with the FLAT baseline
on BERT, TrXL, T5 and XLM at sequence lengths from 1K to 1M tokens.
The numbers are estimates from this project's analytical model, which reproduces the FuseMax
evaluation, and are not copied from the paper.
Generated by <code>{GENERATOR}</code>.</p>
"""


def _render_figure(figure: go.Figure, include_plotlyjs: bool) -> str:
    """Render one figure as an HTML fragment, inlining plotly.js when ``include_plotlyjs`` is true."""
    return pio.to_html(figure, full_html=False, include_plotlyjs=include_plotlyjs, config={"displaylogo": False})


def write_report(path: Path, tables: dict[str, list[dict]], summary: dict[str, float]) -> None:
    """Write the comparison report as one self-contained HTML file.

    The file is written to a temporary file in the same directory and then moved onto
    ``path`` with ``os.replace``, so a failed or interrupted run leaves any earlier
    report unchanged.

    Parameters
    ----------
    path : Path
        Output file. Missing parent directories are created.
    tables : dict[str, list[dict]]
        Rows per table name, as for :func:`build_figures`. Missing tables are skipped.
    summary : dict[str, float]
        Summary numbers shown in a table, by key.

    Returns
    -------
    None
    """
    path = Path(path)
    figures = build_figures(tables, summary)
    path.parent.mkdir(parents=True, exist_ok=True)

    # os.open with mode 0o666 lets the umask set the permissions, as a plain open() would.
    temp_path = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(_header())
            output.write("<h2>Summary</h2>\n")
            output.write(_summary_table(summary))
            output.write("\n")

            first = True
            for name, figure in figures.items():
                output.write(f'<div class="figure" id="figure-{html.escape(name)}">\n')
                output.write(_render_figure(figure, include_plotlyjs=first))
                output.write("\n</div>\n")
                first = False

            output.write("</body>\n</html>\n")
            output.flush()
            os.fsync(output.fileno())
        os.replace(temp_path, path)
    except BaseException:
        # BaseException so that Ctrl-C also removes the partial file.
        temp_path.unlink(missing_ok=True)
        raise

    logger.info("wrote report with %d figures to %s", len(figures), path)
