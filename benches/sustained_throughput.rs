//! Scenario 2, sustained throughput: batches of 32 and 64 different 128-token prompts, each
//! request generating `LLM_BENCH_NEW_TOKENS` (default 128), run back to back for the profile's
//! duration (quick: 20 s, full: 5 minutes) as `sustained_throughput/<engine>/batch/<N>`.
//!
//! Criterion times each batch (and shows output tok/s); the results add output tok/s per batch
//! and the background telemetry of the measured part of the run, sampled every 100 ms: GPU
//! utilisation, memory, power, SM clock and temperature (NVML, feature `cuda`), the process's
//! CPU use and resident memory — each with mean, min and max.

use llm_bench::harness::{Harness, ThroughputCase};
use llm_bench::workload::{prompts, SUSTAINED_BATCHES, SUSTAINED_PROMPT};

pub fn main() -> anyhow::Result<()> {
    let h = Harness::new("sustained_throughput")?;
    let cases = SUSTAINED_BATCHES
        .iter()
        .map(|&n| {
            Ok(ThroughputCase {
                figure: "batch".into(),
                label: n.to_string(),
                prompts: prompts(&h.tokenizer, h.config.bos_token, SUSTAINED_PROMPT, n)?,
                new_tokens: h.new_tokens,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for kind in h.engines() {
        if let Some((mut engine, load_time)) = h.load(kind) {
            h.measure_throughput(engine.as_mut(), load_time, &cases, h.profile.sustained(), None);
        }
    }
    Ok(())
}
