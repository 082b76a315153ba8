//! The job file (configs/schema/job.schema.json), parsed once into a checked `Job`.
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{BenchError, Result};

/// The job file's schema version (configs/schema/job.schema.json).
pub const SCHEMA_VERSION: u32 = 3;

/// One cell of the matrix, as written by `mlbench run`. Unknown keys are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub schema_version: u32,
    pub job_id: String,
    pub run: String,
    pub task: String,
    pub domain: String,
    pub language: String,
    pub framework: String,
    pub algorithm: String,
    pub dataset: String,
    pub datasets_dir: PathBuf,
    pub hyperparameters: serde_json::Map<String, serde_json::Value>,
    pub hardware_profile: String,
    pub device: String,
    pub threads: u32,
    pub precision: String,
    pub repetitions: u32,
    pub warmup: u32,
    pub seed: u64,
    pub timeout_s: f64,
    pub predictions_dir: PathBuf,
    /// A phase call shorter than this is timed as a sample of k calls (k found in the first warm-up).
    pub min_sample_s: f64,
    /// Task processes the runner plans for this job (informational: the process index is `--process`).
    pub processes: u32,
    /// Training tasks: the shared initial weights and batch orders (`init-SEED.safetensors`,
    /// `order-SEED.npy`); empty for other tasks.
    #[serde(default)]
    pub fixtures_dir: PathBuf,
    /// Training tasks: the batch sizes inference latency is timed at.
    #[serde(default)]
    pub inference_batch_sizes: Vec<usize>,
    /// `cv_folds: k` (0: none): each repetition cross-validates over `folds_file`, the fold of
    /// each training row, written by the runner (python/mlbench/folds.py).
    #[serde(default)]
    pub cv_folds: u32,
    #[serde(default)]
    pub folds_file: PathBuf,
}

/// The job schema Python checks with (configs/schema/job.schema.json), compiled in.
const JOB_SCHEMA: &str = include_str!("../../../configs/schema/job.schema.json");

/// Checks a job document against the job schema with the `jsonschema` crate, as Python's loader
/// does with Python's jsonschema: the first error by field, named like Python names it.
fn check_schema(document: &serde_json::Value) -> std::result::Result<(), String> {
    let schema: serde_json::Value =
        serde_json::from_str(JOB_SCHEMA).map_err(|e| format!("job schema: {e}"))?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| format!("job schema: {e}"))?;
    let mut errors: Vec<(String, String)> = validator
        .iter_errors(document)
        .map(|e| (e.instance_path().to_string().trim_start_matches('/').replace('/', "."), e.to_string()))
        .collect();
    errors.sort();
    match errors.into_iter().next() {
        None => Ok(()),
        Some((field, message)) if field.is_empty() => Err(format!("(top level): {message}")),
        Some((field, message)) => Err(format!("{field}: {message}")),
    }
}

impl Job {
    /// Read and check a job file: the same rules as the schema, so both languages refuse alike.
    pub fn load(path: &Path) -> Result<Job> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", path.display())))?;
        let in_file = |message: String| BenchError::usage(format!("{}: {message}", path.display()));
        let document: serde_json::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| in_file(e.to_string()))?;
        check_schema(&document).map_err(in_file)?;
        let job: Job = serde_json::from_value(document).map_err(|e| in_file(e.to_string()))?;
        job.check().map_err(in_file)?;
        Ok(job)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!("schema_version: expected {SCHEMA_VERSION}, got {}", self.schema_version));
        }
        if self.job_id.len() != 16 || !self.job_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("job_id: expected 16 hex digits, got {:?}", self.job_id));
        }
        if self.language != "rust" {
            return Err(format!("language: this is a Rust task, job says {:?}", self.language));
        }
        if self.threads < 1 {
            return Err("threads: must be at least 1".into());
        }
        if self.repetitions < 1 {
            return Err("repetitions: must be at least 1".into());
        }
        if self.timeout_s.is_nan() || self.timeout_s <= 0.0 {
            return Err("timeout_s: must be positive".into());
        }
        if !self.min_sample_s.is_finite() || self.min_sample_s < 0.0 {
            return Err("min_sample_s: must be a finite number >= 0".into());
        }
        if self.processes < 1 {
            return Err("processes: must be at least 1".into());
        }
        // YAML's .nan and .inf cannot become JSON numbers: they arrive here as null.
        if let Some((key, _)) = self.hyperparameters.iter().find(|(_, v)| v.is_null()) {
            return Err(format!(
                "hyperparameters.{key}: not a finite number, string or boolean (NaN, infinities and null are refused)"
            ));
        }
        Ok(())
    }

    /// Deserialize this job's hyperparameters into an algorithm's own typed parameters.
    /// Errors name the offending key (`hyperparameters.n_clusters of kmeans: invalid value ...`).
    pub fn params<P: DeserializeOwned>(&self) -> Result<P> {
        // Through JSON text: serde_path_to_error tracks keys in serde_json's reader.
        let text = serde_json::Value::Object(self.hyperparameters.clone()).to_string();
        let mut reader = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { format!(".{path}") };
            BenchError::usage(format!("hyperparameters{field} of {}: {}", self.algorithm, e.inner()))
        })
    }

    /// Warm-ups come first, then measured repetitions; indices count within a process, the seed is
    /// seed + i in every process.
    pub fn n_records(&self) -> u32 {
        self.warmup + self.repetitions
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const JOB: &str = "schema_version: 3\njob_id: 0123456789abcdef\nrun: t\ntask: regression\n\
domain: classical\nlanguage: rust\nframework: linfa\nalgorithm: ridge\ndataset: d\ndatasets_dir: /tmp\n\
hyperparameters: {alpha: 1.0}\nhardware_profile: cpu\ndevice: cpu\nthreads: 1\nprecision: float64\n\
repetitions: 2\nwarmup: 1\nseed: 4\ntimeout_s: 10\npredictions_dir: /tmp\nmin_sample_s: 0.05\nprocesses: 5\n";

    fn load(text: &str) -> Result<Job> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(&path, text).unwrap();
        Job::load(&path)
    }

    #[test]
    fn reads_a_valid_job() {
        let job = load(JOB).unwrap();
        assert_eq!(job.n_records(), 3);
        assert_eq!(job.hyperparameters["alpha"], 1.0);
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = load(&format!("{JOB}colour: red\n")).unwrap_err();
        assert!(
            err.to_string().contains("(top level): Additional properties are not allowed ('colour'"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn rejects_negative_repetitions() {
        let err = load(&JOB.replace("repetitions: 2", "repetitions: -2")).unwrap_err();
        assert!(err.to_string().contains("repetitions"), "{err}");
    }

    #[test]
    fn rejects_a_python_job() {
        let err = load(&JOB.replace("language: rust", "language: python")).unwrap_err();
        assert!(err.to_string().contains("language"), "{err}");
    }
}

#[cfg(test)]
mod params_tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        n_clusters: usize,
        tol: f64,
    }

    #[test]
    fn errors_name_the_key() {
        let mut job: Job = serde_yaml_ng::from_str(tests::JOB).unwrap();
        job.hyperparameters = serde_json::from_str(r#"{"n_clusters": -3, "tol": 0.1}"#).unwrap();
        let err = job.params::<Params>().unwrap_err().to_string();
        assert!(err.contains("hyperparameters.n_clusters"), "{err}");
    }
}
