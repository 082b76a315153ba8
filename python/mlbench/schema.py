"""JSON Schema validation that reports the first problem as one line naming file and field."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from mlbench.errors import UsageError
from mlbench.paths import SCHEMAS


@cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def field_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def check(instance: Any, schema: dict[str, Any] | str, source: str | Path) -> None:
    """Raise UsageError for the first schema violation, deterministically ordered."""
    if isinstance(schema, str):
        schema = load_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        error = errors[0]
        raise UsageError(f"{source}: {field_path(error)}: {error.message}")
