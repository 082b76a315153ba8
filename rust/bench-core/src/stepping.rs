//! The `env_steps` protocol: an environment stepped through a rollouts set's actions, for every
//! side. Mirrors python/mlbench/stepping.py (read its docstring for the protocol's steps).
//!
//! A task names a `Start`: it builds `num_envs` copies of the set's environment, each reset from its
//! first start (untimed), and the `Stepper` it returns takes `steps` steps in one timed call. Copy i
//! takes the actions of column i and starts its k-th episode from start k of row i. One copy is the
//! plain loop; several reset a finished copy on its next step (gymnasium's `NEXT_STEP` autoreset).
//! The completed episodes' returns and lengths and the copies' last observations are the artifacts
//! the judge compares between sides; the counted work is transitions (`steps x num_envs`).
use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::{read_npy, ReadNpyExt};
use serde::Deserialize;

use crate::config::Job;
use crate::data;
use crate::env;
use crate::error::{BenchError, Result};
use crate::harness::{checked_job, in_job, process_timings, run_main, Args, Phases};
use crate::measure::{cpu_time_s, reset_peak_rss, rss_mb, PhaseTimer};
use crate::record::{Record, Resources, Solver};

/// A rollouts set as the protocol reads it (python/mlbench/rollouts.py writes it).
pub struct Rollouts {
    /// gymnasium's id, e.g. `CartPole-v1`.
    pub environment: String,
    /// steps x n_envs: copy i takes column i.
    pub actions: Array2<i64>,
    /// n_envs x episodes x state_dim: copy i starts its k-th episode from row k.
    pub starts: Option<Array3<f64>>,
    /// n_envs x episodes: reset seeds, for environments whose state cannot be injected.
    pub reset_seeds: Option<Array2<i64>>,
}

impl Rollouts {
    pub fn n_envs(&self) -> usize {
        self.actions.ncols()
    }

    pub fn steps(&self) -> usize {
        self.actions.nrows()
    }
}

/// One copy's episode starts: each `next` gives the state the next episode starts from (start k of
/// the copy's row for its k-th episode; python/mlbench/starts.py `Starts`). Owned, contiguous rows.
pub struct Starts {
    states: Array2<f64>,
    copy: usize,
    episode: usize,
}

impl Starts {
    /// Copy `copy` of a set's starts (copies x episodes x state).
    pub fn new(starts: &Array3<f64>, copy: usize) -> Self {
        Starts {
            states: starts.index_axis(ndarray::Axis(0), copy).as_standard_layout().to_owned(),
            copy,
            episode: 0,
        }
    }

    /// Seed `seed`'s copy of a set whose starts are states (copy seed mod n_envs).
    pub fn of_seed(data: &Rollouts, seed: u64) -> Result<Self> {
        let starts = data.starts.as_ref().ok_or_else(|| {
            BenchError::usage(format!("dataset: {} starts its episodes from reset seeds", data.environment))
        })?;
        Ok(Starts::new(starts, (seed % data.n_envs() as u64) as usize))
    }

    /// The first start, without counting an episode (an environment's sizes, before the clock).
    pub fn first(&self) -> &[f64] {
        self.row(0)
    }

    /// The next episode's start state.
    pub fn next_start(&mut self) -> Result<&[f64]> {
        let k = self.episode;
        self.episode += 1;
        if k >= self.states.nrows() {
            return Err(BenchError::run(format!(
                "copy {} ran out of the rollouts set's {} starts",
                self.copy,
                self.states.nrows()
            )));
        }
        Ok(self.row(k))
    }

    fn row(&self, k: usize) -> &[f64] {
        let width = self.states.ncols();
        &self.states.as_slice().expect("an owned standard-layout array is contiguous")
            [k * width..(k + 1) * width]
    }
}

/// What one timed call leaves: per step and copy, the reward and whether an episode ended there
/// (terminated or truncated), and each copy's observation after the last step.
pub struct Trace {
    pub rewards: Array2<f64>,
    pub ended: Array2<bool>,
    pub final_observations: Array2<f32>,
}

/// The copies, reset from their first starts, ready for one timed call.
pub trait Stepper {
    fn run(&mut self, steps: usize) -> Result<Trace>;
}

/// Builds the copies for one call: `Err(Usage)` for what the set cannot give this framework.
pub type Start = fn(&Rollouts, usize) -> Result<Box<dyn Stepper>>;

/// What a stepping task tells the harness about itself.
pub struct SteppingInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub start: Start,
    /// The solver's name for `num_envs` copies (e.g. "plain loop").
    pub describe: fn(usize) -> String,
    /// The task spec (configs/tasks/<task>.yaml, `include_str!`).
    pub spec: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepParams {
    num_envs: usize,
    steps: usize,
}

#[derive(Debug, Deserialize)]
struct RolloutsMeta {
    #[serde(default)]
    environment: String,
}

/// Entry point of a stepping task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_stepping(info: SteppingInfo) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

fn npy<T: ReadNpyExt>(path: &Path) -> Result<T> {
    read_npy(path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

/// Read a rollouts set (call `data::verify` once per process first).
pub fn load_rollouts(name: &str, datasets_dir: &Path) -> Result<Rollouts> {
    let folder = datasets_dir.join(name);
    let meta: RolloutsMeta =
        data::meta_of_layout(name, datasets_dir, "rollouts", "an environment's rollouts set")?;
    let optional = |file: &str| folder.join(file).is_file().then(|| folder.join(file));
    Ok(Rollouts {
        environment: meta.environment,
        actions: npy(&folder.join("actions.npy"))?,
        starts: optional("starts.npy").map(|p| npy(&p)).transpose()?,
        reset_seeds: optional("reset_seeds.npy").map(|p| npy(&p)).transpose()?,
    })
}

/// Returns and lengths of the completed episodes, copy by copy, each return summed in step order.
/// In a vector environment the step after an episode ended is the copy's reset: in no episode.
pub fn episodes(trace: &Trace, vector: bool) -> (Array1<f64>, Array1<f64>) {
    let (mut returns, mut lengths) = (Vec::new(), Vec::new());
    let (steps, copies) = trace.rewards.dim();
    for copy in 0..copies {
        let (mut total, mut length, mut resetting) = (0.0, 0u64, false);
        for t in 0..steps {
            if resetting {
                resetting = false;
                continue;
            }
            total += trace.rewards[[t, copy]];
            length += 1;
            if trace.ended[[t, copy]] {
                returns.push(total);
                lengths.push(length as f64);
                (total, length, resetting) = (0.0, 0, vector);
            }
        }
    }
    (Array1::from(returns), Array1::from(lengths))
}

/// A job of a protocol that steps an environment (env_steps, train_agent), opened: checked, its
/// rollouts set verified and loaded (timed as `load`), or recorded `unsupported` (then None).
pub(crate) struct EnvironmentJob<P> {
    pub(crate) job: Job,
    pub(crate) params: P,
    pub(crate) data: Rollouts,
    version: &'static str,
    digest: String,
    env: env::Env,
    process_timings: BTreeMap<String, Option<f64>>,
}

pub(crate) fn open_job<P: serde::de::DeserializeOwned>(
    args: &Args,
    frameworks: &'static [(&'static str, &'static str)],
    specs: &[&str],
    startup: Option<f64>,
) -> Result<Option<EnvironmentJob<P>>> {
    let (job, version, spec) = checked_job(args, frameworks, specs)?;
    let in_job = in_job(&args.config);
    let params: P = job.params().map_err(in_job)?;
    let env = env::capture(frameworks);
    let digest = data::verify(&job.dataset, &job.datasets_dir).map_err(in_job)?;
    if let Some(reason) = crate::spec::unsupported_reason(spec, &job)? {
        Record::unsupported(&job, args.process, version, &digest, &env, reason).append_to(&args.out)?;
        return Ok(None);
    }
    let mut load_timer = PhaseTimer::default();
    let data = load_timer
        .calls("load", 1, None, || Ok(()), |_| load_rollouts(&job.dataset, &job.datasets_dir))
        .map_err(in_job)?;
    let process_timings = process_timings(startup, &load_timer);
    Ok(Some(EnvironmentJob { job, params, data, version, digest, env, process_timings }))
}

impl<P> EnvironmentJob<P> {
    /// The loop every repetition shares (warm-ups first): a record with the job's identity, filled
    /// by `measure(record, loops, repetition)`, then appended.
    pub(crate) fn each_repetition(
        &self,
        args: &Args,
        mut measure: impl FnMut(&mut Record, &mut BTreeMap<String, u64>, u32) -> Result<()>,
    ) -> Result<()> {
        let mut loops = BTreeMap::new();
        for repetition in 0..self.job.n_records() {
            let mut record =
                Record::new(&self.job, args.process, repetition, self.version, &self.digest, &self.env);
            measure(&mut record, &mut loops, repetition).map_err(in_job(&args.config))?;
            record.process_timings_s = self.process_timings.clone();
            record.append_to(&args.out)?;
        }
        Ok(())
    }
}

fn run(args: &Args, info: &SteppingInfo, startup: Option<f64>) -> Result<()> {
    let Some(opened) = open_job::<StepParams>(args, info.frameworks, &[info.spec], startup)? else {
        return Ok(());
    };
    let (job, params, data) = (&opened.job, &opened.params, &opened.data);
    let in_job = in_job(&args.config);
    for (key, asked, limit, what) in [
        ("num_envs", params.num_envs, data.n_envs(), "copies"),
        ("steps", params.steps, data.steps(), "steps"),
    ] {
        if asked > limit {
            return Err(in_job(BenchError::usage(format!(
                "hyperparameters: {key}: {asked} is above the {limit} {what} of rollouts set {}",
                job.dataset
            ))));
        }
    }
    (info.start)(data, params.num_envs).map_err(in_job)?; // what the set cannot give, before any work
    opened.each_repetition(args, |record, loops, repetition| {
        measure_repetition(job, info, data, params, record, loops, repetition)
    })
}

fn measure_repetition(
    job: &Job,
    info: &SteppingInfo,
    data: &Rollouts,
    params: &StepParams,
    record: &mut Record,
    loops: &mut BTreeMap<String, u64>,
    repetition: u32,
) -> Result<()> {
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let calibrate = repetition == 0 && job.warmup > 0; // the first warm-up finds k
    let mut phases =
        Phases { timer: PhaseTimer::default(), loops, calibrate_to_s: calibrate.then_some(job.min_sample_s) };
    let trace = phases.run(
        "step",
        || (info.start)(data, params.num_envs),
        |mut stepper| stepper.run(params.steps),
    )?;
    let cpu = cpu_time_s() - cpu_start;
    let (returns, lengths) = episodes(&trace, params.num_envs > 1);
    record.save_artifact(job, "returns", &returns)?;
    record.save_artifact(job, "lengths", &lengths)?;
    record.save_artifact(job, "final_observations", &trace.final_observations)?;
    let timer = phases.timer;
    record.timings_s = timer.timings_s;
    record.inner_loops = timer.loops;
    record.page_faults = timer.page_faults;
    record.set_counts(BTreeMap::from([("step".to_string(), (params.steps * params.num_envs) as u64)]));
    record.solver = Some(Solver {
        name: (info.describe)(params.num_envs),
        stopping_rule: format!("fixed: {} steps of each copy", params.steps),
        n_iter: Some(params.steps as u64),
    });
    record.resources = Resources::on_cpu(cpu, rss_start);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_skip_the_reset_step_of_a_vector() {
        let rewards = Array2::from_shape_vec((5, 1), vec![1.0, 2.0, 9.0, 3.0, 4.0]).unwrap();
        let ended = Array2::from_shape_vec((5, 1), vec![false, true, false, true, false]).unwrap();
        let trace = Trace { rewards, ended, final_observations: Array2::zeros((1, 1)) };
        let (returns, lengths) = episodes(&trace, false);
        assert_eq!(returns.to_vec(), vec![3.0, 12.0]);
        assert_eq!(lengths.to_vec(), vec![2.0, 2.0]);
        let (returns, lengths) = episodes(&trace, true);
        assert_eq!(returns.to_vec(), vec![3.0, 3.0]);
        assert_eq!(lengths.to_vec(), vec![2.0, 1.0]);
    }
}
