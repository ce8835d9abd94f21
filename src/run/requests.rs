//! One batch of requests run to completion, each token stamped as it reaches the host: the
//! primitive every load shape is built from (the harness's cases, the batcher's batches). Only
//! instants are taken here; every figure is computed from them afterwards.

use crate::engine::{Engine, GenerateOptions};
use crate::results::RequestRecord;
use anyhow::Result;
use std::time::Instant;

/// Timings of one `generate` call, stamped by the harness: instants only, no arithmetic.
pub struct Timed {
    pub start: Instant,
    pub end: Instant,
    /// Per request, the instant each new token arrived.
    pub tokens: Vec<Vec<Instant>>,
}

impl Timed {
    /// Raw records of this call, one per request of the batch.
    pub fn records(&self, scenario: &str, engine: &str, case: &str, sample: usize, prompt_tokens: usize) -> Vec<RequestRecord> {
        let ms = |t: Instant| (t - self.start).as_secs_f64() * 1e3;
        self.tokens
            .iter()
            .map(|toks| RequestRecord {
                scenario: scenario.into(),
                engine: engine.into(),
                case: case.into(),
                sample,
                prompt_tokens,
                new_tokens: toks.len(),
                ttft_ms: toks.first().map_or(f64::NAN, |&t| ms(t)),
                total_ms: ms(self.end),
                token_ms: toks.iter().map(|&t| ms(t)).collect(),
            })
            .collect()
    }
}

/// Run one batch of requests to completion, stamping every token as it arrives. A panic inside
/// the engine (out of device memory, a failed kernel launch, an index out of range) comes back
/// as an error naming the engine and its message, so the case is recorded as failed and the run
/// goes on with the next one.
pub fn run_requests(engine: &mut dyn Engine, prompts: &[Vec<u32>], new_tokens: usize) -> Result<Timed> {
    let mut tokens: Vec<Vec<Instant>> = (0..prompts.len()).map(|_| Vec::with_capacity(new_tokens)).collect();
    let options = GenerateOptions::greedy(new_tokens);
    crate::run::panics::install();
    crate::run::panics::take(); // this batch's panics only
    let start = Instant::now();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = engine.generate(prompts, &options, &mut |ev| tokens[ev.request].push(ev.at))?;
        engine.synchronize()?;
        anyhow::Ok(out)
    }))
    .map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        anyhow::anyhow!("engine {} panicked: {message}", engine.info().name)
    })
    .and_then(|r| r)
    .map_err(|e| {
        // The engine's own threads may have panicked first, with the real cause.
        match crate::run::panics::cause_elsewhere(&crate::run::panics::take()) {
            Some(n) => e.context(format!("its thread '{}' panicked first, at {}: {}; then", n.thread, n.place, n.message)),
            None => e,
        }
    })?;
    let end = Instant::now();
    anyhow::ensure!(
        out.iter().all(|o| o.len() == new_tokens),
        "engine {} returned {:?} tokens, {new_tokens} were asked for",
        engine.info().name,
        out.iter().map(Vec::len).collect::<Vec<_>>()
    );
    Ok(Timed { start, end, tokens })
}
