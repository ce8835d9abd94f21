//! Scenario 2, sustained throughput: batches of 32 and 64 different 128-token prompts, each
//! request generating `LLM_BENCH_NEW_TOKENS` (quick profile 32, full 128), run back to back for the profile's
//! duration (quick: 5 s, full: 5 minutes) as `sustained_throughput/<engine>/batch/<N>`.
//!
//! Criterion times each batch (and shows output tok/s); the results add output tok/s per batch
//! and the background telemetry of the measured part of the run, sampled every 100 ms: GPU
//! utilisation, memory, power, SM clock and temperature (NVML, feature `cuda`), the process's
//! CPU use and resident memory — each with mean, min and max.
//!
//! The cases are data (`llm_bench::run::workload`); the plan that measures them is shared with
//! `llm-bench suite` (`llm_bench::run::scenarios`).

pub fn main() -> anyhow::Result<()> {
    llm_bench::run::scenarios::bench(llm_bench::run::scenarios::Scenario::SustainedThroughput)
}
