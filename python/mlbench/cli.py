"""Command line: `python -m mlbench run|noise-floor|validate|datasets|compare|export|report`.
Usage errors exit 2 with one line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlbench.errors import UsageError
from mlbench.paths import DATASETS

if TYPE_CHECKING:
    from mlbench.runner import RunOptions, Summary


def run_options(args: argparse.Namespace, noise_floor: bool = False) -> RunOptions:
    from mlbench import runner

    floor_file = None if args.noise_floor in (None, "auto") else Path(args.noise_floor)
    return runner.RunOptions(
        matrices=args.matrices, hardware=args.hw, languages=[s.strip() for s in args.langs.split(",") if s],
        out=args.out, resume=args.resume, overwrite=args.overwrite, timeout_s=args.timeout,
        executor=args.executor, jobs=args.jobs, datasets_dir=args.datasets_dir, partition=args.partition,
        max_parallel=args.max_parallel, slurm_opts=args.slurm_opt, order=args.order, processes=args.processes,
        repetitions=args.repetitions,
        target_ci=args.target_ci, max_processes=args.max_processes, noise_floor=noise_floor,
        floor_file=floor_file, use_floor=args.noise_floor != "none", watch_host=not args.no_host_watch,
        frameworks=[s.strip() for s in args.frameworks.split(",") if s.strip()] if args.frameworks else None,
        force=args.force)


def execute(options: RunOptions) -> Summary:
    from mlbench import runner

    summary = runner.run(options)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items())) or "nothing to run"
    print(f"\n{options.out}/records.jsonl: {counts}")
    if summary.disturbed:
        print(f"{summary.disturbed} task process(es) ran while their threads exceeded the idle cores: their "
              "repetitions are flagged and left out of verdicts")
    if summary.failures:
        print("failures:")
        for line in summary.failures:
            print(f"  {line}")
    return summary


def cmd_run(args: argparse.Namespace) -> int:
    from mlbench import table

    summary = execute(run_options(args))
    if not args.no_table:
        print()
        print("\n".join(table.report([args.out])))
    return 1 if summary.failures else 0


def cmd_noise_floor(args: argparse.Namespace) -> int:
    """A/A: every job against itself; prints and writes the false-verdict share and the floor."""
    import json

    from mlbench import noise, stats

    options = run_options(args, noise_floor=True)
    summary = execute(options)
    table, loaded = stats.load([options.out])
    comparisons = stats.compare(table, loaded)
    summary_table = noise.summarize(comparisons)
    if summary_table.empty:
        busy = (f"; {loaded.disturbed} repetitions ran on a busy machine and were left out: rerun it idle"
                if loaded.disturbed else "")
        print(f"no A/A comparison: no job has ok records on both sides{busy}")
        return 1
    print()
    print("\n".join(noise.lines(summary_table)))
    meta = json.loads((options.out / "meta.json").read_text())
    meta["processes_per_side"] = int(comparisons["processes_python"].median())
    path = noise.write(options.out, options.hardware, summary_table, meta)
    overall = summary_table.iloc[-1]
    print(f"\n{path}: false verdicts {overall.false_verdicts} of {overall.comparisons} "
          f"({overall.false_share:.1%}); floor m = {overall.floor:.3f}. Runs with --hw {options.hardware} "
          f"judge against max(margin, floor) from {noise.default_folder(options.hardware)}/{noise.FILE}.")
    return 1 if summary.failures else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mlbench.config import load_job, load_matrix
    from mlbench.yamlio import load_yaml

    for path in args.files:
        data = load_yaml(path)
        if isinstance(data, dict) and "job_id" in data:
            load_job(path)
            print(f"{path}: valid job")
        else:
            load_matrix(path)
            print(f"{path}: valid matrix")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from mlbench import datasets

    names = args.names or [name for name in datasets.BUILDERS if name not in datasets.ON_REQUEST]
    datasets.prepare(names, args.dir, download=args.download)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mlbench import table

    for path in args.runs:
        if not path.exists():
            raise UsageError(f"{path}: no such run folder or records file")
    print("\n".join(table.report(args.runs, phase=args.phase)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mlbench import stats

    if not args.run.exists():
        raise UsageError(f"{args.run}: no such run folder or records file")
    table, _ = stats.load([args.run])
    folder = args.run if args.run.is_dir() else args.run.parent
    out = args.output or folder / f"records.{args.format}"
    tmp = out.with_name(out.name + ".tmp")
    if args.format == "csv":
        table.to_csv(tmp, index=False)
    else:
        table.to_parquet(tmp, index=False)
    tmp.replace(out)
    print(f"{out}: {len(table)} rows, {len(table.columns)} columns")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mlbench.report import render

    output = args.output or Path("reports") / f"{args.run.name}.html"
    print(f"{render(args.run, output)}: written")
    return 0


def cmd_frameworks(args: argparse.Namespace) -> int:
    import json

    from mlbench import frameworks

    data = frameworks.summary()
    print(json.dumps(data, indent=2) if args.json else "\n".join(frameworks.lines(data)))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Every check for the profile; exit 1 when one fails."""
    import json

    from mlbench import doctor

    languages = [s.strip() for s in args.langs.split(",") if s.strip()]
    findings = doctor.diagnose(doctor.scope_for_profile(args.hw, languages, args.datasets_dir))
    print(json.dumps(doctor.as_json(findings), indent=2) if args.json else "\n".join(doctor.lines(findings)))
    if not args.json:
        counts = {s: sum(f.status == s for f in findings) for s in (doctor.PASS, doctor.WARN, doctor.FAIL)}
        print(f"\n{counts[doctor.PASS]} pass, {counts[doctor.WARN]} warn, {counts[doctor.FAIL]} fail"
              + ("; `mlbench run` refuses to start until the failures are fixed (or --force)" if counts[doctor.FAIL]
                 else ""))
    return 1 if doctor.failed(findings) else 0


def cmd_ecosystem(args: argparse.Namespace) -> int:
    """Maturity per framework: the catalog's facts, this checkout's measurements, the runs' coverage."""
    import json

    from mlbench import ecosystem

    for path in args.runs:
        if not path.exists():
            raise UsageError(f"{path}: no such run folder or records file")
    data = ecosystem.summary(args.runs or None)
    print(json.dumps(data, indent=2) if args.json else "\n".join(ecosystem.lines(data)))
    output = args.output or (args.runs[0] / "ecosystem.json" if len(args.runs) == 1 and args.runs[0].is_dir()
                             else None)
    if output is not None:
        print(f"{ecosystem.write(data, output)}: written", file=sys.stderr)
    return 0


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("matrices", nargs="+", type=Path,
                     help="matrix YAML files, or folders of them (e.g. configs/smoke)")
    run.add_argument("--hw", default="cpu", help="hardware profile in configs/hardware (default: cpu)")
    run.add_argument("--langs", default="python,rust", help="comma-separated languages (default: python,rust)")
    run.add_argument("--frameworks", metavar="A,B",
                     help="comma-separated frameworks to run, e.g. pytorch,tch (default: every framework of each task)")
    run.add_argument("--out", type=Path, required=True, help="run folder, e.g. results/NAME")
    run.add_argument("--resume", action="store_true", help="skip task processes whose records are complete")
    run.add_argument("--overwrite", action="store_true", help="delete an existing run folder first")
    run.add_argument("--timeout", type=float, help="seconds per job, overriding the matrices' timeout_s")
    run.add_argument("--executor", default="local", help="where jobs run: local or slurm (default: local)")
    run.add_argument("--jobs", type=int, default=1, help="parallel local jobs, for correctness runs (default: 1)")
    run.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    run.add_argument("--max-parallel", type=int, default=1,
                     help="Slurm array elements running at once (default: 1, as timings want)")
    run.add_argument("--slurm-opt", action="append", default=[], metavar="KEY=VALUE",
                     help="extra sbatch option, e.g. account=ml or constraint=skylake (repeatable)")
    run.add_argument("--datasets-dir", type=Path, default=DATASETS, help=argparse.SUPPRESS)
    run.add_argument("--no-table", action="store_true", help="skip the comparison table at the end")
    run.add_argument("--order", default="interleaved", choices=["interleaved", "grouped"],
                     help="interleaved: the sides of a comparison take turns process by process (A B B A ...); "
                          "grouped: each job's processes back to back (default: interleaved)")
    run.add_argument("--processes", type=int, help="task processes per job, overriding the matrices' `processes`")
    run.add_argument("--repetitions", type=int,
                     help="measured repetitions per task process, overriding the matrices' `repetitions` "
                          "(a quick check, not a measurement)")
    run.add_argument("--force", action="store_true",
                     help="run although the doctor found a failing check (meta.json records it)")
    run.add_argument("--no-host-watch", action="store_true",
                     help="do not watch the machine's load around each process: nothing is flagged as disturbed "
                          "(for correctness runs on a busy machine, not for numbers you report)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlbench", description="Benchmark Python vs Rust ML frameworks.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="validate, expand and run matrices; collect records")
    add_run_arguments(run)
    run.add_argument("--target-ci", type=float, metavar="W",
                     help="add processes to both sides of comparisons whose 95%% CI is wider than ±W "
                          "(e.g. 0.05), up to --max-processes")
    run.add_argument("--max-processes", type=int, default=20, help="cap for --target-ci (default: 20)")
    run.add_argument("--noise-floor", default="auto", metavar="FILE|none",
                     help="noise floor to judge against (default: results/noise-floor-HW/noise_floor.json if present)")
    run.set_defaults(func=cmd_run)

    floor = sub.add_parser("noise-floor", help="A/A: run each job against itself; measure false verdicts and "
                                               "the smallest ratio this machine resolves")
    add_run_arguments(floor)
    floor.set_defaults(func=cmd_noise_floor, target_ci=None, max_processes=20, noise_floor="none", no_table=True)

    listing = sub.add_parser("frameworks", help="phase 1: the frameworks, why each was selected or left out, "
                                                "and which task algorithms each runs (read, nothing runs)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of tables")
    listing.set_defaults(func=cmd_frameworks)

    doctor = sub.add_parser("doctor", help="phase 3: check that this machine is fit to measure on "
                                           "(pass/warn/fail with a remedy each); `run` does it first")
    doctor.add_argument("--hw", default="cpu", help="hardware profile in configs/hardware (default: cpu)")
    doctor.add_argument("--langs", default="python,rust", help="comma-separated languages (default: python,rust)")
    doctor.add_argument("--datasets-dir", type=Path, default=DATASETS, help=argparse.SUPPRESS)
    doctor.add_argument("--json", action="store_true", help="print JSON instead of lines")
    doctor.set_defaults(func=cmd_doctor)

    eco = sub.add_parser("ecosystem", help="phase 6: maturity per framework from the catalog's registry facts, "
                                           "this checkout and the runs given (coverage, quality mismatches)")
    eco.add_argument("runs", nargs="*", type=Path, help="run folders (e.g. results/smoke); none: no run facts")
    eco.add_argument("--json", action="store_true", help="print JSON instead of a table")
    eco.add_argument("--output", type=Path, help="write the JSON here (default: RUN/ecosystem.json for one run)")
    eco.set_defaults(func=cmd_ecosystem)

    validate = sub.add_parser("validate", help="schema-check matrix or job files")
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(func=cmd_validate)

    datasets = sub.add_parser("datasets", help="prepare datasets into datasets/<name>/")
    datasets_sub = datasets.add_subparsers(dest="action", required=True)
    prepare = datasets_sub.add_parser("prepare", help="write .npy splits and meta.json (sha256 per file)")
    prepare.add_argument("names", nargs="*",
                         help="datasets to prepare (default: all but gpt2_small_prompts, 500 MB, prepared when named)")
    prepare.add_argument("--dir", type=Path, default=DATASETS, help="output folder (default: datasets/)")
    prepare.add_argument("--download", action="store_true", help="fetch datasets that are not bundled")
    prepare.set_defaults(func=cmd_datasets)

    comp = sub.add_parser("compare", help="print the Rust vs Python table for runs")
    comp.add_argument("runs", nargs="+", type=Path, help="run folders or records.jsonl files")
    comp.add_argument("--phase", default="headline",
                      help="phase to compare, `all`, or `headline`: fit for classical tasks, train for training "
                           "tasks (default)")
    comp.set_defaults(func=cmd_compare)

    export = sub.add_parser("export", help="write a run's tidy table (one row per measured repetition)")
    export.add_argument("run", type=Path, help="run folder or records.jsonl")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: RUN/records.FORMAT)")
    export.set_defaults(func=cmd_export)
    report = sub.add_parser("report", help="execute analysis.ipynb on a run and write standalone HTML")
    report.add_argument("run", type=Path, help="run folder, e.g. results/smoke")
    report.add_argument("--output", type=Path, help="HTML file (default: reports/RUN.html)")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mlbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (`mlbench frameworks | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("mlbench: interrupted; `--resume` continues where this stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
