//! REINFORCE's Rust twins of python/tasks/rl/reinforce.py on tch and candle. `reinforce --config
//! JOB.yaml --out RECORDS.jsonl` is the Rust side of the `reinforce` task (against PyTorch) and of
//! `reinforce_library` (whose library side is unsupported; the harness contract:
//! bench-core's on-policy loop of the `train_agent` protocol, policy.rs).
mod agent;
mod candle_learner;
mod learner;

use bench_core::policy::{PolicyAgent, PolicyInfo};

const TASK: PolicyInfo<Box<dyn PolicyAgent>> = PolicyInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    build: agent::build,
    make_env: |name| rl_envs::make(name).map(|env| Box::new(env) as Box<dyn bench_core::agents::Environment>),
    describe: agent::describe,
    specs: &[
        include_str!("../../../configs/tasks/reinforce.yaml"),
        include_str!("../../../configs/tasks/reinforce_library.yaml"),
    ],
};

fn main() {
    bench_core::policy::main_policy(TASK);
}
