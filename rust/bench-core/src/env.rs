//! The `env` block of every record: machine, OS, runtime, libraries, thread settings, commit, build.
use std::collections::BTreeMap;

use serde::Serialize;

const SCHEDULER_VARIABLES: [&str; 4] =
    ["SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME"];
const THREAD_VARIABLES: [&str; 6] = [
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "GLIBC_TUNABLES",
];

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub profile: &'static str,
    pub rustflags: &'static str,
    pub target_features: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Env {
    pub cpu_model: Option<String>,
    pub cores: Option<usize>,
    pub os: String,
    pub runtime: String,
    pub libraries: BTreeMap<String, String>,
    pub thread_env: BTreeMap<String, String>,
    pub git_commit: Option<String>,
    pub build: Build,
    /// Which cluster job and node measured this (absent outside a scheduler).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub scheduler: BTreeMap<String, String>,
    /// Training tasks: the thread count each framework reports after the job's was applied.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub framework_threads: BTreeMap<String, u64>,
    /// Deep-learning tasks on libtorch: the kernel settings it reports after the job's switches
    /// (`cudnn_benchmark`, `tf32`; configs/tasks/cnn.yaml).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kernels: BTreeMap<String, String>,
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Same count as Python's os.cpu_count(): online CPUs, not the affinity mask.
fn online_cpus() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

fn os_release() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {}", release.trim())
}

fn variables(names: &[&str]) -> BTreeMap<String, String> {
    names.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect()
}

/// Capture the environment; `libraries` are the task's framework crates and their versions.
pub fn capture(libraries: &[(&str, &str)]) -> Env {
    Env {
        cpu_model: cpu_model(),
        cores: online_cpus(),
        os: os_release(),
        runtime: env!("MLBENCH_RUSTC_VERSION").to_string(),
        libraries: libraries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        thread_env: variables(&THREAD_VARIABLES),
        // The runner passes its commit, so both languages report the same one.
        git_commit: std::env::var("MLBENCH_GIT_COMMIT").ok().filter(|c| !c.is_empty()),
        build: Build {
            profile: env!("MLBENCH_PROFILE"),
            rustflags: env!("MLBENCH_RUSTFLAGS"),
            target_features: env!("MLBENCH_TARGET_FEATURES"),
        },
        scheduler: variables(&SCHEDULER_VARIABLES),
        framework_threads: BTreeMap::new(),
        kernels: BTreeMap::new(),
    }
}
