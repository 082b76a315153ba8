"""Property-based bad input: valid job files mutated 1,000 ways (hypothesis), each invalid one fed to
every task program of its task, Python and Rust: always exit 2 with one `error:` line naming the job
file, never a traceback or panic, never a record or an output file.

A mutation drops, retypes or adds a key (top level or hyperparameter), sets a value of any JSON type
(NaN, infinities, huge numbers, strings, lists, null), or damages the file itself (cut short, bytes
that are not UTF-8, YAML that is not a mapping). What Python's job loader still accepts is a valid job
and is not fed (the program would run it); everything else must be refused by every program alike.
The Python programs run in this process (their harness entry point, `SystemExit(2)` expected), the
Rust binaries as subprocesses. Derandomized, so CI sees the same 1,000 files every time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import rust_binary, write_yaml
from mlbench import datasets as ds
from mlbench.config import HardwareProfile, expand_matrix, load_job
from mlbench.errors import UsageError
from mlbench.harness import run_task
from mlbench.paths import ROOT

# task -> (matrix giving the base job, Python task file, Rust binaries, mutations)
TASKS: dict[str, tuple[dict[str, Any], str, list[str], int]] = {
    "regression": ({"algorithms": {"elastic_net": {}}, "datasets": ["diabetes"]},
                   "python/tasks/classical/regression.py", ["regression"], 300),
    "svm": ({"algorithms": {"svc": {}}, "datasets": ["iris"]}, "python/tasks/classical/svm.py", ["svm"], 250),
    "clustering": ({"algorithms": {"kmeans": {}}, "datasets": ["iris"]}, "python/tasks/classical/clustering.py",
                   ["clustering"], 250),
    "cnn": ({"algorithms": {"lenet": {}}, "datasets": ["synthetic_images"]}, "python/tasks/deep_learning/cnn.py",
            ["cnn", "cnn-burn"], 100),
    "text_generation": ({"algorithms": {"greedy": {}}, "datasets": ["gpt2_tiny_prompts"]},
                        "python/tasks/llm/text_generation.py", ["text_generation"], 100),
    "text_encoding": ({"algorithms": {"classification": {}}, "datasets": ["bert_tiny_texts"]},
                      "python/tasks/llm/text_encoding.py", ["text_encoding"], 100),
}
FRAMEWORKS = {"regression": "linfa", "svm": "libsvm-rs", "clustering": "linfa", "cnn": "tch",
              "text_generation": "candle", "text_encoding": "candle"}

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 1e308, "", "NaN", "1e999"]),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                                    st.integers(), max_size=2))


@st.composite
def mutated(draw: st.DrawFn, job: dict[str, Any]) -> bytes:
    """One mutation of a valid job, as the bytes of a job file."""
    data = yaml.safe_load(yaml.safe_dump(job))
    kind = draw(st.sampled_from(["drop", "set", "add", "param drop", "param set", "param add", "cut", "bytes",
                                 "not a mapping"]))
    edit = kind.removeprefix("param ")
    if edit in ("drop", "set", "add"):  # on the job's top level, or on its hyperparameters ("param ...")
        target = data["hyperparameters"] if kind.startswith("param ") else data
        if edit == "add":
            key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in target))
        else:
            key = draw(st.sampled_from(sorted(target)))
        if edit == "drop":
            del target[key]
        else:
            target[key] = draw(ANY_VALUE)
    text = yaml.safe_dump(data, allow_unicode=True).encode()
    if kind == "cut":
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "bytes":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([b"\xff\xfe", b"\x80", b"\xc3\x28", b"\x00", b"\t:\n- ["])) + text[at:]
    if kind == "not a mapping":
        return draw(st.sampled_from([b"- 1\n- 2\n", b"42\n", b"just text\n", b"null\n", b"[\n"]))
    return text


def base_job(task: str, folder: Path, datasets: Path) -> dict[str, Any]:
    matrix, _, _, _ = TASKS[task]
    path = write_yaml(folder / f"{task}-matrix.yaml", {"task": task, "repetitions": 1, "processes": 1} | matrix)
    jobs, _ = expand_matrix(path, HardwareProfile("cpu", "cpu", 1), ["python", "rust"], "property", folder, datasets)
    chosen = next(j for j in jobs if j.framework == FRAMEWORKS[task])
    return chosen.to_dict()


def python_program(task: str) -> Callable[[list[str]], tuple[int, str]]:
    """The task's Python program, entered in this process as `python TASK.py ARGS` would enter it."""
    path = ROOT / TASKS[task][1]
    spec = importlib.util.spec_from_file_location(f"property_{task}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    finders = list(sys.meta_path)
    spec.loader.exec_module(module)
    sys.meta_path[:] = finders  # the task's mlbench.lean hook keeps pandas out of task processes, not of pytest

    def run(argv: list[str]) -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                run_task(module.ALGORITHMS, "property", [], argv=argv, setup=getattr(module, "setup", None))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, err.getvalue()

    return run


def rust(binary: Path, argv: list[str]) -> tuple[int, str]:
    done = subprocess.run([str(binary), *argv], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def property_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("property-datasets")
    ds.prepare(["diabetes", "iris", "synthetic_images", "gpt2_tiny_prompts", "bert_tiny_texts"], folder,
               log=lambda _: None)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_every_program_refuses_every_mutated_job(task: str, tmp_path: Path, property_datasets: Path) -> None:
    job = base_job(task, tmp_path, property_datasets)
    python = python_program(task)
    binaries = [rust_binary(name) for name in TASKS[task][2]]
    fed: list[int] = []

    @settings(max_examples=TASKS[task][3], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(job))
    def check(content: bytes) -> None:
        config, out = tmp_path / "job.yaml", tmp_path / "records.jsonl"
        config.write_bytes(content)
        try:
            load_job(config)
            return  # still a valid job: a program would run it, which is not what this test is about
        except UsageError:
            pass
        fed.append(1)
        argv = ["--config", str(config), "--out", str(out)]
        programs: list[tuple[str, Callable[[], tuple[int, str]]]] = [("python", lambda: python(argv))]
        programs += [(binary.name, lambda b=binary: rust(b, argv)) for binary in binaries]
        for program, run in programs:
            code, stderr = run()
            lines = stderr.strip().splitlines()
            shown = f"{program} on {content[:400]!r}: exit {code}, stderr {stderr[-800:]!r}"
            wrote = out.exists() or (tmp_path / "predictions").exists()
            out.unlink(missing_ok=True)
            shutil.rmtree(tmp_path / "predictions", ignore_errors=True)
            assert code == 2, shown
            assert len(lines) == 1 and lines[0].startswith("error: ") and str(config) in lines[0], shown
            assert "Traceback" not in stderr and "panicked" not in stderr, shown
            assert not wrote, shown

    check()
    assert len(fed) >= TASKS[task][3] * 0.8, f"only {len(fed)} of {TASKS[task][3]} mutations were invalid jobs"
