//! Scenario 3, concurrent load: closed-loop clients (1, 10, 25, 50, 100, each sending its next
//! request as soon as the previous one completes) and an open-loop Poisson sweep (2, 8, 32
//! requests per second), 128-token prompts, `LLM_BENCH_NEW_TOKENS` new tokens each.
//!
//! Engines with a scheduler of their own (mistral.rs) get every request directly, one client
//! thread per request in flight (`llm_bench::run::batcher::serve_scheduled`); the others are served by
//! the suite's one shared batcher (`llm_bench::run::batcher::Batcher`, the same code for all of them). Criterion's figure
//! (`concurrent_load/<engine>/clients/<N>`, `.../poisson/<rate>`) is the mean end-to-end response
//! time; the results add per-request TTFT and inter-token latency with p50/p90/p99, output tok/s
//! and the mean batch size. Scaling versus 1 client is read from the `clients/1` case.
//! Timed by the host clock for every engine: a request's latency includes its queueing.
//! After the 10-client case comes the rate search, per latency bound: the highest Poisson rate
//! whose p99 TTFT and time per output token stay within it (`concurrent_load/<engine>/max_rate/<bound>`).
//!
//! The cases are data (`llm_bench::run::workload`); the plan that measures them is shared with
//! `llm-bench suite` (`llm_bench::run::scenarios`).

pub fn main() -> anyhow::Result<()> {
    llm_bench::run::scenarios::bench(llm_bench::run::scenarios::Scenario::ConcurrentLoad)
}
