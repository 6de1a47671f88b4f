"""Tests for the offline HTML report of the FuseMax evaluation."""

import os
import re

import pytest

from fusemax.report import html as report
from fusemax.report import style

MODELS = ["BERT", "TrXL", "T5", "XLM"]
SEQ_LENS = ["1K", "4K", "16K", "64K", "256K", "1M"]
ATTENTION_TABLES = ["attn-unfused", "attn-flat", "attn-cascade", "attn-arch", "attn-binding"]
LABELS = ["Unfused", "FLAT", "+Cascade", "+Architecture", "+Binding"]
COLOURS = {
    "Unfused": "#d62728",
    "FLAT": "#1f77b4",
    "+Cascade": "#2ca02c",
    "+Architecture": "#9467bd",
    "+Binding": "#ff7f0e",
}
EINSUM_COLUMNS = {
    "attn-unfused": [],
    "attn-flat": ["QK", "AV"],
    "attn-cascade": ["QK", "SLNV"],
    "attn-arch": ["QK", "LM", "SLN", "SLD", "SLNV"],
    "attn-binding": ["QK", "LM", "SLN", "SLD", "SLNV"],
}
# Latency and energy scale per table, so every ratio between two tables differs.
SCALES = {
    "attn-unfused": (10.0, 4.0),
    "attn-flat": (7.0, 3.9),
    "attn-cascade": (8.0, 3.5),
    "attn-arch": (3.0, 3.0),
    "attn-binding": (1.0, 3.0),
    "end2end-flat": (0.5, 20.0),
    "end2end-proposal": (0.25, 19.0),
}
BAR_FIGURES = ["fig6a", "fig6b", "fig8", "fig9", "fig10", "fig11"]
ALL_FIGURES = [
    "speedup", "energy", "fig6a", "fig6b", "fig7", "fig8", "fig9", "fig10", "fig11", "fig12",
    "energy_breakdown", "area_breakdown",
]
CATEGORY_AXIS_TITLES = {"Configuration", "Architecture"}
PE_DIMS = [16, 32, 64, 128, 256, 512]


def make_rows(table: str) -> list[dict]:
    """Build synthetic rows for 4 models x 6 sequence lengths with distinct values per row."""
    latency_scale, energy_scale = SCALES[table]
    rows = []
    for model_index, model in enumerate(MODELS):
        for length_index, seq_len in enumerate(SEQ_LENS):
            base = (model_index + 1) * 4.0 ** length_index
            row = {
                "model": model,
                "seq_len": seq_len,
                "traffic": int(1000 * base),
                # The length term makes the ratios between tables differ per row.
                "latency": latency_scale * base * (1.0 + 0.1 * length_index * latency_scale) * 1e-6,
                "energy": energy_scale * base * 1e6,
            }
            if table.startswith("attn-"):
                row["util_2d"] = 0.1 + 0.03 * length_index
                row["util_1d"] = 0.2 + 0.02 * model_index
                columns = EINSUM_COLUMNS[table]
                for index, column in enumerate(columns):
                    row[column] = (index + 1) / (10.0 * len(columns))
            rows.append(row)
    return rows


def make_pareto_rows() -> list[dict]:
    rows = []
    for model_index, model in enumerate(MODELS):
        for pe_dim in PE_DIMS:
            rows.append(
                {
                    "accel": "proposal",
                    "model": model,
                    "PE_dim": pe_dim,
                    "latency": (model_index + 1) * 1e6 / pe_dim**2,
                    "array_2d_area": 18000.0 * pe_dim**2,
                    "area": 18600.0 * pe_dim**2,
                }
            )
    return rows


def make_tables() -> dict[str, list[dict]]:
    tables = {name: make_rows(name) for name in ATTENTION_TABLES + ["end2end-flat", "end2end-proposal"]}
    tables["pareto"] = make_pareto_rows()
    return tables


def make_breakdowns(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    energy = []
    for table in ATTENTION_TABLES:
        for row in tables[table]:
            # Three components that add up to the table's energy.
            for component, share in (("dram", 0.5), ("global_buffer", 0.3), ("mac", 0.2)):
                energy.append(
                    {"table": table, "model": row["model"], "seq_len": row["seq_len"], "component": component, "energy_pj": share * row["energy"]}
                )
    area = [
        {"arch": "fusemax-cloud", "component": "array2d", "area_um2": 1.2e9},
        {"arch": "fusemax-cloud", "component": "global_buffer", "area_um2": 4.6e8},
        {"arch": "fusemax-cloud", "component": "array1d_and_other", "area_um2": 1.1e7},
    ]
    return {"energy": energy, "area": area}


def make_summary() -> dict:
    return {
        "attention_speedup_vs_flat": 7.5,
        "attention_energy_vs_flat": 0.5,
        "pairs": 24,
        "end2end_speedup_vs_flat": 5.25,
        "end2end_energy_vs_flat": 0.8125,
        "attention_speedup_vs_unfused": 10.125,
        "attention_energy_vs_unfused": 0.75,
        "end2end_speedup_vs_unfused": 7.625,
        "end2end_energy_vs_unfused": 0.875,
        "averaging": "arithmetic mean of per-pair ratios",
        "model_variant": "paper",
    }


@pytest.fixture
def tables() -> dict[str, list[dict]]:
    return make_tables()


@pytest.fixture
def breakdowns(tables) -> dict[str, list[dict]]:
    return make_breakdowns(tables)


@pytest.fixture
def summary() -> dict:
    return make_summary()


@pytest.fixture(scope="module")
def figures() -> dict:
    """Figures of the full synthetic input, built once because building them takes about half a second."""
    tables = make_tables()
    return report.build_figures(tables, make_summary(), make_breakdowns(tables))


def find_row(rows: list[dict], model: str, seq_len: str) -> dict:
    return next(row for row in rows if row["model"] == model and row["seq_len"] == seq_len)


def panel_axis(model: str) -> str:
    number = MODELS.index(model) + 1
    return "x" if number == 1 else f"x{number}"


def bar_at(figure, model: str, seq_len: str, name: str | None = None) -> float:
    """Return the bar height of one trace (the only one when ``name`` is None) in one model panel."""
    trace = next(
        trace for trace in figure.data if trace.xaxis == panel_axis(model) and (name is None or trace.name == name)
    )
    return trace.y[list(trace.x).index(seq_len)]


def axes(figure, letter: str) -> list:
    """Return every x or y axis object of a figure's layout."""
    return [figure.layout[key] for key in figure.layout if re.fullmatch(f"{letter}axis[0-9]*", key)]


def end_to_end(tables: dict, attention: str, linear: str, model: str, seq_len: str, metric: str) -> float:
    return find_row(tables[attention], model, seq_len)[metric] + find_row(tables[linear], model, seq_len)[metric]


def test_report_file_is_offline(tmp_path, tables, summary, breakdowns):
    path = tmp_path / "out" / "report.html"
    report.write_report(path, tables, summary, breakdowns)

    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?://", text, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?https?://", text, re.IGNORECASE)


def test_report_inlines_plotly_bundle_once(tmp_path, tables, summary, breakdowns):
    path = tmp_path / "report.html"
    report.write_report(path, tables, summary, breakdowns)

    text = path.read_text(encoding="utf-8")
    # The plotly.js bundle starts with a license banner that appears once in it.
    assert text.count("* plotly.js v") == 1
    assert len(text) > 1_000_000
    assert text.count("Plotly.newPlot") == len(ALL_FIGURES)


def test_report_header_and_summary(tmp_path, tables, summary):
    path = tmp_path / "report.html"
    report.write_report(path, tables, summary)

    text = path.read_text(encoding="utf-8")
    assert "FuseMax" in text
    assert "MICRO 2024" in text
    assert "fusemax reproduce" in text
    assert "analytical model" in text
    assert "<table>" in text
    for key in summary:
        assert report.SUMMARY_LABELS[key] in text, key
        assert f"<td>{key}</td>" not in text, key
    for number in ["7.5", "0.8125", "10.12", "24", "arithmetic mean of per-pair ratios", "paper"]:
        assert number in text, number


def test_summary_rows_in_label_order(tmp_path):
    summary = {"model_variant": "paper", "peak_power_w": 3.5, "attention_speedup_vs_flat": 7.5}
    path = tmp_path / "report.html"
    report.write_report(path, {}, summary)

    text = path.read_text(encoding="utf-8")
    positions = [text.index(label) for label in [report.SUMMARY_LABELS["attention_speedup_vs_flat"], "Model variant", "Peak power w"]]
    assert positions == sorted(positions)


def test_unknown_summary_key_gets_label():
    assert report.summary_label("peak_power_w") == "Peak power w"


def test_report_links_every_figure(tmp_path, tables, summary, breakdowns):
    path = tmp_path / "report.html"
    report.write_report(path, tables, summary, breakdowns)

    text = path.read_text(encoding="utf-8")
    for name in ALL_FIGURES:
        assert f'href="#figure-{name}"' in text, name
        assert f'id="figure-{name}"' in text, name


def test_all_figures_present(figures):
    assert list(figures) == ALL_FIGURES


@pytest.mark.parametrize("name", BAR_FIGURES)
def test_bar_figure_colours_and_legend(figures, name):
    figure = figures[name]

    assert figure.layout.barmode == "group"
    assert {trace.name for trace in figure.data} == set(LABELS)
    for trace in figure.data:
        assert trace.marker.color == COLOURS[trace.name], trace.name
        assert trace.legendgroup == ATTENTION_TABLES[LABELS.index(trace.name)]
    legend_names = [trace.name for trace in figure.data if trace.showlegend]
    assert sorted(legend_names) == sorted(LABELS)
    assert len(figure.data) == len(LABELS) * len(MODELS)


@pytest.mark.parametrize("name", BAR_FIGURES + ["speedup", "energy"])
def test_bar_figure_panels(figures, name):
    figure = figures[name]

    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles[:4] == MODELS
    for axis in axes(figure, "x"):
        assert list(axis.categoryarray) == SEQ_LENS


def test_axis_titles_have_units(figures):
    for name, figure in figures.items():
        x_titles = [axis.title.text for axis in axes(figure, "x")]
        y_titles = [axis.title.text for axis in axes(figure, "y") if axis.title.text]
        assert all(x_titles), name
        assert y_titles, name
        for title in x_titles + y_titles:
            if title not in CATEGORY_AXIS_TITLES:
                assert re.search(r"\([^)]+\)$", title), f"{name}: {title!r} has no unit"


def test_panel_axis_titles_fit_800_px(figures):
    # An estimate: about 8 px per character at the default 14 px axis-title font.
    width_px = 800
    for name, figure in figures.items():
        margin = figure.layout.margin
        plot_px = width_px - margin.l - margin.r
        for axis in axes(figure, "x"):
            start, end = axis.domain or (0.0, 1.0)
            domain_px = (end - start) * plot_px
            longest = max(len(line) for line in axis.title.text.split("<br>"))
            assert longest * 8 < domain_px, f"{name}: {axis.title.text!r} is wider than its panel"


def test_speedup_is_flat_over_fusemax_latency(figures, tables):
    figure = figures["speedup"]

    for model, seq_len in [("BERT", "1K"), ("T5", "64K"), ("XLM", "1M")]:
        flat = find_row(tables["attn-flat"], model, seq_len)["latency"]
        fusemax = find_row(tables["attn-binding"], model, seq_len)["latency"]
        assert bar_at(figure, model, seq_len) == pytest.approx(flat / fusemax)
    assert "mean 7.5x" in figure.layout.title.text


def test_energy_is_fusemax_over_flat(figures, tables):
    figure = figures["energy"]

    flat = find_row(tables["attn-flat"], "TrXL", "16K")["energy"]
    fusemax = find_row(tables["attn-binding"], "TrXL", "16K")["energy"]
    assert bar_at(figure, "TrXL", "16K") == pytest.approx(fusemax / flat)


@pytest.mark.parametrize("table, label", list(zip(ATTENTION_TABLES, LABELS)))
def test_fig8_is_unfused_over_config_latency(figures, tables, table, label):
    figure = figures["fig8"]

    for model, seq_len in [("BERT", "1K"), ("TrXL", "4K"), ("T5", "256K"), ("XLM", "1M")]:
        unfused = find_row(tables["attn-unfused"], model, seq_len)["latency"]
        config = find_row(tables[table], model, seq_len)["latency"]
        assert bar_at(figure, model, seq_len, label) == pytest.approx(unfused / config)


@pytest.mark.parametrize("table, label", list(zip(ATTENTION_TABLES, LABELS)))
def test_fig9_is_config_over_unfused_energy(figures, tables, table, label):
    figure = figures["fig9"]

    unfused = find_row(tables["attn-unfused"], "T5", "16K")["energy"]
    config = find_row(tables[table], "T5", "16K")["energy"]
    assert bar_at(figure, "T5", "16K", label) == pytest.approx(config / unfused)


@pytest.mark.parametrize(
    "table, label, linear",
    [
        ("attn-unfused", "Unfused", "end2end-flat"),
        ("attn-flat", "FLAT", "end2end-flat"),
        ("attn-cascade", "+Cascade", "end2end-flat"),
        ("attn-arch", "+Architecture", "end2end-proposal"),
        ("attn-binding", "+Binding", "end2end-proposal"),
    ],
)
def test_fig10_fig11_end_to_end_pairing(figures, tables, table, label, linear):
    for model, seq_len in [("BERT", "1K"), ("XLM", "64K")]:
        unfused_latency = end_to_end(tables, "attn-unfused", "end2end-flat", model, seq_len, "latency")
        latency = end_to_end(tables, table, linear, model, seq_len, "latency")
        assert bar_at(figures["fig10"], model, seq_len, label) == pytest.approx(unfused_latency / latency)

        unfused_energy = end_to_end(tables, "attn-unfused", "end2end-flat", model, seq_len, "energy")
        energy = end_to_end(tables, table, linear, model, seq_len, "energy")
        assert bar_at(figures["fig11"], model, seq_len, label) == pytest.approx(energy / unfused_energy)


def test_fig10_differs_from_fig8(figures):
    assert bar_at(figures["fig10"], "BERT", "1K", "+Binding") != pytest.approx(bar_at(figures["fig8"], "BERT", "1K", "+Binding"))


def test_end_to_end_pairing_matches_reproduce():
    from fusemax.studies import reproduce

    assert style.END_TO_END_PAIRING == reproduce.END_TO_END_PAIRING


def test_fig12_area_in_square_centimetres_on_log_axes(figures, tables):
    figure = figures["fig12"]

    assert figure.layout.xaxis.type == "log"
    assert figure.layout.yaxis.type == "log"
    assert figure.layout.xaxis.title.text == "Area (cm²)"
    assert figure.layout.yaxis.title.text == "Attention latency (s)"
    assert [trace.name for trace in figure.data] == MODELS
    assert [trace.line.dash for trace in figure.data] == ["solid", "dash", "dot", "dashdot"]
    for trace in figure.data:
        rows = [row for row in tables["pareto"] if row["model"] == trace.name]
        assert list(trace.x) == pytest.approx([row["area"] * 1e-8 for row in rows])
        assert list(trace.y) == pytest.approx([row["latency"] for row in rows])
        assert trace.mode == "lines+markers"


def test_fig12_length_matches_pareto_study():
    from fusemax.report import pareto
    from fusemax.studies.pareto import SEQ_LEN

    assert pareto.PARETO_SEQ_LEN == f"{SEQ_LEN // 1024}K"


def test_fig7_stacks_bert_einsum_shares(figures, tables):
    figure = figures["fig7"]

    assert figure.layout.barmode == "stack"
    assert "BERT" in figure.layout.title.text
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles == [f"{seq_len} tokens" for seq_len in SEQ_LENS]
    assert [trace.name for trace in figure.data if trace.showlegend] == ["QK", "LM", "SLN", "SLD", "SLNV/AV"]
    assert figure.layout.yaxis.title.text == "Proportion active (fraction of cycles)"
    assert list(figure.layout.xaxis.categoryarray) == ["FL", "+C", "+A", "+B"]

    # FLAT's AV column is drawn in the SLNV/AV segment of the first panel (1K).
    segment = next(trace for trace in figure.data if trace.name == "SLNV/AV" and trace.xaxis == "x")
    flat_row = find_row(tables["attn-flat"], "BERT", "1K")
    assert segment.y[list(segment.x).index("FL")] == pytest.approx(flat_row["AV"])
    binding_row = find_row(tables["attn-binding"], "BERT", "1K")
    assert segment.y[list(segment.x).index("+B")] == pytest.approx(binding_row["SLNV"])
    colours = {trace.name: trace.marker.color for trace in figure.data}
    assert len(set(colours.values())) == 5


def test_energy_breakdown_is_relative_to_unfused(figures, tables):
    figure = figures["energy_breakdown"]

    assert figure.layout.barmode == "stack"
    assert [button.label for button in figure.layout.updatemenus[0].buttons] == SEQ_LENS
    visible = [trace for trace in figure.data if trace.visible]
    assert sorted(trace.name for trace in visible if trace.showlegend) == ["DRAM", "Global buffer", "Multiply-accumulate"]

    # At the first length (1K), the stack of +Binding in the XLM panel adds up to Fig. 9's bar.
    unfused = find_row(tables["attn-unfused"], "XLM", "1K")["energy"]
    binding = find_row(tables["attn-binding"], "XLM", "1K")["energy"]
    stack = sum(trace.y[list(trace.x).index("+B")] for trace in visible if trace.xaxis == panel_axis("XLM"))
    assert stack == pytest.approx(binding / unfused)


def test_energy_breakdown_buttons_show_one_length(figures):
    figure = figures["energy_breakdown"]

    per_length = len(figure.data) // len(SEQ_LENS)
    for button in figure.layout.updatemenus[0].buttons:
        visible = button.args[0]["visible"]
        assert len(visible) == len(figure.data)
        assert sum(visible) == per_length
        assert button.label in button.args[1]["title.text"]


def test_energy_breakdown_without_unfused_shows_joules(tables, summary, breakdowns):
    breakdowns["energy"] = [row for row in breakdowns["energy"] if row["table"] != "attn-unfused"]
    figure = report.build_figures(tables, summary, breakdowns)["energy_breakdown"]

    assert figure.layout.yaxis.title.text == "Energy (J)"
    row = find_row(tables["attn-flat"], "BERT", "1K")
    dram = next(trace for trace in figure.data if trace.name == "DRAM" and trace.xaxis == "x" and trace.visible)
    assert dram.y[list(dram.x).index("FL")] == pytest.approx(0.5 * row["energy"] * 1e-12)


def test_area_breakdown_in_square_centimetres(figures):
    figure = figures["area_breakdown"]

    heights = {trace.name: trace.y[0] for trace in figure.data}
    assert heights == pytest.approx({"2D array": 12.0, "Global buffer": 4.6, "1D array and other": 0.11})
    assert figure.layout.yaxis.title.text == "Area (cm²)"


def test_standalone_figure_files_written(tmp_path, tables, summary, breakdowns):
    figures_dir = tmp_path / "figures"
    report.write_report(tmp_path / "report.html", tables, summary, breakdowns, figures_dir)

    expected = sorted([f"{name}.html" for name in ALL_FIGURES] + ["plotly.min.js"])
    assert sorted(path.name for path in figures_dir.iterdir()) == expected
    assert "* plotly.js v" in (figures_dir / "plotly.min.js").read_text(encoding="utf-8")
    text = (figures_dir / "fig8.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("Plotly.newPlot") == 1
    assert "Fig. 8: Attention speedup over unfused" in text
    # The page loads the shared copy beside it and nothing from the network.
    sources = re.findall(r"<script[^>]*\bsrc\s*=\s*\"([^\"]+)\"", text, re.IGNORECASE)
    assert sources == ["plotly.min.js"]


def test_old_signature_still_works(tmp_path, tables, summary, breakdowns):
    report.write_report(tmp_path / "three.html", tables, summary)
    report.write_report(tmp_path / "four.html", tables, summary, breakdowns)

    assert 'id="figure-energy_breakdown"' not in (tmp_path / "three.html").read_text(encoding="utf-8")
    assert 'id="figure-energy_breakdown"' in (tmp_path / "four.html").read_text(encoding="utf-8")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["four.html", "three.html"]


@pytest.mark.parametrize(
    "names, expected",
    [
        (["attn-flat", "attn-binding"], ["speedup", "energy", "fig6a", "fig6b", "fig7"]),
        (["attn-unfused", "attn-binding"], ["fig6a", "fig6b", "fig7", "fig8", "fig9"]),
        (["attn-unfused", "attn-flat", "end2end-flat"], ["fig6a", "fig6b", "fig7", "fig8", "fig9", "fig10", "fig11"]),
        (["pareto"], ["fig12"]),
        (["end2end-flat", "end2end-proposal"], []),
        ([], []),
    ],
)
def test_subset_of_tables_skips_figures(tmp_path, tables, summary, names, expected):
    subset = {name: tables[name] for name in names}
    figures = report.build_figures(subset, summary)

    assert list(figures) == expected
    path = tmp_path / "report.html"
    report.write_report(path, subset, summary)
    assert path.read_text(encoding="utf-8").count("Plotly.newPlot") == len(expected)


def test_end_to_end_skips_unpaired_configurations(tables, summary):
    del tables["end2end-proposal"]
    figure = report.build_figures(tables, summary)["fig10"]

    assert {trace.name for trace in figure.data} == {"Unfused", "FLAT", "+Cascade"}


def test_unknown_attention_table_gets_own_name(tables, summary):
    tables["attn-variant"] = make_rows("attn-arch")
    figure = report.build_figures(tables, summary)["fig8"]

    variant = [trace for trace in figure.data if trace.name == "attn-variant"]
    assert len(variant) == len(MODELS)
    assert variant[0].marker.color not in COLOURS.values()


def test_missing_utilization_column_is_skipped(tables, summary):
    for name in ATTENTION_TABLES:
        for row in tables[name]:
            del row["util_1d"]
    figures = report.build_figures(tables, summary)

    assert "fig6a" not in figures
    assert "fig6b" in figures
    assert "speedup" in figures


def test_non_positive_latency_is_skipped(tables, summary):
    find_row(tables["attn-flat"], "BERT", "4K")["latency"] = 0.0
    find_row(tables["attn-flat"], "BERT", "16K")["latency"] = "nan"
    figure = report.build_figures(tables, summary)["fig8"]

    flat = next(trace for trace in figure.data if trace.name == "FLAT" and trace.xaxis == "x")
    assert list(flat.x) == ["1K", "64K", "256K", "1M"]


def test_csv_strings_are_read_as_numbers(tables, summary):
    for rows in tables.values():
        for row in rows:
            for key, value in row.items():
                row[key] = str(value)
    figures = report.build_figures(tables, summary)

    unfused = float(find_row(tables["attn-unfused"], "BERT", "1K")["latency"])
    flat = float(find_row(tables["attn-flat"], "BERT", "1K")["latency"])
    assert bar_at(figures["fig8"], "BERT", "1K", "FLAT") == pytest.approx(unfused / flat)
    assert "fig12" in figures


def test_no_tables_writes_report_without_figures(tmp_path, summary):
    path = tmp_path / "report.html"
    report.write_report(path, {}, summary)

    text = path.read_text(encoding="utf-8")
    assert "fusemax reproduce" in text
    assert "Plotly.newPlot" not in text


def test_row_without_model_is_rejected(tables, summary):
    del tables["attn-flat"][0]["model"]

    with pytest.raises(ValueError, match="attn-flat"):
        report.build_figures(tables, summary)


def test_pareto_rows_without_seq_len_are_accepted(tables, summary):
    assert all("seq_len" not in row for row in tables["pareto"])

    assert "fig12" in report.build_figures(tables, summary)


@pytest.mark.parametrize("error", [RuntimeError("render failed"), KeyboardInterrupt()])
def test_interrupted_write_keeps_old_report(tmp_path, monkeypatch, tables, summary, error):
    path = tmp_path / "report.html"
    path.write_text("previous report", encoding="utf-8")

    real_render = report._render_figure
    calls = []

    def render_then_fail(figure, include_plotlyjs, div_id=None):
        # Fail on the second figure, after the temporary file has partial content.
        calls.append(figure)
        if len(calls) == 2:
            raise error
        return real_render(figure, include_plotlyjs, div_id)

    monkeypatch.setattr(report, "_render_figure", render_then_fail)
    with pytest.raises(type(error)):
        report.write_report(path, tables, summary)

    assert len(calls) == 2
    assert path.read_text(encoding="utf-8") == "previous report"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["report.html"]


def test_interrupted_figure_write_keeps_old_files(tmp_path, monkeypatch, tables, summary):
    figures_dir = tmp_path / "figures"
    figures_dir.mkdir()
    path = tmp_path / "report.html"
    path.write_text("previous report", encoding="utf-8")
    (figures_dir / "energy.html").write_text("previous energy", encoding="utf-8")

    real_render = report._render_figure
    calls = []

    def render_then_interrupt(figure, include_plotlyjs, div_id=None):
        # Interrupt the second standalone file ("energy"), after the first one is written.
        calls.append(figure)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_render(figure, include_plotlyjs, div_id)

    monkeypatch.setattr(report, "_render_figure", render_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(path, tables, summary, figures_dir=figures_dir)

    assert (figures_dir / "energy.html").read_text(encoding="utf-8") == "previous energy"
    assert path.read_text(encoding="utf-8") == "previous report"
    assert sorted(entry.name for entry in figures_dir.iterdir() if entry.suffix == ".html") == ["energy.html", "speedup.html"]


def test_failed_replace_leaves_no_temp_file(tmp_path, monkeypatch, tables, summary):
    path = tmp_path / "report.html"

    def fail_replace(source, destination):
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        report.write_report(path, tables, summary)

    assert list(tmp_path.iterdir()) == []
