"""The method's phases 1, 3 and 6 as commands: the frameworks registry (the task specs' `unsupported`
rules, honoured by both harnesses), the doctor (and `run` refusing on a fail), ecosystem maturity."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import load_run, mlbench, write_yaml
from mlbench import buildinfo, doctor, ecosystem, frameworks
from mlbench.config import read_task_spec
from mlbench.errors import UsageError
from mlbench.paths import RUST_TARGET, TASK_SPECS


def spec_with(tmp_path: Path, task: str, rules: list[dict]) -> Path:
    """A copy of the task specs where `task` has these `unsupported` rules."""
    folder = tmp_path / "specs"
    shutil.copytree(TASK_SPECS, folder)
    spec = yaml.safe_load((folder / f"{task}.yaml").read_text())
    spec["unsupported"] = rules
    write_yaml(folder / f"{task}.yaml", spec)
    return folder


@pytest.mark.parametrize(("rule", "field"), [
    ({"frameworks": ["sklearn"], "algorithms": ["ridge"], "reason": "r"}, "unsupported[0].frameworks"),
    ({"frameworks": ["linfa"], "algorithms": ["huber"], "reason": "r"}, "unsupported[0].algorithms"),
    ({"frameworks": ["linfa"], "algorithms": ["ridge"], "when": {"beta": 1}, "reason": "r"}, "unsupported[0].when"),
])
def test_a_rule_that_could_never_match_is_refused_naming_its_field(tmp_path: Path, rule: dict, field: str) -> None:
    folder = spec_with(tmp_path, "regression", [rule])
    read_task_spec.cache_clear()
    with pytest.raises(UsageError, match=re.escape(field)):
        read_task_spec(folder / "regression.yaml")


def test_the_python_harness_declines_what_the_spec_declares(tmp_path: Path, datasets_dir: Path) -> None:
    """A rule for scikit-learn's ridge at alpha 2: that job is `unsupported` with the spec's reason
    (no fit runs), alpha 1 runs."""
    rule = {"frameworks": ["scikit-learn"], "algorithms": ["ridge"], "when": {"alpha": [2.0]},
            "reason": "a reason only this test gives"}
    specs = spec_with(tmp_path, "regression", [rule])
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 1, "warmup": 0,
                                              "datasets": ["diabetes"], "algorithms": {"ridge": {"alpha": [1.0, 2.0]}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir, "--langs", "python",
                     "--no-table", "--no-host-watch", specs=specs)
    assert result.returncode == 0, result.stderr
    by_alpha = {r["hyperparameters"]["alpha"]: r for r in load_run(tmp_path / "run")}
    assert by_alpha[1.0]["status"] == "ok"
    assert by_alpha[2.0]["status"] == "unsupported" and by_alpha[2.0]["error"] == "a reason only this test gives"


def test_frameworks_lists_every_spec_framework_and_reads_the_rules() -> None:
    result = mlbench("frameworks", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    cells = {(c["task"], c["algorithm"], c["framework"]): c for c in data["availability"]}
    assert cells["svm", "linearsvc", "linfa"]["status"] == "unsupported"
    assert "liblinear" in cells["svm", "linearsvc", "libsvm-rs"]["reasons"][0]
    assert cells["clustering", "gaussian_mixture", "linfa"]["status"] == "partial"
    assert cells["clustering", "kmeans", "kodama"]["status"] == "unsupported"
    assert cells["cnn", "resnet18", "tch"]["status"] == "implemented"
    # burn runs every architecture, but not through libtorch's cuDNN switches
    assert cells["cnn", "resnet18", "burn"]["status"] == "partial"
    assert any("cudnn_benchmark" in reason for reason in cells["cnn", "resnet18", "burn"]["reasons"])
    for spec in frameworks.task_specs():
        for language in ("python", "rust"):
            for name in spec.frameworks(language):
                assert data["frameworks"][name]["selected"] and data["frameworks"][name]["language"] == language
    assert data["frameworks"]["scikit-learn"]["installed"] == metadata.version("scikit-learn")
    assert data["frameworks"]["linfa"]["installed"] == frameworks.lockfile_version("linfa") is not None
    left_out = [n for n, e in data["frameworks"].items() if not e["selected"]]
    assert {"smartcore", "rust-bert"} <= set(left_out)
    table = mlbench("frameworks").stdout
    assert "linearsvc" in table and "kodama implements hierarchical" in table


def test_the_catalog_must_hold_every_framework_a_task_runs() -> None:
    catalog = dict(frameworks.load_catalog())
    del catalog["kodama"]
    with pytest.raises(UsageError, match=r"frameworks\.kodama"):
        frameworks.check_catalog(catalog, frameworks.task_specs())


def test_build_info_hashes_the_sources_but_not_the_build_output(tmp_path: Path) -> None:
    for path, text in {".cargo/config.toml": "[build]\n", "configs/tasks/a.yaml": "task: a\n",
                       "rust/a/src/main.rs": "fn main() {}\n", "rust/target/release/junk.rs": "x\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    before = buildinfo.sources_sha256(tmp_path)
    (tmp_path / "rust/target/release/junk.rs").write_text("y\n")
    assert buildinfo.sources_sha256(tmp_path) == before
    (tmp_path / "rust/a/src/main.rs").write_text("fn main() { }\n")
    assert buildinfo.sources_sha256(tmp_path) != before


def fake_build(folder: Path, sources: str, binaries: Path | None = None) -> Path:
    """Binaries (empty files, or links to the real ones in `binaries`) with a build-info naming `sources`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in doctor.rust_binaries():
        if binaries is None:
            (folder / name).write_text("")
        else:
            (folder / name).symlink_to(binaries / name)
    (folder / buildinfo.FILE).write_text(json.dumps({"sources_sha256": sources, "target_cpu": "native",
                                                     "features": "default", "built_at": "then"}))
    return folder


def test_doctor_fails_binaries_of_other_sources_and_passes_fresh_ones(tmp_path: Path) -> None:
    stale = fake_build(tmp_path / "stale", "0" * 64)
    finding = doctor.check_rust_build(doctor.Scope(rust_target=stale))
    assert finding.status == doctor.FAIL and finding.remedy == "make build"
    fresh = fake_build(tmp_path / "fresh", buildinfo.sources_sha256())
    assert doctor.check_rust_build(doctor.Scope(rust_target=fresh)).status == doctor.PASS
    (fresh / "svm").unlink()
    assert "svm missing" in doctor.check_rust_build(doctor.Scope(rust_target=fresh)).detail


def test_doctor_misses_the_setup_extras_but_not_the_on_demand_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make setup` installs EXTRAS; the cuda-build extra (nvcc's wheels) only `make cuda-toolkit` does."""
    real = metadata.version

    def without(*names: str) -> Callable[[str], str]:
        def version(name: str) -> str:
            if name in names:
                raise metadata.PackageNotFoundError(name)
            return real(name)
        return version

    on_demand = set(doctor.pins()) - set(doctor.pins(lambda extra: extra not in doctor.ON_DEMAND_EXTRAS))
    assert "nvidia-cuda-nvcc" in on_demand and "torch" not in on_demand
    monkeypatch.setattr(doctor.metadata, "version", without(*on_demand))
    assert "nvidia" not in doctor.check_venv(doctor.Scope()).detail
    monkeypatch.setattr(doctor.metadata, "version", without("torch", *on_demand))
    finding = doctor.check_venv(doctor.Scope())
    assert finding.status == doctor.WARN and finding.detail.endswith("missing: torch")


def test_doctor_fails_a_corrupt_dataset(tmp_path: Path, datasets_dir: Path) -> None:
    folder = tmp_path / "datasets"
    shutil.copytree(datasets_dir / "iris", folder / "iris")
    assert doctor.check_datasets(doctor.Scope(datasets=("iris",), datasets_dir=folder)).status == doctor.PASS
    with open(folder / "iris" / "X_train.npy", "ab") as f:
        f.write(b"\0")
    finding = doctor.check_datasets(doctor.Scope(datasets=("iris",), datasets_dir=folder))
    assert finding.status == doctor.FAIL and "sha256 mismatch" in finding.detail


def test_doctor_command_prints_every_check_with_a_verdict() -> None:
    result = mlbench("doctor", "--json")
    findings = json.loads(result.stdout)["findings"]
    checks = {f["check"] for f in findings}
    assert {"cpu", "governor", "turbo", "smt", "load", "threads", "native libraries", "python packages", "datasets",
            "rust build", "libtorch"} <= checks
    assert all(f["status"] in (doctor.PASS, doctor.WARN, doctor.FAIL) for f in findings)
    assert result.returncode == (1 if any(f["status"] == doctor.FAIL for f in findings) else 0)


@pytest.mark.slow
def test_run_refuses_on_a_failing_check_and_force_runs_and_says_so(tmp_path: Path, datasets_dir: Path,
                                                                   rust_regression: Path) -> None:
    """Binaries whose build-info names other sources: `run` exits 2 with one line and writes nothing;
    with --force it runs and meta.json keeps the failing finding and `forced`."""
    stale = fake_build(tmp_path / "target", "0" * 64, binaries=RUST_TARGET)
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 1, "warmup": 0,
                                              "datasets": ["diabetes"], "algorithms": {"linear": {}}})
    env = os.environ | {"MLBENCH_RUST_TARGET": str(stale)}
    command = [sys.executable, "-m", "mlbench", "run", str(matrix), "--out", str(tmp_path / "run"), "--datasets-dir",
               str(datasets_dir), "--no-table", "--no-host-watch"]
    refused = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1])
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("mlbench: error: doctor: rust build failed")
    assert not (tmp_path / "run").exists()
    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, env=env,
                            cwd=Path(__file__).parents[1])
    assert forced.returncode == 0, forced.stderr
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["doctor"]["forced"] is True and meta["doctor"]["failed"] == 1
    assert {r["status"] for r in load_run(tmp_path / "run")} == {"ok"}


def test_maturity_levels_are_cumulative_and_follow_the_rules() -> None:
    entry = {"language": "rust", "license": "MIT OR Apache-2.0", "gpu": ["cuda"],
             "facts": {"latest_release": "1.0", "releases_last_12_months": 0}}
    run = ecosystem.Measured(ok_jobs=4, comparisons=4)
    met = ecosystem.criteria(entry, {"all": 0.8}, run, ran=True)
    assert met == {"available": True, "covers": True, "matches": True, "maintained": False, "gpu": False}
    assert ecosystem.level(met) == 3
    mismatched = ecosystem.Measured(ok_jobs=4, comparisons=4, quality_mismatches=1)
    assert ecosystem.level(ecosystem.criteria(entry, {"all": 0.8}, mismatched, ran=True)) == 2
    assert ecosystem.level(ecosystem.criteria(entry, {"all": 0.5}, run, ran=True)) == 1
    no_run = ecosystem.criteria(entry, {"all": 0.8}, None, ran=False)
    assert no_run["matches"] is None and ecosystem.level(no_run) == 2
    maintained = entry | {"facts": {"latest_release": "1.0", "releases_last_12_months": 2}}
    on_gpu = ecosystem.Measured(ok_jobs=4, comparisons=4, cuda_ok_jobs=2)
    assert ecosystem.level(ecosystem.criteria(maintained, {"all": 1.0}, on_gpu, ran=True)) == 5


def test_task_code_is_counted_per_framework_by_file() -> None:
    specs = {s.task: s for s in frameworks.task_specs()}
    svm = ecosystem.side_files(specs["svm"], "rust")
    assert [p.name for p in svm["linfa"]] == ["linfa_arm.rs"]
    assert [p.name for p in svm["libsvm-rs"]] == ["libsvm_arm.rs"]
    assert {p.name for p in svm[""]} == {"main.rs", "params.rs"}
    cnn = ecosystem.side_files(specs["cnn"], "rust")
    assert {p.name for p in cnn["tch"]} == {"tch_arm.rs", "tch_net.rs"}
    assert all("cnn-burn" in str(p) for p in cnn["burn"])
    assert {p.name for p in ecosystem.side_files(specs["regression"], "rust")["linfa"]} >= {"algorithms.rs", "main.rs"}


@pytest.mark.slow
def test_ecosystem_on_a_run_measures_coverage_and_quality(tmp_path: Path, datasets_dir: Path,
                                                          rust_classical: list[Path]) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "svm", "repetitions": 1, "warmup": 0, "datasets": ["iris"],
                                              "algorithms": {"svc": {}, "linearsvc": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir, "--no-table",
                     "--no-host-watch")
    assert result.returncode == 0, result.stderr
    result = mlbench("ecosystem", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "run" / "ecosystem.json").read_text())
    linfa = data["frameworks"]["linfa"]
    assert linfa["run"]["ok_jobs"] == 1 and linfa["run"]["unsupported_jobs"] == 1
    assert linfa["run"]["comparisons"] >= 1 and linfa["criteria"]["matches"] is True
    assert linfa["level"] == ecosystem.level(linfa["criteria"]) and linfa["criteria"]["gpu"] is False
    assert data["frameworks"]["scikit-learn"]["run"]["ok_jobs"] == 2
    assert "linfa" in result.stdout and "available" in result.stdout
