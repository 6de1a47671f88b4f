"""Stacked breakdown figures: 2D-array activity per Einsum (Fig. 7), energy and area per component."""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fusemax.report.rows import MODELS, SEQ_LENS, RowIndex, ordered, positive, value
from fusemax.report.style import (
    BOTTOM_MARGIN_PX,
    LEGEND_TOP_PX,
    TOP_MARGIN_PX,
    UNFUSED_TABLE,
    Configuration,
    apply_layout,
    attention_configurations,
)

logger = logging.getLogger(__name__)

ACTIVITY_AXIS_TITLE = "Proportion active (fraction of cycles)"
CONFIGURATION_AXIS_TITLE = "Configuration"
ACTIVITY_MODEL = "BERT"

# Stack segments of Fig. 7 and the per-Einsum table columns they read, in order of preference.
# FLAT reports AV where the FuseMax cascades report SLNV, and both multiply by V.
ACTIVITY_SEGMENTS = (
    ("QK", ("QK",)),
    ("LM", ("LM",)),
    ("SLN", ("SLN",)),
    ("SLD", ("SLD",)),
    ("SLNV/AV", ("SLNV", "AV")),
)
SEGMENT_COLOURS = dict(zip([name for name, _ in ACTIVITY_SEGMENTS], plotly.colors.qualitative.Set2))

# Readable names and fixed colours of the energy and area breakdown components.
COMPONENTS = {
    "dram": ("DRAM", "#88ccee"),
    "global_buffer": ("Global buffer", "#cc6677"),
    "array1d_buffer": ("1D-array buffer", "#ddcc77"),
    "array2d_register_files": ("2D-array register files", "#117733"),
    "array1d_register_files": ("1D-array register files", "#332288"),
    "mac": ("Multiply-accumulate", "#aa4499"),
    "exponential": ("Exponential", "#44aa99"),
    "divide": ("Divide", "#999933"),
    "add": ("Add", "#882255"),
    "max": ("Max", "#661100"),
    "array2d": ("2D array", "#aa4499"),
    "array1d_and_other": ("1D array and other", "#44aa99"),
}
FALLBACK_COMPONENT_COLOUR = "#999999"

PICOJOULES_PER_JOULE = 1e12
SQUARE_MICROMETRES_PER_SQUARE_CENTIMETRE = 1e8
SEGMENTED_PANEL_COLUMNS = 3
PANEL_ROW_HEIGHT_PX = 260
# Room between panel rows for the upper row's x-axis title and the lower row's panel titles.
PANEL_ROW_GAP_PX = 110


def _activity_segments(row: dict | None) -> dict[str, float]:
    """Return the 2D-array activity of each Fig. 7 segment found in ``row``."""
    segments = {}
    for segment, columns in ACTIVITY_SEGMENTS:
        for column in columns:
            number = value(row, column)
            if number is not None:
                segments[segment] = number
                break
    return segments


def activity_figure(
    indexed: dict[str, RowIndex], configurations: list[Configuration], models: list[str], seq_lens: list[str]
) -> go.Figure | None:
    """Draw Fig. 7, the stacked 2D-array activity per Einsum of one model, with one panel per sequence length.

    The model is BERT when present, otherwise the first model. Configurations without
    per-Einsum columns (the unfused baseline) are left out. Returns None when no table
    has a per-Einsum column.
    """
    if not models:
        return None
    model = ACTIVITY_MODEL if ACTIVITY_MODEL in models else models[0]
    stacks = {
        (configuration.table, seq_len): _activity_segments(indexed[configuration.table].get((model, seq_len)))
        for configuration in configurations
        for seq_len in seq_lens
    }
    plotted = [configuration for configuration in configurations if any(stacks[(configuration.table, s)] for s in seq_lens)]
    panel_lens = [seq_len for seq_len in seq_lens if any(stacks[(c.table, seq_len)] for c in plotted)]
    if not panel_lens:
        logger.info("Fig. 7 skipped because no table has a per-Einsum activity column")
        return None

    columns = min(SEGMENTED_PANEL_COLUMNS, len(panel_lens))
    rows = math.ceil(len(panel_lens) / columns)
    plot_height = rows * PANEL_ROW_HEIGHT_PX + (rows - 1) * PANEL_ROW_GAP_PX
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[f"{seq_len} tokens" for seq_len in panel_lens],
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=PANEL_ROW_GAP_PX / plot_height,
    )
    title = f"Fig. 7: {model} 2D-array activity per Einsum"
    apply_layout(figure, title, height=plot_height + TOP_MARGIN_PX + BOTTOM_MARGIN_PX, legend_title="Einsum")
    figure.update_layout(barmode="stack")
    categories = [configuration.short_label for configuration in plotted]

    legend_shown: set[str] = set()
    for index, seq_len in enumerate(panel_lens):
        row, column = divmod(index, columns)
        for segment, _ in ACTIVITY_SEGMENTS:
            pairs = [
                (configuration.short_label, stacks[(configuration.table, seq_len)][segment])
                for configuration in plotted
                if segment in stacks[(configuration.table, seq_len)]
            ]
            if not pairs:
                continue
            trace = go.Bar(
                x=[label for label, _ in pairs],
                y=[number for _, number in pairs],
                name=segment,
                legendgroup=segment,
                showlegend=segment not in legend_shown,
                marker_color=SEGMENT_COLOURS[segment],
                hovertemplate=f"{segment}, %{{x}} at {seq_len}: %{{y:.3f}}<extra></extra>",
            )
            legend_shown.add(segment)
            figure.add_trace(trace, row=row + 1, col=column + 1)

    figure.update_xaxes(
        title_text=CONFIGURATION_AXIS_TITLE, type="category", categoryorder="array", categoryarray=categories
    )
    figure.update_yaxes(range=[0.0, 1.05])
    figure.update_yaxes(title_text=ACTIVITY_AXIS_TITLE, col=1)
    return figure


def _component_order(components) -> list[str]:
    return ordered(components, tuple(COMPONENTS))


def _component_trace(component: str, x_values: list[str], y_values: list[float], show_legend: bool, unit: str) -> go.Bar:
    label, colour = COMPONENTS.get(component, (component, FALLBACK_COMPONENT_COLOUR))
    return go.Bar(
        x=x_values,
        y=y_values,
        name=label,
        legendgroup=component,
        showlegend=show_legend,
        marker_color=colour,
        hovertemplate=f"{label}, %{{x}}: %{{y:.3g}} {unit}<extra></extra>",
    )


def _energy_per_component(rows: list[dict]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Sum the energy (pJ) per component for each ``(table, model, seq_len)``, leaving out incomplete rows."""
    energy: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for row in rows:
        number = value(row, "energy_pj")
        if number is None or not all(key in row for key in ("table", "model", "seq_len", "component")):
            continue
        parts = energy[(str(row["table"]), str(row["model"]), str(row["seq_len"]))]
        component = str(row["component"])
        parts[component] = parts.get(component, 0.0) + number
    return energy


def _length_buttons(seq_lens: list[str], trace_lengths: list[str], titles: dict[str, str], y: float) -> dict:
    """Return a row of buttons that shows the traces and title of one sequence length at a time."""
    buttons = [
        {
            "label": seq_len,
            "method": "update",
            "args": [{"visible": [length == seq_len for length in trace_lengths]}, {"title.text": titles[seq_len]}],
        }
        for seq_len in seq_lens
    ]
    return {
        "type": "buttons",
        "direction": "right",
        "buttons": buttons,
        "active": 0,
        "x": 0.0,
        "xanchor": "left",
        "y": y,
        "yanchor": "top",
        "pad": {"t": 0, "b": 0, "l": 0, "r": 0},
    }


def energy_breakdown_figure(rows: list[dict]) -> go.Figure | None:
    """Draw the energy per component of every configuration, one panel per model, with buttons per length.

    Each bar is divided by the unfused configuration's total energy at the same model and
    length, so a bar's height matches Fig. 9. When the unfused rows are missing for any
    plotted pair, bars show the absolute energy in joules instead. Returns None without rows.
    """
    energy = _energy_per_component(rows)
    if not energy:
        logger.info("energy breakdown figure skipped because there are no energy breakdown rows")
        return None

    configurations = attention_configurations(table for table, _, _ in energy)
    models = ordered([model for _, model, _ in energy], MODELS)
    seq_lens = ordered([seq_len for _, _, seq_len in energy], SEQ_LENS)
    components = _component_order(component for parts in energy.values() for component in parts)

    pairs = {(model, seq_len) for _, model, seq_len in energy}
    unfused_totals = {pair: sum(energy.get((UNFUSED_TABLE, *pair), {}).values()) for pair in pairs}
    normalised = all(total > 0 for total in unfused_totals.values())
    if normalised:
        y_title = "Energy relative to unfused total (ratio)"
        unit = ""
    else:
        logger.info("energy breakdown shows joules because the unfused breakdown is missing for some pairs")
        y_title = "Energy (J)"
        unit = "J"

    figure = make_subplots(rows=1, cols=len(models), subplot_titles=models, shared_yaxes=True, horizontal_spacing=0.03)
    # The length buttons sit under the title, and the legend, up to three lines at 800 px, under them.
    height = 660
    top_margin = 220
    apply_layout(figure, "", height=height, legend_title="Component", top_margin=top_margin, legend_top=95)
    figure.update_layout(barmode="stack")
    buttons_y = 1.0 + (top_margin - LEGEND_TOP_PX) / (height - top_margin - BOTTOM_MARGIN_PX)

    trace_lengths: list[str] = []
    for seq_len in seq_lens:
        legend_shown: set[str] = set()
        for column, model in enumerate(models, start=1):
            if (model, seq_len) not in pairs:
                continue
            scale = unfused_totals[(model, seq_len)] if normalised else PICOJOULES_PER_JOULE
            present = [c for c in configurations if (c.table, model, seq_len) in energy]
            for component in components:
                with_component = [c for c in present if component in energy[(c.table, model, seq_len)]]
                if not with_component:
                    continue
                x_values = [c.short_label for c in with_component]
                y_values = [energy[(c.table, model, seq_len)][component] / scale for c in with_component]
                trace = _component_trace(component, x_values, y_values, component not in legend_shown, unit)
                trace.visible = seq_len == seq_lens[0]
                legend_shown.add(component)
                figure.add_trace(trace, row=1, col=column)
                trace_lengths.append(seq_len)

    titles = {seq_len: f"Attention energy per component at {seq_len} tokens" for seq_len in seq_lens}
    figure.update_layout(
        title_text=titles[seq_lens[0]],
        updatemenus=[_length_buttons(seq_lens, trace_lengths, titles, buttons_y)],
    )
    categories = [c.short_label for c in configurations]
    figure.update_xaxes(title_text=CONFIGURATION_AXIS_TITLE, type="category", categoryorder="array", categoryarray=categories)
    figure.update_yaxes(title_text=y_title, col=1)
    return figure


def area_breakdown_figure(rows: list[dict]) -> go.Figure | None:
    """Draw the area per component of each architecture as stacked bars in square centimetres, or None without rows."""
    area: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        number = positive(row, "area_um2")
        if number is None or "arch" not in row or "component" not in row:
            continue
        parts = area[str(row["arch"])]
        parts[str(row["component"])] = parts.get(str(row["component"]), 0.0) + number
    if not area:
        logger.info("area breakdown figure skipped because there are no area breakdown rows")
        return None

    figure = go.Figure()
    apply_layout(figure, "Area per component", height=420, legend_title="Component", top_margin=100)
    figure.update_layout(barmode="stack")
    architectures = list(area)
    for component in _component_order(component for parts in area.values() for component in parts):
        x_values = [arch for arch in architectures if component in area[arch]]
        y_values = [area[arch][component] / SQUARE_MICROMETRES_PER_SQUARE_CENTIMETRE for arch in x_values]
        figure.add_trace(_component_trace(component, x_values, y_values, True, "cm²"))
    # Bars narrower than the default, which fills the whole plot when there is one architecture.
    figure.update_layout(bargap=0.6)
    figure.update_xaxes(title_text="Architecture", type="category")
    figure.update_yaxes(title_text="Area (cm²)")
    return figure
