//! Scenario 1, single-request latency: one request at a time, no other load.
//!
//! For each engine and prompt length (10, 50, 200 tokens) two Criterion figures:
//! `single_request/<engine>/ttft/prompt<N>` times a request for one new token (prefill and the
//! first token: time to first token), `single_request/<engine>/total/prompt<N>` a request for
//! `LLM_BENCH_NEW_TOKENS` (default 128). The raw per-request token timestamps of the `total`
//! runs give the inter-token latency and decode speed in the results file.

use anyhow::Result;
use criterion::BenchmarkId;
use llm_bench::engine::Engine;
use llm_bench::harness::{run_requests, Harness};
use llm_bench::measurement::{clock_for, Clock, EngineClock};
use llm_bench::results::RequestRecord;
use llm_bench::workload::SINGLE_REQUEST_PROMPTS;
use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("single_request: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let h = Harness::new("single_request")?;
    let prompts = SINGLE_REQUEST_PROMPTS
        .iter()
        .map(|&n| Ok((n, h.prompt(n)?)))
        .collect::<Result<Vec<_>>>()?;
    for kind in h.engines() {
        let Some((mut engine, _load_time)) = h.load(kind) else { continue };
        match clock_for(engine.as_ref()) {
            Clock::Wall(c) => bench_engine(&h, engine.as_mut(), c, &prompts),
            #[cfg(feature = "cuda")]
            Clock::CudaEvents(c) => bench_engine(&h, engine.as_mut(), c, &prompts),
        }
    }
    Ok(())
}

fn bench_engine<M: EngineClock>(h: &Harness, engine: &mut dyn Engine, clock: M, prompts: &[(usize, Vec<u32>)]) {
    let name = engine.info().name;
    let mut criterion = h.criterion(clock.clone());
    let mut group = criterion.benchmark_group(format!("single_request/{name}"));
    group.sampling_mode(Harness::sampling());
    for (len, prompt) in prompts {
        for (figure, new_tokens) in [("ttft", 1), ("total", h.new_tokens)] {
            let case = format!("{figure}/prompt{len}");
            // One request outside Criterion: warms the engine up and finds a failing case
            // before it can spoil a figure.
            if let Err(e) = run_requests(engine, std::slice::from_ref(prompt), new_tokens) {
                h.skip(&name, Some(&case), &format!("request failed: {e:#}"));
                continue;
            }
            let mut calls: Vec<Vec<RequestRecord>> = Vec::new();
            let mut failure = None;
            group.bench_function(BenchmarkId::new(figure, format!("prompt{len}")), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut records = Vec::new();
                    for _ in 0..iters {
                        let mark = clock.start();
                        match run_requests(engine, std::slice::from_ref(prompt), new_tokens) {
                            Ok(t) => {
                                total += clock.end(mark);
                                records.extend(t.records("single_request", &name, &case, calls.len(), *len));
                            }
                            Err(e) => {
                                failure.get_or_insert(e);
                            }
                        }
                    }
                    calls.push(records);
                    total
                })
            });
            if let Some(e) = failure {
                h.skip(&name, Some(&case), &format!("request failed during measurement: {e:#}"));
                continue;
            }
            // Criterion's measurement phase is its last `samples` calls; earlier ones warmed up.
            let keep = calls.len().saturating_sub(h.samples());
            let records: Vec<RequestRecord> = calls.into_iter().skip(keep).flatten().collect();
            h.finish_case(engine, clock.label(), &case, records, Default::default());
        }
    }
    group.finish();
    criterion.final_summary();
}
