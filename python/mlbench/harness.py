"""The task side of the contract: `<task>.py --config JOB.yaml --out RECORDS.jsonl`.

A task file declares its algorithms as builders, each for one protocol: a `Supervised` (the
`supervised` protocol: fit on the training split, predict the test split), a `Clustering` (fit on
the training features, label them, predict the test features where it can) or a `TrainClassifier`
(the `train_classifier` protocol of mlbench.training: epochs from shared initial weights over a
shared batch order), an `EnvSteps` (the `env_steps` protocol of mlbench.stepping: an
environment stepped through a rollouts set's actions) or a `TrainAgent` (the `train_agent`
protocol of mlbench.agents: an agent trained on an environment from shared weights and random
streams) or a `Generate` (the `generate` protocol of mlbench.generation: a language model's
generation, greedy or sampled, and held-out perplexity on a prompts set) or an `Encode` (the
`encode` protocol of mlbench.encoding: an encoder and a task head on a texts set). A protocol owns
what happens inside one repetition and returns the named artifacts the judge reads, the work per phase (throughput is
derived from it) and the solver's facts; this module owns the CLI, the checks, the loop, the clock,
the records and the errors.
Mirrors rust/bench-core/src/harness.rs.

One process runs `warmup + repetitions` repetitions of one job over data it loads once; the runner
starts several such processes per job (`--process K`) and interleaves them with the other side's.
A phase shorter than the job's `min_sample_s` is timed as a sample of k calls, k found by doubling
in the first warm-up; records keep the per-call time and k. A job with `cv_folds: k` runs a
`Supervised` algorithm under the `cross_validated` protocol over the runner's folds file instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlbench import agents, encoding, envinfo, folds, generation, gpu, records, stepping, training
from mlbench import datasets as ds
from mlbench.agents import TrainAgent
from mlbench.config import Job, check_agent, check_rollouts, load_job, load_task_spec
from mlbench.encoding import Encode
from mlbench.errors import UsageError, one_line
from mlbench.generation import Generate
from mlbench.measure import PhaseTimer, cpu_time_s, die_with_runner, peak_rss_mb, reset_peak_rss, rss_mb, startup_s
from mlbench.prompts import Prompts
from mlbench.rollouts import Rollouts
from mlbench.stepping import EnvSteps
from mlbench.texts import Texts
from mlbench.training import TrainClassifier

Params = dict[str, Any]


@dataclass(frozen=True)
class Solver:
    """What the fitted model says about how it stopped (the record's `solver` block)."""

    name: str
    stopping_rule: str
    n_iter: int | None = None


def nothing_resolved(model: Any) -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class Supervised:
    """Build an estimator from hyperparameters and seed; describe its solver after fit.

    `scores` returns one-vs-one decision values (LIBSVM's pair order and sign) for classifiers;
    `resolved` the values derived from the data (e.g. gamma for `scale`) as the numbers used.
    """

    build: Callable[[Params, int], Any]
    solver: Callable[[Any], Solver]
    scores: Callable[[Any, np.ndarray], np.ndarray] | None = None
    probabilities: Callable[[Any, np.ndarray], np.ndarray | None] | None = None  # class probabilities, if fitted
    resolved: Callable[[Any], dict[str, float]] = nothing_resolved


@dataclass(frozen=True)
class Clustering:
    """Build a clusterer; `labels` gives the training points' labels after fit (noise is -1) from the
    model and the training features; `predict`, where given, labels new points."""

    build: Callable[[Params, int], Any]
    solver: Callable[[Any], Solver]
    labels: Callable[[Any, np.ndarray], np.ndarray] = field(default=lambda model, X: model.labels_)
    predict: Callable[[Any, np.ndarray], np.ndarray] | None = None
    resolved: Callable[[Any], dict[str, float]] = nothing_resolved


@dataclass(frozen=True)
class Unsupported:
    """An algorithm (or option) the framework lacks: one `unsupported` record, never a substitute."""

    reason: str


Algorithm = Supervised | Clustering | TrainClassifier | EnvSteps | TrainAgent | Generate | Encode
Entry = Algorithm | Callable[[Params], Algorithm | Unsupported]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one mlbench job and append its records.")
    parser.add_argument("--config", required=True, type=Path, action="append",
                        help="job file (YAML) written by `mlbench run` (with --fixtures: one or more)")
    parser.add_argument("--out", required=True, type=Path, help="JSON Lines file to append records to")
    parser.add_argument("--process", type=int, default=0,
                        help="index of this process among the job's replicated processes (default: 0)")
    parser.add_argument("--parity", type=Path, default=None,
                        help="training tasks, for the parity tests: write init/step/epoch outputs into DIR and exit")
    parser.add_argument("--fixtures", action="store_true",
                        help="training tasks: write the jobs' shared initial weights and batch orders, then exit")
    args = parser.parse_args(argv)
    if len(args.config) > 1 and not args.fixtures:
        parser.error("--config: one job file (several only with --fixtures)")
    return args


def run_task(algorithms: dict[str, Entry], framework_version: str, libraries: list[str],
             argv: list[str] | None = None, setup: Callable[[Job], dict[str, Any]] | None = None,
             kernels: Callable[[Job], dict[str, str]] | None = None) -> None:
    """Entry point of a task: exit 2 with one line on bad input. `setup(job)`, where given, applies
    the job's thread count (and device) to the framework once per process and returns what the
    framework then reports (recorded in `env.framework_threads`); `kernels(job)` likewise applies the
    job's kernel switches (cuDNN autotuning, TF32) and returns the settings the framework reports
    (`env.kernels`)."""
    startup = startup_s()  # first thing: spawn to here is this process's start-up (imports included)
    die_with_runner()
    args = parse_args(argv)
    if args.fixtures:
        for config in args.config:
            run_job(argparse.Namespace(**(vars(args) | {"config": config})), algorithms, framework_version,
                    libraries, (setup, kernels), startup)
        return
    args.config = args.config[0]
    run_job(args, algorithms, framework_version, libraries, (setup, kernels), startup)


def run_job(args: argparse.Namespace, algorithms: dict[str, Entry], framework_version: str, libraries: list[str],
            hooks: tuple[Callable[[Job], dict[str, Any]] | None, Callable[[Job], dict[str, str]] | None],
            startup: float | None) -> None:
    setup, kernels = hooks
    try:
        if args.process < 0:
            raise UsageError(f"--process: must be at least 0, got {args.process}")
        job = load_job(args.config)
        if job.language != "python" and not args.fixtures:
            raise UsageError(f"{args.config}: language: this is the Python task, job says {job.language!r}")
        declined = load_task_spec(job.task).unsupported_reason(job.framework, job.algorithm, job.hyperparameters,
                                                               job.dataset)
        if job.algorithm not in algorithms and declined is None:
            raise UsageError(f"{args.config}: algorithm: {job.algorithm!r} is not implemented in Python")
        try:
            dataset_sha256 = ds.verify(job.dataset, Path(job.datasets_dir))
        except UsageError as exc:
            raise UsageError(f"{args.config}: dataset: {exc}") from None
        # the task spec's registry: what the framework lacks (with --fixtures, an algorithm the task file
        # defines still draws its fixtures: the other side reads them)
        if declined is not None and not (args.fixtures and job.algorithm in algorithms):
            algorithm: Algorithm | Unsupported = Unsupported(declined)
        else:
            entry = algorithms[job.algorithm]
            algorithm = entry if isinstance(entry, Algorithm) else entry(job.hyperparameters)
        if isinstance(algorithm, TrainClassifier):
            algorithm = training_checks(args.config, job, algorithm, need_weights=not args.fixtures)
        if isinstance(algorithm, EnvSteps):
            check_rollouts(f"{args.config}: hyperparameters", job.dataset, job.hyperparameters,
                           Path(job.datasets_dir))
        if isinstance(algorithm, TrainAgent):
            agent_checks(args.config, job, algorithm, need_fixtures=not args.fixtures)
        if isinstance(algorithm, Generate | Encode):
            model_checks(args.config, job, type(algorithm))
        try:
            if setup is not None:
                framework_threads = setup(job)
            if kernels is not None:
                kernel_settings = kernels(job)
        except UsageError as exc:  # the job's device or threads, which the framework cannot give
            raise UsageError(f"{args.config}: {exc}") from None
    except UsageError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    if args.fixtures:
        if isinstance(algorithm, TrainClassifier):
            meta = ds.read_meta(job.dataset, Path(job.datasets_dir))
            try:
                training.write_fixtures(job, algorithm, training.shape_of(meta), n_train_of(meta))
            except UsageError as exc:
                print(f"error: {args.config}: {one_line(exc)}", file=sys.stderr)
                sys.exit(2)
        if isinstance(algorithm, TrainAgent):
            environment = ds.read_meta(job.dataset, Path(job.datasets_dir))["environment"]
            agents.write_fixtures(job, algorithm, *agents.observation_size(environment))
        return
    env = envinfo.capture(libraries)
    if setup is not None:
        env["framework_threads"] = framework_threads
    if kernels is not None:
        env["kernels"] = kernel_settings
    if isinstance(algorithm, Unsupported):
        record = records.unmeasured(job, args.process, 0, framework_version, dataset_sha256, "unsupported",
                                    algorithm.reason, env)
        records.append_line(args.out, record)
        return
    try:
        measure_process(args, job, algorithm, framework_version, dataset_sha256, env, startup)
    except UsageError as exc:  # found only once the work started (e.g. a weights file that does not fit)
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)


def measure_process(args: argparse.Namespace, job: Job, algorithm: Algorithm, framework_version: str,
                    dataset_sha256: str, env: dict[str, Any], startup: float | None) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=job.threads):
        load_timer = PhaseTimer()
        measure: Callable[[int, dict[str, int], bool], dict[str, Any]]
        if isinstance(algorithm, Generate):
            generator = algorithm
            prompts, model = load_timer.calls("load", 1, lambda: None,
                                              lambda _: load_model(args.config, job, generator))

            def measure(repetition: int, loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
                return measure_generation(job, generator, prompts, model, args.process, repetition)
        elif isinstance(algorithm, Encode):
            encoder = algorithm
            texts, model = load_timer.calls("load", 1, lambda: None, lambda _: load_encoder(args.config, job, encoder))

            def measure(repetition: int, loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
                return measure_encoding(job, encoder, texts, model, args.process, repetition, loops, calibrate)
        elif isinstance(algorithm, EnvSteps | TrainAgent):
            rollouts = load_timer.calls("load", 1, lambda: None,
                                        lambda _: ds.load_rollouts(job.dataset, Path(job.datasets_dir)))
            environment_protocol = measure_stepping if isinstance(algorithm, EnvSteps) else measure_agent

            def measure(repetition: int, loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
                return environment_protocol(job, algorithm, rollouts, args.process, repetition, loops, calibrate)
        else:
            data = load_timer.calls("load", 1, lambda: None,
                                    lambda _: ds.load_split(job.dataset, Path(job.datasets_dir)))
            shape = (training.shape_of(ds.read_meta(job.dataset, Path(job.datasets_dir)))
                     if isinstance(algorithm, TrainClassifier) else None)
            if args.parity is not None and isinstance(algorithm, TrainClassifier):
                training.parity(job, algorithm, data, shape, args.parity, job.device)
                return
            fold_of = cross_validation_folds(args.config, job, algorithm, len(data.y_train))

            def measure(repetition: int, loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
                return measure_repetition(job, algorithm, data, args.process, repetition, loops, calibrate, shape,
                                          fold_of)
        process_timings = {"startup": startup, "load": load_timer.timings_s["load"]}
        loops: dict[str, int] = {}
        for repetition in range(job.n_records):
            record = records.identity(job, args.process, repetition, framework_version, dataset_sha256)
            calibrate = repetition == 0 and job.warmup > 0  # the first warm-up finds k per phase
            record.update(measure(repetition, loops, calibrate))
            record["process_timings_s"] = process_timings
            record["env"] = env
            records.append_line(args.out, record)


def cross_validation_folds(config: Path, job: Job, algorithm: Algorithm, n_train: int) -> np.ndarray | None:
    """A `cv_folds` job's folds file, read and checked (mlbench.folds), or None for a plain job."""
    if not job.cv_folds:
        return None
    if not isinstance(algorithm, Supervised):
        raise UsageError(f"{config}: cv_folds: {job.algorithm} is not a supervised fit/predict algorithm")
    if not job.folds_file:
        raise UsageError(f"{config}: folds_file: cv_folds is {job.cv_folds} but no folds file is named")
    try:
        return folds.load(job.folds_file, n_train, job.cv_folds)
    except UsageError as exc:
        raise UsageError(f"{config}: folds_file: {exc}") from None


def n_train_of(meta: dict[str, Any]) -> int:
    return int(meta["files"]["y_train.npy"]["shape"][0])


def training_checks(config: Path, job: Job, algorithm: TrainClassifier,
                    need_weights: bool = True) -> TrainClassifier | Unsupported:
    """A training job's own checks (sizes, files) before anything runs; `pretrained` without a file
    is `unsupported`: no pretrained checkpoint for these networks exists offline."""
    meta = ds.read_meta(job.dataset, Path(job.datasets_dir))
    if meta.get("layout") not in ds.TRAINING_LAYOUTS:
        raise UsageError(f"{config}: dataset: {job.dataset!r} is not a dataset of a training task "
                         f"(layout {meta.get('layout', 'tabular')}, not {' or '.join(ds.TRAINING_LAYOUTS)})")
    try:
        training.check_job(job, n_train_of(meta))
    except UsageError as exc:
        raise UsageError(f"{config}: {exc}") from None
    weights = training.init_path(job, job.seed)
    if need_weights and not weights.is_file() and not job.hyperparameters.get("pretrained"):
        raise UsageError(f"{config}: fixtures_dir: {weights} is missing (`mlbench run` writes it before any side "
                         "runs; by hand: run the Python task with --fixtures first)")
    if job.hyperparameters.get("pretrained") and not job.hyperparameters.get("weights_file"):
        return Unsupported("pretrained: true needs weights_file (a safetensors file with PyTorch names): "
                           "no pretrained checkpoint for this network can be had offline")
    return algorithm


def agent_checks(config: Path, job: Job, algorithm: TrainAgent, need_fixtures: bool = True) -> None:
    """An agent job's own checks (mlbench.agents.check_params, the fixtures) before anything runs."""
    check_agent(str(config), job.dataset, job.hyperparameters, Path(job.datasets_dir))
    if not job.fixtures_dir:
        raise UsageError(f"{config}: fixtures_dir: an agent job needs the folder of its shared initial weights "
                         "and random streams")
    missing = [path for path in agents.fixture_files(job, algorithm) if not path.is_file()] if need_fixtures else []
    if missing:
        raise UsageError(f"{config}: fixtures_dir: {missing[0]} is missing (`mlbench run` writes it before any side "
                         "runs; by hand: run the Python task with --fixtures first)")


# The layout, its name in words and the parameter checks of each model protocol's sets.
MODEL_SETS: dict[type, tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], None]]] = {
    Generate: ("prompts", "a language model's prompts set", generation.check_params),
    Encode: ("texts", "an encoder's texts set", encoding.check_params),
}


def model_checks(config: Path, job: Job, protocol: type) -> None:
    """A generation or encoding job's own checks (the protocol's check_params against its set's
    meta.json) before anything runs."""
    layout, what, check_params = MODEL_SETS[protocol]
    try:
        meta = ds.meta_of_layout(job.dataset, Path(job.datasets_dir), layout, what)
    except UsageError as exc:
        raise UsageError(f"{config}: dataset: {exc}") from None
    try:
        check_params(job.hyperparameters, meta)
    except UsageError as exc:
        raise UsageError(f"{config}: hyperparameters: {exc}") from None


def load_encoder(config: Path, job: Job, algorithm: Encode) -> tuple[Texts, Any]:
    """The texts set and its model with the job's head, loaded once per process (a corrupt model
    file: a usage error)."""
    texts = ds.load_texts(job.dataset, Path(job.datasets_dir))
    return texts, checked_load(config, texts, encoding.check_set,
                               lambda: algorithm.load(texts, job.algorithm, job.device), texts.folder)


def checked_load(config: Path, data: Any, check_set: Callable[[Any], None], load: Callable[[], Any],
                 files: Path) -> Any:
    """A model set's own checks, then its model (whatever the framework raises on a model file it
    cannot read: a usage error naming `files`)."""
    try:
        check_set(data)
    except UsageError as exc:
        raise UsageError(f"{config}: {exc}") from None
    try:
        return load()
    except Exception as exc:  # whatever the framework raises on a model file it cannot read
        raise UsageError(f"{config}: {files}: the model cannot be loaded: {one_line(exc)}") from None


def load_model(config: Path, job: Job, algorithm: Generate) -> tuple[Prompts, Any]:
    """The prompts set and its model, loaded once per process (a corrupt model file: a usage error)."""
    prompts = ds.load_prompts(job.dataset, Path(job.datasets_dir))
    return prompts, checked_load(config, prompts, generation.check_set, lambda: algorithm.load(prompts, job.device),
                                 prompts.folder / "model.safetensors")


@dataclass
class Outcome:
    """What a classical protocol returns from one repetition: the outputs the judge reads (saved as
    named artifacts), the work per phase (throughput is derived from it) and the solver's facts."""

    artifacts: dict[str, np.ndarray]
    counts: dict[str, int]
    solver: Solver
    resolved: dict[str, float]
    fold_timings_s: dict[str, list[float]] | None = None  # cross_validated: each fold's per-call seconds


@dataclass
class Phases:
    """Runs each phase as a calibrated sample of k calls (k found in the first warm-up)."""

    timer: PhaseTimer
    loops: dict[str, int]
    calibrate_to_s: float | None

    def run(self, name: str, prepare: Callable[[], Any], work: Callable[[Any], Any]) -> Any:
        result = self.timer.calls(name, self.loops.get(name, 1), prepare, work, self.calibrate_to_s)
        self.loops[name] = self.timer.loops[name]
        return result


def fitted(fit: Callable[[Any], None]) -> Callable[[Any], Any]:
    """The fit phase's work: fit a freshly built model (built untimed) and hand it on."""

    def work(model: Any) -> Any:
        fit(model)
        return model

    return work


def supervised(algorithm: Supervised, build: Callable[[], Any], data: ds.Split, phases: Phases) -> Outcome:
    """The `supervised` protocol: fit a freshly built model per call (built untimed), predict the test
    set with the last one; decision values untimed."""
    model = phases.run("fit", build, fitted(lambda m: m.fit(data.X_train, data.y_train)))
    predictions = phases.run("predict", lambda: model, lambda m: m.predict(data.X_test))
    artifacts = {"predictions": np.asarray(predictions, dtype=np.float64)}
    scores = algorithm.scores(model, data.X_test) if algorithm.scores is not None else None
    if scores is not None:
        artifacts["scores"] = np.asarray(scores, dtype=np.float64).reshape(len(data.X_test), -1)
    probabilities = algorithm.probabilities(model, data.X_test) if algorithm.probabilities is not None else None
    if probabilities is not None:
        artifacts["probabilities"] = np.asarray(probabilities, dtype=np.float64)
    counts = {"fit": len(data.X_train), "predict": len(data.X_test)}
    return Outcome(artifacts, counts, algorithm.solver(model), algorithm.resolved(model))


def cross_validated(algorithm: Supervised, build: Callable[[], Any], data: ds.Split, fold_of: np.ndarray,
                    phases: Phases) -> Outcome:
    """The `cross_validated` protocol (`cv_folds: k`): per fold, fit a freshly built model on the
    other folds' training rows and predict the fold's rows, each a timed phase call as in
    `supervised` (rows selected untimed); decision values and probabilities untimed. The outputs are
    out-of-fold, one row per training row; `timings_s` holds the sum over folds (one k-fold
    cross-validation), `fold_timings_s` each fold's seconds."""
    n = len(data.y_train)
    k = int(fold_of.max()) + 1
    artifacts: dict[str, np.ndarray] = {"predictions": np.empty(n, dtype=np.float64)}
    per_fold: dict[str, list[float]] = {"fit": [], "predict": []}
    faults = {phase: {"minor": 0.0, "major": 0.0} for phase in per_fold}
    iterations: list[int | None] = []
    for fold in range(k):
        held = fold_of == fold
        model, outputs = fit_fold(algorithm, build, data.X_train[~held], data.y_train[~held], data.X_train[held],
                                  phases)
        for name, values in outputs.items():
            if name not in artifacts:
                artifacts[name] = np.empty((n, *values.shape[1:]), dtype=np.float64)
            artifacts[name][held] = values
        for phase, seconds in per_fold.items():
            seconds.append(phases.timer.timings_s[phase])
            for which in ("minor", "major"):
                faults[phase][which] += phases.timer.page_faults[phase][which]
        iterations.append(algorithm.solver(model).n_iter)
    phases.timer.timings_s.update({phase: float(sum(seconds)) for phase, seconds in per_fold.items()})
    phases.timer.page_faults.update(faults)
    last = algorithm.solver(model)
    total = None if any(i is None for i in iterations) else sum(i for i in iterations if i is not None)
    solver = Solver(f"{last.name}, {k}-fold cross-validation", last.stopping_rule, total)
    counts = {"fit": (k - 1) * n, "predict": n}  # every row is fitted k - 1 times and predicted once
    return Outcome(artifacts, counts, solver, algorithm.resolved(model), per_fold)


def fit_fold(algorithm: Supervised, build: Callable[[], Any], X_fit: np.ndarray, y_fit: np.ndarray,
             X_held: np.ndarray, phases: Phases) -> tuple[Any, dict[str, np.ndarray]]:
    """One fold: fit (timed) on the other folds, predict the held-out rows (timed), and the untimed
    extras the judge reads."""
    model = phases.run("fit", build, fitted(lambda m: m.fit(X_fit, y_fit)))
    outputs = {"predictions": np.asarray(phases.run("predict", lambda: model, lambda m: m.predict(X_held)),
                                         dtype=np.float64)}
    scores = algorithm.scores(model, X_held) if algorithm.scores is not None else None
    if scores is not None:
        outputs["scores"] = np.asarray(scores, dtype=np.float64).reshape(len(X_held), -1)
    probabilities = algorithm.probabilities(model, X_held) if algorithm.probabilities is not None else None
    if probabilities is not None:
        outputs["probabilities"] = np.asarray(probabilities, dtype=np.float64)
    return model, outputs


def clustering(algorithm: Clustering, build: Callable[[], Any], data: ds.Split, phases: Phases) -> Outcome:
    """The `clustering` protocol: fit on the training features, their labels (untimed), and `predict`
    on the test features where the algorithm labels new points."""
    model = phases.run("fit", build, fitted(lambda m: m.fit(data.X_train)))
    labels = algorithm.labels(model, data.X_train)  # untimed: what fit found
    counts = {"fit": len(data.X_train)}
    if algorithm.predict is not None:
        predict = algorithm.predict
        phases.run("predict", lambda: model, lambda m: predict(m, data.X_test))
        counts["predict"] = len(data.X_test)
    return Outcome({"predictions": np.asarray(labels, dtype=np.float64)}, counts, algorithm.solver(model),
                   algorithm.resolved(model))


def measure_repetition(job: Job, algorithm: Algorithm, data: ds.Split, process: int, repetition: int,
                       loops: dict[str, int], calibrate: bool,
                       shape: training.NetShape | None = None, fold_of: np.ndarray | None = None) -> dict[str, Any]:
    reset_peak_rss()
    rss_start = rss_mb()
    cpu_start = cpu_time_s()
    timer = PhaseTimer()
    phases = Phases(timer, loops, job.min_sample_s if calibrate else None)
    seed = job.seed + repetition
    if isinstance(algorithm, TrainClassifier):
        assert shape is not None, "a training repetition needs the network's input shape"
        return measure_training(job, algorithm, data, shape, process, repetition, phases, seed, rss_start,
                                cpu_start)

    def build() -> Any:
        return algorithm.build(job.hyperparameters, seed)

    if isinstance(algorithm, Supervised) and fold_of is not None:
        outcome = cross_validated(algorithm, build, data, fold_of, phases)
    elif isinstance(algorithm, Supervised):
        outcome = supervised(algorithm, build, data, phases)
    else:
        outcome = clustering(algorithm, build, data, phases)
    cpu = cpu_time_s() - cpu_start
    record: dict[str, Any] = {
        "timings_s": timer.timings_s,
        "inner_loops": timer.loops,
        "page_faults": timer.page_faults,
        "counts": outcome.counts,
        "throughput": throughput(outcome.counts, timer.timings_s),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, outcome.artifacts),
        "solver": {"name": outcome.solver.name, "stopping_rule": outcome.solver.stopping_rule,
                   "n_iter": outcome.solver.n_iter},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start},
        "status": "ok",
        "error": None,
    }
    if outcome.resolved:
        record["resolved"] = {k: float(v) for k, v in outcome.resolved.items()}
    if outcome.fold_timings_s is not None:
        record["fold_timings_s"] = outcome.fold_timings_s
    return record


def throughput(counts: dict[str, int], timings_s: dict[str, float]) -> dict[str, float]:
    """Samples per second of each phase with a count (Rust: Record::set_counts)."""
    return {f"{phase}_samples_per_s": n / max(timings_s[phase], 1e-12)
            for phase, n in counts.items() if phase in timings_s}


def measure_training(job: Job, algorithm: TrainClassifier, data: ds.Split, shape: training.NetShape, process: int,
                     repetition: int, phases: Phases, seed: int, rss_start: float | None,
                     cpu_start: float) -> dict[str, Any]:
    """The `train_classifier` protocol (mlbench.training) inside the harness's record."""
    outputs, gpu_figures = gpu.sampled(gpu.reader_for(job.device), lambda: training.run_training(
        job, algorithm, data, shape, seed, phases, job.device, warmup=repetition < job.warmup))
    cpu = cpu_time_s() - cpu_start
    artifacts = {"predictions": np.argmax(outputs.logits, axis=1).astype(np.float64),
                 "logits": outputs.logits.astype(np.float32),
                 "loss_curve": np.asarray(outputs.record["series"]["train_loss"], dtype=np.float64)}
    timer = phases.timer
    return outputs.record | {
        "timings_s": timer.timings_s,
        "inner_loops": timer.loops | {"train": 1},
        "page_faults": timer.page_faults,
        "throughput": throughput(outputs.record["counts"], timer.timings_s),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, artifacts),
        "solver": {"name": f"{job.hyperparameters['optimizer']} (mini-batch, shared batch order)",
                   "stopping_rule": f"fixed: {job.hyperparameters['epochs']} epoch(s)",
                   "n_iter": job.hyperparameters["epochs"]},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start,
                      "gpu_peak_mem_mb": outputs.device_peak_mb} | gpu_figures,
        "status": "ok",
        "error": None,
    }


def measure_stepping(job: Job, algorithm: EnvSteps, data: Rollouts, process: int, repetition: int,
                     loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
    """The `env_steps` protocol (mlbench.stepping) inside the harness's record."""
    reset_peak_rss()
    rss_start = rss_mb()
    cpu_start = cpu_time_s()
    phases = Phases(PhaseTimer(), loops, job.min_sample_s if calibrate else None)
    num_envs, steps = job.hyperparameters["num_envs"], job.hyperparameters["steps"]
    trace = phases.run("step", lambda: algorithm.start(data, num_envs), lambda stepper: stepper.run(steps))
    cpu = cpu_time_s() - cpu_start
    counts = {"step": steps * num_envs}
    timer = phases.timer
    return {
        "timings_s": timer.timings_s,
        "inner_loops": timer.loops,
        "page_faults": timer.page_faults,
        "counts": counts,
        "throughput": throughput(counts, timer.timings_s),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, stepping.artifacts(trace, num_envs)),
        "solver": {"name": algorithm.describe(num_envs), "stopping_rule": f"fixed: {steps} steps of each copy",
                   "n_iter": steps},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start},
        "status": "ok",
        "error": None,
    }


def measure_agent(job: Job, algorithm: TrainAgent, data: Rollouts, process: int, repetition: int,
                  loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
    """The `train_agent` protocol (mlbench.agents) inside the harness's record."""
    reset_peak_rss()
    rss_start = rss_mb()
    cpu_start = cpu_time_s()
    phases = Phases(PhaseTimer(), loops, job.min_sample_s if calibrate else None)
    seed = job.seed + repetition
    outcome = agents.run_agent(job, algorithm, data, seed, phases, warmup=repetition < job.warmup)
    cpu = cpu_time_s() - cpu_start
    steps, params = outcome.counts["train"], job.hyperparameters
    return {
        "timings_s": outcome.timings_s,
        "inner_loops": {phase: 1 for phase in outcome.timings_s} | phases.timer.loops,
        "page_faults": phases.timer.page_faults,
        "counts": outcome.counts,
        "throughput": throughput(outcome.counts, outcome.timings_s),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, outcome.artifacts),
        "solver": {"name": algorithm.describe(params), "stopping_rule": f"fixed: {steps} environment steps",
                   "n_iter": outcome.counts["update"]},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start},
        "status": "ok",
        "error": None,
    }


def measure_generation(job: Job, algorithm: Generate, data: Prompts, model: Any, process: int,
                       repetition: int) -> dict[str, Any]:
    """The `generate` protocol (mlbench.generation) inside the harness's record."""
    reset_peak_rss()
    rss_start = rss_mb()
    cpu_start = cpu_time_s()
    params = job.hyperparameters
    choose = algorithm.chooser(params, job.seed + repetition)
    timer = PhaseTimer()
    algorithm.reset_peak_memory(model)

    def work() -> tuple[generation.Generated, np.ndarray]:
        generated = algorithm.generate(model, generation.batch_of(data, params), params["max_new_tokens"], choose)
        scored = timer.calls("score", 1, lambda: model, lambda m: algorithm.score(m, data.heldout))
        return generated, np.asarray(scored, np.float64)

    (generated, nll), gpu_figures = gpu.sampled(gpu.reader_for(job.device), work)
    cpu = cpu_time_s() - cpu_start
    generation.check_outputs(generated, nll, params, len(data.heldout))
    timings = generation.timings(generated) | timer.timings_s
    counts = generation.counts(params, len(data.heldout))
    artifacts = {"tokens": np.asarray(generated.tokens, dtype=np.int64),
                 "decode_steps": np.asarray(generated.decode_s, dtype=np.float64), "nll": nll}
    return {
        "timings_s": timings,
        "inner_loops": {phase: 1 for phase in timings},
        "page_faults": timer.page_faults,
        "counts": counts,
        "throughput": throughput(counts, timings),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, artifacts),
        "solver": {"name": algorithm.describe(params),
                   "stopping_rule": f"fixed: {params['max_new_tokens']} new tokens ({job.algorithm})",
                   "n_iter": params["max_new_tokens"]},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start,
                      "gpu_peak_mem_mb": algorithm.peak_memory_mb(model)} | gpu_figures,
        "status": "ok",
        "error": None,
    }


def measure_encoding(job: Job, algorithm: Encode, data: Texts, model: Any, process: int, repetition: int,
                     loops: dict[str, int], calibrate: bool) -> dict[str, Any]:
    """The `encode` protocol (mlbench.encoding) inside the harness's record."""
    reset_peak_rss()
    rss_start = rss_mb()
    cpu_start = cpu_time_s()
    params = job.hyperparameters
    phases = Phases(PhaseTimer(), loops, job.min_sample_s if calibrate else None)
    sentences = encoding.sentences_of(data, params)
    algorithm.reset_peak_memory(model)

    def work() -> np.ndarray:
        if sentences is not None:
            length = data.ids.shape[1]
            ids, mask = phases.run("tokenize", lambda: None, lambda _: algorithm.tokenize(data, sentences, length))
            encoding.check_tokens(ids, mask, data, params["batch_size"])
        ids, mask = encoding.batch_of(data, params)
        return np.asarray(phases.run("forward", lambda: model, lambda m: algorithm.forward(m, ids, mask)))

    outputs, gpu_figures = gpu.sampled(gpu.reader_for(job.device), work)
    cpu = cpu_time_s() - cpu_start
    encoding.check_outputs(outputs, job.algorithm, data, params)
    timer = phases.timer
    counts = encoding.counts(params, sentences is not None)
    return {
        "timings_s": timer.timings_s,
        "inner_loops": timer.loops,
        "page_faults": timer.page_faults,
        "counts": counts,
        "throughput": throughput(counts, timer.timings_s),
        "metrics": {},
        "artifacts": save_artifacts(job, process, repetition, {"outputs": outputs}),
        "solver": {"name": algorithm.describe(job.algorithm, data), "stopping_rule": "one forward pass",
                   "n_iter": 1},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu, "rss_start_mb": rss_start,
                      "gpu_peak_mem_mb": algorithm.peak_memory_mb(model)} | gpu_figures,
        "status": "ok",
        "error": None,
    }


def save_artifacts(job: Job, process: int, repetition: int, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Each named output as an .npy file beside the job's others (Rust: Record::save_artifact)."""
    folder = Path(job.predictions_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, array in arrays.items():
        path = folder / f"{job.job_id}-{job.language}-p{process}-{repetition}.{name}.npy"
        np.save(path, array)
        paths[name] = str(path)
    return paths
