"""Where the repository's parts live; everything else takes paths from here."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SCHEMAS = CONFIGS / "schema"
TASK_SPECS = CONFIGS / "tasks"
HARDWARE = CONFIGS / "hardware"
DATASETS = ROOT / "datasets"
RUST_TARGET = ROOT / "rust" / "target" / "release"
