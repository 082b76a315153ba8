"""`mlbench report`: execute analysis.ipynb headless on a run and write it as standalone HTML."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from mlbench.errors import UsageError
from mlbench.paths import ROOT

NOTEBOOK = ROOT / "analysis.ipynb"
CELL_TIMEOUT_S = 600

# Click a header to sort by it; numbers sort numerically. Kept inline so the HTML stands alone.
SORT_SCRIPT = """<script>
document.querySelectorAll('table.mlbench-sortable th').forEach(function (th, column) {
  th.style.cursor = 'pointer';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var ascending = th.dataset.order !== 'asc';
    th.dataset.order = ascending ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[column].innerText, y = b.cells[column].innerText;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
</script>"""


def sortable_table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """HTML for a table whose columns sort on click, in JupyterLab and in the exported report."""
    body = frame.to_html(index=False, classes="mlbench-sortable", border=0, na_rep="-",
                         float_format=lambda v: float_format.format(v), escape=True)
    return body + SORT_SCRIPT


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
