//! PPO's Rust twins of python/tasks/rl/ppo.py on tch and candle. `ppo --config JOB.yaml --out
//! RECORDS.jsonl` is the Rust side of the `ppo` task (against PyTorch) and of `ppo_library` (against
//! stable-baselines3): bench-core's `minibatches` loop of the `train_agent` protocol, policy.rs.
mod agent;
mod candle_learner;
mod learner;

use bench_core::policy::{PolicyInfo, Ppo};

const TASK: PolicyInfo<Ppo> = PolicyInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    build: agent::build,
    make_env: |name| rl_envs::make(name).map(|env| Box::new(env) as Box<dyn bench_core::agents::Environment>),
    describe: agent::describe,
    specs: &[
        include_str!("../../../configs/tasks/ppo.yaml"),
        include_str!("../../../configs/tasks/ppo_library.yaml"),
    ],
};

fn main() {
    bench_core::policy::main_policy(TASK);
}
