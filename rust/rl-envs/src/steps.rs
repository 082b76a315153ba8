//! Environment stepping on the ports (the `env_steps` task's Rust side; Python's twin is
//! python/tasks/rl/env_steps.py). One copy is a plain loop (step; after an episode ends, reset);
//! several are a vector that resets a finished copy on its next step, as gymnasium's
//! SyncVectorEnv does by default (that step's action is ignored, its reward is 0). Episodes start
//! from the rollouts set's start states; actions are its columns, turned into indices untimed.
use bench_core::error::{BenchError, Result};
use bench_core::stepping::{Rollouts, Starts, Stepper, Trace};
use ndarray::Array2;
use rl_envs::Env;

/// One copy of the environment, its episode starts and its actions (indices).
struct Copy {
    env: Box<dyn Env>,
    starts: Starts,
    actions: Vec<usize>,
}

/// The copies and their actions, checked against the set (environment, start states, action range).
fn copies(data: &Rollouts, num_envs: usize) -> Result<Vec<Copy>> {
    let Some(starts) = &data.starts else {
        return Err(BenchError::usage(format!(
            "dataset: {} starts its episodes from reset seeds, which only gymnasium can use",
            data.environment
        )));
    };
    (0..num_envs)
        .map(|copy| {
            let env = rl_envs::make(&data.environment).ok_or_else(|| {
                BenchError::usage(format!(
                    "dataset: environment {:?} has no Rust port (ported: {})",
                    data.environment,
                    rl_envs::NAMES.join(", ")
                ))
            })?;
            if starts.dim().2 != env.state_dim() {
                return Err(BenchError::usage(format!(
                    "dataset: start states of {} values, {} has a state of {}",
                    starts.dim().2,
                    env.id(),
                    env.state_dim()
                )));
            }
            let actions = data
                .actions
                .column(copy)
                .iter()
                .map(|&a| {
                    usize::try_from(a).ok().filter(|&a| a < env.n_actions()).ok_or_else(|| {
                        BenchError::usage(format!(
                            "dataset: action {a} is outside 0..{} of {}",
                            env.n_actions() - 1,
                            env.id()
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Copy { env, starts: Starts::new(starts, copy), actions })
        })
        .collect()
}

/// One copy: step; after an episode ends, reset.
struct Single {
    copy: Copy,
    observation: Vec<f32>,
}

impl Stepper for Single {
    fn run(&mut self, steps: usize) -> Result<Trace> {
        let (mut rewards, mut ended) = (Array2::zeros((steps, 1)), Array2::from_elem((steps, 1), false));
        let mut observation = std::mem::take(&mut self.observation);
        let Copy { env, starts, actions } = &mut self.copy;
        for t in 0..steps {
            let step = env.step(actions[t]);
            rewards[[t, 0]] = step.reward;
            if step.terminated || step.truncated {
                ended[[t, 0]] = true;
                observation = env.reset_to(starts.next_start()?);
            } else {
                observation = step.observation;
            }
        }
        let final_observations = Array2::from_shape_vec((1, observation.len()), observation)
            .map_err(|e| BenchError::run(format!("observation: {e}")))?;
        Ok(Trace { rewards, ended, final_observations })
    }
}

/// Several copies: a finished copy resets on its next step (gymnasium's NEXT_STEP autoreset);
/// every step writes the copies' observations into one batch, as SyncVectorEnv does.
struct Vector {
    copies: Vec<Copy>,
    observations: Array2<f32>,
    resetting: Vec<bool>,
}

impl Stepper for Vector {
    fn run(&mut self, steps: usize) -> Result<Trace> {
        let n = self.copies.len();
        let (mut rewards, mut ended) = (Array2::zeros((steps, n)), Array2::from_elem((steps, n), false));
        for t in 0..steps {
            for (i, Copy { env, starts, actions }) in self.copies.iter_mut().enumerate() {
                let observation = if self.resetting[i] {
                    self.resetting[i] = false;
                    env.reset_to(starts.next_start()?)
                } else {
                    let step = env.step(actions[t]);
                    rewards[[t, i]] = step.reward;
                    if step.terminated || step.truncated {
                        ended[[t, i]] = true;
                        self.resetting[i] = true;
                    }
                    step.observation
                };
                for (slot, value) in self.observations.row_mut(i).iter_mut().zip(observation) {
                    *slot = value;
                }
            }
        }
        Ok(Trace { rewards, ended, final_observations: self.observations.clone() })
    }
}

/// The `Start` of the rl-envs framework: the copies reset from their first starts.
pub fn start(data: &Rollouts, num_envs: usize) -> Result<Box<dyn Stepper>> {
    let mut copies = copies(data, num_envs)?;
    let mut first = Vec::with_capacity(num_envs);
    for copy in &mut copies {
        first.push(copy.env.reset_to(copy.starts.next_start()?));
    }
    if num_envs == 1 {
        let copy = copies.pop().expect("one copy");
        return Ok(Box::new(Single { copy, observation: first.pop().expect("one copy") }));
    }
    let width = first.first().map_or(0, Vec::len);
    let observations = Array2::from_shape_vec((num_envs, width), first.concat())
        .map_err(|e| BenchError::run(format!("observations: {e}")))?;
    Ok(Box::new(Vector { copies, observations, resetting: vec![false; num_envs] }))
}

pub fn describe(num_envs: usize) -> String {
    if num_envs == 1 {
        "rl-envs port, plain loop".into()
    } else {
        format!("rl-envs ports, a vector of {num_envs} (autoreset: next step)")
    }
}
