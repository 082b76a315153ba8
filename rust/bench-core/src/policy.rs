//! The on-policy loops of the `train_agent` protocol: a policy-gradient agent samples its own policy
//! from the shared draws and learns from each finished episode (REINFORCE: `PolicyAgent`) or from
//! each rollout of n steps, bootstrapped by its critic (A2C: `ActorCriticAgent`; PPO: the same
//! agent under the `minibatches` loop, `Ppo`, whose rollouts carry the shared shuffles). Mirrors
//! python/mlbench/policy.py (read its docstring for the loops' steps and fixtures); what every loop
//! shares (starts, fixtures' checks, the record) is agents.rs.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::{Array1, Array3};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::agents::{
    check_fixtures, check_port, fill_record, fixture_path, npy, AgentRun, Environment, EpisodeLog, Measured,
    WARMUP_UPDATES,
};
use crate::config::Job;
use crate::error::{BenchError, Result};
use crate::harness::{in_job, run_main, Args, Phases};
use crate::measure::{cpu_time_s, reset_peak_rss, rss_mb, PhaseTimer};
use crate::record::Record;
use crate::stepping::{open_job, Rollouts, Starts};

/// Added to the returns' standard deviation before dividing by it (python/mlbench/policy.py).
pub const STANDARDISE_EPS: f64 = 1e-8;

/// One finished episode as the update reads it, row-major.
pub struct Episode {
    pub steps: usize,
    pub observations: usize,
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    /// Per-step weights of the log-probabilities: the returns-to-go, standardised if asked.
    pub weights: Vec<f32>,
}

/// A framework's policy-gradient agent.
pub trait PolicyAgent {
    /// The policy's action probabilities for one observation.
    fn probabilities(&mut self, observation: &[f32]) -> Result<Vec<f32>>;
    /// One update on a finished episode; the loss.
    fn update(&mut self, episode: &Episode) -> Result<f64>;
}

/// The job's hyperparameters (configs/tasks/reinforce.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    pub total_timesteps: usize,
    pub learning_rate: f64,
    pub gamma: f64,
    pub normalize_returns: bool,
    pub max_grad_norm: f64,
    pub hidden_size: i64,
    pub hidden_layers: usize,
}

impl PolicyParams {
    pub fn hidden(&self) -> Vec<i64> {
        vec![self.hidden_size; self.hidden_layers]
    }
}

/// A repetition's random streams (python/mlbench/policy.py `STREAMS`): one uniform draw per step
/// and, for the `minibatches` loop, the shuffles (updates x n_epochs x n_steps).
pub struct Streams {
    pub sample: Array1<f64>,
    pub order: Option<Array3<i32>>,
}

/// An on-policy loop: its agent (a boxed framework agent), its hyperparameters and its training.
pub trait OnPolicy {
    type Params: DeserializeOwned;
    /// The fixtures' random streams the loop reads, in the order Python draws them.
    const STREAMS: &'static [&'static str] = &["sample"];
    fn total_timesteps(params: &Self::Params) -> usize;
    /// What the parameter schema cannot see (python/mlbench/agents.py `check_params`).
    fn check(_params: &Self::Params) -> Result<()> {
        Ok(())
    }
    /// Step 2 of the loop from the first episode's start; stops early after `max_updates` updates.
    fn train(
        &mut self,
        env: &mut dyn Environment,
        starts: &mut Starts,
        params: &Self::Params,
        streams: &Streams,
        max_updates: Option<usize>,
    ) -> Result<AgentRun>;
}

/// What a policy-gradient task tells the harness about itself.
pub struct PolicyInfo<L: OnPolicy> {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    /// The framework's agent: (job, parameters, observations, actions, initial weights).
    pub build: fn(&Job, &L::Params, usize, usize, &Path) -> Result<L>,
    /// The environment of a gymnasium id, or None where this binary has no port of it.
    pub make_env: fn(&str) -> Option<Box<dyn Environment>>,
    /// The solver's name for a job.
    pub describe: fn(&Job) -> String,
    /// The specs of the tasks this program serves (configs/tasks/<task>.yaml, `include_str!`): a
    /// job is checked against its task's.
    pub specs: &'static [&'static str],
}

/// Entry point of a policy-gradient task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_policy<L: OnPolicy>(info: PolicyInfo<L>) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

/// The first action whose cumulative probability (f64, in order) exceeds `draw`; the last if none.
pub fn sample_action(probabilities: &[f32], draw: f64) -> usize {
    let mut total = 0.0f64;
    for (action, &p) in probabilities.iter().enumerate() {
        total += f64::from(p);
        if draw < total {
            return action;
        }
    }
    probabilities.len() - 1
}

/// The discounted returns of an episode's steps, standardised if asked (sums in step order).
pub fn step_weights(rewards: &[f64], gamma: f64, normalize: bool) -> Vec<f32> {
    let mut returns = vec![0.0f64; rewards.len()];
    let mut running = 0.0f64;
    for k in (0..rewards.len()).rev() {
        running = rewards[k] + gamma * running;
        returns[k] = running;
    }
    if normalize {
        let n = returns.len() as f64;
        let mean = returns.iter().fold(0.0, |sum, g| sum + g) / n;
        let std = (returns.iter().fold(0.0, |sum, g| sum + (g - mean) * (g - mean)) / n).sqrt();
        for g in &mut returns {
            *g = (*g - mean) / (std + STANDARDISE_EPS);
        }
    }
    returns.into_iter().map(|g| g as f32).collect()
}

impl OnPolicy for Box<dyn PolicyAgent> {
    type Params = PolicyParams;

    fn total_timesteps(params: &PolicyParams) -> usize {
        params.total_timesteps
    }

    fn train(
        &mut self,
        env: &mut dyn Environment,
        starts: &mut Starts,
        params: &PolicyParams,
        streams: &Streams,
        max_updates: Option<usize>,
    ) -> Result<AgentRun> {
        train_episodes(self.as_mut(), env, starts, params, &streams.sample, max_updates)
    }
}

/// The `episodes` loop (python/mlbench/policy.py `train`); stops early after `max_updates` updates.
fn train_episodes(
    agent: &mut dyn PolicyAgent,
    env: &mut dyn Environment,
    starts: &mut Starts,
    params: &PolicyParams,
    draws: &Array1<f64>,
    max_updates: Option<usize>,
) -> Result<AgentRun> {
    let steps = params.total_timesteps;
    let mut log = EpisodeLog::new(steps);
    let mut losses = Vec::new();
    let (mut episode_obs, mut episode_actions, mut episode_rewards) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = steps;
    let mut obs = env.reset_to(starts.next_start()?);
    let observations = obs.len();
    let start = Instant::now();
    for t in 0..steps {
        let t0 = Instant::now();
        let action = sample_action(&agent.probabilities(&obs)?, draws[t]);
        let t1 = Instant::now();
        let (next_obs, reward, terminated, truncated) = env.step(action);
        episode_obs.extend_from_slice(&obs);
        episode_actions.push(action as i64);
        episode_rewards.push(reward);
        let ended = terminated || truncated;
        log.step(t, action, reward, ended);
        obs = if ended { env.reset_to(starts.next_start()?) } else { next_obs };
        let t2 = Instant::now();
        if ended {
            let episode = Episode {
                steps: episode_actions.len(),
                observations,
                obs: std::mem::take(&mut episode_obs),
                actions: std::mem::take(&mut episode_actions),
                weights: step_weights(&episode_rewards, params.gamma, params.normalize_returns),
            };
            episode_rewards.clear();
            losses.push(agent.update(&episode)?);
        }
        log.clocks(t0, t1, t2, Instant::now());
        if max_updates.is_some_and(|max| losses.len() >= max) {
            done = t + 1;
            break;
        }
    }
    Ok(log.run(start.elapsed().as_secs_f64(), done, losses))
}

/// One rollout as the actor-critic's update reads it, row-major.
pub struct Rollout {
    pub steps: usize,
    pub observations: usize,
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    /// The critic's targets: advantages + values.
    pub returns: Vec<f32>,
    pub advantages: Vec<f32>,
    /// The minibatches' shuffles, n_epochs x steps row-major (the `minibatches` loop; else empty).
    pub order: Vec<i32>,
}

/// A framework's actor-critic agent (A2C, PPO).
pub trait ActorCriticAgent {
    /// The policy's action probabilities and the critic's value for one observation.
    fn act(&mut self, observation: &[f32]) -> Result<(Vec<f32>, f32)>;
    /// The critic's values of `rows` observations (row-major).
    fn values(&mut self, observations: &[f32], rows: usize) -> Result<Vec<f32>>;
    /// One update on a rollout; the loss.
    fn update(&mut self, rollout: &Rollout) -> Result<f64>;
}

/// The A2C job's hyperparameters (configs/tasks/a2c.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorCriticParams {
    pub total_timesteps: usize,
    pub learning_rate: f64,
    pub n_steps: usize,
    pub gamma: f64,
    pub gae_lambda: f64,
    pub ent_coef: f64,
    pub vf_coef: f64,
    pub max_grad_norm: f64,
    pub rms_alpha: f64,
    pub rms_eps: f64,
    pub hidden_size: i64,
    pub hidden_layers: usize,
}

impl ActorCriticParams {
    pub fn hidden(&self) -> Vec<i64> {
        vec![self.hidden_size; self.hidden_layers]
    }
}

/// The PPO job's hyperparameters (configs/tasks/ppo.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoParams {
    pub total_timesteps: usize,
    pub learning_rate: f64,
    pub n_steps: usize,
    pub batch_size: usize,
    pub n_epochs: usize,
    pub gamma: f64,
    pub gae_lambda: f64,
    pub clip_range: f64,
    pub normalize_advantage: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
    pub max_grad_norm: f64,
    pub adam_eps: f64,
    pub hidden_size: i64,
    pub hidden_layers: usize,
}

impl PpoParams {
    pub fn hidden(&self) -> Vec<i64> {
        vec![self.hidden_size; self.hidden_layers]
    }
}

/// What the rollouts loop reads of an actor-critic job's hyperparameters.
struct RolloutShape {
    total_timesteps: usize,
    n_steps: usize,
    gamma: f64,
    gae_lambda: f64,
}

/// The rollout shape of A2C's or PPO's hyperparameters (the same names in both).
macro_rules! rollout_shape {
    ($params:expr) => {
        RolloutShape {
            total_timesteps: $params.total_timesteps,
            n_steps: $params.n_steps,
            gamma: $params.gamma,
            gae_lambda: $params.gae_lambda,
        }
    };
}

/// Generalised advantage estimation over one rollout in f64, from its last step back
/// (python/mlbench/policy.py `advantages`): (returns, advantages) as f32.
pub fn advantages(
    rewards: &[f64],
    values: &[f64],
    dones: &[bool],
    last_value: f64,
    gamma: f64,
    gae_lambda: f64,
) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len();
    let mut adv = vec![0.0f64; n];
    let mut running = 0.0f64;
    for k in (0..n).rev() {
        let next_value = if k == n - 1 { last_value } else { values[k + 1] };
        let live = if dones[k] { 0.0 } else { 1.0 };
        let delta = rewards[k] + gamma * next_value * live - values[k];
        running = delta + gamma * gae_lambda * live * running;
        adv[k] = running;
    }
    let returns = adv.iter().zip(values).map(|(a, v)| (a + v) as f32).collect();
    (returns, adv.into_iter().map(|a| a as f32).collect())
}

impl OnPolicy for Box<dyn ActorCriticAgent> {
    type Params = ActorCriticParams;

    fn total_timesteps(params: &ActorCriticParams) -> usize {
        params.total_timesteps
    }

    fn train(
        &mut self,
        env: &mut dyn Environment,
        starts: &mut Starts,
        params: &ActorCriticParams,
        streams: &Streams,
        max_updates: Option<usize>,
    ) -> Result<AgentRun> {
        train_rollouts(self.as_mut(), env, starts, &rollout_shape!(params), streams, max_updates)
    }
}

/// An actor-critic agent under the `minibatches` loop (PPO): each rollout carries its shuffles.
pub struct Ppo(pub Box<dyn ActorCriticAgent>);

impl OnPolicy for Ppo {
    type Params = PpoParams;
    const STREAMS: &'static [&'static str] = &["sample", "order"];

    fn total_timesteps(params: &PpoParams) -> usize {
        params.total_timesteps
    }

    fn check(params: &PpoParams) -> Result<()> {
        if params.batch_size > params.n_steps {
            return Err(BenchError::usage(format!(
                "hyperparameters.batch_size: {} is above n_steps {} (a minibatch is drawn from one rollout)",
                params.batch_size, params.n_steps
            )));
        }
        Ok(())
    }

    fn train(
        &mut self,
        env: &mut dyn Environment,
        starts: &mut Starts,
        params: &PpoParams,
        streams: &Streams,
        max_updates: Option<usize>,
    ) -> Result<AgentRun> {
        train_rollouts(self.0.as_mut(), env, starts, &rollout_shape!(params), streams, max_updates)
    }
}

/// The `rollouts` and `minibatches` loops (python/mlbench/policy.py `train_rollouts`).
fn train_rollouts(
    agent: &mut dyn ActorCriticAgent,
    env: &mut dyn Environment,
    starts: &mut Starts,
    params: &RolloutShape,
    streams: &Streams,
    max_updates: Option<usize>,
) -> Result<AgentRun> {
    let draws = &streams.sample;
    let steps = params.total_timesteps;
    let mut log = EpisodeLog::new(steps);
    let mut losses = Vec::new();
    let (mut rollout_obs, mut rollout_actions) = (Vec::new(), Vec::new());
    let (mut rollout_rewards, mut rollout_values, mut rollout_dones) = (Vec::new(), Vec::new(), Vec::new());
    // row -> the last observation of an episode cut by its time limit (in row order)
    let mut truncated_obs: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut done = steps;
    let mut obs = env.reset_to(starts.next_start()?);
    let observations = obs.len();
    let start = Instant::now();
    for t in 0..steps {
        let t0 = Instant::now();
        let (probabilities, value) = agent.act(&obs)?;
        let action = sample_action(&probabilities, draws[t]);
        let t1 = Instant::now();
        let (next_obs, reward, terminated, truncated) = env.step(action);
        let ended = terminated || truncated;
        if truncated && !terminated {
            truncated_obs.push((rollout_actions.len(), next_obs.clone()));
        }
        rollout_obs.extend_from_slice(&obs);
        rollout_actions.push(action as i64);
        rollout_rewards.push(reward);
        rollout_values.push(f64::from(value));
        rollout_dones.push(ended);
        log.step(t, action, reward, ended);
        obs = if ended { env.reset_to(starts.next_start()?) } else { next_obs };
        let t2 = Instant::now();
        if (t + 1) % params.n_steps == 0 {
            if !truncated_obs.is_empty() {
                let flat: Vec<f32> = truncated_obs.iter().flat_map(|(_, o)| o.iter().copied()).collect();
                let cut = agent.values(&flat, truncated_obs.len())?;
                for ((row, _), v) in truncated_obs.iter().zip(cut) {
                    rollout_rewards[*row] += params.gamma * f64::from(v);
                }
                truncated_obs.clear();
            }
            let last_value = f64::from(agent.values(&obs, 1)?[0]);
            let (targets, adv) = advantages(
                &rollout_rewards,
                &rollout_values,
                &rollout_dones,
                last_value,
                params.gamma,
                params.gae_lambda,
            );
            let rollout = Rollout {
                steps: rollout_actions.len(),
                observations,
                obs: std::mem::take(&mut rollout_obs),
                actions: std::mem::take(&mut rollout_actions),
                returns: targets,
                advantages: adv,
                order: streams
                    .order
                    .as_ref()
                    .map(|order| order.index_axis(ndarray::Axis(0), losses.len()).iter().copied().collect())
                    .unwrap_or_default(),
            };
            rollout_rewards.clear();
            rollout_values.clear();
            rollout_dones.clear();
            losses.push(agent.update(&rollout)?);
        }
        log.clocks(t0, t1, t2, Instant::now());
        if max_updates.is_some_and(|max| losses.len() >= max) {
            done = t + 1;
            break;
        }
    }
    Ok(log.run(start.elapsed().as_secs_f64(), done, losses))
}

fn run<L: OnPolicy>(args: &Args, info: &PolicyInfo<L>, startup: Option<f64>) -> Result<()> {
    let Some(opened) = open_job::<L::Params>(args, info.frameworks, info.specs, startup)? else {
        return Ok(());
    };
    let (job, params, data) = (&opened.job, &opened.params, &opened.data);
    let in_job = in_job(&args.config);
    L::check(params).map_err(in_job)?;
    let names: Vec<&str> = std::iter::once("init").chain(L::STREAMS.iter().copied()).collect();
    check_fixtures(job, data, L::total_timesteps(params), &names).map_err(in_job)?;
    check_port(job, data, info.make_env).map_err(in_job)?;
    opened.each_repetition(args, |record, loops, repetition| {
        measure_repetition(job, info, data, params, record, loops, repetition)
    })
}

fn measure_repetition<L: OnPolicy>(
    job: &Job,
    info: &PolicyInfo<L>,
    data: &Rollouts,
    params: &L::Params,
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
    let streams = Streams {
        sample: npy(&fixture_path(job, "sample", seed))?,
        order: if L::STREAMS.contains(&"order") {
            Some(npy(&fixture_path(job, "order", seed))?)
        } else {
            None
        },
    };
    let max_updates = (repetition < job.warmup).then_some(WARMUP_UPDATES);
    let mut env = (info.make_env)(&data.environment).expect("checked before the first repetition");
    let mut starts = Starts::of_seed(data, seed)?;
    let observations = env.reset_to(starts.first()).len();
    let actions = env.n_actions();
    let weights = fixture_path(job, "init", seed);
    let mut agent =
        phases.run("build", || Ok(()), |_| (info.build)(job, params, observations, actions, &weights))?;
    let outcome = agent.train(env.as_mut(), &mut starts, params, &streams, max_updates)?;
    let measured = Measured { cpu_s: cpu_time_s() - cpu_start, rss_start_mb: rss_start };
    fill_record(job, record, phases.timer, outcome, (info.describe)(job), measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_by_the_inverse_cdf() {
        assert_eq!(sample_action(&[0.25, 0.5, 0.25], 0.0), 0);
        assert_eq!(sample_action(&[0.25, 0.5, 0.25], 0.25), 1);
        assert_eq!(sample_action(&[0.25, 0.5, 0.25], 0.74), 1);
        assert_eq!(sample_action(&[0.25, 0.5, 0.25], 0.75), 2);
        assert_eq!(sample_action(&[0.3, 0.3], 0.9), 1); // rounding leaves none: the last
    }

    #[test]
    fn advantages_bootstrap_and_stop_at_episode_ends() {
        // gamma 0.5, lambda 1: n-step returns; the episode ends after row 1, so row 1 sees no future
        let (returns, adv) =
            advantages(&[1.0, 1.0, 1.0], &[0.5, 0.5, 0.5], &[false, true, false], 2.0, 0.5, 1.0);
        assert_eq!(returns, vec![1.5, 1.0, 2.0]);
        assert_eq!(adv, vec![1.0, 0.5, 1.5]);
    }

    #[test]
    fn weights_are_returns_to_go_standardised() {
        let raw = step_weights(&[1.0, 1.0, 1.0], 0.5, false);
        assert_eq!(raw, vec![1.75, 1.5, 1.0]);
        let standard = step_weights(&[1.0, 1.0, 1.0], 0.5, true);
        let mean: f32 = standard.iter().sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6);
        assert!(standard[0] > standard[1] && standard[1] > standard[2]);
    }
}
