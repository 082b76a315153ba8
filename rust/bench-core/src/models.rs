//! The process loop the model protocols share (`generate`: crate::generation; `encode`:
//! crate::encoding): the job checked against the spec, its parameters read, the dataset verified,
//! an `unsupported` record where the spec says so, else the parameters checked against the set,
//! the framework set up, the set and its model loaded once (the `load` timing), and one record per
//! repetition. Mirrors the Generate and Encode branches of python/mlbench/harness.py.
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::config::Job;
use crate::data;
use crate::env;
use crate::error::{BenchError, Result};
use crate::harness::{checked_job, in_job, process_timings, Args};
use crate::measure::PhaseTimer;
use crate::record::Record;

/// Loads a model set and its model.
pub(crate) type LoadModel<'a, D, M> = &'a dyn Fn(&Job) -> Result<(D, Box<M>)>;
/// Measures one repetition of a model set's job into its record.
pub(crate) type MeasureModel<'a, P, D, M> =
    &'a mut dyn FnMut(&Job, &D, &mut M, &P, u32, &mut Record) -> Result<()>;

/// What a model protocol gives the loop.
pub(crate) struct ModelProcess<'a, P, D, M: ?Sized> {
    pub frameworks: &'static [(&'static str, &'static str)],
    pub spec: &'static str,
    pub setup: fn(&Job) -> Result<BTreeMap<String, u64>>,
    /// The job's parameters against the set's meta.json (before anything loads).
    pub check: &'a dyn Fn(&Job, &P) -> Result<()>,
    /// The set and its model (timed as `load`).
    pub load: LoadModel<'a, D, M>,
    /// One repetition into its record.
    pub measure: MeasureModel<'a, P, D, M>,
}

pub(crate) fn run_model_process<P: DeserializeOwned, D, M: ?Sized>(
    args: &Args,
    startup: Option<f64>,
    process: ModelProcess<'_, P, D, M>,
) -> Result<()> {
    let (job, version, spec) = checked_job(args, process.frameworks, &[process.spec])?;
    let in_job = in_job(&args.config);
    let params: P = job.params().map_err(in_job)?;
    let mut env = env::capture(process.frameworks);
    let digest = data::verify(&job.dataset, &job.datasets_dir).map_err(in_job)?;
    if let Some(reason) = crate::spec::unsupported_reason(spec, &job)? {
        return Record::unsupported(&job, args.process, version, &digest, &env, reason).append_to(&args.out);
    }
    (process.check)(&job, &params).map_err(in_job)?;
    env.framework_threads = (process.setup)(&job).map_err(in_job)?;
    let mut load_timer = PhaseTimer::default();
    let (data, mut model) = load_timer
        .calls("load", 1, None, || Ok::<_, BenchError>(()), |_| (process.load)(&job))
        .map_err(in_job)?;
    let process_timings = process_timings(startup, &load_timer);
    for repetition in 0..job.n_records() {
        let mut record = Record::new(&job, args.process, repetition, version, &digest, &env);
        (process.measure)(&job, &data, model.as_mut(), &params, repetition, &mut record).map_err(in_job)?;
        record.process_timings_s = process_timings.clone();
        record.append_to(&args.out)?;
    }
    Ok(())
}
