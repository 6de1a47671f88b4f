"""Loading YAML specs: shipped names, ``--set`` overrides and errors with YAML paths.

Architecture and mapping specs are YAML files validated by pydantic models.
This module finds a spec by path or shipped name, applies ``PATH=VALUE``
overrides before validation, and turns pydantic's errors into one line that
names the file, the dotted YAML path, what was wrong and what is valid.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import operator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from fusemax.errors import SpecError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every spec object: unknown keys are errors, values are not coerced, objects are immutable.

    Strict validation rejects ``true`` or ``"256"`` where a number is expected,
    and infinite or NaN numbers everywhere.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SourcedModel(StrictModel):
    """A top-level spec that remembers the file it was read from, for error messages."""

    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The spec's file (or shipped name), or its ``name`` when built in code."""
        return self._source or getattr(self, "name", type(self).__name__)


def shipped_names(kind: str) -> list[str]:
    """Names of the specs shipped with the package; ``kind`` is ``archs`` or ``mappings``."""
    folder = resources.files("fusemax") / kind
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def find_spec(name_or_path: str, kind: str) -> tuple[str, str]:
    """Return the text and display name of a spec given as a path or a shipped name.

    Raises
    ------
    SpecError
        If neither a file nor a shipped spec of that name exists.
    """
    path = Path(name_or_path)
    if path.is_dir():
        raise SpecError(f"{name_or_path}: is a folder; give a YAML file or a shipped spec name")
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise SpecError(f"{path}: not valid UTF-8 text (byte {error.start}); save the spec as UTF-8") from None
        except OSError as error:
            raise SpecError(f"{path}: cannot read the file: {error.strerror}") from None
    entry = resources.files("fusemax") / kind / f"{name_or_path}.yaml"
    if entry.is_file():
        return entry.read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise SpecError(f"{name_or_path}: file not found")
    raise SpecError(
        f"unknown {kind[:-1]} {name_or_path!r}: not a file and not a shipped spec; "
        f"shipped: {', '.join(shipped_names(kind))}"
    )


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe YAML loader (LibYAML's when available) that rejects a key repeated in one mapping."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; each key may appear once", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text into a mapping, with line and column on syntax errors and repeated keys.

    Parsed texts are cached, and each call returns its own deep copy.
    """
    return copy.deepcopy(_parse_yaml_cached(text, source))


@functools.lru_cache(maxsize=256)
def _parse_yaml_cached(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        if mark is not None:
            raise SpecError(f"{source}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}") from None
        raise SpecError(f"{source}: invalid YAML: {problem}") from None
    if data is None:
        raise SpecError(f"{source}: the file is empty; expected a YAML mapping of spec keys")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def apply_override(data: dict[str, Any], path: str, value: str, source: str) -> None:
    """Set the dotted key ``path`` of ``data`` to ``value`` parsed as YAML (in place).

    Raises
    ------
    SpecError
        If an intermediate key is missing or is not a mapping.
    """
    keys = path.split(".")
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        if not isinstance(node, dict) or key not in node:
            walked = ".".join(keys[: depth + 1])
            valid = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a mapping)"
            raise SpecError(f"{source}: --set {path}: no key {walked!r}; valid keys there: {valid}")
        node = node[key]
    if not isinstance(node, dict):
        raise SpecError(f"{source}: --set {path}: {'.'.join(keys[:-1])} is not a mapping")
    if keys[-1] not in node:
        raise SpecError(
            f"{source}: --set {path}: no key {path!r}; valid keys there: {', '.join(sorted(node))}"
        )
    node[keys[-1]] = parse_override_value(value)


def parse_override_value(text: str) -> Any:
    """Parse a ``--set`` value: integers and floats in any Python spelling (``1e8``), else YAML."""
    for number_type in (int, float):
        try:
            return number_type(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


MODEL_VARIANTS = ("paper", "corrected")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted key ``path`` of ``data`` to ``value``, creating mappings on the way."""
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def merge(base: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extension`` into a copy of ``base``: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in extension.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_spec_data(
    name_or_path: str,
    kind: str,
    overrides: list[tuple[str, str]] | None = None,
    variant: str = "paper",
) -> tuple[dict[str, Any], str]:
    """Read a spec as plain data: follow ``extends``, apply a model variant, then ``--set`` overrides.

    A spec may start from another with ``extends: NAME`` (a shipped name or a
    path relative to the spec) and change only what differs.  ``variants``
    maps a model-variant name to dotted-key overrides; ``paper`` (the default)
    applies none, and a spec without an entry for the requested variant is
    used unchanged.

    Raises
    ------
    SpecError
        On a missing spec, invalid YAML, an ``extends`` cycle or an unknown variant.
    """
    if variant not in MODEL_VARIANTS:
        raise SpecError(f"--model-variant: unknown variant {variant!r}; variants: {', '.join(MODEL_VARIANTS)}")
    data, source = _read_with_extends(name_or_path, kind, [])
    variants = data.pop("variants", None) or {}
    if not isinstance(variants, dict):
        raise SpecError(f"{source}: variants: expected a mapping of variant name to overrides")
    for name, changes in variants.items():
        if name not in MODEL_VARIANTS[1:]:
            raise SpecError(f"{source}: variants.{name}: unknown variant; variants: {', '.join(MODEL_VARIANTS[1:])}")
        if not isinstance(changes, dict):
            raise SpecError(f"{source}: variants.{name}: expected a mapping of dotted keys to values")
    for path, value in (variants.get(variant) or {}).items():
        set_path(data, path, value)
    for path, value in overrides or []:
        apply_override(data, path, value, source)
    return data, source


def override_paths(overrides: list[tuple[str, str]] | None) -> tuple[str, ...]:
    """Return the dotted paths that ``--set`` overrides change, for error messages."""
    return tuple(path for path, _ in overrides or [])


def _read_with_extends(name_or_path: str, kind: str, chain: list[str]) -> tuple[dict[str, Any], str]:
    text, source = find_spec(name_or_path, kind)
    if source in chain:
        raise SpecError(f"{source}: extends: cycle {' -> '.join(chain + [source])}")
    data = parse_yaml(text, source)
    parent = data.pop("extends", None)
    if parent is None:
        return data, source
    if not isinstance(parent, str):
        raise SpecError(f"{source}: extends: expected a spec name or path, got {parent!r}")
    sibling = Path(source).parent / parent
    base_name = str(sibling) if sibling.is_file() else parent
    base, _ = _read_with_extends(base_name, kind, chain + [source])
    base_variants = base.pop("variants", None) or {}
    own_variants = data.pop("variants", None) or {}
    combined = merge(base, data)
    if base_variants or own_variants:
        combined["variants"] = merge(base_variants, own_variants)
    return combined, source


def validate(
    model: type[Model], data: dict[str, Any], source: str, overridden: tuple[str, ...] = (), set_prefix: str = ""
) -> Model:
    """Validate ``data`` against a pydantic model, reporting the first error with its YAML path.

    Unknown keys are reported before other errors, because a misspelled key
    also shows up as a missing one.  A path set by ``--set`` is named as such.
    """
    try:
        result = model.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            parent = _lookup(model, first["loc"][:-1])
            valid = ", ".join(parent) if parent else "none"
            message = f"unknown key; valid keys: {valid}"
        elif first["type"] == "missing":
            message = "missing required key"
        if location in overridden:
            raise SpecError(f"--set {set_prefix}{location}: {message} (in {source})") from None
        raise SpecError(f"{source}: {location}: {message}") from None
    if isinstance(result, SourcedModel):
        result._source = source
    return result


def _lookup(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``location`` (best effort, for messages)."""
    current: Any = model
    for part in location:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.truediv,
}
_FUNCTIONS = {"min": min, "max": max, "ceil": math.ceil, "floor": math.floor}


def evaluate_size(expression: int | float | str, names: dict[str, Any], where: str) -> int | float:
    """Evaluate a size expression such as ``arrays.array2d.rows`` or ``min(E, arrays.array2d.rows)``.

    Names are workload ranks (``E``), dotted architecture keys and configuration
    columns, all looked up in ``names``.  Only arithmetic, ``min``, ``max``,
    ``ceil`` and ``floor`` are allowed.

    Raises
    ------
    SpecError
        On a syntax error, an unknown name or a disallowed construct.

    Examples
    --------
    >>> evaluate_size("min(E, arrays.array2d.rows)", {"E": 64, "arrays.array2d.rows": 256}, "x")
    64
    """
    if isinstance(expression, (int, float)) and not isinstance(expression, bool):
        return expression
    try:
        tree = ast.parse(str(expression), mode="eval")
    except SyntaxError:
        raise SpecError(f"{where}: invalid size expression {expression!r}") from None
    return _evaluate(tree.body, names, where, str(expression))


def _evaluate(node: ast.AST, names: dict[str, Any], where: str, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        dotted = ast.unparse(node)
        if dotted not in names:
            raise SpecError(
                f"{where}: unknown name {dotted!r} in {text!r}; use a rank (such as E), "
                f"an architecture key (such as arrays.array2d.rows) or a configuration column"
            )
        return names[dotted]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_evaluate(node.left, names, where, text), _evaluate(node.right, names, where, text))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        args = [_evaluate(arg, names, where, text) for arg in node.args]
        return _FUNCTIONS[node.func.id](*args)
    raise SpecError(f"{where}: unsupported construct in size expression {text!r}; use + - * / // min max ceil floor")
