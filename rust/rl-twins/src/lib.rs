//! What the RL twins (rust/dqn, rust/reinforce, rust/a2c, rust/ppo) share on tch and candle: the
//! switch that makes the job's framework's agent on the job's threads (`on_framework`); what candle
//! lacks and the twins need (`candle_util`: PyTorch's global-norm clipping, candle's errors as the
//! harness's); and the actor-critic networks of A2C and PPO (`tch_net`, `candle_net`, as
//! python/tasks/rl/a2c.py `ActorCritic` defines them: separate tanh MLPs under PyTorch's names,
//! loaded from the shared safetensors file) with the agent glue that turns a rollout into either
//! framework's tensors (`agent`).
use bench_core::config::Job;
use bench_core::error::{BenchError, Result};

pub mod agent;
pub mod candle_net;
pub mod candle_util;
pub mod tch_net;

/// The job's framework's agent, on the job's threads: `tch` or `candle` makes it from the shared
/// initial weights (a file either cannot read is the job's `fixtures_dir`'s fault).
pub fn on_framework<A>(
    job: &Job,
    tch: impl FnOnce() -> Result<A>,
    candle: impl FnOnce() -> Result<A>,
) -> Result<A> {
    let fixtures = |err: BenchError| match err {
        BenchError::Usage(message) => BenchError::usage(format!("fixtures_dir: {message}")),
        other => other,
    };
    match job.framework.as_str() {
        "tch" => {
            tch::set_num_threads(job.threads as i32);
            tch().map_err(fixtures)
        }
        "candle" => {
            // candle's CPU kernels size their pools from RAYON_NUM_THREADS; a task started by hand obeys too.
            std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
            candle().map_err(fixtures)
        }
        other => Err(BenchError::usage(format!("framework: {other:?} is not in this binary"))),
    }
}
