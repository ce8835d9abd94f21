//! What runs a case: the scenarios as plans, the harness that measures them through the `Engine`
//! trait, the batcher and load generation, the workloads as data, the pacer that fits a run into
//! its time budget.
//! May use: `crate::engine`, the engine registry (`crate::engines`), `crate::model`,
//! `crate::measure`, `crate::results`, `crate::report`; scenarios talk to engines only through
//! `Engine`.

pub mod batcher;
pub mod harness;
pub mod interrupt;
pub mod pacer;
pub mod panics;
pub mod plan;
pub mod rate_search;
pub mod requests;
pub mod scenarios;
pub mod workload;
