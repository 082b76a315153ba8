"""Phase 1 of the method, framework selection: the catalog (configs/frameworks.yaml), the availability
matrix framework x task x algorithm read from the task specs' `unsupported` rules (nothing runs), and
each framework's installed version (Python's package metadata; the Rust lockfiles)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mlbench.config import TaskSpec, read_task_spec
from mlbench.errors import UsageError
from mlbench.paths import CONFIGS, ROOT, TASK_SPECS
from mlbench.schema import check
from mlbench.yamlio import load_yaml

CATALOG = CONFIGS / "frameworks.yaml"
# The workspace lockfile and the burn crates' own (separate workspaces).
LOCKFILES = (ROOT / "rust" / "Cargo.lock", *sorted((ROOT / "rust").glob("*/Cargo.lock")))

FACTS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"read": {"type": "string", "format": "date"}, "source": {"type": "string"},
                   "first_release": {"type": "string"}, "first_release_date": {"type": "string"},
                   "latest_release": {"type": "string"}, "latest_release_date": {"type": "string"},
                   "releases_last_12_months": {"type": "integer", "minimum": 0}}}
CATALOG_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["frameworks"],
    "properties": {"frameworks": {"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "required": ["selected", "language", "package", "license", "implementation", "binds", "gpu",
                     "documentation", "tasks", "why", "facts"],
        "properties": {
            "selected": {"type": "boolean"},
            "language": {"enum": ["python", "rust"]},
            "package": {"type": "object", "additionalProperties": False, "required": ["registry", "name"],
                        # project: mlbench's own code, released nowhere (e.g. the ported environments)
                        "properties": {"registry": {"enum": ["pypi", "crates", "project"]},
                                       "name": {"type": "string"}}},
            "license": {"type": "string"},
            "implementation": {"enum": ["pure", "bindings"]},
            "binds": {"type": "string"},
            "gpu": {"type": "array", "items": {"type": "string"}},
            "documentation": {"type": "string"},
            "tasks": {"type": "array", "items": {"type": "string"}},
            "why": {"type": "string", "minLength": 1},
            "facts": FACTS_SCHEMA}}}}}

IMPLEMENTED, PARTIAL, UNSUPPORTED = "implemented", "partial", "unsupported"


@dataclass(frozen=True)
class Cell:
    """One framework x task x algorithm: implemented, partial (some option values `unsupported`) or
    unsupported, with the reasons the task spec gives."""

    task: str
    algorithm: str
    framework: str
    language: str
    status: str
    reasons: list[str]


@cache
def load_catalog(path: Path = CATALOG) -> dict[str, dict[str, Any]]:
    data = load_yaml(path)
    check(data, CATALOG_SCHEMA, path)
    return dict(data["frameworks"])


def task_specs() -> list[TaskSpec]:
    return [read_task_spec(path) for path in sorted(TASK_SPECS.glob("*.yaml"))]


def condition_text(when: dict[str, Any]) -> str:
    return ", ".join(f"{k} {'in ' + str(v) if isinstance(v, list) else '= ' + repr(v)}" for k, v in when.items())


def condition_prefix(rule: dict[str, Any]) -> str:
    """`on DATASETS, when CONDITIONS: ` for a rule that applies to some jobs of an algorithm only."""
    parts = ([f"on {', '.join(rule['datasets'])}"] if rule.get("datasets") else []) + (
        [f"when {condition_text(rule['when'])}"] if rule.get("when") else [])
    return ", ".join(parts) + ": " if parts else ""


def availability(specs: list[TaskSpec] | None = None) -> list[Cell]:
    """Every framework x algorithm of every task spec, from its `unsupported` rules: a rule without
    `when` makes the algorithm unsupported, one with `when` makes it partial."""
    cells = []
    for spec in specs if specs is not None else task_specs():
        for language in ("python", "rust"):
            for framework in spec.frameworks(language):
                for algorithm in spec.algorithms:
                    rules = [r for r in spec.unsupported
                             if framework in r["frameworks"] and algorithm in r["algorithms"]]
                    status = (UNSUPPORTED if any(not r.get("when") and not r.get("datasets") for r in rules)
                              else PARTIAL if rules else IMPLEMENTED)
                    reasons = [condition_prefix(r) + " ".join(r["reason"].split()) for r in rules]
                    cells.append(Cell(spec.task, algorithm, framework, language, status, reasons))
    return cells


def check_catalog(catalog: dict[str, dict[str, Any]], specs: list[TaskSpec]) -> None:
    """Every framework a task spec names is in the catalog, selected, in the task's language."""
    for spec in specs:
        for language in ("python", "rust"):
            for framework in spec.frameworks(language):
                entry = catalog.get(framework)
                if entry is None or not entry["selected"] or entry["language"] != language:
                    raise UsageError(f"{CATALOG}: frameworks.{framework}: task {spec.task} runs it in {language}; "
                                     "the catalog needs it there with selected: true")


def lockfile_version(crate: str) -> str | None:
    block = re.compile(rf'\[\[package\]\]\nname = "{re.escape(crate)}"\nversion = "([^"]+)"')
    for lockfile in LOCKFILES:
        if lockfile.exists() and (found := block.search(lockfile.read_text())):
            return found.group(1)
    return None


def installed_version(entry: dict[str, Any]) -> str | None:
    """The version this checkout runs: the venv's package, or the version Cargo.lock pins (a
    workspace crate of the project's own: the workspace's version)."""
    package = entry["package"]
    if package["registry"] in ("crates", "project") and entry["language"] == "rust":
        return lockfile_version(package["name"])
    try:
        return metadata.version(package["name"])
    except metadata.PackageNotFoundError:
        return None


def summary(specs: list[TaskSpec] | None = None) -> dict[str, Any]:
    """What `mlbench frameworks --json` prints (the catalog with installed versions, the availability matrix)."""
    specs = specs if specs is not None else task_specs()
    catalog = load_catalog()
    check_catalog(catalog, specs)
    return {"frameworks": {name: entry | {"installed": installed_version(entry) if entry["selected"] else None}
                           for name, entry in catalog.items()},
            "availability": [asdict(cell) for cell in availability(specs)]}


MARKS = {IMPLEMENTED: "yes", PARTIAL: "partial", UNSUPPORTED: "no"}


def lines(data: dict[str, Any]) -> list[str]:
    """The catalog and the availability matrix as text tables."""
    from mlbench.texttable import render

    rows = [[name, e["language"], e["implementation"], e["license"], ", ".join(e["gpu"]) or "-",
             e["facts"].get("latest_release", "?") + f" ({e['facts'].get('latest_release_date', '?')})",
             e["installed"] or ("-" if not e["selected"] else "not installed"),
             "selected" if e["selected"] else "left out"]
            for name, e in data["frameworks"].items()]
    out = render(["framework", "language", "implementation", "license", "gpu", "latest release", "installed",
                  "selection"], rows)
    cells = [Cell(**c) for c in data["availability"]]
    notes: dict[str, int] = {}  # reason -> its footnote number
    for task in dict.fromkeys(c.task for c in cells):
        of_task = [c for c in cells if c.task == task]
        frameworks = list(dict.fromkeys(c.framework for c in of_task))
        rows = []
        for algorithm in dict.fromkeys(c.algorithm for c in of_task):
            row = [algorithm]
            for framework in frameworks:
                cell = next(c for c in of_task if c.algorithm == algorithm and c.framework == framework)
                mark = MARKS[cell.status]
                for reason in cell.reasons:
                    mark += f" [{notes.setdefault(reason, len(notes) + 1)}]"
                row.append(mark)
            rows.append(row)
        out += ["", f"{task}:", *render(["algorithm", *frameworks], rows)]
    return out + ([""] + [f"[{n}] {reason}" for reason, n in notes.items()] if notes else [])
