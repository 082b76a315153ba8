//! The task side of the contract: `<task> --config JOB.yaml --out RECORDS.jsonl`.
//! Mirrors python/mlbench/harness.py: the same loop, phases and record fields.
//!
//! A task names one `Planner`: it parses a job's hyperparameters once and returns a `Plan`, which
//! builds a fresh model per repetition seed. The plan's variant names the protocol that runs one
//! repetition: `supervised` (fit on the training split, predict the test split) or `clustering`
//! (fit on the training features, label them, and predict the test features where the algorithm
//! can); training tasks use the `train_classifier` protocol of `training`. A protocol returns the
//! artifacts the judge reads, the work per phase (throughput is derived from it) and the solver's
//! facts; the harness owns the CLI, the checks, the loop, the clock and the record.
//!
//! One process runs `warmup + repetitions` repetitions of one job over data it loads once; the
//! runner starts several such processes per job (`--process K`) and interleaves them with the
//! other side's. A phase shorter than the job's `min_sample_s` is timed as a sample of k calls, k
//! found by doubling in the first warm-up; records keep the per-call time and k. A job with
//! `cv_folds: k` runs a supervised plan under the `cross_validated` protocol over the runner's
//! folds file instead.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use ndarray::{Array1, Array2, Axis};

use crate::config::Job;
use crate::data::{self, Split};
use crate::env::{self, Env};
use crate::error::{BenchError, Result};
use crate::measure::{cpu_time_s, die_with_runner, reset_peak_rss, rss_mb, startup_s, Faults, PhaseTimer};
use crate::record::{Record, Resources, Solver};

#[derive(Debug, Parser)]
#[command(about = "Run one mlbench job and append its records.")]
pub struct Args {
    /// Job file (YAML) written by `mlbench run`.
    #[arg(long)]
    pub config: PathBuf,
    /// JSON Lines file to append records to.
    #[arg(long)]
    pub out: PathBuf,
    /// Index of this process among the job's replicated processes.
    #[arg(long, default_value_t = 0)]
    pub process: u32,
    /// Training tasks, for the parity tests: write init/step/epoch outputs into DIR and exit.
    #[arg(long)]
    pub parity: Option<PathBuf>,
}

/// A fit/predict model; the harness times `fit` and `predict`.
pub trait Supervised {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()>;
    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>>;
    fn solver(&self) -> Solver;
    /// One-vs-one decision values (n_samples x pairs, LIBSVM's order and sign), computed untimed.
    fn scores(&self, _x: &Array2<f64>) -> Result<Option<Array2<f64>>> {
        Ok(None)
    }
    /// Class probabilities (n_samples x classes, sorted labels), where the model was fitted to
    /// give them (Platt scaling); computed untimed.
    fn probabilities(&self, _x: &Array2<f64>) -> Result<Option<Array2<f64>>> {
        Ok(None)
    }
    /// Values derived from the data and used by the fit (e.g. gamma for `scale`).
    fn resolved(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }
}

/// A clustering model: `fit` on the training features (timed), `labels` of those features
/// (untimed; noise is -1), and `predict` on the test features (timed) where the algorithm can.
pub trait Clusterer {
    fn fit(&mut self, x: &Array2<f64>) -> Result<()>;
    fn labels(&self, x: &Array2<f64>) -> Result<Array1<f64>>;
    /// Whether the algorithm labels new points (`predict`, timed as the `predict` phase).
    fn can_predict(&self) -> bool {
        false
    }
    fn predict(&self, _x: &Array2<f64>) -> Result<Array1<f64>> {
        Err(BenchError::run("this clustering algorithm does not label new points"))
    }
    fn solver(&self) -> Solver;
    fn resolved(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }
}

/// A job's plan: its hyperparameters parsed and checked once per job, then a fresh model per
/// repetition seed. The variant is the protocol that runs it (`supervised` or `clustering`).
pub enum Plan {
    Supervised(Box<dyn Fn(u64) -> Box<dyn Supervised>>),
    Clustering(Box<dyn Fn(u64) -> Box<dyn Clusterer>>),
}

impl Plan {
    pub fn supervised<M: Supervised + 'static>(build: impl Fn(u64) -> M + 'static) -> Self {
        Plan::Supervised(Box::new(move |seed| Box::new(build(seed))))
    }

    pub fn clustering<M: Clusterer + 'static>(build: impl Fn(u64) -> M + 'static) -> Self {
        Plan::Clustering(Box::new(move |seed| Box::new(build(seed))))
    }
}

/// Plans a job once: `Err(Usage)` for unknown algorithms or bad hyperparameters, `Err(Unsupported)`
/// for what the job's framework lacks, both before any work.
pub type Planner = fn(&Job) -> Result<Plan>;

/// What a task tells the harness about itself.
pub struct TaskInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub plan: Planner,
    /// The task spec (configs/tasks/<task>.yaml, `include_str!`): hyperparameters are checked
    /// against it before any model is built, as Python checks them.
    pub spec: &'static str,
}

/// Entry point of a task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_task(info: TaskInfo) -> ! {
    run_main(|args, startup| run_task(args, &info, startup))
}

/// What every task program's `main` does: start-up clock, the runner guard, arguments, exit code.
pub(crate) fn run_main(run: impl FnOnce(&Args, Option<f64>) -> Result<()>) -> ! {
    let startup = startup_s(); // first thing: spawn to here is this process's start-up
    die_with_runner();
    let args = Args::parse();
    let code = match run(&args, startup) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {}", crate::error::one_line(&err.to_string()));
            err.exit_code()
        }
    };
    std::process::exit(code)
}

/// Prefixes a usage error with the job file, so the one line names file and field.
pub(crate) fn in_job(config: &Path) -> impl Fn(BenchError) -> BenchError + Copy + '_ {
    move |err| match err {
        BenchError::Usage(message) => BenchError::usage(format!("{}: {message}", config.display())),
        other => other,
    }
}

/// Loads a job as every task program does: the job schema, this binary's version of the job's
/// framework, the hyperparameters against the compiled-in task spec.
/// The job file, loaded once and checked against its task's spec among `specs` (a program may
/// serve several tasks); the framework's version and that spec.
pub(crate) fn checked_job<'s>(
    args: &Args,
    frameworks: &[(&'static str, &'static str)],
    specs: &[&'s str],
) -> Result<(Job, &'static str, &'s str)> {
    let job = Job::load(&args.config)?;
    let spec = crate::spec::spec_for(specs, &job);
    let in_job = in_job(&args.config);
    let version =
        frameworks.iter().find(|(name, _)| *name == job.framework).map(|(_, version)| *version).ok_or_else(
            || in_job(BenchError::usage(format!("framework: {:?} is not in this binary", job.framework))),
        )?;
    crate::spec::check_task(spec, &job).map_err(in_job)?;
    crate::spec::check_hyperparameters(spec, &job).map_err(in_job)?;
    Ok((job, version, spec))
}

/// The once-per-process timings every record carries: start-up and the data load.
pub(crate) fn process_timings(
    startup: Option<f64>,
    load_timer: &PhaseTimer,
) -> BTreeMap<String, Option<f64>> {
    BTreeMap::from([
        ("startup".to_string(), startup),
        ("load".to_string(), load_timer.timings_s.get("load").copied()),
    ])
}

pub fn run_task(args: &Args, info: &TaskInfo, startup: Option<f64>) -> Result<()> {
    let (job, version, _) = checked_job(args, info.frameworks, &[info.spec])?;
    let in_job = in_job(&args.config);
    let env = env::capture(info.frameworks);
    let digest = data::verify(&job.dataset, &job.datasets_dir).map_err(in_job)?;
    let process = args.process;
    if let Some(reason) = crate::spec::unsupported_reason(info.spec, &job)? {
        return Record::unsupported(&job, process, version, &digest, &env, reason).append_to(&args.out);
    }
    let plan = match (info.plan)(&job) {
        Err(BenchError::Unsupported(reason)) => {
            return Record::unsupported(&job, process, version, &digest, &env, reason).append_to(&args.out)
        }
        Err(err) => return Err(in_job(err)), // unknown algorithm or bad parameters: before any work
        Ok(plan) => plan,
    };
    let mut load_timer = PhaseTimer::default();
    let split = load_timer.calls(
        "load",
        1,
        None,
        || Ok(()),
        |_| data::load_split(&job.dataset, &job.datasets_dir),
    )?;
    let process_timings = process_timings(startup, &load_timer);
    let fold_of = cross_validation_folds(&job, &plan, &split).map_err(in_job)?;
    let context = ProcessContext {
        job: &job,
        plan: &plan,
        split: &split,
        fold_of: fold_of.as_deref(),
        process,
        version,
        digest: &digest,
        env: &env,
    };
    let mut loops = BTreeMap::new();
    for repetition in 0..job.n_records() {
        let calibrate = repetition == 0 && job.warmup > 0; // the first warm-up finds k per phase
        let mut record = measure_repetition(&context, repetition, &mut loops, calibrate)?;
        record.process_timings_s = process_timings.clone();
        record.append_to(&args.out)?;
    }
    Ok(())
}

/// A `cv_folds` job's folds file, read and checked (`data::load_folds`), or None for a plain job.
fn cross_validation_folds(job: &Job, plan: &Plan, split: &Split) -> Result<Option<Vec<usize>>> {
    if job.cv_folds == 0 {
        return Ok(None);
    }
    if !matches!(plan, Plan::Supervised(_)) {
        return Err(BenchError::usage(format!(
            "cv_folds: {} is not a supervised fit/predict algorithm",
            job.algorithm
        )));
    }
    if job.folds_file.as_os_str().is_empty() {
        return Err(BenchError::usage(format!(
            "folds_file: cv_folds is {} but no folds file is named",
            job.cv_folds
        )));
    }
    data::load_folds(&job.folds_file, split.y_train.len(), job.cv_folds)
        .map(Some)
        .map_err(|err| BenchError::usage(format!("folds_file: {err}")))
}

/// What every repetition of one task process shares.
struct ProcessContext<'a> {
    job: &'a Job,
    plan: &'a Plan,
    split: &'a Split,
    /// `cv_folds` jobs: the fold of each training row.
    fold_of: Option<&'a [usize]>,
    process: u32,
    version: &'a str,
    digest: &'a str,
    env: &'a Env,
}

/// Runs each phase as a calibrated sample of k calls (k found in the first warm-up).
pub(crate) struct Phases<'a> {
    pub(crate) timer: PhaseTimer,
    pub(crate) loops: &'a mut BTreeMap<String, u64>,
    pub(crate) calibrate_to_s: Option<f64>,
}

impl Phases<'_> {
    pub(crate) fn run<S, T>(
        &mut self,
        name: &str,
        prepare: impl FnMut() -> Result<S>,
        work: impl FnMut(S) -> Result<T>,
    ) -> Result<T> {
        let k = self.loops.get(name).copied().unwrap_or(1);
        let out = self.timer.calls(name, k, self.calibrate_to_s, prepare, work)?;
        self.loops.insert(name.to_string(), self.timer.loops[name]);
        Ok(out)
    }
}

fn measure_repetition(
    context: &ProcessContext,
    repetition: u32,
    loops: &mut BTreeMap<String, u64>,
    calibrate: bool,
) -> Result<Record> {
    let ProcessContext { job, plan, split, fold_of, process, version, digest, env } = *context;
    let mut record = Record::new(job, process, repetition, version, digest, env);
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let seed = record.seed;
    let mut phases =
        Phases { timer: PhaseTimer::default(), loops, calibrate_to_s: calibrate.then_some(job.min_sample_s) };
    let outcome = match (plan, fold_of) {
        (Plan::Supervised(build), Some(fold_of)) => {
            cross_validated(|| build(seed), split, fold_of, &mut phases)?
        }
        (Plan::Supervised(build), None) => supervised(|| build(seed), split, &mut phases)?,
        (Plan::Clustering(build), _) => clustering(|| build(seed), split, &mut phases)?,
    };
    let cpu = cpu_time_s() - cpu_start;
    record.save_artifact(job, "predictions", &outcome.predictions)?;
    if let Some(scores) = &outcome.scores {
        record.save_artifact(job, "scores", scores)?;
    }
    if let Some(probabilities) = &outcome.probabilities {
        record.save_artifact(job, "probabilities", probabilities)?;
    }
    let timer = phases.timer;
    record.timings_s = timer.timings_s;
    record.inner_loops = timer.loops;
    record.page_faults = timer.page_faults;
    record.set_counts(outcome.counts);
    record.solver = Some(outcome.solver);
    record.resolved = outcome.resolved;
    record.fold_timings_s = outcome.fold_timings_s;
    record.resources = Resources::on_cpu(cpu, rss_start);
    Ok(record)
}

/// What a classical protocol returns from one repetition: the outputs the judge reads, the work per
/// phase, and the solver's account of itself.
struct Outcome {
    predictions: Array1<f64>,
    scores: Option<Array2<f64>>,
    probabilities: Option<Array2<f64>>,
    counts: BTreeMap<String, u64>,
    solver: Solver,
    resolved: BTreeMap<String, f64>,
    /// `cross_validated`: each fold's seconds per call of each phase.
    fold_timings_s: BTreeMap<String, Vec<f64>>,
}

/// The `supervised` protocol: fit a freshly built model per call (built untimed), then predict the
/// test set with the last one; decision values untimed.
fn supervised(
    build: impl Fn() -> Box<dyn Supervised>,
    split: &Split,
    phases: &mut Phases,
) -> Result<Outcome> {
    let model = phases.run(
        "fit",
        || Ok(build()),
        |mut model| {
            model.fit(&split.x_train, &split.y_train)?;
            Ok(model)
        },
    )?;
    let predictions = phases.run("predict", || Ok(()), |_| model.predict(&split.x_test))?;
    Ok(Outcome {
        predictions,
        scores: model.scores(&split.x_test)?,
        probabilities: model.probabilities(&split.x_test)?,
        counts: counts(split, true),
        solver: model.solver(),
        resolved: model.resolved(),
        fold_timings_s: BTreeMap::new(),
    })
}

/// The `cross_validated` protocol (`cv_folds: k`): per fold, fit a freshly built model on the
/// other folds' training rows and predict the fold's rows, each a timed phase call as in
/// `supervised` (rows selected untimed); decision values and probabilities untimed. The outputs
/// are out-of-fold, one row per training row; `timings_s` holds the sum over folds (one k-fold
/// cross-validation), `fold_timings_s` each fold's seconds.
fn cross_validated(
    build: impl Fn() -> Box<dyn Supervised>,
    split: &Split,
    fold_of: &[usize],
    phases: &mut Phases,
) -> Result<Outcome> {
    let n = split.y_train.len();
    let k = fold_of.iter().max().map_or(0, |highest| highest + 1);
    let mut predictions = Array1::<f64>::zeros(n);
    let (mut scores, mut probabilities) = (None, None);
    let mut fold_timings_s: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut faults: BTreeMap<String, Faults> = BTreeMap::new();
    let mut iterations = Some(0u64);
    let mut last = None;
    for fold in 0..k {
        let (held, kept): (Vec<usize>, Vec<usize>) = (0..n).partition(|&row| fold_of[row] == fold);
        let x_fit = split.x_train.select(Axis(0), &kept);
        let y_fit = split.y_train.select(Axis(0), &kept);
        let x_held = split.x_train.select(Axis(0), &held);
        let model = phases.run(
            "fit",
            || Ok(build()),
            |mut model| {
                model.fit(&x_fit, &y_fit)?;
                Ok(model)
            },
        )?;
        let fold_predictions = phases.run("predict", || Ok(()), |_| model.predict(&x_held))?;
        for (&row, &value) in held.iter().zip(fold_predictions.iter()) {
            predictions[row] = value;
        }
        scatter_rows(&mut scores, model.scores(&x_held)?, &held, n);
        scatter_rows(&mut probabilities, model.probabilities(&x_held)?, &held, n);
        for phase in ["fit", "predict"] {
            fold_timings_s.entry(phase.to_string()).or_default().push(phases.timer.timings_s[phase]);
            let total = faults.entry(phase.to_string()).or_insert(Faults { minor: 0.0, major: 0.0 });
            total.minor += phases.timer.page_faults[phase].minor;
            total.major += phases.timer.page_faults[phase].major;
        }
        iterations = iterations.zip(model.solver().n_iter).map(|(sum, n_iter)| sum + n_iter);
        last = Some(model);
    }
    let model = last.ok_or_else(|| BenchError::run("cross-validation over no folds"))?;
    for (phase, seconds) in &fold_timings_s {
        phases.timer.timings_s.insert(phase.clone(), seconds.iter().sum());
    }
    phases.timer.page_faults.extend(faults);
    let solver = model.solver();
    // every row is fitted k - 1 times and predicted once
    let counts =
        BTreeMap::from([("fit".to_string(), ((k - 1) * n) as u64), ("predict".to_string(), n as u64)]);
    Ok(Outcome {
        predictions,
        scores,
        probabilities,
        counts,
        solver: Solver {
            name: format!("{}, {k}-fold cross-validation", solver.name),
            stopping_rule: solver.stopping_rule,
            n_iter: iterations,
        },
        resolved: model.resolved(),
        fold_timings_s,
    })
}

/// Writes one fold's rows of an optional output into the out-of-fold array (n rows, allocated on
/// the first fold that has the output).
fn scatter_rows(into: &mut Option<Array2<f64>>, fold: Option<Array2<f64>>, rows: &[usize], n: usize) {
    let Some(fold) = fold else { return };
    let all = into.get_or_insert_with(|| Array2::zeros((n, fold.ncols())));
    for (&row, values) in rows.iter().zip(fold.rows()) {
        all.row_mut(row).assign(&values);
    }
}

/// The `clustering` protocol: fit on the training features, their labels (untimed), and `predict`
/// on the test features where the algorithm labels new points.
fn clustering(build: impl Fn() -> Box<dyn Clusterer>, split: &Split, phases: &mut Phases) -> Result<Outcome> {
    let model = phases.run(
        "fit",
        || Ok(build()),
        |mut model| {
            model.fit(&split.x_train)?;
            Ok(model)
        },
    )?;
    let labels = model.labels(&split.x_train)?; // untimed: what fit found
    if model.can_predict() {
        phases.run("predict", || Ok(()), |_| model.predict(&split.x_test))?;
    }
    Ok(Outcome {
        predictions: labels,
        scores: None,
        probabilities: None,
        counts: counts(split, model.can_predict()),
        solver: model.solver(),
        resolved: model.resolved(),
        fold_timings_s: BTreeMap::new(),
    })
}

/// Samples per phase: the training rows for `fit`, the test rows for `predict`.
fn counts(split: &Split, predicts: bool) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::from([("fit".to_string(), split.x_train.nrows() as u64)]);
    if predicts {
        counts.insert("predict".to_string(), split.x_test.nrows() as u64);
    }
    counts
}
