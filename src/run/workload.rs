//! Workloads as data: the cases of every scenario, the profiles, and the prompts.
//!
//! Prompts are token ids made once by the real tokenizer from a fixed document text, cut to an
//! exact length, so every engine is given the same ids and the same amount of work.

use anyhow::{ensure, Result};
use std::time::Duration;
use tokenizers::Tokenizer;

/// Prompt lengths (tokens) of the single-request scenario, from the specification.
pub const SINGLE_REQUEST_PROMPTS: [usize; 3] = [10, 50, 200];
/// The prompt length whose figures stand for an engine in the reports' headline tables.
pub const HEADLINE_PROMPT_TOKENS: usize = 50;
const _: () = assert!(
    HEADLINE_PROMPT_TOKENS == 50,
    "crate::report::analysis::HEADLINE_PROMPT names the headline prompt length"
);
/// New tokens per request in the full profile (the specification's N), unless
/// `LLM_BENCH_NEW_TOKENS` says otherwise.
pub const DEFAULT_NEW_TOKENS: usize = 128;
/// New tokens per request in the quick profile: enough decode steps for inter-token latency
/// and decode speed, a quarter of the time per request, so five engines fit in one GPU call.
pub const QUICK_NEW_TOKENS: usize = 32;
/// Batch sizes of the sustained-throughput scenario.
pub const SUSTAINED_BATCHES: [usize; 2] = [32, 64];
/// Prompt length of every request in the sustained-throughput scenario.
pub const SUSTAINED_PROMPT: usize = 128;
/// Concurrent clients of the concurrent-load scenario (full profile); 1 is the baseline scaling
/// is measured against.
pub const CONCURRENT_CLIENTS: [usize; 5] = [1, 10, 25, 50, 100];
/// Poisson request rates (requests per second) of the concurrent-load scenario's open-loop sweep
/// (full profile).
pub const POISSON_RATES: [f64; 3] = [2.0, 8.0, 32.0];
/// The quick profile's subsets: the scaling baseline, the specification's ends (10 and 100) and
/// one point between. No fixed Poisson rates: its open-loop figures are the rate search's probes
/// (Poisson windows at rates chosen per engine, each recorded as a case with its raw requests),
/// which say more than two fixed rates that are idle for a fast engine and saturating for a slow
/// one, and the fixed rates' ten one-second windows each were 20-40 s per engine, a sixth of a
/// fast engine's table (h200-2026-12-02-table). Sized toward one GPU lease: a fast engine's whole
/// table is one to two minutes, but on a fresh machine start-up and the slow engines still take
/// more than one lease (README, "Before a run"; h200-2026-12-03-whole); the full profile measures
/// every point.
pub const QUICK_CONCURRENT_CLIENTS: [usize; 4] = [1, 10, 50, 100];
pub const QUICK_POISSON_RATES: [f64; 0] = [];
/// The rate search runs after the closed-loop cases up to this many clients and before the rest:
/// it starts from the closed-loop rate measured so far, and an engine whose 50- and 100-client
/// rounds take minutes (mistral.rs 0.8.1 on an H100: 100 s and 122 s, h100-2026-12-06-b) would
/// otherwise spend its whole pass before the figure a deployment is sized by.
pub const RATE_SEARCH_AFTER_CLIENTS: usize = 10;
/// The largest batch any scenario hands an engine (the engine seam's constant).
pub use crate::engine::MAX_BATCH;
/// Batch sizes of the memory-efficiency scenario.
pub const MEMORY_BATCHES: [usize; 3] = [1, 8, 32];
/// Context lengths of the long-context scenario.
pub const LONG_CONTEXTS: [usize; 3] = [1024, 4096, 8192];

/// How much measuring a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Every engine and scenario in minutes: enough samples for medians and p95.
    Quick,
    /// The specification's sizes: at least 100 samples per latency figure, 5-minute sustained runs.
    Full,
}

impl Profile {
    /// `LLM_BENCH_PROFILE=quick|full` (default quick).
    pub fn from_env() -> Result<Self> {
        match std::env::var("LLM_BENCH_PROFILE").as_deref() {
            Err(_) | Ok("") | Ok("quick") => Ok(Profile::Quick),
            Ok("full") => Ok(Profile::Full),
            Ok(other) => anyhow::bail!("LLM_BENCH_PROFILE={other} is not a profile; use quick or full"),
        }
    }

    /// Criterion samples per latency figure.
    pub fn samples(self) -> usize {
        match self {
            Profile::Quick => 10,
            Profile::Full => 100,
        }
    }

    /// Criterion's bootstrap resamples per figure. Its default, 100,000, is for 100 samples; with
    /// the quick profile's 10 its analysis and plots (a density over every resample) took 2.1 s of
    /// a case's 3.6 s on a 2-core host, more than the samples themselves (`--nresamples 10000`:
    /// 1.7 s; the stub engine's cases). 10,000 resamples of 10 samples still give its confidence
    /// interval to well under the samples' own spread; the full profile keeps Criterion's default.
    pub fn nresamples(self) -> usize {
        match self {
            Profile::Quick => 10_000,
            Profile::Full => 100_000,
        }
    }

    /// Criterion's measurement time for a latency or concurrent-load figure (a floor: slow
    /// requests take `samples` iterations whatever it is).
    /// Quick: half a second, which still gives a 5 ms figure 100 iterations over its 10 samples
    /// (a case's floor is its warm-up, this and Criterion's analysis: about 2 s with 1 s, times
    /// 24 cases per engine).
    pub fn measurement_time(self) -> Duration {
        Duration::from_millis(match self {
            Profile::Quick => 500,
            Profile::Full => 30_000,
        })
    }

    /// Criterion's warm-up before a figure's samples (at least one iteration whatever it is;
    /// the harness also runs one request of every case before Criterion starts).
    pub fn warm_up_time(self) -> Duration {
        Duration::from_millis(match self {
            Profile::Quick => 200,
            Profile::Full => 1000,
        })
    }

    /// How long a sustained-throughput case keeps batches running back to back (at least
    /// Criterion's 10 samples of one batch each, whatever it is: 36 s for mistral.rs at batch 32).
    /// Quick: 3 s, 30 samples of GPU utilisation at the telemetry's 100 ms.
    pub fn sustained(self) -> Duration {
        Duration::from_secs(match self {
            Profile::Quick => 3,
            Profile::Full => 300,
        })
    }

    /// How long a memory-efficiency case runs its batch back to back while memory is sampled.
    pub fn memory_run(self) -> Duration {
        Duration::from_secs(match self {
            Profile::Quick => 2,
            Profile::Full => 10,
        })
    }

    /// Seconds of Poisson arrivals in one iteration of a request-rate case: long enough for
    /// requests to queue and share batches as they would at that rate.
    pub fn poisson_window_s(self) -> f64 {
        match self {
            Profile::Quick => 1.0,
            Profile::Full => 5.0,
        }
    }

    /// Requests of one rate-search probe at `rate` req/s: arrivals over about `window` seconds,
    /// at least enough that the p99 is not one request's luck, at most what keeps a probe short.
    /// Quick: 2 s, 16..4000 requests; full: 30 s, 100..4000 (the p99 of 100 or more is the 99th
    /// percentile proper). The window is what matters at high rates: a probe whose arrivals
    /// all come inside one batch's service time is absorbed by one batch of 64 and says nothing
    /// of saturation. The first H200 run's probes of 32 requests at 512 req/s "held" for every
    /// engine; the second's, capped at 256 requests, still arrived in 0.5-0.7 s above 376 req/s
    /// (h200-2026-12-02-c: candle-f16, torch-compile and llama.cpp's `server` answers flagged);
    /// 1024 requests kept 2 s of arrivals up to the old ceiling of 512 req/s, 4000 keep them up
    /// to the search's ceiling of 2000 req/s.
    pub fn rate_probe_requests(self, rate: f64) -> usize {
        let (window, min, max) = match self {
            Profile::Quick => (2.0, 16, 4000),
            Profile::Full => (30.0, 100, 4000),
        };
        ((rate * window).ceil() as usize).clamp(min, max)
    }

    /// Probes one bound's search may serve (probes served for an earlier bound are shared and
    /// not counted): enough to bracket from a fair start and bisect to 10 %. Counted per engine,
    /// 8 cut the `server` searches of candle-f16, torch-compile and burn short in
    /// h100-2026-12-06-table, and 12 burn's `server` in h100-2026-12-06-c (its `interactive`
    /// answer, 2.88 req/s, was far below).
    pub fn rate_probes(self) -> usize {
        match self {
            Profile::Quick => 12,
            Profile::Full => 24,
        }
    }

    /// Closed-loop client counts of the concurrent-load scenario.
    pub fn concurrent_clients(self) -> &'static [usize] {
        match self {
            Profile::Quick => &QUICK_CONCURRENT_CLIENTS,
            Profile::Full => &CONCURRENT_CLIENTS,
        }
    }

    /// Poisson arrival rates of the concurrent-load scenario.
    pub fn poisson_rates(self) -> &'static [f64] {
        match self {
            Profile::Quick => &QUICK_POISSON_RATES,
            Profile::Full => &POISSON_RATES,
        }
    }

    /// Whether the memory-efficiency scenario also loads the 3B model (full profile only: its
    /// fixture and a second load of every engine do not fit the quick profile's one call).
    pub fn with_3b(self) -> bool {
        self == Profile::Full
    }

    /// New tokens per request: `LLM_BENCH_NEW_TOKENS`, else 32 (quick) or 128 (full).
    pub fn new_tokens(self) -> Result<usize> {
        match std::env::var("LLM_BENCH_NEW_TOKENS") {
            Ok(v) if !v.is_empty() => {
                let n: usize = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("LLM_BENCH_NEW_TOKENS={v} is not a positive number"))?;
                ensure!(n > 0, "LLM_BENCH_NEW_TOKENS must be at least 1");
                Ok(n)
            }
            _ => Ok(match self {
                Profile::Quick => QUICK_NEW_TOKENS,
                Profile::Full => DEFAULT_NEW_TOKENS,
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }
}

/// Sentences of the generated document the prompts are cut from: plain business prose, so the
/// tokenizer sees ordinary text rather than a repeated symbol.
const SENTENCES: [&str; 12] = [
    "The quarterly report summarises revenue, operating costs and the outlook for each region.",
    "Customer support handled more tickets than last year, and the median resolution time fell.",
    "Engineering moved the billing service to a new database without downtime.",
    "The logistics team renegotiated freight contracts and reduced delivery delays.",
    "Marketing tested three campaigns; the one aimed at small businesses performed best.",
    "Finance recommends keeping a cash reserve equal to six months of expenses.",
    "The legal department reviewed supplier agreements for data protection clauses.",
    "Sales in the northern region grew steadily, driven by renewals rather than new accounts.",
    "A pilot of the inventory forecasting model cut overstock in two warehouses.",
    "Hiring slowed in the second half while the company focused on training existing staff.",
    "The board asked for a clearer plan to reduce energy use in the data centres.",
    "Next year's priorities are reliability, faster onboarding and lower infrastructure cost.",
];

/// A deterministic document of at least `min_chars` characters, in numbered sections.
pub fn document(min_chars: usize) -> String {
    let mut text = String::new();
    let mut section = 1;
    while text.len() < min_chars {
        text.push_str(&format!("Section {section}. "));
        for k in 0..5 {
            text.push_str(SENTENCES[(section * 7 + k * 5) % SENTENCES.len()]);
            text.push(' ');
        }
        text.push('\n');
        section += 1;
    }
    text
}

/// A prompt of exactly `len` token ids: the beginning-of-text token (if the model has one) and
/// the document's first tokens.
pub fn prompt(tok: &Tokenizer, bos: Option<u32>, len: usize) -> Result<Vec<u32>> {
    ensure!(len >= 2, "a prompt needs at least 2 tokens");
    // About 4 characters per token in English prose; ask for twice that to be safe.
    let ids = crate::model::tokenizer::encode(tok, &document(len * 8))?;
    let mut out: Vec<u32> = bos.into_iter().collect();
    out.extend(ids.into_iter().take(len - out.len()));
    ensure!(out.len() == len, "the document text gave only {} tokens, {len} wanted", out.len());
    Ok(out)
}

/// `count` different prompts of exactly `len` tokens: request `i` starts `7 * i` tokens further
/// into the document, so a batch does not repeat one prompt (no engine gets repeated work free).
pub fn prompts(tok: &Tokenizer, bos: Option<u32>, len: usize, count: usize) -> Result<Vec<Vec<u32>>> {
    let body = len - bos.is_some() as usize;
    let ids = crate::model::tokenizer::encode(tok, &document((body + 7 * count) * 8))?;
    (0..count)
        .map(|i| {
            let mut out: Vec<u32> = bos.into_iter().collect();
            out.extend(ids.iter().skip(7 * i).take(body));
            ensure!(out.len() == len, "the document text is too short for {count} prompts of {len} tokens");
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_deterministic_and_long_enough() {
        assert_eq!(document(5000), document(5000));
        assert!(document(5000).len() >= 5000);
        assert!(document(100).starts_with("Section 1. "));
    }
}
