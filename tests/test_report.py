"""The notebook runs top to bottom on a committed run fixture; compare and export work from the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
                 "target-cpu=native", "timeout", "killed after exceeding timeout_s=300", "geomean_ratio",
                 "Frameworks and maturity", "kodama implements hierarchical", "1 available", "The doctor"):
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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("MLBENCH_REQUIRE_BROWSER"),
    reason="no chromium here (apt-get install chromium; .ci/run installs it and sets MLBENCH_REQUIRE_BROWSER=1)")


def browse(page: Path, fragment: str = "") -> tuple[str, str]:
    """The DOM after the page's scripts ran, and the browser's log, from headless Chromium."""
    assert CHROMIUM is not None, "MLBENCH_REQUIRE_BROWSER is set but no chromium is installed"
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                             "--v=0", "--dump-dom", page.resolve().as_uri() + fragment],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def column(dom: str, table_id: str, name: str) -> list[str]:
    """The cells of one column of an interactive table, as drawn (the current page)."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.heads, self.rows, self.cell = False, [], [], None

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "div" and ("id", table_id) in attrs:
                self.inside = True
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag: str) -> None:
            if self.inside and tag in ("td", "th") and self.cell is not None:
                (self.rows[-1] if tag == "td" else self.heads).append(self.cell.strip())
                self.cell = None
            elif tag == "table":
                self.inside = False

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell += data

    parser = Cells()
    parser.feed(dom)
    index = parser.heads.index(name)
    return [row[index] for row in parser.rows if row]


@needs_browser
def test_the_report_reads_verdict_first_and_works_in_a_browser(executed: tuple[Path, str]) -> None:
    page, html = executed
    order = [html.index(f'<h2 id="{heading}"') for heading in (
        "Verdict-per-domain", "Speed-up-forest-plot", "Comparison-table", "Memory", "Frameworks-and-maturity",
        "Environment", "Methods",
        "Unsupported-and-failed-jobs")]
    assert order == sorted(order), "the report's sections are out of order"
    dom, log = browse(page)
    assert "Uncaught" not in log and "ERROR:CONSOLE" not in log, log[-2000:]
    drawn = column(dom, "comparisons", "fit ratio")
    assert len(drawn) == 4, "the comparison table was not drawn from its data"
    assert "4 of 4 rows" in dom
    for direction, reverse in (("asc", False), ("desc", True)):
        dom, log = browse(page, f"#sort=comparisons:fit ratio:{direction}")
        assert "Uncaught" not in log, log[-2000:]
        ratios = [float(v) for v in column(dom, "comparisons", "fit ratio")]
        assert ratios == sorted(ratios, reverse=reverse) and len(ratios) == 4
