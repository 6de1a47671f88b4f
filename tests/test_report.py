"""Tests for the offline HTML report of the FuseMax-vs-FLAT comparison."""

import re

import pytest

from fusemax.report import html as report

MODELS = ["BERT", "TrXL", "T5", "XLM"]
SEQ_LENS = ["1K", "4K", "16K", "64K", "256K", "1M"]


def make_rows(latency_scale: float, energy_scale: float, shares: list[str]) -> list[dict]:
    """Build synthetic rows for 4 models x 6 sequence lengths with distinct values per row."""
    rows = []
    for model_index, model in enumerate(MODELS):
        for length_index, seq_len in enumerate(SEQ_LENS):
            base = (model_index + 1) * 4.0 ** length_index
            row = {
                "model": model,
                "seq_len": seq_len,
                "traffic": int(1000 * base),
                "latency": latency_scale * base * 1e-6,
                "energy": energy_scale * base * 1e6,
                "util_2d": 0.1 + 0.03 * length_index,
                "util_1d": 0.2 + 0.02 * model_index,
            }
            for share in shares:
                row[share] = 1.0 / len(shares)
            rows.append(row)
    return rows


@pytest.fixture
def tables() -> dict[str, list[dict]]:
    # FLAT rows get latency growing faster with the length, so the speedups differ per row.
    flat = make_rows(3.0, 2.0, ["QK", "AV"])
    for row in flat:
        row["latency"] *= 1.0 + SEQ_LENS.index(row["seq_len"])
    return {
        "attn-binding": make_rows(1.0, 1.0, ["QK", "LM", "SLN", "SLD", "SLNV"]),
        "attn-flat": flat,
    }


@pytest.fixture
def summary() -> dict[str, float]:
    return {"attention_speedup_vs_flat": 7.5, "attention_energy_vs_flat": 0.5}


def find_row(rows: list[dict], model: str, seq_len: str) -> dict:
    return next(row for row in rows if row["model"] == model and row["seq_len"] == seq_len)


def speedup_at(figure, model: str, seq_len: str) -> float:
    """Return the bar height of one model panel at one sequence length."""
    axis_number = MODELS.index(model) + 1
    axis_name = "x" if axis_number == 1 else f"x{axis_number}"
    trace = next(trace for trace in figure.data if trace.xaxis == axis_name)
    return trace.y[list(trace.x).index(seq_len)]


def test_report_file_is_offline(tmp_path, tables, summary):
    path = tmp_path / "out" / "report.html"
    report.write_report(path, tables, summary)

    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?://", text, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?https?://", text, re.IGNORECASE)


def test_report_inlines_plotly_bundle_once(tmp_path, tables, summary):
    path = tmp_path / "report.html"
    report.write_report(path, tables, summary)

    text = path.read_text(encoding="utf-8")
    # The plotly.js bundle starts with a license banner that appears once in it.
    assert text.count("* plotly.js v") == 1
    assert len(text) > 1_000_000
    assert text.count("Plotly.newPlot") == len(report.build_figures(tables, summary))


def test_report_header_and_summary(tmp_path, tables, summary):
    path = tmp_path / "report.html"
    report.write_report(path, tables, summary)

    text = path.read_text(encoding="utf-8")
    assert "FuseMax" in text
    assert "MICRO 2024" in text
    assert "fusemax reproduce" in text
    assert "analytical model" in text
    assert "<table>" in text
    assert "7.5" in text
    assert "0.5" in text


def test_figures_have_axis_titles(tables, summary):
    figures = report.build_figures(tables, summary)

    assert set(figures) == {"speedup", "energy", "utilization_1d", "utilization_2d"}
    for name, figure in figures.items():
        assert figure.layout.xaxis.title.text, name
        assert figure.layout.yaxis.title.text, name
        assert "(" in figure.layout.yaxis.title.text, name
    assert figures["speedup"].layout.yaxis.title.text == "Speedup over FLAT (x)"
    assert figures["speedup"].layout.xaxis.title.text == "Sequence length (tokens)"


def test_figures_have_four_model_panels(tables, summary):
    figures = report.build_figures(tables, summary)

    titles = [annotation.text for annotation in figures["speedup"].layout.annotations]
    assert titles[:4] == MODELS
    assert list(figures["speedup"].layout.xaxis.categoryarray) == SEQ_LENS
    assert figures["utilization_2d"].layout.barmode == "group"


def test_speedup_is_flat_over_fusemax_latency(tables, summary):
    figure = report.build_figures(tables, summary)["speedup"]

    for model, seq_len in [("BERT", "1K"), ("T5", "64K"), ("XLM", "1M")]:
        flat = find_row(tables["attn-flat"], model, seq_len)["latency"]
        fusemax = find_row(tables["attn-binding"], model, seq_len)["latency"]
        assert speedup_at(figure, model, seq_len) == pytest.approx(flat / fusemax)


def test_energy_is_fusemax_over_flat(tables, summary):
    figure = report.build_figures(tables, summary)["energy"]

    flat = find_row(tables["attn-flat"], "TrXL", "16K")["energy"]
    fusemax = find_row(tables["attn-binding"], "TrXL", "16K")["energy"]
    assert speedup_at(figure, "TrXL", "16K") == pytest.approx(fusemax / flat)


def test_utilization_has_one_trace_per_config(tables, summary):
    tables["attn-unfused"] = make_rows(2.0, 2.0, [])
    figure = report.build_figures(tables, summary)["utilization_1d"]

    names = {trace.name for trace in figure.data}
    assert names == {"FuseMax", "FLAT", "Unfused"}
    assert len(figure.data) == 3 * len(MODELS)
    assert sum(1 for trace in figure.data if trace.showlegend) == 3


def test_missing_flat_table_is_skipped(tmp_path, tables, summary):
    del tables["attn-flat"]
    figures = report.build_figures(tables, summary)

    assert set(figures) == {"utilization_1d", "utilization_2d"}

    path = tmp_path / "report.html"
    report.write_report(path, tables, summary)
    assert path.exists()


def test_missing_utilization_column_is_skipped(tables, summary):
    for rows in tables.values():
        for row in rows:
            del row["util_1d"]
    figures = report.build_figures(tables, summary)

    assert "utilization_1d" not in figures
    assert "speedup" in figures


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


@pytest.mark.parametrize("error", [RuntimeError("render failed"), KeyboardInterrupt()])
def test_interrupted_write_keeps_old_report(tmp_path, monkeypatch, tables, summary, error):
    path = tmp_path / "report.html"
    path.write_text("previous report", encoding="utf-8")

    real_render = report._render_figure
    calls = []

    def render_then_fail(figure, include_plotlyjs):
        # Fail on the second figure, after the temporary file has partial content.
        calls.append(figure)
        if len(calls) == 2:
            raise error
        return real_render(figure, include_plotlyjs)

    monkeypatch.setattr(report, "_render_figure", render_then_fail)
    with pytest.raises(type(error)):
        report.write_report(path, tables, summary)

    assert len(calls) == 2
    assert path.read_text(encoding="utf-8") == "previous report"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["report.html"]


def test_failed_replace_leaves_no_temp_file(tmp_path, monkeypatch, tables, summary):
    path = tmp_path / "report.html"

    def fail_replace(source, destination):
        raise OSError("replace failed")

    monkeypatch.setattr(report.os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        report.write_report(path, tables, summary)

    assert list(tmp_path.iterdir()) == []
