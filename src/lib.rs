//! llm-bench: one harness, one statistical engine (Criterion), several LLM inference engines.
//!
//! The map (each folder's `mod.rs` says what lives there and what it may use):
//!
//! - [`engine`]: the one seam between scenarios and engines (the trait, requests, token events);
//! - [`engines`]: one adapter per engine, the registry of which are built, the agreement check;
//! - [`model`]: GGUF files, fixtures, the tokenizer, the reference Llama math;
//! - [`run`]: scenarios as plans, the harness, batcher, workloads and pacer: what runs a case;
//! - [`measure`]: Criterion measurements (wall, CUDA events), GPU and host telemetry, statistics;
//! - [`results`]: the results file, the one truth of a run, written by `run`, read by `report`;
//! - [`report`]: results file -> summaries (HTML, Markdown, JSON), analysis, compare;
//! - [`kernels`]: the suite's CUDA kernels, their references, and the engines' decode steps.
//!
//! Dependencies point one way: engines know nothing of scenarios or reports; reports read results
//! files only; measurement knows no engine; scenarios talk to engines only through `Engine`.

pub mod engine;
pub mod engines;
pub mod kernels;
pub mod measure;
pub mod model;
pub mod report;
pub mod results;
pub mod run;
