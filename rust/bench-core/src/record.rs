//! One record per repetition (configs/schema/record.schema.json), appended as a flushed JSON line.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::config::{Job, SCHEMA_VERSION};
use crate::env::Env;
use crate::error::{BenchError, Result};
use crate::measure::Faults;

#[derive(Debug, Clone, Serialize)]
pub struct Solver {
    pub name: String,
    pub stopping_rule: String,
    pub n_iter: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub peak_rss_mb: Option<f64>,
    pub cpu_time_s: Option<f64>,
    /// Resident set size when the repetition started: the baseline the peak includes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_start_mb: Option<f64>,
    /// Training tasks: GPU figures, null (never 0) where no GPU was used.
    #[serde(flatten)]
    pub gpu: Option<GpuResources>,
}

impl Resources {
    /// A CPU repetition's figures: the process's peak RSS now, its CPU seconds and its RSS at the start.
    pub fn on_cpu(cpu_time_s: f64, rss_start_mb: Option<f64>) -> Self {
        Resources {
            peak_rss_mb: crate::measure::peak_rss_mb(),
            cpu_time_s: Some(cpu_time_s),
            rss_start_mb,
            gpu: None,
        }
    }

    /// A model repetition's figures on the job's device: as `on_cpu`, with the GPU figures NVML
    /// sampled (all null on a CPU; the framework's own peak is null, as tch and candle report none).
    pub fn with_gpu(cpu_time_s: f64, rss_start_mb: Option<f64>, gpu: GpuResources) -> Self {
        Resources { gpu: Some(gpu), ..Resources::on_cpu(cpu_time_s, rss_start_mb) }
    }
}

/// Training tasks: GPU figures (crate::gpu), null (never 0) on a CPU or where they cannot be read.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GpuResources {
    /// The framework's own peak device memory (null where the framework reports none).
    pub gpu_peak_mem_mb: Option<f64>,
    /// NVML, sampled: peak device memory in use, mean utilisation, energy counter end minus start.
    pub gpu_mem_used_peak_mb: Option<f64>,
    pub gpu_util_percent: Option<f64>,
    pub gpu_energy_j: Option<f64>,
    pub gpu_samples: Option<u64>,
}

/// Time-to-accuracy: the first epoch whose test accuracy reached `target`, and the training
/// seconds until then (both null if none did).
#[derive(Debug, Clone, Serialize)]
pub struct TimeToAccuracy {
    pub target: f64,
    pub epochs: Option<u32>,
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub schema_version: u32,
    pub run: String,
    pub job_id: String,
    /// Which of the job's task processes measured this.
    pub process: u32,
    /// Index within the process, warm-ups first.
    pub repetition: u32,
    pub warmup: bool,
    pub task: String,
    pub domain: String,
    pub language: String,
    pub framework: String,
    pub framework_version: Option<String>,
    pub algorithm: String,
    pub dataset: String,
    pub dataset_sha256: Option<String>,
    pub hyperparameters: serde_json::Map<String, serde_json::Value>,
    pub hardware_profile: String,
    pub device: String,
    pub threads: u32,
    pub precision: String,
    pub seed: u64,
    /// Present when the job cross-validated over k folds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv_folds: Option<u32>,
    pub started_at: String,
    /// Seconds per call of each phase (a sample of `inner_loops` calls, divided).
    pub timings_s: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inner_loops: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub page_faults: BTreeMap<String, Faults>,
    /// Once per process: `startup` (spawn to harness entry) and `load`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub process_timings_s: BTreeMap<String, Option<f64>>,
    /// Cross-validated jobs: seconds per call of each phase per fold (`timings_s` holds their sum).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fold_timings_s: BTreeMap<String, Vec<f64>>,
    pub throughput: BTreeMap<String, f64>,
    pub metrics: BTreeMap<String, f64>,
    /// Named output files the judge reads (`predictions`; `scores` for SVM classifiers; training
    /// tasks add `logits` and `loss_curve`), each an .npy file.
    pub artifacts: BTreeMap<String, String>,
    /// Values derived from the data, e.g. gamma for `scale`, recorded as the number used.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<Solver>,
    pub resources: Resources,
    /// Task-reported series, one value per epoch.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Vec<f64>>,
    /// Work per phase (samples), from which throughput is derived.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_accuracy: Option<TimeToAccuracy>,
    pub status: String,
    pub error: Option<String>,
    pub env: Env,
}

impl Record {
    /// A record with the job's identity filled in, status `ok` and empty measurements.
    pub fn new(
        job: &Job,
        process: u32,
        repetition: u32,
        framework_version: &str,
        dataset_sha256: &str,
        env: &Env,
    ) -> Self {
        Record {
            schema_version: SCHEMA_VERSION,
            run: job.run.clone(),
            job_id: job.job_id.clone(),
            process,
            repetition,
            warmup: repetition < job.warmup,
            task: job.task.clone(),
            domain: job.domain.clone(),
            language: job.language.clone(),
            framework: job.framework.clone(),
            framework_version: Some(framework_version.to_string()),
            algorithm: job.algorithm.clone(),
            dataset: job.dataset.clone(),
            dataset_sha256: Some(dataset_sha256.to_string()),
            hyperparameters: job.hyperparameters.clone(),
            hardware_profile: job.hardware_profile.clone(),
            device: job.device.clone(),
            threads: job.threads,
            precision: job.precision.clone(),
            seed: job.seed + u64::from(repetition),
            cv_folds: (job.cv_folds > 0).then_some(job.cv_folds),
            started_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            timings_s: BTreeMap::new(),
            inner_loops: BTreeMap::new(),
            page_faults: BTreeMap::new(),
            process_timings_s: BTreeMap::new(),
            fold_timings_s: BTreeMap::new(),
            throughput: BTreeMap::new(),
            metrics: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            resolved: BTreeMap::new(),
            solver: None,
            resources: Resources { peak_rss_mb: None, cpu_time_s: None, rss_start_mb: None, gpu: None },
            series: BTreeMap::new(),
            counts: BTreeMap::new(),
            time_to_accuracy: None,
            status: "ok".into(),
            error: None,
            env: env.clone(),
        }
    }

    /// The one record of a job whose framework lacks what it asks for (never a substitute).
    pub fn unsupported(
        job: &Job,
        process: u32,
        framework_version: &str,
        dataset_sha256: &str,
        env: &Env,
        reason: String,
    ) -> Self {
        let mut record = Record::new(job, process, 0, framework_version, dataset_sha256, env);
        record.status = "unsupported".into();
        record.error = Some(reason);
        record
    }

    /// Writes one named artifact (.npy) beside the job's other outputs and lists it in `artifacts`.
    pub fn save_artifact<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
        &mut self,
        job: &Job,
        name: &str,
        array: &ndarray::Array<A, D>,
    ) -> Result<()> {
        std::fs::create_dir_all(&job.predictions_dir)
            .map_err(|e| BenchError::run(format!("{}: {e}", job.predictions_dir.display())))?;
        let path = job.predictions_dir.join(format!(
            "{}-{}-p{}-{}.{name}.npy",
            job.job_id, job.language, self.process, self.repetition
        ));
        ndarray_npy::write_npy(&path, array)
            .map_err(|e| BenchError::run(format!("{}: {e}", path.display())))?;
        self.artifacts.insert(name.to_string(), path.display().to_string());
        Ok(())
    }

    /// Sets the work done per phase and derives each phase's throughput from it and `timings_s`.
    pub fn set_counts(&mut self, counts: BTreeMap<String, u64>) {
        for (phase, n) in &counts {
            if let Some(&seconds) = self.timings_s.get(phase) {
                self.throughput.insert(format!("{phase}_samples_per_s"), *n as f64 / seconds.max(1e-12));
            }
        }
        self.counts = counts;
    }

    /// Append as one line and flush, so a crash loses at most the line being written.
    pub fn append_to(&self, path: &Path) -> Result<()> {
        let line = serde_json::to_string(self).map_err(|e| BenchError::run(format!("record: {e}")))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| BenchError::usage(format!("{}: cannot open for append: {e}", path.display())))?;
        writeln!(file, "{line}")
            .and_then(|_| file.flush())
            .map_err(|e| BenchError::run(format!("{}: cannot write: {e}", path.display())))
    }
}
