"""Phase 6 of the method, ecosystem maturity: per framework, the registry facts of
configs/frameworks.yaml, what this checkout measures (lines of task code, Python install size, Rust
binary size and build time), what a run measured (coverage: ok, unsupported and failed jobs; quality
mismatches against the Python side), and a maturity level by the rules README states:

    1 available   released on its registry under an open-source license
    2 covers      runs at least COVERS (75%) of the algorithms of the mlbench tasks it is in
                  (an algorithm unsupported for some option values counts half)
    3 matches     in a run, every comparison it took part in matched the reference's quality
                  (the Python side is the reference: met when its jobs ran ok)
    4 maintained  a release in the 12 months before the facts were read
    5 gpu         a GPU backend, used by `ok` jobs on a CUDA device in a run

Levels are cumulative: a framework is at the highest level whose rule holds along with every rule
below it; the table shows each rule, so a reader sees which one stops it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlbench import buildinfo, frameworks
from mlbench.config import TaskSpec
from mlbench.paths import ROOT, RUST_TARGET

COVERS = 0.75
LEVELS = ("available", "covers", "matches", "maintained", "gpu")
OPEN_LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "BSD-2-Clause", "MPL-2.0")


def code_lines(path: Path) -> int:
    """Non-blank lines that are not only a comment (# or //)."""
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith(("#", "//")))


def side_files(spec: TaskSpec, language: str) -> dict[str, list[Path]]:
    """The task's files of one language by framework ('' for what its frameworks share): a file named
    after a framework (tch_arm.rs) or in a framework's own binary (rust/cnn-burn) is that framework's;
    a side with one framework owns all its files."""
    names = spec.frameworks(language)
    if language == "python":
        return {names[0] if len(names) == 1 else "": [ROOT / spec.python["script"]]}
    own_binaries = spec.rust.get("binaries", {})
    out: dict[str, list[Path]] = {name: [] for name in [*names, ""]}
    for path in sorted((ROOT / "rust" / spec.rust["binary"] / "src").glob("*.rs")):
        owner = next((n for n in names if path.stem.startswith(n.split("-")[0])), "")
        out[names[0] if len(names) == 1 else owner].append(path)
    for name, binary in own_binaries.items():
        out[name] += sorted((ROOT / "rust" / binary / "src").glob("*.rs"))
    return out


def lines_of_code(specs: list[TaskSpec]) -> dict[str, dict[str, int]]:
    """framework -> task -> lines of its own task code (the shared half under '')."""
    out: dict[str, dict[str, int]] = {}
    for spec in specs:
        for language in ("python", "rust"):
            for name, files in side_files(spec, language).items():
                if files:
                    key = name or f"shared ({language})"
                    out.setdefault(key, {})[spec.task] = sum(map(code_lines, files))
    return out


def requirement_names(name: str) -> list[str]:
    """The distribution's unconditional requirements (extras left out)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return []
    names = []
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def install_mb(name: str) -> tuple[float | None, float | None]:
    """A Python package's installed files, alone and with what it requires (recursively), in MiB."""
    def size(dist: str) -> float:
        files = metadata.distribution(dist).files or []
        return sum(p.stat().st_size for f in files if (p := Path(str(f.locate()))).is_file()) / 2**20

    try:
        own = size(name)
    except metadata.PackageNotFoundError:
        return None, None
    seen, todo, total = {name.lower()}, requirement_names(name), own
    while todo:
        dist = todo.pop()
        if dist.lower() in seen:
            continue
        seen.add(dist.lower())
        try:
            total += size(dist)
            todo += requirement_names(dist)
        except metadata.PackageNotFoundError:
            continue
    return round(own, 1), round(total, 1)


def binaries_of(specs: list[TaskSpec]) -> dict[str, list[str]]:
    """framework -> the Rust binaries that run it."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        for name in spec.frameworks("rust"):
            out.setdefault(name, []).append(spec.binary(name))
    return out


@dataclass
class Measured:
    """What runs measured for one framework."""

    ok_jobs: int = 0
    unsupported_jobs: int = 0
    failed_jobs: int = 0
    comparisons: int = 0
    quality_mismatches: int = 0
    cuda_ok_jobs: int = 0


def measured_by_run(paths: list[Path]) -> dict[str, Measured]:
    from mlbench import stats

    table, loaded = stats.load(paths)
    out: dict[str, Measured] = {}
    if table.empty:
        return out
    jobs = table.drop_duplicates("job_id")
    for row in jobs.itertuples():
        m = out.setdefault(row.framework, Measured())
        if row.status == "ok":
            m.ok_jobs += 1
            m.cuda_ok_jobs += str(getattr(row, "device", "cpu")).startswith("cuda")
        elif row.status == "unsupported":
            m.unsupported_jobs += 1
        else:
            m.failed_jobs += 1
    comparisons = stats.compare(table, loaded)
    if not comparisons.empty:
        headline = comparisons[comparisons["phase"].isin(stats.HEADLINE_PHASES)]
        for row in headline.itertuples():
            for name in (row.rust_framework, row.python_framework):
                m = out.setdefault(name, Measured())
                m.comparisons += 1
                m.quality_mismatches += bool(row.quality_mismatch) and name == row.rust_framework
    return out


WEIGHTS = {frameworks.IMPLEMENTED: 1.0, frameworks.PARTIAL: 0.5, frameworks.UNSUPPORTED: 0.0}


def share(cells: list[dict[str, Any]]) -> float:
    """The share of these algorithm cells a framework runs (partial counts half)."""
    return round(sum(WEIGHTS[c["status"]] for c in cells) / len(cells), 3)


def coverage(availability: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """framework -> task -> share of the task's algorithms it runs, and `all` over its tasks."""
    by_framework: dict[str, list[dict[str, Any]]] = {}
    for cell in availability:
        by_framework.setdefault(cell["framework"], []).append(cell)
    return {name: {**{task: share([c for c in cells if c["task"] == task])
                      for task in dict.fromkeys(c["task"] for c in cells)}, "all": share(cells)}
            for name, cells in by_framework.items()}


def criteria(entry: dict[str, Any], covered: dict[str, float], run: Measured | None, ran: bool) -> dict[str, Any]:
    """Each level's rule: True, False, or None where nothing measured it (no run given)."""
    facts = entry["facts"]
    reference = entry["language"] == "python"
    licensed = any(re.search(rf"\b{re.escape(lic)}\b", entry["license"]) for lic in OPEN_LICENSES)
    matches: bool | None
    if not ran or run is None or run.ok_jobs == 0:
        matches = None
    else:
        matches = run.quality_mismatches == 0 and (reference or run.comparisons > 0)
    return {
        "available": bool(facts.get("latest_release")) and licensed,
        "covers": covered.get("all", 0.0) >= COVERS,
        "matches": matches,
        "maintained": int(facts.get("releases_last_12_months", 0)) > 0,
        "gpu": None if not ran or run is None else bool(entry["gpu"]) and run.cuda_ok_jobs > 0,
    }


def level(met: dict[str, Any]) -> int:
    reached = 0
    for name in LEVELS:
        if met[name] is not True:
            break
        reached += 1
    return reached


def summary(paths: list[Path] | None = None, specs: list[TaskSpec] | None = None,
            rust_target: Path = RUST_TARGET) -> dict[str, Any]:
    specs = specs if specs is not None else frameworks.task_specs()
    listing = frameworks.summary(specs)
    covered = coverage(listing["availability"])
    loc = lines_of_code(specs)
    build = buildinfo.read(rust_target) or {}
    binary_mb = build.get("binary_mb", {})
    binaries = binaries_of(specs)
    ran = bool(paths)
    runs = measured_by_run(paths) if paths else {}
    rows: dict[str, Any] = {}
    for name, entry in listing["frameworks"].items():
        if not entry["selected"]:
            continue
        run = runs.get(name)
        met = criteria(entry, covered.get(name, {}), run, ran)
        row: dict[str, Any] = {
            "language": entry["language"], "installed": entry["installed"], "license": entry["license"],
            "facts": entry["facts"], "coverage": covered.get(name, {}),
            "lines_of_task_code": loc.get(name, {}), "criteria": met, "level": level(met),
            "level_name": LEVELS[level(met) - 1] if level(met) else "none",
        }
        if entry["language"] == "python":
            row["install_mb"], row["install_with_requirements_mb"] = install_mb(entry["package"]["name"])
        else:
            row["binaries"] = {b: binary_mb.get(b) for b in sorted(set(binaries.get(name, [])))}
            row["workspace_build_s"] = build.get("build_s")
        if run is not None:
            row["run"] = run.__dict__
        rows[name] = row
    return {"runs": [str(p) for p in paths or []], "rules": {"covers": COVERS, "levels": list(LEVELS)},
            "shared_task_code": {k: v for k, v in loc.items() if k.startswith("shared")}, "frameworks": rows}


def mark(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else "-"


def table_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["framework", "level", *LEVELS, "coverage", "latest release", "12-mo releases", "task LOC",
               "size MB", "ok/unsup/failed jobs", "mismatches"]
    rows = []
    for name, r in data["frameworks"].items():
        facts, run = r["facts"], r.get("run")
        size = (r.get("install_with_requirements_mb") if r["language"] == "python"
                else sum(v for v in r.get("binaries", {}).values() if v) or None)
        cov = r["coverage"]
        rows.append([name, f"{r['level']} {r['level_name']}", *(mark(r["criteria"][k]) for k in LEVELS),
                     f"{cov['all']:.0%}" if cov else "-",
                     f"{facts.get('latest_release', '?')} ({facts.get('latest_release_date', '?')})",
                     str(facts.get("releases_last_12_months", "?")), str(sum(r["lines_of_task_code"].values())),
                     f"{size:.0f}" if size else "-",
                     f"{run['ok_jobs']}/{run['unsupported_jobs']}/{run['failed_jobs']}" if run else "-",
                     f"{run['quality_mismatches']} of {run['comparisons']}" if run else "-"])
    return headers, rows


def lines(data: dict[str, Any]) -> list[str]:
    from mlbench.texttable import render

    headers, rows = table_rows(data)
    out = render(headers, rows)
    out += ["", f"levels: {', '.join(f'{i + 1} {n}' for i, n in enumerate(LEVELS))} (cumulative; README states the "
            f"rules); coverage: share of the algorithms of its tasks it runs (partial = half); size: Python install "
            "with requirements, or the Rust binaries that run it (a binary shared by two frameworks counts for both)"]
    if not data["runs"]:
        out.append("no run given: `matches` and `gpu` need one (mlbench ecosystem results/NAME)")
    return out


def write(data: dict[str, Any], path: Path) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def coverage_frame(data: dict[str, Any]) -> Any:
    """framework x task coverage shares, for the report's heatmap."""
    import pandas as pd

    return pd.DataFrame({name: {k: v for k, v in r["coverage"].items() if k != "all"}
                         for name, r in data["frameworks"].items()}).T


def maturity_frame(data: dict[str, Any]) -> Any:
    """The maturity table as a DataFrame (the report's)."""
    import pandas as pd

    headers, rows = table_rows(data)
    return pd.DataFrame(rows, columns=headers)


def availability_frame(cells: list[dict[str, Any]]) -> Any:
    """task/algorithm x framework: yes, partial or no, with the reasons in a last column."""
    import pandas as pd

    frame = pd.DataFrame(cells)
    marks = frame.assign(mark=frame["status"].map(frameworks.MARKS), key=frame["task"] + "/" + frame["algorithm"])
    wide = marks.pivot(index="key", columns="framework", values="mark").fillna("")
    wide = wide[list(dict.fromkeys(frame["framework"]))]  # the task specs' order: Python first
    reasons = marks[marks["reasons"].map(bool)].groupby("key")["reasons"].agg(
        lambda rs: "; ".join(dict.fromkeys(r for reasons in rs for r in reasons)))
    wide["reasons"] = reasons.reindex(wide.index).fillna("")
    return wide.reset_index().rename(columns={"key": "task/algorithm"})
