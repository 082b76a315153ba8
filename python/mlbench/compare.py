"""The terminal comparison table: per algorithm, dataset and hyperparameters, Rust vs Python.

Medians only; the statistics proper (CIs, tests, effect sizes) belong to mlbench.stats.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlbench import records
from mlbench.config import load_task_spec

Key = tuple[str, str, str, str]


def group(all_records: list[dict[str, Any]]) -> dict[Key, dict[str, list[dict[str, Any]]]]:
    groups: dict[Key, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in all_records:
        if r.get("warmup") or r.get("status") != "ok":
            continue
        key = (r["task"], r["algorithm"], r["dataset"], json.dumps(r["hyperparameters"], sort_keys=True))
        groups[key][r["language"]].append(r)
    return groups


def median_of(rows: list[dict[str, Any]], section: str, name: str) -> float | None:
    values = [r[section][name] for r in rows if r.get(section, {}).get(name) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def table(all_records: list[dict[str, Any]], phase: str = "fit") -> list[str]:
    header = (f"{'task':<11}{'algorithm':<13}{'dataset':<21}{'params':<26}{'n':>3} "
              f"{'py ' + phase + ' s':>11} {'rs ' + phase + ' s':>11} {'rs/py':>8}  quality py / rs")
    lines = [header, "-" * len(header)]
    for (task, algorithm, dataset, params), sides in sorted(group(all_records).items()):
        metric = load_task_spec(task).primary_metric
        py, rs = sides.get("python", []), sides.get("rust", [])
        t_py, t_rs = median_of(py, "timings_s", phase), median_of(rs, "timings_s", phase)
        ratio = t_rs / t_py if t_py and t_rs else None
        q_py, q_rs = median_of(py, "metrics", metric), median_of(rs, "metrics", metric)
        short = ",".join(f"{k}={v}" for k, v in json.loads(params).items() if k not in ("tol", "max_iter"))
        lines.append(f"{task:<11}{algorithm:<13}{dataset:<21}{short[:25]:<26}{min(len(py), len(rs)):>3} "
                     f"{fmt(t_py, '11.3g')} {fmt(t_rs, '11.3g')} {fmt(ratio, '8.3g')}  "
                     f"{metric} {fmt(q_py, '.6f')} / {fmt(q_rs, '.6f')}")
    return lines


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    loaded = []
    for path in paths:
        file = path / "records.jsonl" if path.is_dir() else path
        content = records.read_jsonl(file)
        if content.bad_lines:
            print(f"warning: {file}: skipped malformed line(s) {content.bad_lines[:10]}")
        loaded += content.records
    return loaded
