//! Scenario 5, long context: documents of 1K, 4K and 8K tokens (the real tokenizer on generated
//! business prose), one request at a time.
//!
//! `long_context/<engine>/ttft/context<N>` times prefill plus the first token;
//! `long_context/<engine>/total/context<N>` a request for `LLM_BENCH_NEW_TOKENS` (default 128),
//! whose token timestamps give decode speed at that context. Each result also carries the
//! engine's own memory figures (weights, KV cache allocated) after the case, so growth with
//! length can be read off the results.

use llm_bench::harness::{Harness, LatencyCase};
use llm_bench::workload::LONG_CONTEXTS;

pub fn main() -> anyhow::Result<()> {
    let h = Harness::new("long_context")?;
    let cases = LatencyCase::ttft_and_total(&h, &LONG_CONTEXTS, "context", h.new_tokens)?;
    for kind in h.engines() {
        if let Some((mut engine, load_time)) = h.load(kind) {
            h.measure_latency(engine.as_mut(), load_time, &cases);
        }
    }
    Ok(())
}
