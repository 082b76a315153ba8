"""What the Rust binaries were built from and how: `make build` writes build-info.json beside them
(the sha256 of every source the binaries are built from, the target CPU, the cargo features), and
the doctor compares it with the checkout, so a run never measures binaries of other sources.

    python -m mlbench.buildinfo rust/target/release --target-cpu '' --features '' --burn-features ''
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from mlbench.paths import ROOT
from mlbench.records import utc_now

FILE = "build-info.json"
SOURCE_SUFFIXES = (".rs", ".toml", ".lock")


def source_files(root: Path = ROOT) -> list[Path]:
    """What the Makefile's RUST_SOURCES lists: the Rust crates' sources and manifests (not their
    build output), the task specs and the synthetic environments' definitions compiled into the
    binaries, and .cargo/config.toml."""
    files = [root / ".cargo" / "config.toml", *sorted((root / "configs" / "tasks").glob("*.yaml")),
             root / "configs" / "environments.yaml"]
    for folder, dirs, names in os.walk(root / "rust"):
        dirs[:] = sorted(d for d in dirs if d != "target")  # build output (rust/target, a crate's own)
        files += [Path(folder) / n for n in sorted(names) if n.endswith(SOURCE_SUFFIXES)]
    return [f for f in files if f.is_file()]


def sources_sha256(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def links_cuda(binary: Path) -> bool:
    """Whether a Rust binary is a candle `cuda` build: it links the CUDA driver (libcuda.so.1)."""
    try:
        dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "[libcuda.so.1]" in dynamic


def build_seconds(folder: Path) -> float | None:
    """Wall time since the Makefile's build recipe stamped its start (.build-start, epoch seconds):
    the whole build, cold or incremental (build-info says which it cannot know)."""
    try:
        return round(time.time() - float((folder / ".build-start").read_text()), 1)
    except (OSError, ValueError):
        return None


def feature_names(flags: str) -> str:
    return flags.replace("--features", "").strip() or "default"


def write(folder: Path, target_cpu: str, features: str, burn_features: str | None = None) -> Path:
    """`features` of the main workspace, `burn_features` of burn's arms (the same unless BURN_CUDA=0)."""
    info = {"sources_sha256": sources_sha256(), "target_cpu": target_cpu or "native (.cargo/config.toml)",
            "features": feature_names(features),
            "burn_features": feature_names(features if burn_features is None else burn_features),
            "built_at": utc_now(),
            "build_s": build_seconds(folder),
            "binary_mb": {p.name: round(p.stat().st_size / 2**20, 2) for p in sorted(folder.iterdir())
                          if p.is_file() and os.access(p, os.X_OK) and not p.suffix}}
    path = folder / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(path)
    return path


def read(folder: Path) -> dict[str, Any] | None:
    path = folder / FILE
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description="write build-info.json beside the Rust binaries")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--target-cpu", default="")
    parser.add_argument("--features", default="")
    parser.add_argument("--burn-features", default=None)
    args = parser.parse_args()
    print(f"{write(args.folder, args.target_cpu, args.features, args.burn_features)}: written")


if __name__ == "__main__":
    main()
