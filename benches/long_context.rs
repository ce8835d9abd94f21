//! Scenario 5, long context: documents of 1K, 4K and 8K tokens (the real tokenizer on generated
//! business prose), one request at a time.
//!
//! `long_context/<engine>/ttft/context<N>` times prefill plus the first token;
//! `long_context/<engine>/total/context<N>` a request for `LLM_BENCH_NEW_TOKENS` (quick profile 32, full 128),
//! whose token timestamps give decode speed at that context. Each result also carries the
//! engine's own memory figures (weights, KV cache allocated) after the case, so growth with
//! length can be read off the results.
//!
//! The cases are data (`llm_bench::run::workload`); the plan that measures them is shared with
//! `llm-bench suite` (`llm_bench::run::scenarios`).

pub fn main() -> anyhow::Result<()> {
    llm_bench::run::scenarios::bench(llm_bench::run::scenarios::Scenario::LongContext)
}
