"""Build every report figure from the study tables, skipping the figures whose inputs are missing."""

from __future__ import annotations

import logging

import plotly.graph_objects as go

from fusemax.report.bars import attention_figure, end_to_end_figure, fusemax_over_flat_figure, utilization_figure
from fusemax.report.breakdowns import activity_figure, area_breakdown_figure, energy_breakdown_figure
from fusemax.report.pareto import pareto_figure
from fusemax.report.rows import MODELS, SEQ_LENS, RowIndex, index_rows, ordered
from fusemax.report.style import END_TO_END_TABLES, PARETO_TABLE, Configuration, attention_configurations

logger = logging.getLogger(__name__)

# A caption per figure for the report page, saying what is plotted and what it is divided by.
CAPTIONS = {
    "speedup": "FLAT latency divided by FuseMax (+Binding) latency for the same model and sequence length.",
    "energy": "FuseMax (+Binding) energy divided by FLAT energy for the same model and sequence length.",
    "fig6a": "Fraction of cycles in which the 1D array (softmax units) is busy.",
    "fig6b": "Fraction of cycles in which the 2D array (multiply-accumulate units) is busy.",
    "fig7": (
        "Share of cycles in which the 2D array works on each Einsum. FL is FLAT, +C +Cascade, "
        "+A +Architecture and +B +Binding. FLAT's AV and the cascades' SLNV share one segment."
    ),
    "fig8": "Unfused attention latency divided by each configuration's attention latency.",
    "fig9": "Each configuration's attention energy divided by the unfused attention energy.",
    "fig10": (
        "Speedup of attention plus the six linear layers of a block over the unfused baseline. "
        "Unfused, FLAT and +Cascade run the linear layers on the FLAT platform, "
        "+Architecture and +Binding on FuseMax."
    ),
    "fig11": "Energy of attention plus the six linear layers, divided by that of the unfused baseline.",
    "fig12": (
        "FuseMax with square PE arrays of 16 x 16 to 512 x 512 at 256K tokens. "
        "Both axes are logarithmic, and area is the Pareto table's area in square micrometres times 1e-8."
    ),
    "energy_breakdown": (
        "Attention energy per hardware component. The buttons above the legend select the sequence length. "
        "Bars are divided by the unfused total at the same model and length, so their heights match Fig. 9. "
        "UF is Unfused, FL FLAT, +C +Cascade, +A +Architecture and +B +Binding."
    ),
    "area_breakdown": "Area per hardware component of each architecture that has an area model.",
}


def _mean_suffix(summary: dict, key: str, unit: str) -> str:
    """Return ", mean <value><unit>" when ``summary[key]`` is a number, else an empty string."""
    number = summary.get(key)
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return f", mean {number:.3g}{unit}"
    return ""


def _attention_figures(
    indexed: dict[str, RowIndex],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    summary: dict,
) -> dict[str, go.Figure | None]:
    """Build the FuseMax-over-FLAT figures and Fig. 6a to 11, which have one panel per model or per length."""
    candidates: dict[str, go.Figure | None] = {}
    title = "FuseMax attention speedup over FLAT" + _mean_suffix(summary, "attention_speedup_vs_flat", "x")
    candidates["speedup"] = fusemax_over_flat_figure(indexed, models, seq_lens, "latency", title)
    title = "FuseMax attention energy relative to FLAT" + _mean_suffix(summary, "attention_energy_vs_flat", "")
    candidates["energy"] = fusemax_over_flat_figure(indexed, models, seq_lens, "energy", title)

    candidates["fig6a"] = utilization_figure(indexed, configurations, models, seq_lens, "util_1d", "Fig. 6a: 1D-array utilization")
    candidates["fig6b"] = utilization_figure(indexed, configurations, models, seq_lens, "util_2d", "Fig. 6b: 2D-array utilization")
    candidates["fig7"] = activity_figure(indexed, configurations, models, seq_lens)

    candidates["fig8"] = attention_figure(indexed, configurations, models, seq_lens, "latency", "Fig. 8: Attention speedup over unfused")
    candidates["fig9"] = attention_figure(indexed, configurations, models, seq_lens, "energy", "Fig. 9: Attention energy relative to unfused")
    if any(table in indexed for table in END_TO_END_TABLES):
        title = "Fig. 10: End-to-end speedup over unfused"
        candidates["fig10"] = end_to_end_figure(indexed, configurations, models, seq_lens, "latency", title)
        title = "Fig. 11: End-to-end energy relative to unfused"
        candidates["fig11"] = end_to_end_figure(indexed, configurations, models, seq_lens, "energy", title)
    else:
        logger.info("Fig. 10 and 11 skipped because no end-to-end table is present")
    return candidates


def build_figures(
    tables: dict[str, list[dict]], summary: dict, breakdowns: dict[str, list[dict]] | None = None
) -> dict[str, go.Figure]:
    """Build the report figures from the study tables and breakdowns.

    Parameters
    ----------
    tables : dict[str, list[dict]]
        Rows per table name. Attention tables (``"attn-unfused"``, ``"attn-flat"``,
        ``"attn-cascade"``, ``"attn-arch"``, ``"attn-binding"``) have ``model``, ``seq_len``,
        ``latency`` (s), ``energy`` (pJ), ``util_1d``, ``util_2d`` and per-Einsum 2D-array
        shares. ``"end2end-flat"`` and ``"end2end-proposal"`` have the linear layers'
        ``latency`` and ``energy`` per ``model`` and ``seq_len``. ``"pareto"`` has ``model``,
        ``PE_dim``, ``latency`` (s) and ``area`` (square micrometres). Any subset may be
        present. Tables with other names are drawn as extra attention configurations.
    summary : dict
        Summary values. ``attention_speedup_vs_flat`` and ``attention_energy_vs_flat``,
        where present, appear in the FuseMax-vs-FLAT figure titles.
    breakdowns : dict[str, list[dict]], optional
        ``"energy"`` rows (``table``, ``model``, ``seq_len``, ``component``, ``energy_pj``) and
        ``"area"`` rows (``arch``, ``component``, ``area_um2``).

    Returns
    -------
    dict[str, plotly.graph_objects.Figure]
        Figures by name in report order: ``"speedup"`` and ``"energy"`` (FuseMax over FLAT),
        ``"fig6a"``, ``"fig6b"``, ``"fig7"`` to ``"fig12"``, ``"energy_breakdown"`` and
        ``"area_breakdown"``. A figure whose inputs are missing is left out.

    Raises
    ------
    ValueError
        If a row of an attention or end-to-end table has no ``model`` or ``seq_len`` column.
    """
    breakdowns = breakdowns or {}
    indexed = {name: index_rows(name, rows) for name, rows in tables.items() if name != PARETO_TABLE}
    configurations = attention_configurations(indexed)
    attention_pairs = [pair for c in configurations for pair in indexed[c.table]]
    models = ordered([model for model, _ in attention_pairs], MODELS)
    seq_lens = ordered([seq_len for _, seq_len in attention_pairs], SEQ_LENS)
    candidates: dict[str, go.Figure | None] = {}
    if attention_pairs:
        candidates.update(_attention_figures(indexed, configurations, models, seq_lens, summary))
    else:
        logger.info("attention figures skipped because no attention table has rows")

    if PARETO_TABLE in tables:
        candidates["fig12"] = pareto_figure(tables[PARETO_TABLE])
    if "energy" in breakdowns:
        candidates["energy_breakdown"] = energy_breakdown_figure(breakdowns["energy"])
    if "area" in breakdowns:
        candidates["area_breakdown"] = area_breakdown_figure(breakdowns["area"])

    figures = {name: figure for name, figure in candidates.items() if figure is not None}
    logger.info("built %d report figures: %s", len(figures), ", ".join(figures))
    return figures
