"""Bar figures with one panel per model: utilization, speedup and energy (Fig. 6a, 6b and 8 to 11).

Speedup and energy figures are normalised to the unfused baseline at the same
model and sequence length: speedup is unfused latency / configuration latency and
energy is configuration energy / unfused energy, so Unfused is 1 everywhere.
"""

from __future__ import annotations

import logging

import plotly.graph_objects as go

from fusemax.report.rows import RowIndex, positive, value
from fusemax.report.style import (
    END_TO_END_PAIRING,
    FLAT_TABLE,
    FUSEMAX_TABLE,
    UNFUSED_TABLE,
    Configuration,
    add_configuration_bars,
    configuration_for,
    model_panels,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]

UTILIZATION_AXIS_TITLE = "Utilization (fraction of cycles busy)"
SPEEDUP_AXIS_TITLE = "Speedup over unfused (x)"
ENERGY_AXIS_TITLE = "Energy relative to unfused (ratio)"
# The y axis of a ratio figure ends this factor above the larger of 1 and the tallest bar.
HEADROOM = 1.08
NO_LEGEND_TOP_MARGIN_PX = 70


def metric_values(rows: RowIndex, metric: str) -> dict[Key, float]:
    """Map each ``(model, seq_len)`` pair to the positive value of ``metric``, leaving out other rows."""
    values = {}
    for key, row in rows.items():
        number = positive(row, metric)
        if number is not None:
            values[key] = number
    return values


def relative(values: dict[Key, float], reference: dict[Key, float], metric: str) -> dict[Key, float]:
    """Divide ``values`` by ``reference`` pair by pair: reference / value for latency, value / reference otherwise.

    Pairs missing from either side are left out.
    """
    ratios = {}
    for key, number in values.items():
        if key not in reference:
            continue
        if metric == "latency":
            ratios[key] = reference[key] / number
        else:
            ratios[key] = number / reference[key]
    return ratios


def end_to_end_values(
    indexed: dict[str, RowIndex], configurations: list[Configuration], metric: str
) -> dict[str, dict[Key, float]]:
    """Add each configuration's attention ``metric`` to that of its paired linear-layer table.

    Configurations without a pairing in :data:`END_TO_END_PAIRING` or whose linear-layer
    table is missing are left out.
    """
    totals: dict[str, dict[Key, float]] = {}
    for configuration in configurations:
        linear_table = END_TO_END_PAIRING.get(configuration.table)
        if linear_table is None or linear_table not in indexed:
            logger.info("end-to-end %s of %r skipped because table %r is missing", metric, configuration.table, linear_table)
            continue
        attention = metric_values(indexed[configuration.table], metric)
        linear = metric_values(indexed[linear_table], metric)
        totals[configuration.table] = {key: attention[key] + linear[key] for key in attention if key in linear}
    return totals


def configuration_figure(
    series: dict[str, dict[Key, float]],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    title: str,
    y_title: str,
) -> go.Figure | None:
    """Draw grouped bars of ``series`` (values by table name), one colour per configuration.

    Returns None when no configuration has a value to draw.
    """
    figure = model_panels(models, seq_lens, title, y_title)
    drawn = 0
    for configuration in configurations:
        values = series.get(configuration.table)
        if values:
            drawn += add_configuration_bars(figure, configuration, values, models, seq_lens)
    if drawn == 0:
        return None
    return figure


def utilization_figure(
    indexed: dict[str, RowIndex],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    column: str,
    title: str,
) -> go.Figure | None:
    """Draw one utilization column (``util_1d`` or ``util_2d``) per configuration, or None when no table has it."""
    series = {}
    for configuration in configurations:
        values = {}
        for key, row in indexed[configuration.table].items():
            number = value(row, column)
            if number is not None:
                values[key] = number
        series[configuration.table] = values
    figure = configuration_figure(series, configurations, models, seq_lens, title, UTILIZATION_AXIS_TITLE)
    if figure is not None:
        figure.update_yaxes(range=[0.0, 1.05])
    return figure


def normalised_figure(
    series: dict[str, dict[Key, float]],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    metric: str,
    title: str,
) -> go.Figure | None:
    """Draw ``series`` relative to the unfused entry of ``series``, or None without an unfused entry."""
    reference = series.get(UNFUSED_TABLE)
    if not reference:
        logger.info("figure %r skipped because it needs the %r table", title, UNFUSED_TABLE)
        return None
    ratios = {table: relative(values, reference, metric) for table, values in series.items()}
    y_title = SPEEDUP_AXIS_TITLE if metric == "latency" else ENERGY_AXIS_TITLE
    figure = configuration_figure(ratios, configurations, models, seq_lens, title, y_title)
    if figure is not None:
        _add_reference_line(figure, ratios.values())
    return figure


def attention_figure(
    indexed: dict[str, RowIndex],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    metric: str,
    title: str,
) -> go.Figure | None:
    """Draw attention speedup (``metric="latency"``) or energy (``"energy"``) relative to unfused."""
    series = {configuration.table: metric_values(indexed[configuration.table], metric) for configuration in configurations}
    return normalised_figure(series, configurations, models, seq_lens, metric, title)


def end_to_end_figure(
    indexed: dict[str, RowIndex],
    configurations: list[Configuration],
    models: list[str],
    seq_lens: list[str],
    metric: str,
    title: str,
) -> go.Figure | None:
    """Draw end-to-end (attention plus linear layers) speedup or energy relative to unfused."""
    series = end_to_end_values(indexed, configurations, metric)
    return normalised_figure(series, configurations, models, seq_lens, metric, title)


def fusemax_over_flat_figure(
    indexed: dict[str, RowIndex], models: list[str], seq_lens: list[str], metric: str, title: str
) -> go.Figure | None:
    """Draw FuseMax (+Binding) relative to FLAT: FLAT / FuseMax latency, or FuseMax / FLAT energy.

    Returns None when either table is missing or no pair has both values.
    """
    if FUSEMAX_TABLE not in indexed or FLAT_TABLE not in indexed:
        logger.info("figure %r skipped because it needs both %r and %r", title, FUSEMAX_TABLE, FLAT_TABLE)
        return None
    fusemax = metric_values(indexed[FUSEMAX_TABLE], metric)
    flat = metric_values(indexed[FLAT_TABLE], metric)
    ratios = relative(fusemax, flat, metric)
    skipped = len(set(indexed[FUSEMAX_TABLE]) | set(indexed[FLAT_TABLE])) - len(ratios)
    if skipped:
        logger.warning("skipped %d pairs with a missing or non-positive %s in figure %r", skipped, metric, title)
    if not ratios:
        return None

    if metric == "latency":
        y_title = "Speedup over FLAT (x)"
    else:
        y_title = "Energy relative to FLAT (ratio)"
    figure = model_panels(models, seq_lens, title, y_title)
    add_configuration_bars(figure, configuration_for(FUSEMAX_TABLE), ratios, models, seq_lens)
    figure.update_traces(showlegend=False)
    # One series needs no legend, so the top margin only has room for the title.
    figure.update_layout(margin={"t": NO_LEGEND_TOP_MARGIN_PX})
    _add_reference_line(figure, [ratios])
    return figure


def _add_reference_line(figure: go.Figure, series) -> None:
    """Draw a dotted line at 1 and start the y axis at 0 with room above the line and the tallest bar."""
    tallest = max((number for values in series for number in values.values()), default=1.0)
    figure.update_yaxes(range=[0.0, HEADROOM * max(1.0, tallest)])
    figure.add_hline(y=1.0, line_dash="dot", line_color="gray", row="all", col="all")
