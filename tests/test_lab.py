"""`make lab`: JupyterLab serves analysis.ipynb with the project's kernel, and the notebook runs in it.

Starts the server headless on a free loopback port, as `make lab RUN=NAME LAB_ARGS=...` would, with
MLBENCH_RESULTS pointing at the committed run fixture; stops it at the end."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FIXTURES
from mlbench.paths import ROOT

JUPYTER = Path(sys.executable).parent / "jupyter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"},
                                     data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        return json.loads(body) if body and response.headers.get_content_type() == "application/json" else {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    if not JUPYTER.exists():
        pytest.fail(f"{JUPYTER}: JupyterLab is not installed (the `report` extra pins it)")
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path_factory.mktemp("lab") / "lab.log"
    env = os.environ | {"MLBENCH_RESULTS": str(FIXTURES / "run"), "JUPYTER_RUNTIME_DIR": str(log.parent)}
    with log.open("w") as out:
        server = subprocess.Popen([str(JUPYTER), "lab", "analysis.ipynb", "--no-browser", "--ip", "127.0.0.1",
                                   "--port", str(port), f"--IdentityProvider.token={token}",
                                   f"--ServerApp.root_dir={ROOT}", *(["--allow-root"] if os.geteuid() == 0 else [])],
                                  cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get(f"{base}/api/status", token)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_lab_serves_the_notebook_and_the_lab_page(lab: tuple[str, str]) -> None:
    base, token = lab
    notebook = get(f"{base}/api/contents/analysis.ipynb?content=1", token)
    assert notebook["type"] == "notebook"
    assert any("parameters" in c["metadata"].get("tags", []) for c in notebook["content"]["cells"])
    request = urllib.request.Request(f"{base}/lab/tree/analysis.ipynb", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and b"JupyterLab" in response.read()


def test_the_lab_kernel_is_the_project_venv_and_runs_the_notebook(lab: tuple[str, str], tmp_path: Path) -> None:
    base, token = lab
    name = get(f"{base}/api/kernelspecs", token)["default"]
    kernel = get(f"{base}/api/kernels", token, method="POST")  # the server starts a kernel of that spec
    try:
        assert kernel["name"] == name
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels/{kernel['id']}", method="DELETE",
                                                      headers={"Authorization": f"token {token}"}), timeout=30)
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name=name)  # the spec runs the project's interpreter
    try:
        outputs: list[str] = []
        client.execute_interactive("import sys, mlbench; print(sys.executable)",
                                   output_hook=lambda m: outputs.append(m["content"].get("text", "")), timeout=60)
        assert Path("".join(outputs).strip()).resolve() == Path(sys.executable).resolve()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    from mlbench.report import render

    html = render(FIXTURES / "run", tmp_path / "lab.html")  # the same notebook, executed by that kernelspec
    assert "Verdict per domain" in html.read_text()
