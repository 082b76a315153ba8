"""The notebook runs top to bottom on a committed run fixture; compare and export work from the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from conftest import FIXTURES, mlbench
from mlbench.report import render

RUN = FIXTURES / "run"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("report") / "fixture.html"
    render(RUN, output)
    return output, output.read_text()


def test_report_embeds_every_figure(executed: tuple[Path, str]) -> None:
    _, html = executed
    # forest plots for fit and predict, memory, quality-vs-time, one distribution plot for the task
    assert html.count("data:image/png;base64,") >= 5


def test_report_shows_the_tables_and_the_failed_job(executed: tuple[Path, str]) -> None:
    _, html = executed
    for text in ("Comparison table", "mlbench-sortable", "faster", "processes_needed", "startup", "Equivalence margins",
                 "scikit-learn", "linfa",
                 "target-cpu=native", "timeout", "killed after exceeding timeout_s=300", "geomean_ratio"):
        assert text in html, text
    assert "Traceback" not in html


def test_notebook_has_a_parameters_cell() -> None:
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "analysis.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"]
    assert ["parameters"] in tags  # papermill-compatible parameters cell


def test_compare_prints_the_table(tmp_path: Path) -> None:
    result = mlbench("compare", RUN)
    assert result.returncode == 0, result.stderr
    assert "linear" in result.stdout and "rs/py" in result.stdout and "geometric-mean" in result.stdout
    assert "timeout" in result.stdout  # the failed job is listed


def test_compare_warns_on_truncated_lines(tmp_path: Path) -> None:
    shutil.copytree(RUN, tmp_path / "run")
    with (tmp_path / "run" / "records.jsonl").open("a") as f:
        f.write('{"schema_version": 1, "run": "tr')
    result = mlbench("compare", tmp_path / "run")
    assert result.returncode == 0
    assert "malformed record skipped" in result.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(fmt: str, tmp_path: Path) -> None:
    shutil.copytree(RUN, tmp_path / "run")
    result = mlbench("export", tmp_path / "run", "--format", fmt)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "run" / f"records.{fmt}"
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    measured = [json.loads(line) for line in (RUN / "records.jsonl").read_text().splitlines()]
    expected = sum(1 for r in measured if not (r["warmup"] and r["status"] == "ok"))
    assert len(frame) == expected
    assert {"time_fit", "metric_r2", "peak_rss_mb", "language"} <= set(frame.columns)


def test_report_on_a_missing_run_is_a_usage_error(tmp_path: Path) -> None:
    result = mlbench("report", tmp_path / "nothing")
    assert result.returncode == 2 and "make smoke" in result.stderr
