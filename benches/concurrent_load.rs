//! Scenario 3, concurrent load: closed-loop clients (1, 10, 25, 50, 100, each sending its next
//! request as soon as the previous one completes) and an open-loop Poisson sweep (2, 8, 32
//! requests per second), 128-token prompts, `LLM_BENCH_NEW_TOKENS` new tokens each.
//!
//! Engines with a scheduler of their own (mistral.rs) get every request directly, one client
//! thread per request in flight (`llm_bench::batcher::serve_scheduled`); the others are served by
//! the suite's one shared batcher (`llm_bench::batcher::Batcher`, the same code for all of them). Criterion's figure
//! (`concurrent_load/<engine>/clients/<N>`, `.../poisson/<rate>`) is the mean end-to-end response
//! time; the results add per-request TTFT and inter-token latency with p50/p90/p99, output tok/s
//! and the mean batch size. Scaling versus 1 client is read from the `clients/1` case.
//! Timed by the host clock for every engine: a request's latency includes its queueing.

use llm_bench::batcher::{Batcher, Load};
use llm_bench::harness::{ConcurrentCase, Harness};
use llm_bench::workload::{prompts, CONCURRENT_CLIENTS, MAX_BATCH, POISSON_RATES, SUSTAINED_PROMPT};

pub fn main() -> anyhow::Result<()> {
    let h = Harness::new("concurrent_load")?;
    eprintln!("[llm-bench] engines without a scheduler are served through: {}, max batch {MAX_BATCH}", Batcher::NAME);
    let pool = prompts(&h.tokenizer, h.config.bos_token, SUSTAINED_PROMPT, 100)?;
    let mut cases: Vec<ConcurrentCase> = CONCURRENT_CLIENTS
        .iter()
        .map(|&n| ConcurrentCase {
            figure: "clients".into(),
            label: n.to_string(),
            load: Load::ClosedLoop { clients: n },
            requests_per_iter: n,
        })
        .collect();
    cases.extend(POISSON_RATES.iter().map(|&rate| ConcurrentCase {
        figure: "poisson".into(),
        label: format!("{rate}rps"),
        load: Load::Poisson { rate, seed: 0x5eed },
        // One iteration is a 5-second window of arrivals, so requests queue and share batches
        // as they would under that rate (one request per iteration would never queue).
        requests_per_iter: (rate * 5.0).ceil() as usize,
    }));
    let batcher = Batcher { max_batch: MAX_BATCH };
    for kind in h.engines() {
        if let Some((mut engine, load_time)) = h.load(kind) {
            if let Some(own) = engine.scheduled() {
                eprintln!("[llm-bench] {} serves requests through {}", kind.name(), own.scheduler());
            }
            h.measure_concurrent(engine.as_mut(), load_time, &cases, &pool, &batcher);
        }
    }
    Ok(())
}
