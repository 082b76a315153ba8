//! A2C's Rust twins of python/tasks/rl/a2c.py on tch and candle. `a2c --config JOB.yaml --out
//! RECORDS.jsonl` is the `a2c` task's Rust side (the harness contract: bench-core's `rollouts` loop
//! of the `train_agent` protocol, policy.rs).
mod agent;
mod candle_learner;
mod learner;

use bench_core::policy::{ActorCriticAgent, PolicyInfo};

const TASK: PolicyInfo<Box<dyn ActorCriticAgent>> = PolicyInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    build: agent::build,
    make_env: |name| rl_envs::make(name).map(|env| Box::new(env) as Box<dyn bench_core::agents::Environment>),
    describe: agent::describe,
    spec: include_str!("../../../configs/tasks/a2c.yaml"),
};

fn main() {
    bench_core::policy::main_policy(TASK);
}
