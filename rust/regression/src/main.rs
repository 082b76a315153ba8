//! Regression with linfa: linear, ridge, lasso, elastic net (Python twin:
//! python/tasks/classical/regression.py).
mod algorithms;
mod params;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::harness::{main_task, Model, TaskInfo};

use algorithms::{Linear, Net, Ridge};
use params::{ElasticNetParams, LassoParams, NoParams, RidgeParams};

/// One dispatch: (framework, algorithm).
fn build(job: &Job, _seed: u64) -> Result<Model> {
    Ok(Model::Supervised(match (job.framework.as_str(), job.algorithm.as_str()) {
        ("linfa", "linear") => {
            job.params::<NoParams>()?;
            Box::new(Linear::default())
        }
        ("linfa", "ridge") => {
            let p: RidgeParams = job.params()?;
            Box::new(Ridge::new(params::ridge_settings(&p)))
        }
        ("linfa", "lasso") => {
            let p: LassoParams = job.params()?;
            Box::new(Net::new(params::lasso_settings(&p)))
        }
        ("linfa", "elastic_net") => {
            let p: ElasticNetParams = job.params()?;
            Box::new(Net::new(params::elastic_net_settings(&p)))
        }
        ("linfa", other) => {
            return Err(BenchError::usage(format!("algorithm: unknown algorithm {other:?} for regression")))
        }
        (other, _) => {
            return Err(BenchError::usage(format!("framework: unknown framework {other:?} for regression")))
        }
    }))
}

fn main() {
    main_task(TaskInfo {
        frameworks: &[("linfa", env!("MLBENCH_VERSION_LINFA"))],
        build,
        spec: include_str!("../../../configs/tasks/regression.yaml"),
    })
}
