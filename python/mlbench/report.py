"""`mlbench report`: execute analysis.ipynb headless on a run and write it as standalone HTML."""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlbench.errors import UsageError
from mlbench.paths import ROOT

NOTEBOOK = ROOT / "analysis.ipynb"
CELL_TIMEOUT_S = 600

PAGE_ROWS = 25

# One copy per page (the first table carries it): every `.mlbench-table` gets a search box, sortable
# headers (numbers sort by value, not by their text) and pages of PAGE_ROWS rows, its data read from
# the JSON beside it, so a table of thousands of rows costs its data, not its markup. The page's URL
# may say how to sort on load: #sort=TABLE_ID:COLUMN_NAME:asc|desc (a shareable view; the browser
# test uses it).
TABLE_SCRIPT = """<script>
(function () {
  if (window.mlbenchTables) { window.mlbenchTables(); return; }
  window.mlbenchTables = function () {
    document.querySelectorAll('div.mlbench-table:not([data-ready])').forEach(function (box) {
      box.dataset.ready = '1';
      var data = JSON.parse(box.querySelector('script.mlbench-data').textContent);
      var body = box.querySelector('tbody'), search = box.querySelector('input');
      var pageSize = data.page, page = 0, order = data.rows.map(function (_, i) { return i; }), shown = order;
      var heads = box.querySelectorAll('th');
      function compare(column, ascending) {
        return function (a, b) {
          var x = data.keys[a][column], y = data.keys[b][column];
          if (x === null || y === null) { return (x === null) - (y === null); }
          var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
          return ascending ? c : -c;
        };
      }
      function draw() {
        var pages = Math.max(1, Math.ceil(shown.length / pageSize));
        page = Math.min(page, pages - 1);
        body.innerHTML = '';
        shown.slice(page * pageSize, (page + 1) * pageSize).forEach(function (i) {
          var tr = document.createElement('tr');
          data.rows[i].forEach(function (text) {
            var td = document.createElement('td'); td.textContent = text; tr.appendChild(td);
          });
          body.appendChild(tr);
        });
        box.querySelector('.mlbench-count').textContent = shown.length + ' of ' + data.rows.length + ' rows' +
          (pages > 1 ? ' · page ' + (page + 1) + ' of ' + pages : '');
        box.querySelectorAll('button').forEach(function (b) { b.style.display = pages > 1 ? '' : 'none'; });
      }
      function filter() {
        var q = search.value.toLowerCase();
        shown = order.filter(function (i) { return !q || data.text[i].indexOf(q) >= 0; });
        page = 0; draw();
      }
      function sortBy(column, ascending) {
        order = order.slice().sort(compare(column, ascending));
        heads.forEach(function (h) { h.dataset.order = ''; });
        heads[column].dataset.order = ascending ? 'asc' : 'desc';
        filter();
      }
      heads.forEach(function (th, column) {
        th.style.cursor = 'pointer';
        th.addEventListener('click', function () { sortBy(column, th.dataset.order !== 'asc'); });
      });
      search.addEventListener('input', filter);
      box.querySelectorAll('button').forEach(function (b) {
        b.addEventListener('click', function () { page += Number(b.dataset.step); page = Math.max(0, page); draw(); });
      });
      var wanted = /[#&]sort=([^:&]+):([^:&]+):(asc|desc)/.exec(decodeURIComponent(location.hash));
      var column = wanted && wanted[1] === box.id ? data.columns.indexOf(wanted[2]) : -1;
      if (column >= 0) { sortBy(column, wanted[3] === 'asc'); } else { draw(); }
    });
  };
  window.mlbenchTables();
})();
</script>"""

TABLE_STYLE = """<style>
div.mlbench-table input { margin: 0.3em 0.5em 0.3em 0; padding: 0.2em 0.4em; min-width: 18em; }
div.mlbench-table table { border-collapse: collapse; font-size: 0.85em; }
div.mlbench-table th { background: #f0f0f0; position: sticky; top: 0; }
div.mlbench-table th[data-order="asc"]::after { content: " \\25B2"; }
div.mlbench-table th[data-order="desc"]::after { content: " \\25BC"; }
div.mlbench-table td, div.mlbench-table th {
  padding: 0.15em 0.5em; border-bottom: 1px solid #e4e4e4; text-align: left; }
</style>"""


def human_seconds(value: float | None) -> str:
    """A duration in the unit a reader takes in at a glance: 12.3 µs, 4.56 ms, 1.23 s, 3.4 min."""
    if value is None or not math.isfinite(value):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 120:
        return f"{value:.3g} s"
    return f"{value / 60:.3g} min"


def cell(value: Any, float_format: str) -> tuple[str, Any]:
    """(what the cell shows, what it sorts by): numbers sort by value; NaN and None show '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-", None
    if isinstance(value, bool | np.bool_):
        return ("yes" if value else "no"), int(value)
    if isinstance(value, int | np.integer):
        return str(int(value)), int(value)
    if isinstance(value, float | np.floating):
        return (float_format.format(value) if math.isfinite(value) else str(value)), (
            float(value) if math.isfinite(value) else None)
    return str(value), str(value)


def interactive_table(frame: pd.DataFrame, table_id: str, float_format: str = "{:.4g}",
                      shown: pd.DataFrame | None = None, page_rows: int = PAGE_ROWS) -> str:
    """A table with a search box, sortable columns and pages of `page_rows` rows, standalone in the
    exported HTML. `shown`, where given, is the text to display (same shape), `frame` the values to
    sort by (e.g. seconds shown as '4.56 ms', sorted as 0.00456)."""
    columns = [str(c) for c in frame.columns]
    rows, keys = [], []
    for position in range(len(frame)):
        pairs = [cell(v, float_format) for v in frame.iloc[position]]
        keys.append([key for _, key in pairs])
        rows.append([str(shown.iat[position, j]) if shown is not None else text for j, (text, _) in enumerate(pairs)])
    data = {"columns": columns, "rows": rows, "keys": keys, "page": page_rows,
            "text": [" ".join(row).lower() for row in rows]}
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    return (f'{TABLE_STYLE}<div class="mlbench-table" id="{html.escape(table_id)}">'
            f'<input type="search" placeholder="Search this table…" aria-label="search {html.escape(table_id)}">'
            f'<span class="mlbench-count"></span>'
            f'<table class="mlbench-sortable"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
            f'<button data-step="-1">&lsaquo; previous</button> <button data-step="1">next &rsaquo;</button>'
            f'<script type="application/json" class="mlbench-data">{blob}</script></div>{TABLE_SCRIPT}')


def sortable_table(frame: pd.DataFrame, float_format: str = "{:.4g}", table_id: str | None = None) -> str:
    """`interactive_table` under a stable id derived from the columns (small tables: one page)."""
    return interactive_table(frame, table_id or "t" + hashlib.sha256("|".join(map(str, frame.columns)).encode()
                                                                      ).hexdigest()[:8], float_format)


def ipc_kernel_manager() -> type:
    """A kernel manager on local IPC sockets in a private temporary folder instead of TCP ports."""
    from jupyter_client import KernelManager

    class IpcKernelManager(KernelManager):
        def __init__(self, **kwargs: object) -> None:
            folder = Path(tempfile.mkdtemp(prefix="mlbench-kernel-"))
            super().__init__(transport="ipc", ip=str(folder / "kernel"), **kwargs)

    return IpcKernelManager


def render(run: Path, output: Path, notebook: Path = NOTEBOOK) -> Path:
    """Execute the notebook with MLBENCH_RESULTS=run and write HTML with embedded figures."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    if not (run / "records.jsonl").is_file() and not run.is_file():
        raise UsageError(f"{run}: no records.jsonl here; run `make smoke` or `mlbench run ... --out {run}` first")
    nb = nbformat.read(notebook, as_version=4)
    previous = os.environ.get("MLBENCH_RESULTS")
    os.environ["MLBENCH_RESULTS"] = str(run.resolve())  # the kernel inherits this environment
    try:
        client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                kernel_manager_class=ipc_kernel_manager(),
                                resources={"metadata": {"path": str(ROOT)}})
        client.execute()
    except CellExecutionError as exc:
        raise UsageError(f"{notebook}: a cell failed on {run}: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        if previous is None:
            os.environ.pop("MLBENCH_RESULTS", None)
        else:
            os.environ["MLBENCH_RESULTS"] = previous
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(body)
    tmp.replace(output)
    return output


def comparison_table(comparisons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per comparison with its phases as columns: (values to sort by, text to show). The
    headline phase (fit or train) brings the medians in human units, the processes, Holm's p and the
    notes; every phase brings its ratio, CI and verdict."""
    from mlbench import stats

    keys = ["task", "algorithm", "dataset", "params", "rust_framework"]
    frame = comparisons.assign(params=stats.param_labels(comparisons))
    headline = frame[frame["phase"].isin(stats.HEADLINE_PHASES)].set_index(keys)
    values = headline[["phase", "verdict", "median_python", "median_rust"]].rename(
        columns={"phase": "headline", "median_python": "python median", "median_rust": "rust median"})
    shown = values.copy()
    for side in ("python median", "rust median"):
        shown[side] = values[side].map(human_seconds)
    order = [p for p in stats.HEADLINE_PHASES if p in set(frame["phase"])]
    order += sorted(set(frame["phase"]) - set(stats.HEADLINE_PHASES) - set(stats.PROCESS_PHASES))
    order += [p for p in stats.PROCESS_PHASES if p in set(frame["phase"])]
    for phase in order:
        rows = frame[frame["phase"] == phase].set_index(keys)
        ci = rows.apply(lambda r: f"[{r['ci_low']:.3g}, {r['ci_high']:.3g}]" if math.isfinite(r["ci_low"]) else "-",
                        axis=1)
        for column, value, text in ((f"{phase} ratio", rows["ratio"], rows["ratio"].map(lambda v: f"{v:.3g}")),
                                    (f"{phase} 95% CI", rows["ci_low"], ci),
                                    (f"{phase} verdict", rows["verdict"], rows["verdict"])):
            values[column], shown[column] = value, text
    extra = headline[["processes_python", "processes_rust", "processes_needed", "p_holm", "margin", "quality_metric",
                      "quality_python", "quality_rust", "agreement", "notes"]]
    values = values.join(extra)
    shown = shown.join(extra.assign(
        margin=extra["margin"].map(lambda m: f"±{m:.0%}"), p_holm=extra["p_holm"].map(lambda p: f"{p:.2g}"),
        quality_python=extra["quality_python"].map(lambda q: f"{q:.5g}"),
        quality_rust=extra["quality_rust"].map(lambda q: f"{q:.5g}"),
        agreement=extra["agreement"].map(lambda a: f"{a:.3f}"),
        processes_needed=extra["processes_needed"].map(lambda n: f"{n:.0f}")))
    shown = shown.fillna("-").replace({"nan": "-", "[nan, nan]": "-"})
    return values.reset_index(), shown.reset_index()
