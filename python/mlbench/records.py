"""Records: building their identity from a job, and reading/writing JSON Lines safely."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlbench.config import Job


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


SCHEMA_VERSION = 3


def identity(job: Job, process: int, repetition: int, framework_version: str | None,
             dataset_sha256: str | None) -> dict[str, Any]:
    """The identity fields of a record (DESIGN.md section 3), in the schema's order. `repetition`
    counts within the process, warm-ups first; the seed of repetition i is seed + i in every process."""
    record = {
        "schema_version": SCHEMA_VERSION, "run": job.run, "job_id": job.job_id, "process": process,
        "repetition": repetition,
        "warmup": repetition < job.warmup, "task": job.task, "domain": job.domain,
        "language": job.language, "framework": job.framework, "framework_version": framework_version,
        "algorithm": job.algorithm, "dataset": job.dataset, "dataset_sha256": dataset_sha256,
        "hyperparameters": job.hyperparameters, "hardware_profile": job.hardware_profile,
        "device": job.device, "threads": job.threads, "precision": job.precision,
        "seed": job.seed + repetition, "started_at": utc_now(),
    }
    if job.cv_folds:
        record["cv_folds"] = job.cv_folds
    return record


def unmeasured(job: Job, process: int, repetition: int, framework_version: str | None,
               dataset_sha256: str | None, status: str, error: str, env: dict[str, Any]) -> dict[str, Any]:
    """A record for a repetition that measured nothing: `unsupported` (by the task) or a failure
    (by the runner). Same shape in both places, so the schema and stats treat them alike."""
    record = identity(job, process, repetition, framework_version, dataset_sha256)
    record.update({"timings_s": {}, "metrics": {}, "artifacts": {},
                   "resources": {"peak_rss_mb": None, "cpu_time_s": None},
                   "status": status, "error": error, "env": env})
    return record


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one record and flush it, so a crash loses at most the line being written."""
    with path.open("a") as f:
        f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        f.flush()


def append_many(path: Path, records: list[dict[str, Any]]) -> None:
    """Append a job's records in one write, synced, so they land together or not at all."""
    blob = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records)
    with path.open("a") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())


@dataclass
class JsonlContent:
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def read_jsonl(path: Path) -> JsonlContent:
    """Every parseable object line; numbers of lines that are truncated or not JSON objects. Parsed
    with orjson where installed (the `stats` extra: ~5x faster on a full grid's records), else json."""
    try:
        from orjson import loads
    except ImportError:
        loads = json.loads
    content = JsonlContent()
    if not path.exists():
        return content
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = loads(line)
            except ValueError:  # json.JSONDecodeError and orjson.JSONDecodeError both are
                content.bad_lines.append(number)
                continue
            if isinstance(record, dict):
                content.records.append(record)
            else:
                content.bad_lines.append(number)
    return content


def rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace a JSONL file atomically (temporary file, then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
