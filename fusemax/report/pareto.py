"""Fig. 12: attention latency against chip area for FuseMax with PE arrays from 16 x 16 to 512 x 512."""

from __future__ import annotations

import logging
from collections import defaultdict

import plotly.graph_objects as go

from fusemax.report.rows import MODELS, ordered, positive, value
from fusemax.report.style import apply_layout

logger = logging.getLogger(__name__)

# The Pareto table stores area in square micrometres, and the figure shows square centimetres.
SQUARE_CENTIMETRES_PER_SQUARE_MICROMETRE = 1e-8
AREA_AXIS_TITLE = "Area (cm²)"
LATENCY_AXIS_TITLE = "Attention latency (s)"
PARETO_SEQ_LEN = "256K"

MODEL_DASHES = {"BERT": "solid", "TrXL": "dash", "T5": "dot", "XLM": "dashdot"}
MODEL_COLOURS = {"BERT": "#1b9e77", "TrXL": "#d95f02", "T5": "#7570b3", "XLM": "#e7298a"}
EXTRA_DASHES = ("longdash", "longdashdot")


def pareto_figure(rows: list[dict]) -> go.Figure | None:
    """Draw one line with markers per model (and per accelerator when there are several) on log-log axes.

    Rows need ``model``, a positive ``area`` (square micrometres) and ``latency``
    (seconds); ``PE_dim`` and ``accel`` label the points when present. Rows without a
    model, area or latency are left out. Returns None when no row is left.
    """
    lines: dict[tuple[str, str], list[tuple[float, float, float | None]]] = defaultdict(list)
    skipped = 0
    for row in rows:
        area = positive(row, "area")
        latency = positive(row, "latency")
        if "model" not in row or area is None or latency is None:
            skipped += 1
            continue
        accel = str(row.get("accel", ""))
        point = (area * SQUARE_CENTIMETRES_PER_SQUARE_MICROMETRE, latency, value(row, "PE_dim"))
        lines[(accel, str(row["model"]))].append(point)
    if skipped:
        logger.warning("skipped %d Pareto rows with a missing model or a missing or non-positive area or latency", skipped)
    if not lines:
        logger.info("Fig. 12 skipped because there are no Pareto rows")
        return None

    accels = list(dict.fromkeys(accel for accel, _ in lines))
    models = ordered([model for _, model in lines], MODELS)
    extra_models = [model for model in models if model not in MODEL_DASHES]

    figure = go.Figure()
    apply_layout(figure, f"Fig. 12: Attention latency against area at {PARETO_SEQ_LEN} tokens", height=520, legend_title="Model")
    for accel in accels:
        for model in models:
            points = sorted(lines.get((accel, model), []))
            if not points:
                continue
            name = model if len(accels) == 1 else f"{model} ({accel})"
            if model in MODEL_DASHES:
                dash = MODEL_DASHES[model]
            else:
                dash = EXTRA_DASHES[extra_models.index(model) % len(EXTRA_DASHES)]
            pe_dims = [f"{pe_dim:.0f} x {pe_dim:.0f}" if pe_dim is not None else "unknown" for _, _, pe_dim in points]
            figure.add_trace(
                go.Scatter(
                    x=[area for area, _, _ in points],
                    y=[latency for _, latency, _ in points],
                    customdata=pe_dims,
                    mode="lines+markers",
                    name=name,
                    line={"dash": dash, "color": MODEL_COLOURS.get(model), "width": 2},
                    hovertemplate=f"{name}, PE array %{{customdata}}: %{{x:.3g}} cm², %{{y:.3g}} s<extra></extra>",
                )
            )

    figure.update_xaxes(title_text=AREA_AXIS_TITLE, type="log")
    figure.update_yaxes(title_text=LATENCY_AXIS_TITLE, type="log")
    return figure
