"""Mapping specs: how a cascade's Einsums are tiled, ordered, placed and scheduled on an architecture.

A mapping names its cascade and gives

* ``partition_sizes``: sizes of the cascade's partition tiles (``M0``);
* ``tiling``: mapping-level splits of ranks into loop factors (``P = P2 x P1 x P0``);
  every factor but one has a size expression, and one may be ``max-fit``
  (the largest divisor of its tile count whose global-buffer need fits);
* ``loops``: the temporal loop order at the ``dram`` and ``global_buffer``
  levels, outermost first; factors an Einsum lacks are skipped, and factors a
  mapping places nowhere run as the innermost loops;
* ``spatial``: which factor each array dimension holds;
* ``keep``: the storage levels each tensor lives in (``dram``,
  ``global_buffer``, ``array1d.buffer``); a tensor listed nowhere stays in the
  processing elements' registers;
* ``einsums``: the array each Einsum is bound to, with per-Einsum overrides;
* ``spill``: the fraction of each on-chip tensor's accesses served by DRAM
  because it does not fit;
* ``schedule``: stages run back to back; within a stage the two arrays run in
  parallel and the Einsums bound to one array run one after another.

Size expressions may name workload ranks, dotted architecture keys and the
columns of a configuration table row (``${column}`` is replaced by the value).
"""

from __future__ import annotations

import csv
import re
from importlib import resources
from typing import Any, Literal

from pydantic import Field

from fusemax.errors import SpecError
from fusemax.specs import SourcedModel, StrictModel, load_spec_data, override_paths, set_path, validate

Level = Literal["dram", "global_buffer", "array1d.buffer"]
LEVELS: tuple[str, ...] = ("dram", "global_buffer", "array1d.buffer")
ArrayName = Literal["array2d", "array1d"]
SizeExpression = int | float | str


class Tiling(StrictModel):
    """A rank split into loop factors, outermost first."""

    factors: list[str] = Field(min_length=1)
    sizes: dict[str, SizeExpression] = Field(
        default_factory=dict, description="factor -> size expression or 'max-fit'; one factor is left free"
    )


class Stall(StrictModel):
    """Extra compute time: ``times`` copies of one Einsum's compute time."""

    einsum: str
    times: SizeExpression


class Stage(StrictModel):
    """Einsums that run in the same stage, per array, in order.

    Consecutive stages with the same ``phase`` form one phase. Phases run one
    after another, and each overlaps its own compute with its own DRAM traffic
    (or adds them, without ``overlap_memory``).
    """

    phase: str = "main"
    array2d: list[str] = Field(default_factory=list)
    array1d: list[str] = Field(default_factory=list)
    stall: Stall | None = None


class EinsumMapping(StrictModel):
    """Binding of one Einsum to an array, with optional overrides of the mapping-wide choices.

    ``accumulate_across`` lists ranks of the output that share one tile in
    storage: each step adds into the same words instead of writing new ones,
    so every step after the first reads the partial result back.
    """

    array: ArrayName
    loops: dict[Literal["dram", "global_buffer"], list[str]] | None = None
    spatial: dict[str, str] | None = None
    keep: dict[str, list[Level]] = Field(default_factory=dict)
    accumulate_across: list[str] = Field(default_factory=list)


class ConfigurationTable(StrictModel):
    """A shipped table with one row of per-workload choices, found by model and sequence length."""

    file: str
    match: dict[str, str] = Field(default_factory=dict)
    model_column: str
    length_column: str
    valid_for: dict[str, float] = Field(
        default_factory=dict, description="architecture keys and the values the table's choices assume"
    )


class Rule(StrictModel):
    """Overrides applied to the mapping when the configuration row matches ``when``."""

    when: dict[str, str] = Field(default_factory=dict)
    set: dict[str, Any]


class Alternative(StrictModel):
    """One candidate variation of a mapping: dotted-key overrides of the mapping spec."""

    name: str
    set: dict[str, Any] = Field(default_factory=dict)


class Mapping(SourcedModel):
    """A validated mapping spec.

    With ``alternatives``, the mapping stands for several candidates; the
    model evaluates each and keeps the one with the lowest latency, then
    energy.
    """

    name: str
    description: str = ""
    cascade: str
    partition_sizes: dict[str, SizeExpression] = Field(default_factory=dict)
    tiling: dict[str, Tiling] = Field(default_factory=dict)
    loops: dict[Literal["dram", "global_buffer"], list[str]]
    spatial: dict[ArrayName, dict[str, str]]
    keep: dict[str, list[Level]] = Field(default_factory=dict)
    einsums: dict[str, EinsumMapping]
    spill: dict[str, SizeExpression] = Field(default_factory=dict)
    schedule: list[Stage] = Field(min_length=1)
    overlap_memory: bool = True
    configuration: ConfigurationTable | None = None
    rules: list[Rule] = Field(default_factory=list)
    alternatives: list[Alternative] = Field(default_factory=list)

    def candidates(self) -> list["Mapping"]:
        """Return the mapping with each alternative applied, or the mapping itself without alternatives."""
        if not self.alternatives:
            return [self]
        result = []
        for alternative in self.alternatives:
            data = self.model_dump(exclude={"alternatives"})
            for path, value in alternative.set.items():
                set_path(data, path, value)
            data["name"] = f"{self.name}[{alternative.name}]"
            candidate = validate(Mapping, data, f"{self.source}: alternatives.{alternative.name}")
            candidate._source = self._source
            result.append(candidate)
        return result


def read_configuration_table(file: str) -> list[dict[str, str]]:
    """Read a table shipped in ``fusemax.tables`` as a list of rows."""
    entry = resources.files("fusemax.tables") / file
    if not entry.is_file():
        raise SpecError(f"configuration table {file!r} is not shipped with fusemax")
    with entry.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def configuration_row(table: ConfigurationTable, model: str | None, length_label: str, source: str) -> dict[str, str]:
    """Find the configuration row for a model and a sequence length.

    Raises
    ------
    SpecError
        If the workload has no model name or the table has no row for it;
        the message lists the available models or lengths.
    """
    rows = [r for r in read_configuration_table(table.file) if all(r.get(k) == v for k, v in table.match.items())]
    models = sorted({r[table.model_column] for r in rows})
    if model is None:
        raise SpecError(
            f"{source}: this mapping takes its per-workload choices from {table.file}, which is keyed by model; "
            f"use --model with one of {', '.join(models)}"
        )
    by_model = [r for r in rows if r[table.model_column] == model]
    if not by_model:
        raise SpecError(f"{source}: {table.file} has no rows for model {model!r}; models: {', '.join(models)}")
    for row in by_model:
        if row[table.length_column] == length_label:
            return row
    lengths = ", ".join(r[table.length_column] for r in by_model)
    raise SpecError(
        f"{source}: {table.file} has no configuration for {model} at sequence length {length_label}; "
        f"available lengths: {lengths}"
    )


def load_mapping(
    name_or_path: str,
    overrides: list[tuple[str, str]] | None = None,
    model: str | None = None,
    length_label: str | None = None,
    variant: str = "paper",
) -> tuple[Mapping, dict[str, str]]:
    """Load a mapping spec, resolve its configuration-table rules, and validate it.

    Returns the mapping and the configuration row used (empty without a table).

    Examples
    --------
    >>> mapping, row = load_mapping("fusemax-binding")
    >>> mapping.cascade, mapping.einsums["BQK"].array
    ('attention-1pass', 'array2d')
    """
    data, source = load_spec_data(name_or_path, "mappings", overrides, variant)

    row: dict[str, str] = {}
    if data.get("configuration") is not None:
        table = validate(ConfigurationTable, data["configuration"], f"{source}: configuration")
        if length_label is None:
            raise SpecError(f"{source}: this mapping needs a sequence length to find its configuration")
        row = configuration_row(table, model, length_label, source)
        for index, raw_rule in enumerate(data.get("rules") or []):
            rule = validate(Rule, raw_rule, f"{source}: rules.{index}")
            if all(row.get(column) == value for column, value in rule.when.items()):
                for path, value in rule.set.items():
                    set_path(data, path, value)
        for key in list(data):
            if key not in ("configuration", "rules"):
                data[key] = _substitute(data[key], row, f"{source}: {key}")
    mapping = validate(Mapping, data, source, override_paths(overrides), set_prefix="mapping.")
    return mapping, row


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(value: Any, row: dict[str, str], where: str) -> Any:
    """Replace ``${column}`` placeholders with the configuration row's values."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            column = match.group(1)
            if column not in row:
                raise SpecError(f"{where}: unknown configuration column {column!r}; columns: {', '.join(row)}")
            return row[column]

        replaced = _PLACEHOLDER.sub(replace, value)
        return replaced
    if isinstance(value, list):
        return [_substitute(item, row, where) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, row, where) for key, item in value.items()}
    return value


__all__ = ["LEVELS", "Mapping", "EinsumMapping", "Stage", "Tiling", "load_mapping"]
