"""JSON Schema validation that reports the first problem as one line naming file and field."""

import json
import math
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

# jsonschema imports `rfc3987_syntax` where it is installed (jupyterlab's jupyter-events pulls it in)
# only to check the "iri" formats, which no mlbench schema uses; it builds a Lark grammar on import:
# 2.9 s of every task process's start-up on this machine. Marking it absent keeps it out.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]

import jsonschema  # noqa: E402

from mlbench.errors import UsageError  # noqa: E402
from mlbench.paths import SCHEMAS  # noqa: E402


@cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def field_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def non_finite(instance: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, float]]:
    """(field, value) of every NaN or infinite number: JSON Schema cannot refuse them, and YAML
    reads `.nan` and `.inf` as numbers."""
    if isinstance(instance, float) and not math.isfinite(instance):
        yield ".".join(path) or "(top level)", instance
    elif isinstance(instance, dict):
        for key, value in instance.items():
            yield from non_finite(value, (*path, str(key)))
    elif isinstance(instance, list):
        for index, value in enumerate(instance):
            yield from non_finite(value, (*path, str(index)))


def check(instance: Any, schema: dict[str, Any] | str, source: str | Path) -> None:
    """Raise UsageError for the first schema violation, deterministically ordered; NaN and
    infinite numbers are violations everywhere."""
    for field, value in non_finite(instance):
        raise UsageError(f"{source}: {field}: {value} is not a finite number")
    if isinstance(schema, str):
        schema = load_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        error = errors[0]
        raise UsageError(f"{source}: {field_path(error)}: {error.message}")
