//! A2C's Rust twins of python/tasks/rl/a2c.py on tch and candle. `a2c --config JOB.yaml --out
//! RECORDS.jsonl` is the Rust side of the `a2c` task (against PyTorch) and of `a2c_library` (against
//! stable-baselines3): bench-core's `rollouts` loop of the `train_agent` protocol, policy.rs.
mod agent;
mod candle_learner;
mod learner;

use bench_core::policy::{ActorCriticAgent, PolicyInfo};

const TASK: PolicyInfo<Box<dyn ActorCriticAgent>> = PolicyInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    build: agent::build,
    make_env: |name| rl_envs::make(name).map(|env| Box::new(env) as Box<dyn bench_core::agents::Environment>),
    describe: agent::describe,
    specs: &[
        include_str!("../../../configs/tasks/a2c.yaml"),
        include_str!("../../../configs/tasks/a2c_library.yaml"),
    ],
};

fn main() {
    bench_core::policy::main_policy(TASK);
}
