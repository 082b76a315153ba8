#!/usr/bin/env python3
"""Refresh the registry facts of configs/frameworks.yaml (a maintainer's step; needs PyPI and
crates.io, never run by a benchmark): first release, latest release, releases in the last 12 months,
each with its date, and the day they were read. Only each framework's one-line `facts:` entry is
rewritten; comments and the curated fields stay as they are.

    .venv/bin/python scripts/ecosystem-facts.py [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import urllib.request
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

CATALOG = Path(__file__).resolve().parents[1] / "configs" / "frameworks.yaml"
TIMEOUT_S = 30


def fetch(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "mlbench ecosystem-facts"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return response.read().decode()


def stable(version: str) -> Version | None:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    return None if parsed.is_prerelease or parsed.is_devrelease else parsed


def pypi_releases(name: str) -> tuple[str, list[tuple[str, dt.date]]]:
    url = f"https://pypi.org/pypi/{name}/json"
    releases = json.loads(fetch(url))["releases"]
    found = []
    for version, files in releases.items():
        files = [f for f in files if not f.get("yanked")]
        if files and stable(version):
            first_upload = min(dt.datetime.fromisoformat(f["upload_time_iso_8601"].replace("Z", "+00:00"))
                               for f in files)
            found.append((version, first_upload.date()))
    return url, found


def crates_index_path(name: str) -> str:
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


def crates_releases(name: str) -> tuple[str, list[tuple[str, dt.date]]]:
    url = f"https://index.crates.io/{crates_index_path(name)}"
    found = []
    for line in fetch(url).splitlines():
        entry = json.loads(line)
        if not entry.get("yanked") and entry.get("pubtime") and stable(entry["vers"]):
            found.append((entry["vers"], dt.date.fromisoformat(entry["pubtime"][:10])))
    return url, found


def facts(registry: str, name: str, today: dt.date) -> dict[str, object]:
    url, releases = (pypi_releases if registry == "pypi" else crates_releases)(name)
    if not releases:
        raise SystemExit(f"{name}: no stable release with a date in {url}")
    first = min(releases, key=lambda r: r[1])
    latest = max(releases, key=lambda r: Version(r[0]))
    year_ago = today - dt.timedelta(days=365)
    return {"read": today.isoformat(), "source": url,
            "first_release": first[0], "first_release_date": first[1].isoformat(),
            "latest_release": latest[0], "latest_release_date": latest[1].isoformat(),
            "releases_last_12_months": sum(1 for _, day in releases if day > year_ago)}


def flow(mapping: dict[str, object]) -> str:
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in mapping.items()) + "}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the facts, do not rewrite the file")
    args = parser.parse_args()
    text = CATALOG.read_text()
    catalog = yaml.safe_load(text)["frameworks"]
    today = dt.datetime.now(dt.UTC).date()
    for name, entry in catalog.items():
        package = entry["package"]
        if package["registry"] == "project":  # mlbench's own code: no registry to read
            continue
        found = facts(package["registry"], package["name"], today)
        print(f"{name}: {flow(found)}")
        block = re.compile(rf"(^  {re.escape(name)}:\n(?:    .*\n|      .*\n)*?    facts: ).*$", re.MULTILINE)
        text, count = block.subn(lambda m, found=found: m.group(1) + flow(found), text, count=1)
        if count != 1:
            raise SystemExit(f"{CATALOG}: frameworks.{name}: no one-line `facts:` entry to rewrite")
    if not args.dry_run:
        yaml.safe_load(text)  # still valid YAML before it replaces the file
        tmp = CATALOG.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(CATALOG)
        print(f"{CATALOG}: facts rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
