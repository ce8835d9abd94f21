//! Scenario 1, single-request latency: one request at a time, no other load.
//!
//! For each engine and prompt length (10, 50, 200 tokens) two Criterion figures:
//! `single_request/<engine>/ttft/prompt<N>` times a request for one new token (prefill and the
//! first token: time to first token), `single_request/<engine>/total/prompt<N>` a request for
//! `LLM_BENCH_NEW_TOKENS` (default 128). The raw per-request token timestamps of the `total`
//! runs give the inter-token latency and decode speed in the results file. The same cases run
//! last on `stub`, an engine that does no work: the harness's own overhead per request.

use llm_bench::harness::{Harness, LatencyCase};
use llm_bench::workload::SINGLE_REQUEST_PROMPTS;

pub fn main() -> anyhow::Result<()> {
    let h = Harness::new("single_request")?;
    let cases = LatencyCase::ttft_and_total(&h, &SINGLE_REQUEST_PROMPTS, "prompt", h.new_tokens)?;
    for kind in h.engines() {
        if let Some((mut engine, load_time)) = h.load(kind) {
            h.measure_latency(engine.as_mut(), load_time, &cases);
        }
    }
    // What the harness itself adds to a request: the same cases on an engine that does nothing.
    h.measure_latency(&mut llm_bench::engines::stub::Stub, std::time::Duration::ZERO, &cases);
    Ok(())
}
