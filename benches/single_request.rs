//! Scenario 1, single-request latency: one request at a time, no other load.
//!
//! For each engine and prompt length (10, 50, 200 tokens) two Criterion figures:
//! `single_request/<engine>/ttft/prompt<N>` times a request for one new token (prefill and the
//! first token: time to first token), `single_request/<engine>/total/prompt<N>` a request for
//! `LLM_BENCH_NEW_TOKENS` (quick profile 32, full 128). The raw per-request token timestamps of the `total`
//! runs give the inter-token latency and decode speed in the results file. The same cases run
//! last on `stub`, an engine that does no work: the harness's own overhead per request.
//!
//! The cases are data (`llm_bench::run::workload`); the plan that measures them is shared with
//! `llm-bench suite` (`llm_bench::run::scenarios`).

pub fn main() -> anyhow::Result<()> {
    llm_bench::run::scenarios::bench(llm_bench::run::scenarios::Scenario::SingleRequest)
}
