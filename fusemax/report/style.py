"""Configuration names, fixed colours and the shared panel layout of the report figures.

Every figure draws a configuration in the same colour: Unfused red, FLAT blue,
+Cascade green, +Architecture purple and +Binding orange, as the FuseMax paper's
evaluation figures do. +Cascade, +Architecture and +Binding are the ablation
steps from FLAT to FuseMax, so +Binding is the full FuseMax design.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

UNFUSED_TABLE = "attn-unfused"
FLAT_TABLE = "attn-flat"
FUSEMAX_TABLE = "attn-binding"
PARETO_TABLE = "pareto"
END_TO_END_TABLES = ("end2end-flat", "end2end-proposal")

# The linear layers that run with each attention configuration in the end-to-end figures:
# the FLAT platform's for Unfused, FLAT and +Cascade, FuseMax's for +Architecture and +Binding.
END_TO_END_PAIRING = {
    "attn-unfused": "end2end-flat",
    "attn-flat": "end2end-flat",
    "attn-cascade": "end2end-flat",
    "attn-arch": "end2end-proposal",
    "attn-binding": "end2end-proposal",
}


@dataclass(frozen=True)
class Configuration:
    """One attention table as the figures show it: legend label, short axis label and colour."""

    table: str
    label: str
    short_label: str
    colour: str


CONFIGURATIONS = (
    Configuration("attn-unfused", "Unfused", "UF", "#d62728"),
    Configuration("attn-flat", "FLAT", "FL", "#1f77b4"),
    Configuration("attn-cascade", "+Cascade", "+C", "#2ca02c"),
    Configuration("attn-arch", "+Architecture", "+A", "#9467bd"),
    Configuration("attn-binding", "+Binding", "+B", "#ff7f0e"),
)

# Colours for attention tables with other names, which appear under their own name.
EXTRA_COLOURS = ("#8c564b", "#7f7f7f", "#17becf", "#bcbd22", "#e377c2")

SEQ_LEN_AXIS_TITLE = "Sequence length<br>(tokens)"
LEGEND_TITLE = "Configuration"
TEMPLATE = "plotly_white"
PANEL_HEIGHT_PX = 480
# The top margin has room for the title and a one-line legend, and the bottom margin for two-line x-axis titles.
TOP_MARGIN_PX = 120
BOTTOM_MARGIN_PX = 80
LEGEND_TOP_PX = 45


def attention_configurations(table_names) -> list[Configuration]:
    """List the attention configurations among ``table_names``: the known five in order, then others.

    Tables named in :data:`END_TO_END_TABLES` and the Pareto table are not attention
    configurations and are left out.
    """
    names = list(dict.fromkeys(table_names))
    known = [configuration for configuration in CONFIGURATIONS if configuration.table in names]
    known_tables = {configuration.table for configuration in CONFIGURATIONS}
    excluded = known_tables | set(END_TO_END_TABLES) | {PARETO_TABLE}
    others = [name for name in names if name not in excluded]
    extra = [
        Configuration(name, name, name, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])
        for index, name in enumerate(others)
    ]
    return known + extra


def configuration_for(table: str) -> Configuration:
    """Return the known configuration of ``table``, or a grey one labelled with the table name."""
    for configuration in CONFIGURATIONS:
        if configuration.table == table:
            return configuration
    return Configuration(table, table, table, EXTRA_COLOURS[1])


def apply_layout(
    figure: go.Figure,
    title: str,
    height: int = PANEL_HEIGHT_PX,
    legend_title: str = LEGEND_TITLE,
    top_margin: int = TOP_MARGIN_PX,
    legend_top: int = LEGEND_TOP_PX,
) -> None:
    """Set the title, template, height and a horizontal legend between the title and the panels.

    ``top_margin`` and ``legend_top`` are in pixels from the top of the figure.
    """
    figure.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left", "y": 0.98, "yref": "container", "yanchor": "top"},
        template=TEMPLATE,
        height=height,
        margin={"t": top_margin, "b": BOTTOM_MARGIN_PX, "l": 70, "r": 20},
        legend={
            "title": {"text": legend_title},
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0 - legend_top / height,
            "yref": "container",
            "yanchor": "top",
        },
    )


def model_panels(models: list[str], seq_lens: list[str], title: str, y_title: str) -> go.Figure:
    """Create an empty figure with one grouped-bar panel per model, side by side, sharing the y axis."""
    figure = make_subplots(
        rows=1, cols=len(models), subplot_titles=models, shared_yaxes=True, horizontal_spacing=0.03
    )
    apply_layout(figure, title)
    figure.update_layout(barmode="group", bargap=0.15, bargroupgap=0.0)
    figure.update_xaxes(
        title_text=SEQ_LEN_AXIS_TITLE,
        type="category",
        categoryorder="array",
        categoryarray=seq_lens,
    )
    figure.update_yaxes(title_text=y_title, row=1, col=1)
    return figure


def add_configuration_bars(
    figure: go.Figure,
    configuration: Configuration,
    values: dict[tuple[str, str], float],
    models: list[str],
    seq_lens: list[str],
    number_format: str = ".3g",
) -> int:
    """Add one bar trace per model panel for ``configuration`` and return the number of bars drawn.

    Only the first trace of a configuration shows in the legend, and all its traces
    share one legend group, so one click on the legend hides it in every panel.
    """
    drawn = 0
    for column, model in enumerate(models, start=1):
        x_values = [seq_len for seq_len in seq_lens if (model, seq_len) in values]
        if not x_values:
            continue
        y_values = [values[(model, seq_len)] for seq_len in x_values]
        trace = go.Bar(
            x=x_values,
            y=y_values,
            name=configuration.label,
            legendgroup=configuration.table,
            showlegend=drawn == 0,
            marker_color=configuration.colour,
            hovertemplate=f"{configuration.label}, {model} %{{x}}: %{{y:{number_format}}}<extra></extra>",
        )
        figure.add_trace(trace, row=1, col=column)
        drawn += len(x_values)
    return drawn
