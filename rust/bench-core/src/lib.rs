//! The Rust half of the mlbench harness: everything a task binary shares.
//!
//! A task declares its algorithms; this crate owns the job file, the loop over repetitions, the
//! clock, the records and the errors. Each module mirrors its namesake in `python/mlbench`.

pub mod agents;
pub mod config;
pub mod data;
pub mod encoding;
pub mod env;
pub mod error;
pub mod exploration;
pub mod generation;
pub mod gpu;
pub mod harness;
pub mod measure;
mod models;
pub mod nstep;
pub mod policy;
pub mod priorities;
pub mod record;
pub mod sampling;
pub mod spec;
pub mod stepping;
pub mod training;

pub use error::BenchError;
