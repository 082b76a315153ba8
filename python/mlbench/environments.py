"""configs/environments.yaml: the synthetic environments' definitions, read by both sides (this
module needs no gymnasium, so preparing datasets does not either)."""

from __future__ import annotations

from functools import cache
from typing import Any

from mlbench.paths import CONFIGS
from mlbench.yamlio import load_yaml

FILE = CONFIGS / "environments.yaml"


@cache
def definition(environment: str) -> dict[str, Any]:
    return dict(load_yaml(FILE)[environment])
