"""Phase 3 of the method, environment validation: is this machine fit to measure on?

Each check gives pass, warn or fail with a one-line remedy. `mlbench doctor` prints them all;
`mlbench run` runs the checks its run needs first, refuses to start on a fail (`--force` runs anyway
and says so in meta.json) and keeps the findings in meta.json, where the report shows them. The
checks read files and package metadata only (well under a second), except the GPU's, which start
torch and NVML.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mlbench import buildinfo, envinfo, host
from mlbench import datasets as ds
from mlbench.errors import UsageError
from mlbench.paths import DATASETS, ROOT, RUST_TARGET

PASS, WARN, FAIL = "pass", "warn", "fail"
CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    remedy: str = ""


@dataclass(frozen=True)
class Scope:
    """What a run needs checked: its hardware profile's threads and device, languages, datasets, and
    whether a task links libtorch."""

    threads: int = 1
    device: str = "cpu"
    languages: tuple[str, ...] = ("python", "rust")
    datasets: tuple[str, ...] | None = None  # None: every prepared dataset
    datasets_dir: Path = DATASETS
    libtorch: bool = True
    rust_target: Path = field(default=RUST_TARGET)


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def check_cpu(scope: Scope) -> Finding:
    flags: set[str] = set()
    for line in (read(Path("/proc/cpuinfo")) or "").splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    wanted = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    detail = f"{envinfo.cpu_model()}, {host.CORES} logical cores, {', '.join(wanted) or 'no AVX2/FMA'}"
    if "avx2" not in flags:
        return Finding("cpu", WARN, detail, "without AVX2 the SIMD kernels of every framework fall back to "
                       "slower paths: compare runs from the same machine only")
    return Finding("cpu", PASS, detail)


def check_governor(scope: Scope) -> Finding:
    governors = {read(p) for p in CPU.glob("cpu[0-9]*/cpufreq/scaling_governor")} - {None}
    if not governors:
        return Finding("governor", PASS, "no cpufreq governor exposed (a virtual machine or container: the host "
                       "sets frequencies)")
    if governors == {"performance"}:
        return Finding("governor", PASS, "performance on every core")
    return Finding("governor", WARN, f"scaling governor {', '.join(sorted(map(str, governors)))}",
                   "sudo cpupower frequency-set -g performance (clocks otherwise ramp during a measurement)")


def check_turbo(scope: Scope) -> Finding:
    no_turbo, boost = read(CPU / "intel_pstate" / "no_turbo"), read(CPU / "cpufreq" / "boost")
    if no_turbo is None and boost is None:
        return Finding("turbo", PASS, "no turbo control exposed (a virtual machine or container)")
    if no_turbo == "1" or boost == "0":
        return Finding("turbo", PASS, "turbo off")
    remedy = ("echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo" if no_turbo is not None
              else "echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost")
    return Finding("turbo", WARN, "turbo on: clocks depend on temperature and on the other cores' load",
                   f"{remedy} (or compare runs made minutes apart with care)")


def physical_cores() -> int:
    """Distinct (package, core) pairs in /proc/cpuinfo; the logical count where it does not say."""
    pairs, package = set(), "0"
    for line in (read(Path("/proc/cpuinfo")) or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            package = value.strip()
        elif key.strip() == "core id":
            pairs.add((package, value.strip()))
    return len(pairs) or host.CORES


def check_smt(scope: Scope) -> Finding:
    active = read(CPU / "smt" / "active")
    cores = physical_cores()
    detail = f"SMT {'on' if active == '1' else 'off' if active == '0' else 'not reported'}; {cores} physical cores"
    if active == "1" and scope.threads > cores:
        return Finding("smt", WARN, f"{detail}: {scope.threads} threads share cores with their siblings",
                       f"use a hardware profile with at most {cores} threads, or turn SMT off")
    return Finding("smt", PASS, f"{detail}, {scope.threads} thread(s) per task")


def check_load(scope: Scope) -> Finding:
    load = host.loadavg()
    if load is None:
        return Finding("load", WARN, "no /proc/loadavg: busy processes cannot be flagged",
                       "run on Linux for the host watch")
    idle = host.CORES - load
    detail = (f"load average {load:.2f} on {host.CORES} cores: about {max(idle, 0):.1f} idle for "
              f"{scope.threads} thread(s)")
    if idle < scope.threads:
        return Finding("load", WARN, detail, "stop other work or wait: task processes that run short of idle "
                       "cores are flagged disturbed and left out of verdicts")
    return Finding("load", PASS, detail)


def check_threads(scope: Scope) -> Finding:
    names = envinfo.THREAD_COUNT_VARIABLES
    user = {n: os.environ[n] for n in names if n in os.environ}
    detail = (f"the runner sets {', '.join(names)} to {scope.threads} for every task process"
              + (f" (this shell's: {', '.join(f'{k}={v}' for k, v in user.items())})" if user else ""))
    return Finding("threads", PASS, detail)


def check_native_libraries(scope: Scope) -> Finding:
    """BLAS and OpenMP runtimes numpy and scipy load (threadpoolctl); two OpenMP runtimes in one
    process spin against each other."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    with contextlib.suppress(ImportError):
        import scipy.linalg  # noqa: F401
    infos = threadpool_info()
    libraries = sorted({f"{i['internal_api']} {i.get('version') or '?'} ({Path(i['filepath']).name})" for i in infos})
    openmp = {i["prefix"] for i in infos if i["user_api"] == "openmp"}
    detail = f"python: {'; '.join(libraries) or 'none found'}; rust: {rust_linear_algebra()}"
    if len(openmp) > 1:
        runtimes = f"{len(openmp)} OpenMP runtimes ({', '.join(sorted(openmp))})"
        return Finding("native libraries", WARN, f"{detail}: {runtimes}",
                       "set KMP_DUPLICATE_LIB_OK only as a last resort; install numpy/scipy from one channel")
    return Finding("native libraries", PASS, detail)


def rust_linear_algebra() -> str:
    from mlbench.frameworks import LOCKFILES

    locks = " ".join(read(p) or "" for p in LOCKFILES)
    backends = [name for name in ("openblas-src", "intel-mkl-src", "netlib-src", "accelerate-src")
                if f'name = "{name}"' in locks]
    kernels = [name for name in ("matrixmultiply", "gemm") if f'name = "{name}"' in locks]
    return (f"BLAS {', '.join(backends)}" if backends else
            f"no BLAS (pure-Rust {' and '.join(kernels) or 'kernels'}); tch uses libtorch's own")


def torch_sys_expects() -> str | None:
    """The libtorch version tch's torch-sys build script checks for (cargo's registry sources)."""
    from mlbench.frameworks import lockfile_version

    version = lockfile_version("torch-sys")
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for build in home.glob(f"registry/src/*/torch-sys-{version}/build.rs"):
        if found := re.search(r'TORCH_VERSION: &str = "([^"]+)"', read(build) or ""):
            return found.group(1)
    return None


def check_libtorch(scope: Scope) -> Finding:
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return Finding("libtorch", FAIL, "torch is not installed", "make setup (the `dl` extra)")
    expected = torch_sys_expects()
    torch_base = torch.split("+")[0]
    if expected is None:
        return Finding("libtorch", WARN, f"torch {torch}; tch's expected libtorch unknown (torch-sys sources "
                       "not in cargo's registry)", "make build (fetches them), then run the doctor again")
    if expected != torch_base:
        return Finding("libtorch", FAIL, f"torch {torch} but tch's torch-sys expects libtorch {expected}",
                       f"pip install torch=={expected} into .venv (the project pins it), then make build")
    return Finding("libtorch", PASS, f"torch {torch} = the libtorch {expected} tch checks for")


@functools.cache
def cuda_probe() -> tuple[str, str, str, str] | str:
    """In a child process (CUDA state stays out of this one): torch's device count, its CUDA
    version, the NVIDIA driver's version and the first device's name; or why it could not say.
    Once per process: `run`'s --hw gpu refusal and the doctor's gpu check share it."""
    import subprocess
    import sys

    probe = ("import torch, pynvml; pynvml.nvmlInit(); print(torch.cuda.device_count(), torch.version.cuda, "
             "pynvml.nvmlSystemGetDriverVersion(), torch.cuda.get_device_name(0) if torch.cuda.device_count() else '')")
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the CUDA probe did not finish: {exc}"
    if done.returncode != 0:
        return f"NVML or torch's CUDA cannot start: {(done.stderr.strip().splitlines() or ['no message'])[-1]}"
    count, cuda, driver, name = [*done.stdout.strip().split(" ", 3), "", "", "", ""][:4]
    return count, cuda, driver, name


def check_gpu(scope: Scope) -> Finding:
    probed = cuda_probe()
    if isinstance(probed, str):
        return Finding("gpu", FAIL, probed, "install the NVIDIA driver (nvidia-smi must work), or run with --hw cpu")
    count, cuda, driver, name = probed
    if count == "0":
        return Finding("gpu", FAIL, f"driver {driver}, but torch (CUDA {cuda}) sees no device",
                       "check CUDA_VISIBLE_DEVICES and nvidia-smi, or run with --hw cpu")
    return Finding("gpu", PASS, f"{count} device(s), {name}; driver {driver}, torch CUDA {cuda}; NVML readable")


def check_datasets(scope: Scope) -> Finding:
    folder = scope.datasets_dir
    names = (list(scope.datasets) if scope.datasets is not None
             else sorted(p.name for p in folder.iterdir() if (p / "meta.json").is_file()) if folder.is_dir() else [])
    if not names:
        return Finding("datasets", WARN, f"no prepared dataset in {folder}", "make datasets")
    for name in names:
        try:
            ds.verify(name, folder)
        except UsageError as exc:
            return Finding("datasets", FAIL, str(exc), "make datasets")
    return Finding("datasets", PASS, f"{len(names)} dataset(s) match their meta.json sha256 ({folder})")


def rust_binaries() -> list[str]:
    """Every binary a task spec names for a Rust framework (what `make build` builds)."""
    from mlbench.frameworks import task_specs

    return sorted({spec.binary(name) for spec in task_specs() for name in spec.frameworks("rust")})


def check_rust_build(scope: Scope) -> Finding:
    missing = [b for b in rust_binaries() if not (scope.rust_target / b).is_file()]
    if missing:
        return Finding("rust build", FAIL, f"{scope.rust_target}: {', '.join(missing)} missing", "make build")
    info = buildinfo.read(scope.rust_target)
    if info is None:
        return Finding("rust build", FAIL, f"{scope.rust_target}/{buildinfo.FILE} missing: the binaries' sources "
                       "are unknown", "make build (it writes the file)")
    if info.get("sources_sha256") != buildinfo.sources_sha256():
        return Finding("rust build", FAIL, f"the binaries in {scope.rust_target} were built from other sources "
                       f"(built {info.get('built_at')})", "make build")
    return Finding("rust build", PASS, f"fresh for this checkout; target CPU {info.get('target_cpu')}, "
                   f"features {info.get('features')}, built {info.get('built_at')}")


# Extras `make setup` does not install (the Makefile's EXTRAS): checked when present, not missed when absent.
ON_DEMAND_EXTRAS = ("cuda-build",)


def pins(extras: Callable[[str], bool] = lambda extra: True) -> dict[str, str]:
    """Every `name==version` pin of pyproject.toml: its dependencies and the extras `extras` keeps."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra, names in project["optional-dependencies"].items()
                                             if extras(extra) for s in names]
    return dict(s.split("==", 1) for s in specs if "==" in s)


def check_venv(scope: Scope) -> Finding:
    wrong, absent, found = [], [], 0
    required = pins(lambda extra: extra not in ON_DEMAND_EXTRAS)
    for name, pinned in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in required:
                absent.append(name)
            continue
        found += 1
        if installed.split("+")[0] != pinned:
            wrong.append(f"{name} {installed} (pinned {pinned})")
    if wrong:
        return Finding("python packages", FAIL, f"not the pinned versions: {', '.join(wrong)}",
                       "make setup in a fresh .venv (rm -rf .venv; make setup)")
    if absent:
        return Finding("python packages", WARN, f"{found} pinned packages installed; "
                       f"missing: {', '.join(absent)}", "make setup (installs the Makefile's EXTRAS)")
    return Finding("python packages", PASS, f"all {found} pinned packages at their pinned versions")


Check = Callable[[Scope], Finding]


def checks_for(scope: Scope) -> list[Check]:
    chosen: list[Check] = [check_cpu, check_governor, check_turbo, check_smt, check_load, check_threads,
                           check_native_libraries, check_venv, check_datasets]
    if "rust" in scope.languages:
        chosen.append(check_rust_build)
        if scope.libtorch:
            chosen.append(check_libtorch)
    if scope.device == "cuda":
        chosen.append(check_gpu)
    return chosen


def diagnose(scope: Scope) -> list[Finding]:
    return [check(scope) for check in checks_for(scope)]


def failed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == FAIL]


def as_json(findings: list[Finding], forced: bool = False) -> dict[str, Any]:
    return {"findings": [asdict(f) for f in findings], "failed": len(failed(findings)),
            "warned": sum(f.status == WARN for f in findings), "forced": forced}


def lines(findings: list[Finding]) -> list[str]:
    out = []
    for f in findings:
        out.append(f"{f.status.upper():<5} {f.check:<17} {f.detail}")
        if f.remedy and f.status != PASS:
            out.append(f"{'':<6}{'':<17} -> {f.remedy}")
    return out


def scope_for_profile(hardware: str, languages: list[str], datasets_dir: Path = DATASETS) -> Scope:
    from mlbench.config import load_hardware

    profile = load_hardware(hardware)
    return Scope(threads=profile.threads, device=profile.device, languages=tuple(languages),
                 datasets_dir=datasets_dir)


def findings_frame(paths: list[Path]) -> Any:
    """The doctor's findings each run's meta.json kept (the report's), one row per run and check."""
    import json

    import pandas as pd

    rows = []
    for path in paths:
        meta_path = (path if path.is_dir() else path.parent) / "meta.json"
        try:
            block = json.loads(meta_path.read_text()).get("doctor") or {}
        except (OSError, ValueError):
            continue
        for finding in block.get("findings", []):
            rows.append({"run": str(path), **finding, "forced": block.get("forced", False)})
    return pd.DataFrame(rows)
