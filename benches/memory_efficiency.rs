//! Scenario 4, memory efficiency: the 1B and (full profile) 3B models at batches of 1, 8 and 32 (128-token
//! prompts, `LLM_BENCH_NEW_TOKENS` new tokens), as `memory_efficiency/<engine>/<model>/batch<N>`.
//!
//! Per case: peak and mean GPU memory in use (NVML, sampled every 100 ms), the engine's own
//! figures (weights, KV cache allocated), output tok/s, and model bandwidth utilisation: bytes a
//! decode step must read (all weights once + the batch's KV cache) × decode steps per second ÷
//! the device's copy bandwidth, measured once per run with CUDA events (feature `cuda`).
//! `LLM_BENCH_MODEL`, if set, replaces the two generated models.
//!
//! The cases are data (`llm_bench::run::workload`); the plan that measures them is shared with
//! `llm-bench suite` (`llm_bench::run::scenarios`).

pub fn main() -> anyhow::Result<()> {
    llm_bench::run::scenarios::bench(llm_bench::run::scenarios::Scenario::MemoryEfficiency)
}
