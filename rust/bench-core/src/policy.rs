//! The on-policy loop of the `train_agent` protocol: a policy-gradient agent (REINFORCE) samples
//! its own policy from the shared draws and learns from each finished episode. Mirrors
//! python/mlbench/policy.py (read its docstring for the loop's steps and fixtures); what both loops
//! share (starts, fixtures' checks, the record) is agents.rs.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::Array1;
use serde::Deserialize;

use crate::agents::{
    check_fixtures, check_port, fill_record, fixture_path, npy, phase_maps, AgentRun, Environment, Measured,
    WARMUP_UPDATES,
};
use crate::config::Job;
use crate::error::Result;
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

/// Builds a framework's agent: (job, parameters, observations, actions, initial weights).
pub type BuildPolicy = fn(&Job, &PolicyParams, usize, usize, &Path) -> Result<Box<dyn PolicyAgent>>;

/// What a policy-gradient task tells the harness about itself.
pub struct PolicyInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub build: BuildPolicy,
    /// The environment of a gymnasium id, or None where this binary has no port of it.
    pub make_env: fn(&str) -> Option<Box<dyn Environment>>,
    /// The solver's name for a job.
    pub describe: fn(&Job) -> String,
    /// The task spec (configs/tasks/<task>.yaml, `include_str!`).
    pub spec: &'static str,
}

/// Entry point of a policy-gradient task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_policy(info: PolicyInfo) -> ! {
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

/// The on-policy loop (python/mlbench/policy.py `train`); stops early after `max_updates` updates.
fn train(
    agent: &mut dyn PolicyAgent,
    env: &mut dyn Environment,
    starts: &mut Starts,
    params: &PolicyParams,
    draws: &Array1<f64>,
    steps: usize,
    max_updates: Option<usize>,
) -> Result<AgentRun> {
    let mut taken = Vec::with_capacity(steps);
    let (mut returns, mut lengths, mut ends, mut losses) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut episode_obs, mut episode_actions, mut episode_rewards) = (Vec::new(), Vec::new(), Vec::new());
    let (mut act_s, mut env_s, mut update_s) = (0.0f64, 0.0f64, 0.0f64);
    let (mut done, mut episode_return) = (steps, 0.0f64);
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
        episode_return += reward;
        taken.push(action as i64);
        let ended = terminated || truncated;
        if ended {
            returns.push(std::mem::take(&mut episode_return));
            lengths.push(episode_rewards.len() as f64);
            ends.push((t + 1) as f64);
            obs = env.reset_to(starts.next_start()?);
        } else {
            obs = next_obs;
        }
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
        let t3 = Instant::now();
        act_s += (t1 - t0).as_secs_f64();
        env_s += (t2 - t1).as_secs_f64();
        update_s += (t3 - t2).as_secs_f64();
        if max_updates.is_some_and(|max| losses.len() >= max) {
            done = t + 1;
            break;
        }
    }
    let (timings_s, counts) =
        phase_maps(start.elapsed().as_secs_f64(), (act_s, env_s, update_s), done, losses.len());
    Ok(AgentRun { timings_s, counts, returns, lengths, ends, losses, actions: taken })
}

fn run(args: &Args, info: &PolicyInfo, startup: Option<f64>) -> Result<()> {
    let Some(opened) = open_job::<PolicyParams>(args, info.frameworks, &[info.spec], startup)? else {
        return Ok(());
    };
    let (job, params, data) = (&opened.job, &opened.params, &opened.data);
    let in_job = in_job(&args.config);
    check_fixtures(job, data, params.total_timesteps, &["init", "sample"]).map_err(in_job)?;
    check_port(job, data, info.make_env).map_err(in_job)?;
    opened.each_repetition(args, |record, loops, repetition| {
        measure_repetition(job, info, data, params, record, loops, repetition)
    })
}

fn measure_repetition(
    job: &Job,
    info: &PolicyInfo,
    data: &Rollouts,
    params: &PolicyParams,
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
    let draws: Array1<f64> = npy(&fixture_path(job, "sample", seed))?;
    let max_updates = (repetition < job.warmup).then_some(WARMUP_UPDATES);
    let mut env = (info.make_env)(&data.environment).expect("checked before the first repetition");
    let mut starts = Starts::of_seed(data, seed)?;
    let observations = env.reset_to(starts.first()).len();
    let actions = env.n_actions();
    let weights = fixture_path(job, "init", seed);
    let mut agent =
        phases.run("build", || Ok(()), |_| (info.build)(job, params, observations, actions, &weights))?;
    let outcome = train(
        agent.as_mut(),
        env.as_mut(),
        &mut starts,
        params,
        &draws,
        params.total_timesteps,
        max_updates,
    )?;
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
    fn weights_are_returns_to_go_standardised() {
        let raw = step_weights(&[1.0, 1.0, 1.0], 0.5, false);
        assert_eq!(raw, vec![1.75, 1.5, 1.0]);
        let standard = step_weights(&[1.0, 1.0, 1.0], 0.5, true);
        let mean: f32 = standard.iter().sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6);
        assert!(standard[0] > standard[1] && standard[1] > standard[2]);
    }
}
