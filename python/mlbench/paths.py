"""Where the repository's parts live; everything else takes paths from here."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SCHEMAS = CONFIGS / "schema"
# Overridable so that tests can add fault-injection tasks without touching the real catalog.
TASK_SPECS = Path(os.environ.get("MLBENCH_TASK_SPECS", CONFIGS / "tasks"))
HARDWARE = CONFIGS / "hardware"
DATASETS = ROOT / "datasets"
# The Rust binaries; MLBENCH_RUST_TARGET picks another build (e.g. rust/target/x86-64-v3/release from
# `make build TARGET_CPU=x86-64-v3`).
RUST_TARGET = Path(os.environ.get("MLBENCH_RUST_TARGET", ROOT / "rust" / "target" / "release")).resolve()
