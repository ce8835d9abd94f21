//! Per-engine decode breakdown (issue 10): what one decode step costs each GPU engine on the
//! device, next to what the suite's own kernels need for the same weights.
//!
//! A decode step of the 1B model reads every weight once (1.31 GB of Q8_0); at the measured copy
//! bandwidth that is the roofline of a step. An engine's time per token is that plus whatever
//! else it does: more kernels than needed (one launch per op instead of fused ones), the GPU
//! idle while the host prepares the next launch, copies of logits to the host, sampling. The
//! breakdown separates them, per engine, from two requests of the same prompt (50 tokens): one
//! of 1 new token (prefill) and one of 1 + 32 (prefill + 32 decode steps). Per decode step is the
//! difference divided by 32, so the prefill and the request's fixed costs cancel:
//!
//! * wall time per step, untraced (medians of 5 pairs, after 2 s of warm-up requests), and the
//!   median gap between tokens as the host received them: what the engine delivers;
//! * with CUPTI activity tracing on ([`crate::measure::cupti`]), one pair more: kernel launches and
//!   copies per step, GPU busy time per step (the union of kernel/copy intervals), and the most
//!   expensive kernels per step by name;
//! * GPU busy / wall (how much of a step the GPU works) and the step's fraction of the copy
//!   bandwidth by wall and by busy time, counting the Q8_0 model's bytes (what the suite's own
//!   kernels move) and the bytes of weights as the engine stores them.
//!
//! Tracing adds host work to every launch, so traced wall times are reported beside the
//! untraced ones and never replace them.

use crate::measure::cupti::{self, Tracer};
use crate::engine::Engine;
use crate::run::harness::Harness;
use crate::run::requests::run_requests;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Decode steps measured past the first new token.
pub const DECODE_STEPS: usize = 32;
/// Untraced request pairs behind the wall-time median.
const PAIRS: usize = 5;
/// Requests of 1 + [`DECODE_STEPS`] tokens before any is timed (at least this many, and for
/// at least [`WARM_UP`]): the engine's priming requests are shorter, and a GPU that was idle
/// runs its first second or so at low clocks.
const WARM_UP_REQUESTS: usize = 3;
const WARM_UP: std::time::Duration = std::time::Duration::from_secs(2);
/// Telemetry period during the untraced pairs.
const SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_millis(50);
/// Kernels listed per engine, most time per step first.
const TOP_KERNELS: usize = 8;

/// Wall seconds of one batch of requests of `new_tokens`, the engine settled afterwards.
fn timed(engine: &mut dyn Engine, prompts: &[Vec<u32>], new_tokens: usize) -> Result<f64> {
    timed_with_gaps(engine, prompts, new_tokens).map(|(t, _)| t)
}

/// The same, and the median gap between consecutive new tokens of the first request as the
/// host received them (the scenario benches' inter-token latency, for comparison with the
/// per-step mean).
fn timed_with_gaps(engine: &mut dyn Engine, prompts: &[Vec<u32>], new_tokens: usize) -> Result<(f64, f64)> {
    let started = Instant::now();
    let t = run_requests(engine, prompts, new_tokens)?;
    let wall = started.elapsed().as_secs_f64();
    engine.settle()?;
    let gaps: Vec<f64> = t.tokens[0].windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    Ok((wall, crate::kernels::cpu::median(&gaps)))
}

/// Activity records of one request, traced.
fn traced(engine: &mut dyn Engine, tracer: &Tracer, prompt: &[Vec<u32>], new_tokens: usize) -> Result<(f64, Vec<cupti::Activity>)> {
    engine.synchronize()?;
    tracer.start()?;
    let t = timed(engine, prompt, new_tokens);
    engine.synchronize().ok();
    let records = tracer.stop()?;
    Ok((t?, records))
}

/// The breakdown of one loaded engine at `batch` requests of the headline prompt (the same
/// prompt in every row): one JSON record (also printed). `copy_bandwidth` in bytes/s,
/// `model_bytes` the Q8_0 file's weight bytes read per step.
///
/// CUPTI is loaded (`tracer`) only after the untraced measurement: once loaded into a process it
/// may add work to every CUDA call, traced or not. An engine measured after another in the same
/// process finds it loaded; its record says so (`cupti_loaded_before_untraced`), and running one
/// engine per process (`LLM_BENCH_ENGINES`, or device-run.sh's `LLM_BENCH_PASSES`) avoids it.
pub fn measure(
    h: &Harness,
    engine: &mut dyn Engine,
    tracer: &dyn Fn() -> std::result::Result<&'static Tracer, String>,
    copy_bandwidth: f64,
    model_bytes: f64,
    batch: usize,
) -> Result<Value> {
    let name = engine.info().name;
    let prompt = vec![h.prompt(crate::run::workload::HEADLINE_PROMPT_TOKENS)?; batch.max(1)];
    let steps = DECODE_STEPS as f64;
    let cupti_loaded_before = cupti::loaded();

    // 1. Untraced wall time per step, after a warm-up.
    let warm = Instant::now();
    let mut warm_ups = 0;
    while warm_ups < WARM_UP_REQUESTS || warm.elapsed() < WARM_UP {
        timed(engine, &prompt, 1 + DECODE_STEPS)?;
        warm_ups += 1;
    }
    let (mut one, mut many, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    // What the GPU and this process did meanwhile (NVML and /proc, sampled on another thread),
    // to compare with the scenario benches' conditions when the two disagree.
    let sampler = crate::measure::telemetry::Sampler::start(h.gpu, SAMPLE_PERIOD);
    for _ in 0..PAIRS {
        one.push(timed(engine, &prompt, 1)?);
        let (t, gap) = timed_with_gaps(engine, &prompt, 1 + DECODE_STEPS)?;
        many.push(t);
        gaps.push(gap);
    }
    let samples = sampler.stop();
    let med = |f: &dyn Fn(&crate::measure::telemetry::Sample) -> Option<f64>| {
        let v: Vec<f64> = samples.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| crate::kernels::cpu::median(&v))
    };
    let conditions = json!({
        "samples": samples.len(),
        "period_s": SAMPLE_PERIOD.as_secs_f64(),
        "gpu_sm_clock_mhz_median": med(&|s| s.gpu_sm_clock_mhz),
        "gpu_util_pct_median": med(&|s| s.gpu_util_pct),
        "gpu_power_w_median": med(&|s| s.gpu_power_w),
        "process_cpu_cores_median": med(&|s| Some(s.cpu_cores)),
    });
    let wall = (crate::kernels::cpu::median(&many) - crate::kernels::cpu::median(&one)) / steps;
    let engine_bytes = engine.memory().weights_bytes as f64;
    let frac = |bytes: f64, t: f64| (bytes > 0.0 && t > 0.0).then(|| bytes / t / copy_bandwidth);
    let mut out = json!({
        "kind": "engine_decode",
        "run": h.run.run,
        "engine": name,
        "model": {"name": h.identity.name, "sha256": h.identity.sha256, "description": h.identity.description},
        "batch": prompt.len(),
        "prompt_tokens": prompt[0].len(),
        "decode_steps": DECODE_STEPS,
        "wall_s_per_step": wall,
        "inter_token_median_s": crate::kernels::cpu::median(&gaps),
        "warm_up_requests": warm_ups,
        "untraced_conditions": conditions,
        "cupti_loaded_before_untraced": cupti_loaded_before,
        "wall_samples_s": {"one_token": one, "one_plus_steps": many},
        "model_weight_bytes": model_bytes,
        "engine_weight_bytes": engine_bytes,
        "copy_bandwidth_bytes_per_s": copy_bandwidth,
        "wall_fraction_of_copy_bandwidth": frac(model_bytes, wall),
        "wall_fraction_of_copy_bandwidth_engine_bytes": frac(engine_bytes, wall),
    });
    eprintln!(
        "[llm-bench] kernels/decode breakdown, {name} batch {batch}: {:.3} ms per step (wall, untraced{}; median inter-token gap {:.3} ms; {:.3} of copy bandwidth on {:.2} GB); \
         meanwhile SM clock {} MHz, GPU busy {}% (NVML), process CPU {} cores (medians)",
        wall * 1e3,
        if cupti_loaded_before { ", CUPTI already loaded" } else { "" },
        crate::kernels::cpu::median(&gaps) * 1e3,
        frac(model_bytes, wall).unwrap_or(f64::NAN),
        model_bytes / 1e9,
        fmt_opt(out["untraced_conditions"]["gpu_sm_clock_mhz_median"].as_f64(), 0),
        fmt_opt(out["untraced_conditions"]["gpu_util_pct_median"].as_f64(), 0),
        fmt_opt(out["untraced_conditions"]["process_cpu_cores_median"].as_f64(), 2),
    );

    // 2. Traced: launches, copies, GPU busy time per step.
    let tracer = match tracer() {
        Ok(t) => t,
        Err(why) => {
            out["trace"] = json!({"skipped": why});
            return Ok(out);
        }
    };
    let (wall_a, a) = traced(engine, tracer, &prompt, 1)?;
    let (wall_b, b) = traced(engine, tracer, &prompt, 1 + DECODE_STEPS)?;
    let (ba, bb) = (cupti::busy(&a), cupti::busy(&b));
    if bb.kernels == 0 {
        out["trace"] = json!({"skipped": "CUPTI recorded no kernels for this engine's requests (tracing not supported here?)"});
        return Ok(out);
    }
    let per_step = |x: f64, y: f64| (y - x) / steps;
    let busy = per_step(ba.busy_ns as f64, bb.busy_ns as f64) * 1e-9;
    let traced_wall = per_step(wall_a, wall_b);
    // Kernels per step by name: the 1 + 32 request's minus the 1-token request's.
    let before: HashMap<String, (usize, u64)> = cupti::by_name(&a).into_iter().map(|(n, c, t)| (n, (c, t))).collect();
    let mut kernels: Vec<(String, f64, f64)> = cupti::by_name(&b)
        .into_iter()
        .map(|(n, c, t)| {
            let (c0, t0) = before.get(&n).copied().unwrap_or_default();
            let launches = (c as f64 - c0 as f64) / steps;
            let seconds = (t as f64 - t0 as f64) / steps * 1e-9;
            (n, launches, seconds)
        })
        .filter(|(_, launches, _)| *launches > 0.0)
        .collect();
    kernels.sort_by(|x, y| y.2.total_cmp(&x.2));
    let distinct = kernels.len();
    kernels.truncate(TOP_KERNELS);
    out["trace"] = json!({
        "library": tracer.library(),
        "launches_per_step": per_step(ba.kernels as f64, bb.kernels as f64),
        "copies_per_step": per_step(ba.copies as f64, bb.copies as f64),
        "gpu_busy_s_per_step": busy,
        "kernel_s_per_step": per_step(ba.kernel_ns as f64, bb.kernel_ns as f64) * 1e-9,
        "traced_wall_s_per_step": traced_wall,
        "gpu_busy_fraction_of_wall": busy / traced_wall,
        "busy_fraction_of_copy_bandwidth": frac(model_bytes, busy),
        "busy_fraction_of_copy_bandwidth_engine_bytes": frac(engine_bytes, busy),
        "distinct_kernels_per_step": distinct,
        "top_kernels_per_step": kernels.iter().map(|(n, l, s)| json!({"name": short(n), "launches": l, "seconds": s})).collect::<Vec<_>>(),
        "requests": {
            "one_token": {"wall_s": wall_a, "kernels": ba.kernels, "copies": ba.copies, "busy_s": ba.busy_ns as f64 * 1e-9, "span_s": ba.span_ns as f64 * 1e-9},
            "one_plus_steps": {"wall_s": wall_b, "kernels": bb.kernels, "copies": bb.copies, "busy_s": bb.busy_ns as f64 * 1e-9, "span_s": bb.span_ns as f64 * 1e-9},
        },
    });
    eprintln!(
        "[llm-bench] kernels/decode breakdown, {name} batch {batch}: {:.1} launches and {:.1} copies per step, GPU busy {:.3} ms of {:.3} ms traced ({:.0}%), \
         {:.3} of copy bandwidth by busy time; top kernel {}",
        out["trace"]["launches_per_step"].as_f64().unwrap_or(f64::NAN),
        out["trace"]["copies_per_step"].as_f64().unwrap_or(f64::NAN),
        busy * 1e3,
        traced_wall * 1e3,
        100.0 * busy / traced_wall,
        frac(model_bytes, busy).unwrap_or(f64::NAN),
        kernels.first().map(|k| format!("{} ({:.1} x, {:.1} us)", short(&k.0), k.1, k.2 * 1e6)).unwrap_or_default()
    );
    Ok(out)
}

/// A figure with `digits` decimals, or "?" when it could not be read.
fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "?".to_string(), |v| format!("{v:.digits$}"))
}

/// A kernel name cut to 100 characters for printing (C++ names run to kilobytes).
pub fn short(name: &str) -> String {
    if name.chars().count() <= 100 {
        name.to_string()
    } else {
        format!("{}…", name.chars().take(99).collect::<String>())
    }
}
