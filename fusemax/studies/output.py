"""Rendering study results as CSV tables in the artifact's number format."""

from __future__ import annotations

import csv
import io

INTEGER_COLUMNS = ("traffic", "PE_dim")


def format_value(column: str, value: object) -> str:
    """Write a value as the artifact's tables do: whole counts bare, floats in shortest round-trip form."""
    if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and column not in INTEGER_COLUMNS:
        return str(float(value))
    return str(value)


def table_csv(rows: list[dict[str, object]], columns: list[str], trailing_empty_column: bool = False) -> str:
    """Render rows as CSV text with the given column order.

    ``trailing_empty_column`` ends the header with a comma, as the artifact's
    unfused table does (its list of per-Einsum columns is empty).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + ([""] if trailing_empty_column else []))
    for row in rows:
        writer.writerow([format_value(column, row[column]) for column in columns])
    return buffer.getvalue()
