//! Clustering in Rust: linfa-clustering and kodama (Python twin:
//! python/tasks/classical/clustering.py).
mod kodama_arm;
mod linfa_arm;
mod params;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::harness::{main_task, Plan, TaskInfo};

use params::{AgglomerativeParams, Covariance, DbscanParams, GaussianMixtureParams, KMeansParams};

/// One dispatch: (framework, algorithm); the parameters are read once per job, the seed per
/// repetition.
fn plan(job: &Job) -> Result<Plan> {
    Ok(match (job.framework.as_str(), job.algorithm.as_str()) {
        ("kodama", "kmeans" | "dbscan" | "gaussian_mixture") | ("linfa", "agglomerative") => {
            return Err(BenchError::declared_unsupported(job))
        }
        ("linfa", "kmeans") => {
            let p: KMeansParams = job.params()?;
            Plan::clustering(move |seed| linfa_arm::LinfaKMeans::new(p.clone(), seed))
        }
        ("linfa", "dbscan") => {
            let p: DbscanParams = job.params()?;
            Plan::clustering(move |_seed| linfa_arm::LinfaDbscan::new(p.clone()))
        }
        ("linfa", "gaussian_mixture") => {
            let p: GaussianMixtureParams = job.params()?;
            if p.covariance_type != Covariance::Full {
                return Err(BenchError::declared_unsupported(job));
            }
            Plan::clustering(move |seed| linfa_arm::LinfaGmm::new(p.clone(), seed))
        }
        ("kodama", "agglomerative") => {
            let p: AgglomerativeParams = job.params()?;
            Plan::clustering(move |_seed| kodama_arm::Agglomerative::new(p.clone()))
        }
        ("linfa" | "kodama", other) => {
            return Err(BenchError::usage(format!("algorithm: unknown algorithm {other:?} for clustering")))
        }
        (other, _) => {
            return Err(BenchError::usage(format!("framework: unknown framework {other:?} for clustering")))
        }
    })
}

fn main() {
    main_task(TaskInfo {
        frameworks: &[
            ("linfa", env!("MLBENCH_VERSION_LINFA_CLUSTERING")),
            ("kodama", env!("MLBENCH_VERSION_KODAMA")),
        ],
        plan,
        spec: include_str!("../../../configs/tasks/clustering.yaml"),
    })
}
