"""Read values out of the study tables that the report plots.

Tables are lists of row dictionaries, either as the study builds them (numbers)
or as read back from its CSV files (strings), so every value goes through
:func:`value`.
"""

from __future__ import annotations

import logging
import math

logger = logging.getLogger(__name__)

MODELS = ("BERT", "TrXL", "T5", "XLM")
SEQ_LENS = ("1K", "4K", "16K", "64K", "256K", "1M")

RowIndex = dict[tuple[str, str], dict]


def value(row: dict | None, key: str) -> float | None:
    """Return ``row[key]`` as a finite float, or None when the row or value is absent or not a finite number."""
    if row is None:
        return None
    raw = row.get(key)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return number


def positive(row: dict | None, key: str) -> float | None:
    """Return ``row[key]`` as a float when it is finite and greater than zero, else None."""
    number = value(row, key)
    if number is None or number <= 0:
        return None
    return number


def index_rows(name: str, rows: list[dict]) -> RowIndex:
    """Map each ``(model, seq_len)`` pair of a table to its row.

    Raises
    ------
    ValueError
        If a row has no ``model`` or no ``seq_len`` column.
    """
    indexed: RowIndex = {}
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


def ordered(found, canonical: tuple[str, ...]) -> list[str]:
    """Order values as in ``canonical``, then append unknown values in the order found."""
    found = list(dict.fromkeys(found))
    known = [item for item in canonical if item in found]
    unknown = [item for item in found if item not in canonical]
    return known + unknown
