//! llm-bench: one harness, one statistical engine (Criterion), several LLM inference engines.
//!
//! Scenarios (in `benches/`) talk to engines only through [`engine::Engine`]; engines live one
//! per file in [`engines`]; fixtures make the models; [`workload`] holds the cases as data.

pub mod analysis;
pub mod batcher;
pub mod breakdown;
pub mod check;
pub mod compare;
pub mod cupti;
pub mod engine;
pub mod engines;
pub mod fixtures;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod harness;
pub mod html;
#[cfg(feature = "cuda")]
pub mod kernels;
pub mod kernels_cpu;
#[cfg(feature = "cuda")]
pub mod kernels_engines;
pub mod kernels_report;
pub mod measurement;
pub mod pacer;
pub mod plots;
pub mod report;
pub mod results;
pub mod scenarios;
pub mod stats;
pub mod telemetry;
pub mod gguf;
pub mod llama;
pub mod tokenizer;
pub mod workload;
