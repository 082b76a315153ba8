//! Clustering in Rust: linfa-clustering and kodama (Python twin:
//! python/tasks/classical/clustering.py).
mod kodama_arm;
mod linfa_arm;
mod params;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::harness::{main_task, Plan, TaskInfo};

use params::{AgglomerativeParams, Covariance, DbscanParams, GaussianMixtureParams, KMeansParams};

const LINFA_NO_EUCLIDEAN_LINKAGE: &str = "linfa-hierarchical clusters the similarities of a kernel, not \
Euclidean distances, so its ward/complete/average are not scikit-learn's; this task's agglomerative \
clustering runs on the kodama framework";
const KODAMA_ONLY_LINKAGE: &str = "kodama implements hierarchical (agglomerative) clustering only";

/// One dispatch: (framework, algorithm); the parameters are read once per job, the seed per
/// repetition.
fn plan(job: &Job) -> Result<Plan> {
    Ok(match (job.framework.as_str(), job.algorithm.as_str()) {
        (_, "kmeans") | (_, "dbscan") | (_, "gaussian_mixture") if job.framework == "kodama" => {
            validate(job)?;
            return Err(BenchError::unsupported(KODAMA_ONLY_LINKAGE));
        }
        ("linfa", "agglomerative") => {
            job.params::<AgglomerativeParams>()?;
            return Err(BenchError::unsupported(LINFA_NO_EUCLIDEAN_LINKAGE));
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
                return Err(BenchError::unsupported(format!(
                    "linfa's GaussianMixtureModel has full covariance matrices only, not {:?}",
                    p.covariance_type
                )));
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

/// Typed check of a job's parameters even where the framework then declines the algorithm.
fn validate(job: &Job) -> Result<()> {
    match job.algorithm.as_str() {
        "kmeans" => job.params::<KMeansParams>().map(drop),
        "dbscan" => job.params::<DbscanParams>().map(drop),
        _ => job.params::<GaussianMixtureParams>().map(drop),
    }
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
