//! Support vector machines in Rust: linfa-svm and libsvm-rs (Python twin:
//! python/tasks/classical/svm.py).
mod libsvm_arm;
mod linfa_arm;
mod params;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::harness::{main_task, Plan, TaskInfo};

use libsvm_arm::{Formulation, Libsvm};
use linfa_arm::{LinfaSvc, LinfaSvr, Penalty};
use params::{NuSvcParams, SvcParams, SvrParams};

/// One dispatch: (framework, algorithm); the parameters are read once per job.
fn plan(job: &Job) -> Result<Plan> {
    Ok(match (job.framework.as_str(), job.algorithm.as_str()) {
        ("linfa", "svc") => {
            let p: SvcParams = job.params()?;
            Plan::supervised(move |_seed| LinfaSvc::new(Penalty::C(p.c), p.kernel_params()))
        }
        ("libsvm-rs", "svc") => {
            let p: SvcParams = job.params()?;
            Plan::supervised(move |_seed| {
                Libsvm::new(Formulation::CSvc { c: p.c }, p.kernel_params()).with_probability(p.probability)
            })
        }
        ("linfa", "nusvc") => {
            let p: NuSvcParams = job.params()?;
            Plan::supervised(move |_seed| LinfaSvc::new(Penalty::Nu(p.nu), p.kernel_params()))
        }
        ("libsvm-rs", "nusvc") => {
            let p: NuSvcParams = job.params()?;
            Plan::supervised(move |_seed| {
                Libsvm::new(Formulation::NuSvc { nu: p.nu }, p.kernel_params())
                    .with_probability(p.probability)
            })
        }
        ("linfa", "svr") => {
            let p: SvrParams = job.params()?;
            Plan::supervised(move |_seed| LinfaSvr::new(p.c, p.epsilon, p.kernel_params()))
        }
        ("libsvm-rs", "svr") => {
            let p: SvrParams = job.params()?;
            Plan::supervised(move |_seed| {
                Libsvm::new(Formulation::EpsilonSvr { c: p.c, epsilon: p.epsilon }, p.kernel_params())
            })
        }
        ("linfa" | "libsvm-rs", "linearsvc") => return Err(BenchError::declared_unsupported(job)),
        ("linfa" | "libsvm-rs", other) => {
            return Err(BenchError::usage(format!("algorithm: unknown algorithm {other:?} for svm")))
        }
        (other, _) => {
            return Err(BenchError::usage(format!("framework: unknown framework {other:?} for svm")))
        }
    })
}

fn main() {
    main_task(TaskInfo {
        frameworks: &[
            ("linfa", env!("MLBENCH_VERSION_LINFA")),
            ("libsvm-rs", env!("MLBENCH_VERSION_LIBSVM_RS")),
        ],
        plan,
        spec: include_str!("../../../configs/tasks/svm.yaml"),
    })
}
