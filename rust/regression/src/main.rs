//! Regression with linfa: linear, ridge, lasso, elastic net (Python twin:
//! python/tasks/classical/regression.py).
mod algorithms;
mod params;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::harness::{main_task, Plan, TaskInfo};

use algorithms::{Linear, Net, Ridge};
use params::{ElasticNetParams, LassoParams, NoParams, RidgeParams};

/// One dispatch: (framework, algorithm); the settings are mapped once per job.
fn plan(job: &Job) -> Result<Plan> {
    Ok(match (job.framework.as_str(), job.algorithm.as_str()) {
        ("linfa", "linear") => {
            job.params::<NoParams>()?;
            Plan::supervised(|_seed| Linear::default())
        }
        ("linfa", "ridge") => {
            let settings = params::ridge_settings(&job.params::<RidgeParams>()?);
            Plan::supervised(move |_seed| Ridge::new(settings))
        }
        ("linfa", "lasso") => {
            let settings = params::lasso_settings(&job.params::<LassoParams>()?);
            Plan::supervised(move |_seed| Net::new(settings))
        }
        ("linfa", "elastic_net") => {
            let settings = params::elastic_net_settings(&job.params::<ElasticNetParams>()?);
            Plan::supervised(move |_seed| Net::new(settings))
        }
        ("linfa", other) => {
            return Err(BenchError::usage(format!("algorithm: unknown algorithm {other:?} for regression")))
        }
        (other, _) => {
            return Err(BenchError::usage(format!("framework: unknown framework {other:?} for regression")))
        }
    })
}

fn main() {
    main_task(TaskInfo {
        frameworks: &[("linfa", env!("MLBENCH_VERSION_LINFA"))],
        plan,
        spec: include_str!("../../../configs/tasks/regression.yaml"),
    })
}
