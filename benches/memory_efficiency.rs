//! Scenario 4, memory efficiency: the 1B and 3B models at batches of 1, 8 and 32 (128-token
//! prompts, `LLM_BENCH_NEW_TOKENS` new tokens), as `memory_efficiency/<engine>/<model>/batch<N>`.
//!
//! Per case: peak and mean GPU memory in use (NVML, sampled every 100 ms), the engine's own
//! figures (weights, KV cache allocated), output tok/s, and model bandwidth utilisation: bytes a
//! decode step must read (all weights once + the batch's KV cache) × decode steps per second ÷
//! the device's copy bandwidth, measured once per run with CUDA events (feature `cuda`).
//! `LLM_BENCH_MODEL`, if set, replaces the two generated models.

use llm_bench::fixtures::Fixture;
use llm_bench::harness::{Harness, ThroughputCase};
use llm_bench::workload::{prompts, MEMORY_BATCHES, SUSTAINED_PROMPT};
use std::time::Duration;

pub fn main() -> anyhow::Result<()> {
    let models = match std::env::var("LLM_BENCH_MODEL") {
        Ok(v) if !v.is_empty() => vec![("model", llm_bench::fixtures::benchmark_model()?)],
        _ => vec![("1b", Fixture::Llama1B.files()?), ("3b", Fixture::Llama3B.files()?)],
    };
    #[allow(unused_mut)] // set only when built with `cuda`
    let mut bandwidth = None;
    for (size, files) in models {
        let h = Harness::for_model("memory_efficiency", files)?;
        #[cfg(feature = "cuda")]
        if let (None, Some(gpu)) = (bandwidth, h.gpu) {
            bandwidth = llm_bench::gpu::copy_bandwidth(gpu)
                .inspect(|b| eprintln!("[llm-bench] measured copy bandwidth: {:.0} GB/s (read + write)", b / 1e9))
                .inspect_err(|e| eprintln!("[llm-bench] cannot measure copy bandwidth: {e:#}"))
                .ok();
        }
        let cases = MEMORY_BATCHES
            .iter()
            .map(|&n| {
                Ok(ThroughputCase {
                    figure: size.to_string(),
                    label: format!("batch{n}"),
                    prompts: prompts(&h.tokenizer, h.config.bos_token, SUSTAINED_PROMPT, n)?,
                    new_tokens: h.new_tokens,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for kind in h.engines() {
            if let Some((mut engine, load_time)) = h.load(kind) {
                h.measure_throughput(engine.as_mut(), load_time, &cases, Duration::from_secs(5), bandwidth);
            }
        }
    }
    Ok(())
}
