//! The `train_agent` protocol: an off-policy agent trained on an environment with epsilon-greedy
//! acting and a replay buffer, for every side. Mirrors python/mlbench/agents.py (read its docstring
//! for the protocol's steps, the fixtures and the artifacts).
//!
//! A task names an `AgentInfo`: `build` makes its framework's agent from the shared initial weights;
//! the agent answers `greedy`, `update` and `sync_target`. `make_env` gives the environment (the
//! step-exact ports of rust/rl-envs). Everything else is here, in the same order as Python's: the
//! exploration draws, random actions and replay rows come from the files the Python task wrote.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, ReadNpyExt};
use serde::Deserialize;

use crate::config::Job;
use crate::error::{BenchError, Result};
use crate::exploration::{linear_epsilon, MultiplicativeEpsilon};
use crate::harness::{in_job, run_main, Args, Phases};
use crate::measure::{cpu_time_s, peak_rss_mb, reset_peak_rss, rss_mb, PhaseTimer};
use crate::nstep::{NStep, Transition};
use crate::priorities::{beta, Priorities};
use crate::record::{Record, Resources, Solver};
use crate::stepping::{open_job, Rollouts, Starts};

/// A warm-up repetition stops after this many updates.
pub const WARMUP_UPDATES: usize = 50;

/// An environment with discrete actions whose episodes start from injected states.
pub trait Environment {
    /// Start an episode from `state`; the first observation.
    fn reset_to(&mut self, state: &[f64]) -> Vec<f32>;
    /// One step: (observation, reward, terminated, truncated), as gymnasium's `step`.
    fn step(&mut self, action: usize) -> (Vec<f32>, f64, bool, bool);
    fn n_actions(&self) -> usize;
}

/// Transitions gathered from the replay buffer, row-major (python/mlbench/agents.py `Batch`).
pub struct Batch {
    pub size: usize,
    pub observations: usize,
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    pub rewards: Vec<f32>,
    pub next_obs: Vec<f32>,
    /// 1 where the transition terminated its episode (not truncated).
    pub dones: Vec<f32>,
    /// gamma^m of a transition of m steps (nstep.rs).
    pub discounts: Vec<f32>,
    /// Importance-sampling weights (prioritized replay); empty otherwise.
    pub weights: Vec<f32>,
}

/// A framework's agent.
pub trait Agent {
    /// The action of largest value for one observation (the first on a tie, as argmax).
    fn greedy(&mut self, observation: &[f32]) -> Result<usize>;
    /// One learner step on a batch: the loss, and for a batch with weights the rows' absolute TD
    /// errors (else empty).
    fn update(&mut self, batch: &Batch) -> Result<(f64, Vec<f32>)>;
    fn sync_target(&mut self) -> Result<()>;
    /// A row of the noise stream for the network's noisy layers (the `noisy` loop: Rainbow).
    fn reset_noise(&mut self, _noise: &[f32]) -> Result<()> {
        Err(BenchError::run("this agent has no noisy layers"))
    }
}

/// The job's hyperparameters (configs/tasks/dqn.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentParams {
    pub total_timesteps: usize,
    pub learning_rate: f64,
    pub buffer_size: usize,
    pub batch_size: usize,
    pub gamma: f64,
    pub target_update_freq: usize,
    pub learning_starts: usize,
    pub train_freq: usize,
    pub exploration: String,
    pub epsilon_start: f64,
    pub epsilon_end: f64,
    pub epsilon_decay: f64,
    pub decay_every: String,
    pub exploration_fraction: f64,
    pub max_grad_norm: f64,
    pub hidden_size: i64,
    pub hidden_layers: usize,
    /// Prioritized replay's settings (`prioritized_dqn` only; priorities.rs).
    #[serde(default)]
    pub alpha: Option<f64>,
    #[serde(default)]
    pub beta_start: Option<f64>,
    #[serde(default)]
    pub priority_eps: Option<f64>,
    /// Rainbow's settings (`rainbow_dqn` only; the network's are the task's).
    #[serde(default)]
    pub n_step: Option<usize>,
    #[serde(default)]
    pub atoms: Option<usize>,
    #[serde(default)]
    pub v_min: Option<f64>,
    #[serde(default)]
    pub v_max: Option<f64>,
    #[serde(default)]
    pub noisy_std: Option<f64>,
}

impl AgentParams {
    pub fn hidden(&self) -> Vec<i64> {
        vec![self.hidden_size; self.hidden_layers]
    }
}

/// Builds a framework's agent: (job, parameters, observations, actions, initial weights).
pub type Build = fn(&Job, &AgentParams, usize, usize, &Path) -> Result<Box<dyn Agent>>;

/// What an agent task tells the harness about itself.
pub struct AgentInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub build: Build,
    /// The environment of a gymnasium id, or None where this binary has no port of it.
    pub make_env: fn(&str) -> Option<Box<dyn Environment>>,
    /// The solver's name for a job.
    pub describe: fn(&Job) -> String,
    /// The specs of the tasks this program serves (configs/tasks/<task>.yaml, `include_str!`): a
    /// job is checked against its task's.
    pub specs: &'static [&'static str],
}

/// Entry point of an agent task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_agent(info: AgentInfo) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

pub fn fixture_path(job: &Job, name: &str, seed: u64) -> PathBuf {
    let suffix = if name == "init" { "safetensors" } else { "npy" };
    job.fixtures_dir.join(format!("{name}-{seed}.{suffix}"))
}

/// The steps n (1-based) after which an update runs: n > learning_starts, n % train_freq == 0.
pub fn update_steps(params: &AgentParams, steps: usize) -> Vec<usize> {
    let (freq, starts) = (params.train_freq, params.learning_starts);
    ((starts / freq + 1) * freq..=steps).step_by(freq).collect()
}

/// What the parameter schema cannot see (python/mlbench/agents.py `check_params`).
fn check_params(params: &AgentParams, job: &Job, data: &Rollouts) -> Result<()> {
    if params.batch_size > params.buffer_size {
        return Err(BenchError::usage(format!(
            "hyperparameters.batch_size: {} is above buffer_size {}",
            params.batch_size, params.buffer_size
        )));
    }
    let n_step = params.n_step.unwrap_or(1);
    if n_step > 1 && params.learning_starts < n_step - 1 {
        return Err(BenchError::usage(format!(
            "hyperparameters.learning_starts: {} is below n_step - 1 ({}): the first update would find no \
             stored transition",
            params.learning_starts,
            n_step - 1
        )));
    }
    if let (Some(v_min), Some(v_max)) = (params.v_min, params.v_max) {
        if v_min >= v_max {
            return Err(BenchError::usage(format!(
                "hyperparameters.v_min: {v_min:?} is not below v_max {v_max:?}"
            )));
        }
    }
    if params.epsilon_end > params.epsilon_start {
        return Err(BenchError::usage(format!(
            "hyperparameters.epsilon_end: {} is above epsilon_start {}",
            params.epsilon_end, params.epsilon_start
        )));
    }
    let names: Vec<&str> = ["init"].into_iter().chain(Loop::of(params).streams().iter().copied()).collect();
    check_fixtures(job, data, params.total_timesteps, &names)
}

/// What both loops check: the set's starts suffice for the run, and every fixture is there.
pub(crate) fn check_fixtures(
    job: &Job,
    data: &Rollouts,
    total_timesteps: usize,
    names: &[&str],
) -> Result<()> {
    if total_timesteps > data.steps() {
        return Err(BenchError::usage(format!(
            "hyperparameters.total_timesteps: {} is above the {} steps whose episode starts rollouts set {} holds",
            total_timesteps,
            data.steps(),
            job.dataset
        )));
    }
    if job.fixtures_dir.as_os_str().is_empty() {
        return Err(BenchError::usage(
            "fixtures_dir: an agent job needs the folder of its shared initial weights and random streams",
        ));
    }
    for repetition in 0..job.n_records() {
        for &name in names {
            let path = fixture_path(job, name, job.seed + repetition as u64);
            if !path.is_file() {
                return Err(BenchError::usage(format!(
                    "fixtures_dir: {} is missing (`mlbench run` writes it before any side runs; by hand: run \
                     the Python task with --fixtures first)",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn npy<T: ReadNpyExt>(path: &Path) -> Result<T> {
    read_npy(path).map_err(|e| {
        BenchError::usage(format!(
            "fixtures_dir: {}: cannot read .npy ({e}); `mlbench run` writes it before any side runs",
            path.display()
        ))
    })
}

/// The off-policy loops (python/mlbench/agents.py `STREAMS`): `Replay` samples each update's rows
/// uniformly from the `batches` stream, `Prioritized` by priority from the `strata` stream, `Noisy`
/// as `Prioritized` and also feeds a network's noisy layers from the `noise` stream (Rainbow). A
/// job's algorithm settings say which: Rainbow's `atoms`, prioritized replay's `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    Replay,
    Prioritized,
    Noisy,
}

impl Loop {
    fn of(params: &AgentParams) -> Self {
        match (params.atoms, params.alpha) {
            (Some(_), _) => Loop::Noisy,
            (None, Some(_)) => Loop::Prioritized,
            (None, None) => Loop::Replay,
        }
    }

    /// The random streams the loop reads, in the order the Python task writes them.
    fn streams(self) -> &'static [&'static str] {
        match self {
            Loop::Replay => &["explore", "random_actions", "batches"],
            Loop::Prioritized => &["explore", "random_actions", "strata"],
            Loop::Noisy => &["explore", "random_actions", "strata", "noise"],
        }
    }
}

/// A seed's random streams, as the Python task wrote them.
struct Streams {
    explore: Array1<f64>,
    random_actions: Array1<i64>,
    /// The replay rows of each update (`batches`), or the draws of each update's strata (`strata`).
    rows: Rows,
    /// The noise before the first step and before each update (`noise`; the noisy loop only).
    noise: Option<Array2<f32>>,
}

enum Rows {
    Batches(Array2<i32>),
    Strata(Array2<f64>),
}

impl Streams {
    fn load(job: &Job, seed: u64, kind: Loop) -> Result<Self> {
        let load = |name: &str| fixture_path(job, name, seed);
        Ok(Streams {
            explore: npy(&load("explore"))?,
            random_actions: npy(&load("random_actions"))?,
            rows: match kind {
                Loop::Replay => Rows::Batches(npy(&load("batches"))?),
                Loop::Prioritized | Loop::Noisy => Rows::Strata(npy(&load("strata"))?),
            },
            noise: if kind == Loop::Noisy { Some(npy(&load("noise"))?) } else { None },
        })
    }
}

/// How each update's rows are chosen: the next line of `batches`, or prioritized replay (its
/// priorities, the strata's next line and beta's start).
enum Sampler<'a> {
    Uniform(&'a Array2<i32>),
    Prioritized { strata: &'a Array2<f64>, priorities: Priorities, beta_start: f64 },
}

impl<'a> Sampler<'a> {
    fn new(rows: &'a Rows, params: &AgentParams, size: usize) -> Result<Self> {
        let missing =
            |name: &str| BenchError::usage(format!("hyperparameters.{name}: prioritized replay needs it"));
        Ok(match rows {
            Rows::Batches(batches) => Sampler::Uniform(batches),
            Rows::Strata(strata) => Sampler::Prioritized {
                strata,
                priorities: Priorities::new(
                    size,
                    params.alpha.ok_or_else(|| missing("alpha"))?,
                    params.priority_eps.ok_or_else(|| missing("priority_eps"))?,
                ),
                beta_start: params.beta_start.ok_or_else(|| missing("beta_start"))?,
            },
        })
    }
}

/// The replay buffer: a ring of `size` rows, preallocated (rows = min(buffer_size, steps)).
struct Replay {
    observations: usize,
    obs: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    next_obs: Vec<f32>,
    dones: Vec<f32>,
    discounts: Vec<f32>,
}

impl Replay {
    fn new(size: usize, observations: usize) -> Self {
        Replay {
            observations,
            obs: vec![0.0; size * observations],
            actions: vec![0; size],
            rewards: vec![0.0; size],
            next_obs: vec![0.0; size * observations],
            dones: vec![0.0; size],
            discounts: vec![0.0; size],
        }
    }

    fn store(&mut self, row: usize, transition: &Transition) {
        let d = self.observations;
        self.obs[row * d..(row + 1) * d].copy_from_slice(&transition.obs);
        self.actions[row] = transition.action as i64;
        self.rewards[row] = transition.reward as f32;
        self.next_obs[row * d..(row + 1) * d].copy_from_slice(&transition.next_obs);
        self.dones[row] = if transition.terminated { 1.0 } else { 0.0 };
        self.discounts[row] = transition.discount as f32;
    }

    fn gather(&self, rows: impl ExactSizeIterator<Item = usize>, weights: Vec<f32>) -> Batch {
        let d = self.observations;
        let mut batch = Batch {
            size: rows.len(),
            observations: d,
            obs: Vec::with_capacity(rows.len() * d),
            actions: Vec::with_capacity(rows.len()),
            rewards: Vec::with_capacity(rows.len()),
            next_obs: Vec::with_capacity(rows.len() * d),
            dones: Vec::with_capacity(rows.len()),
            discounts: Vec::with_capacity(rows.len()),
            weights,
        };
        for row in rows {
            batch.obs.extend_from_slice(&self.obs[row * d..(row + 1) * d]);
            batch.actions.push(self.actions[row]);
            batch.rewards.push(self.rewards[row]);
            batch.next_obs.extend_from_slice(&self.next_obs[row * d..(row + 1) * d]);
            batch.dones.push(self.dones[row]);
            batch.discounts.push(self.discounts[row]);
        }
        batch
    }
}

/// What one repetition leaves: per-phase seconds, counts and the judged outputs.
pub struct AgentRun {
    pub(crate) timings_s: BTreeMap<String, f64>,
    pub(crate) counts: BTreeMap<String, u64>,
    pub(crate) returns: Vec<f64>,
    pub(crate) lengths: Vec<f64>,
    pub(crate) ends: Vec<f64>,
    pub(crate) losses: Vec<f64>,
    pub(crate) actions: Vec<i64>,
}

/// What every loop of the protocol notes as it runs (python/mlbench/agents.py `EpisodeLog`): the
/// action of each step, the completed episodes' returns, lengths and end steps, and the seconds of
/// the act, env and update phases, read at the same four points of every step.
pub(crate) struct EpisodeLog {
    taken: Vec<i64>,
    returns: Vec<f64>,
    lengths: Vec<f64>,
    ends: Vec<f64>,
    episode_return: f64,
    episode_length: u64,
    act_s: f64,
    env_s: f64,
    update_s: f64,
}

impl EpisodeLog {
    pub(crate) fn new(steps: usize) -> Self {
        EpisodeLog {
            taken: vec![0; steps],
            returns: Vec::new(),
            lengths: Vec::new(),
            ends: Vec::new(),
            episode_return: 0.0,
            episode_length: 0,
            act_s: 0.0,
            env_s: 0.0,
            update_s: 0.0,
        }
    }

    /// Step t took `action` and earned `reward`; `ended`: its episode terminated or was truncated.
    pub(crate) fn step(&mut self, t: usize, action: usize, reward: f64, ended: bool) {
        self.taken[t] = action as i64;
        self.episode_return += reward;
        self.episode_length += 1;
        if ended {
            self.returns.push(std::mem::take(&mut self.episode_return));
            self.lengths.push(std::mem::take(&mut self.episode_length) as f64);
            self.ends.push((t + 1) as f64);
        }
    }

    /// One step's clock reads: act from t0 to t1, env to t2, update to t3.
    pub(crate) fn clocks(&mut self, t0: Instant, t1: Instant, t2: Instant, t3: Instant) {
        self.act_s += (t1 - t0).as_secs_f64();
        self.env_s += (t2 - t1).as_secs_f64();
        self.update_s += (t3 - t2).as_secs_f64();
    }

    /// The repetition's outcome after `steps` steps (fewer than planned where a warm-up stopped).
    pub(crate) fn run(mut self, total_s: f64, steps: usize, losses: Vec<f64>) -> AgentRun {
        self.taken.truncate(steps);
        let timings_s = BTreeMap::from([
            ("train".to_string(), total_s),
            ("act".to_string(), self.act_s),
            ("env".to_string(), self.env_s),
            ("update".to_string(), self.update_s),
        ]);
        let counts = BTreeMap::from([
            ("train".to_string(), steps as u64),
            ("act".to_string(), steps as u64),
            ("env".to_string(), steps as u64),
            ("update".to_string(), losses.len() as u64),
        ]);
        AgentRun {
            timings_s,
            counts,
            returns: self.returns,
            lengths: self.lengths,
            ends: self.ends,
            losses,
            actions: self.taken,
        }
    }
}

/// Step 2 of the protocol (python/mlbench/agents.py `train`).
fn train(
    agent: &mut dyn Agent,
    env: &mut dyn Environment,
    starts: &mut Starts,
    params: &AgentParams,
    streams: &Streams,
    steps: usize,
    observations: usize,
) -> Result<AgentRun> {
    let size = params.buffer_size.min(steps);
    let mut replay = Replay::new(size, observations);
    let mut sampler = Sampler::new(&streams.rows, params, size)?;
    let mut epsilon =
        MultiplicativeEpsilon::new(params.epsilon_start, params.epsilon_end, params.epsilon_decay);
    let linear = params.exploration == "linear";
    let per_step = params.decay_every == "step" && !linear;
    let (starts_at, freq, sync_every) =
        (params.learning_starts, params.train_freq, params.target_update_freq);
    let mut log = EpisodeLog::new(steps);
    let (mut losses, mut k) = (Vec::new(), 0usize);
    let mut window = NStep::new(params.n_step.unwrap_or(1), params.gamma);
    let mut written = 0usize; // transitions stored so far
    let mut obs = env.reset_to(starts.next_start()?);
    if let Some(noise) = &streams.noise {
        agent.reset_noise(noise.row(0).as_slice().expect("a row of a standard-layout array"))?;
    }
    let start = Instant::now();
    for t in 0..steps {
        let t0 = Instant::now();
        if linear {
            epsilon.value = linear_epsilon(
                params.epsilon_start,
                params.epsilon_end,
                params.exploration_fraction,
                t as u64,
                params.total_timesteps as u64,
            );
        }
        let action = if streams.explore[t] < epsilon.value {
            streams.random_actions[t] as usize
        } else {
            agent.greedy(&obs)?
        };
        let t1 = Instant::now();
        let (next_obs, reward, terminated, truncated) = env.step(action);
        let ended = terminated || truncated;
        for transition in window.push(&obs, action, reward, &next_obs, terminated, ended) {
            let row = written % size;
            replay.store(row, &transition);
            if let Sampler::Prioritized { priorities, .. } = &mut sampler {
                priorities.added(row);
            }
            written += 1;
        }
        log.step(t, action, reward, ended);
        if ended {
            obs = env.reset_to(starts.next_start()?);
            if !per_step && !linear {
                epsilon.advance();
            }
        } else {
            obs = next_obs;
        }
        if per_step {
            epsilon.advance();
        }
        let t2 = Instant::now();
        let n = t + 1;
        if n > starts_at && n % freq == 0 {
            let loss = match &mut sampler {
                Sampler::Prioritized { strata, priorities, beta_start } => {
                    let beta = beta(*beta_start, n, params.total_timesteps);
                    if let Some(noise) = &streams.noise {
                        agent.reset_noise(
                            noise.row(k + 1).as_slice().expect("a row of a standard-layout array"),
                        )?;
                    }
                    let draws: Vec<f64> = strata.row(k).to_vec();
                    let (rows, weights) = priorities.sample(&draws, written.min(size), beta);
                    let (loss, errors) = agent.update(&replay.gather(rows.iter().copied(), weights))?;
                    priorities.update(&rows, &errors);
                    loss
                }
                Sampler::Uniform(batches) => {
                    agent
                        .update(&replay.gather(batches.row(k).iter().map(|&row| row as usize), Vec::new()))?
                        .0
                }
            };
            losses.push(loss);
            k += 1;
        }
        if n % sync_every == 0 {
            agent.sync_target()?;
        }
        log.clocks(t0, t1, t2, Instant::now());
    }
    Ok(log.run(start.elapsed().as_secs_f64(), steps, losses))
}

/// The set's environment has a Rust port here whose episodes start from injected states.
pub(crate) fn check_port(
    job: &Job,
    data: &Rollouts,
    make_env: fn(&str) -> Option<Box<dyn Environment>>,
) -> Result<()> {
    if data.starts.is_none() || make_env(&data.environment).is_none() {
        return Err(BenchError::usage(format!(
            "dataset: {} ({}) has no Rust port here",
            job.dataset, data.environment
        )));
    }
    Ok(())
}

fn run(args: &Args, info: &AgentInfo, startup: Option<f64>) -> Result<()> {
    let Some(opened) = open_job::<AgentParams>(args, info.frameworks, info.specs, startup)? else {
        return Ok(());
    };
    let (job, params, data) = (&opened.job, &opened.params, &opened.data);
    let in_job = in_job(&args.config);
    check_params(params, job, data).map_err(in_job)?;
    check_port(job, data, info.make_env).map_err(in_job)?;
    opened.each_repetition(args, |record, loops, repetition| {
        measure_repetition(job, info, data, params, record, loops, repetition)
    })
}

fn measure_repetition(
    job: &Job,
    info: &AgentInfo,
    data: &Rollouts,
    params: &AgentParams,
    record: &mut Record,
    loops: &mut BTreeMap<String, u64>,
    repetition: u32,
) -> Result<()> {
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let calibrate = repetition == 0 && job.warmup > 0;
    let mut phases =
        Phases { timer: PhaseTimer::default(), loops, calibrate_to_s: calibrate.then_some(job.min_sample_s) };
    let seed = record.seed;
    let streams = Streams::load(job, seed, Loop::of(params))?;
    let mut steps = params.total_timesteps;
    if repetition < job.warmup {
        let updates = update_steps(params, steps);
        if updates.len() >= WARMUP_UPDATES {
            steps = updates[WARMUP_UPDATES - 1];
        }
    }
    let mut env = (info.make_env)(&data.environment).expect("checked before the first repetition");
    let mut starts = Starts::of_seed(data, seed)?;
    let observations = env.reset_to(starts.first()).len();
    let actions = env.n_actions();
    let weights = fixture_path(job, "init", seed);
    let mut agent =
        phases.run("build", || Ok(()), |_| (info.build)(job, params, observations, actions, &weights))?;
    let outcome = train(agent.as_mut(), env.as_mut(), &mut starts, params, &streams, steps, observations)?;
    let measured = Measured { cpu_s: cpu_time_s() - cpu_start, rss_start_mb: rss_start };
    fill_record(job, record, phases.timer, outcome, (info.describe)(job), measured)
}

/// The process's resource readings of one repetition, taken by its start.
pub(crate) struct Measured {
    pub(crate) cpu_s: f64,
    pub(crate) rss_start_mb: Option<f64>,
}

/// The record of one repetition of either loop: its artifacts, timings, counts, solver and resources.
pub(crate) fn fill_record(
    job: &Job,
    record: &mut Record,
    timer: PhaseTimer,
    outcome: AgentRun,
    solver: String,
    measured: Measured,
) -> Result<()> {
    let steps = outcome.counts["train"];
    record.save_artifact(job, "returns", &Array1::from(outcome.returns))?;
    record.save_artifact(job, "lengths", &Array1::from(outcome.lengths))?;
    record.save_artifact(job, "episode_ends", &Array1::from(outcome.ends))?;
    record.save_artifact(job, "losses", &Array1::from(outcome.losses))?;
    record.save_artifact(job, "actions", &Array1::from(outcome.actions))?;
    record.timings_s = timer.timings_s;
    record.timings_s.extend(outcome.timings_s);
    record.inner_loops = timer.loops;
    for phase in ["train", "act", "env", "update"] {
        record.inner_loops.insert(phase.to_string(), 1);
    }
    record.page_faults = timer.page_faults;
    let updates = outcome.counts["update"];
    record.set_counts(outcome.counts);
    record.solver = Some(Solver {
        name: solver,
        stopping_rule: format!("fixed: {steps} environment steps"),
        n_iter: Some(updates),
    });
    record.resources = Resources {
        peak_rss_mb: peak_rss_mb(),
        cpu_time_s: Some(measured.cpu_s),
        rss_start_mb: measured.rss_start_mb,
        gpu: None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(learning_starts: usize, train_freq: usize) -> AgentParams {
        AgentParams {
            total_timesteps: 20,
            learning_rate: 1e-3,
            buffer_size: 100,
            batch_size: 4,
            gamma: 0.99,
            target_update_freq: 10,
            learning_starts,
            train_freq,
            exploration: "multiplicative".to_string(),
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay: 0.99,
            decay_every: "step".to_string(),
            exploration_fraction: 0.1,
            max_grad_norm: 10.0,
            hidden_size: 8,
            hidden_layers: 1,
            alpha: None,
            beta_start: None,
            priority_eps: None,
            n_step: None,
            atoms: None,
            v_min: None,
            v_max: None,
            noisy_std: None,
        }
    }

    #[test]
    fn the_settings_choose_the_loop_and_its_streams() {
        let plain = params(5, 4);
        let prioritized = AgentParams { alpha: Some(0.6), ..plain.clone() };
        let rainbow = AgentParams { atoms: Some(51), ..prioritized.clone() };
        assert_eq!(Loop::of(&plain).streams(), ["explore", "random_actions", "batches"]);
        assert_eq!(Loop::of(&prioritized).streams(), ["explore", "random_actions", "strata"]);
        assert_eq!(Loop::of(&rainbow).streams(), ["explore", "random_actions", "strata", "noise"]);
    }

    #[test]
    fn updates_start_after_learning_starts_every_train_freq() {
        assert_eq!(update_steps(&params(5, 4), 20), vec![8, 12, 16, 20]);
        assert_eq!(update_steps(&params(0, 1), 3), vec![1, 2, 3]);
        assert_eq!(update_steps(&params(8, 4), 20), vec![12, 16, 20]);
    }
}
