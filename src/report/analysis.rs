//! What a team choosing an engine asks of a run, computed from its results file: headline
//! figures per engine, speedups against the PyTorch baseline beside the specification's expected
//! hierarchy, cost per token, the specification's success criteria, validity flags, deployment
//! guidance and optimisation opportunities. Every sentence is made from the numbers; nothing is
//! written per engine by hand, and a figure that was not measured says so.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The specification's expected performance hierarchy (benchmark-specification.md): inference
/// time, decode tok/s and speedup over the PyTorch baseline. Shown beside the measured figures,
/// never used in place of them.
pub const EXPECTED: [(&str, f64, f64, f64); 5] = [
    ("torch", 300.0, 40.0, 1.0),
    ("lmrs", 100.0, 80.0, 3.0),
    ("candle", 50.0, 150.0, 6.0),
    ("burn", 30.0, 250.0, 10.0),
    ("mistralrs", 40.0, 200.0, 7.5),
];

/// The engine every speedup is measured against.
pub const BASELINE: &str = "torch";
/// The reference most GGUF users know: every engine's decode rate is also shown as a fraction
/// of this engine's on the same file and GPU.
pub const LLAMACPP: &str = "llamacpp";
/// The single-request case label whose figures stand for an engine in the headline tables.
pub const HEADLINE_PROMPT: &str = "prompt50";
/// A GPU-hour's price when none is given: an assumed on-demand H100 price, stated in reports.
pub const DEFAULT_GPU_PRICE: f64 = 2.50;
/// Spread (MAD/median) above which a figure is flagged, from the specification (< 5% variance).
pub const MAX_SPREAD: f64 = 0.05;
/// Samples per latency figure the specification asks for (full profile).
pub const MIN_SAMPLES_FULL: usize = 100;
/// Scaling efficiency (throughput gain ÷ clients) taken as near-linear.
pub const NEAR_LINEAR: f64 = 0.8;

/// One engine's headline figures; `None` where the run did not measure it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineFigures {
    pub engine: String,
    /// What the run's SmolLM2 check found when the engine failed it ([`leave_out_failed_checks`]).
    pub failed_check: Option<String>,
    pub device: String,
    pub ttft_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub new_tokens: Option<f64>,
    pub decode_tok_s: Option<f64>,
    pub inter_token_ms: Option<f64>,
    /// Best output tok/s of the sustained-throughput cases, and that case.
    pub sustained_tok_s: Option<f64>,
    pub sustained_case: Option<String>,
    pub gpu_util_pct: Option<f64>,
    /// Highest GPU memory in use (NVML) over the memory-efficiency cases: the engine's own rise
    /// since before its load where the run recorded it, else the device's figure.
    pub peak_vram_gb: Option<f64>,
    /// Model bandwidth utilisation at batch 1 (memory_efficiency), percent of copy bandwidth.
    pub mbu_pct: Option<f64>,
    pub copy_bandwidth_gbs: Option<f64>,
    pub bytes_per_step_gb: Option<f64>,
    /// (clients, output tok/s, p99 end-to-end ms) of the closed-loop cases.
    pub concurrency: Vec<(f64, f64, Option<f64>)>,
    /// The suite's batcher handed it one request at a time (its records' `max_batch`): the
    /// lm.rs design, which serves no more at once.
    pub one_request_at_a_time: bool,
    /// Requests per second at the best closed-loop case.
    pub best_requests_per_s: Option<f64>,
    /// (context tokens, TTFT ms) of the long-context cases.
    pub long_context_ttft: Vec<(f64, f64)>,
    pub max_spread: Option<f64>,
    pub min_latency_samples: Option<usize>,
    /// Per latency bound the rate search ran (`concurrent_load/<engine>/max_rate/<bound>`): the
    /// highest request rate within it and the output tok/s of the requests that met it there.
    pub max_rate: Vec<(String, f64, Option<f64>)>,
}

impl EngineFigures {
    /// Throughput gain over 1 client, divided by the clients: 1.0 is linear.
    pub fn scaling_efficiency(&self) -> Vec<(f64, f64)> {
        let one = self.concurrency.iter().find(|c| c.0 == 1.0).map(|c| c.1);
        match one {
            Some(one) if one > 0.0 => self.concurrency.iter().filter(|c| c.0 > 1.0).map(|c| (c.0, c.1 / one / c.0)).collect(),
            _ => Vec::new(),
        }
    }

    /// The best output rate the run saw for this engine (sustained, concurrent or single).
    pub fn best_tok_s(&self) -> Option<f64> {
        self.best_rate().map(|(t, _)| t)
    }

    /// [`EngineFigures::best_tok_s`] with the case it came from: an engine that serves a batch
    /// one request after another (the lm.rs design) has its best rate at one request, and the
    /// verdict must not name a sustained case for it.
    pub fn best_rate(&self) -> Option<(f64, String)> {
        let sustained = self.sustained_tok_s.map(|t| (t, format!("sustained {}", self.sustained_case.as_deref().unwrap_or("?"))));
        let concurrent = self.concurrency.iter().map(|c| (c.1, format!("concurrent clients/{}", c.0)));
        let single = self.decode_tok_s.map(|t| (t, "decode of one request".to_string()));
        sustained.into_iter().chain(concurrent).chain(single).fold(None, |best: Option<(f64, String)>, x| match best {
            Some(b) if b.0 >= x.0 => Some(b),
            _ => Some(x),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub engine: String,
    pub criterion: &'static str,
    pub value: String,
    /// "pass", "fail", "baseline", "not measured" or "not checked (...)".
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub profile: String,
    pub gpu_price_per_hour: f64,
    pub gpu_memory_gb: Option<f64>,
    pub engines: Vec<EngineFigures>,
    pub criteria: Vec<Criterion>,
    pub flags: Vec<String>,
    pub guidance: Vec<String>,
    /// The answer first: per question a team asks, the best engine, its figure, the best other
    /// engine and the gap (computed from the figures; see [`verdict`]).
    pub verdict: Vec<String>,
    pub opportunities: Vec<String>,
}

/// The engine a variant belongs to, from its name: `candle-f16` is Candle's (the registry's
/// naming rule, `crate::engines::Variant`; reports read names only).
pub fn family(engine: &str) -> &str {
    engine.split('-').next().unwrap_or(engine)
}

fn metric(r: &Value, k: &str, s: &str) -> Option<f64> {
    r["metrics"][k][s].as_f64()
}

fn num_suffix(case: &str) -> Option<f64> {
    let digits: String = case.chars().rev().take_while(|c| c.is_ascii_digit()).collect::<Vec<_>>().into_iter().rev().collect();
    digits.parse().ok()
}

/// Mean new tokens per request of each (scenario, engine, case), from the raw requests.
pub fn tokens_per_request(requests: &[Value]) -> BTreeMap<(String, String, String), f64> {
    let mut acc: BTreeMap<(String, String, String), (f64, f64)> = BTreeMap::new();
    for r in requests {
        let key = (r["scenario"].as_str().unwrap_or("").to_string(), r["engine"].as_str().unwrap_or("").to_string(), r["case"].as_str().unwrap_or("").to_string());
        let e = acc.entry(key).or_default();
        e.0 += r["new_tokens"].as_f64().unwrap_or(0.0);
        e.1 += 1.0;
    }
    acc.into_iter().map(|(k, (sum, n))| (k, sum / n.max(1.0))).collect()
}

/// Everything the reports say beyond the raw tables.
pub fn analyse(results: &[Value], env: &Value, tokens: &BTreeMap<(String, String, String), f64>, gpu_price: f64) -> Analysis {
    let measured: Vec<&Value> = results.iter().filter(|r| r["status"] == "measured" && r["engine"] != "stub").collect();
    let profile = measured.first().and_then(|r| r["profile"].as_str()).or(env["profile"].as_str()).unwrap_or("?").to_string();
    let mut names: Vec<String> = Vec::new();
    for r in &measured {
        let n = r["engine"].as_str().unwrap_or("").to_string();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    // By engine in the hierarchy's order; an engine's variants (`candle`, `candle-f16`) together,
    // in the order the run measured them.
    names.sort_by_key(|n| EXPECTED.iter().position(|e| e.0 == family(n)).unwrap_or(99));
    let engines: Vec<EngineFigures> = names.iter().map(|n| figures(n, &measured, tokens)).collect();
    let gpu_memory_gb = env["gpu"]["devices"][0]["memory_total_bytes"].as_f64().map(|b| b / 1e9);
    let mut a = Analysis {
        profile,
        gpu_price_per_hour: gpu_price,
        gpu_memory_gb,
        criteria: Vec::new(),
        flags: flags(results),
        guidance: Vec::new(),
        verdict: Vec::new(),
        opportunities: Vec::new(),
        engines,
    };
    a.criteria = criteria(&a);
    a.guidance = guidance(&a);
    a.verdict = verdicts(&a);
    a.opportunities = opportunities(&a);
    a
}

fn figures(engine: &str, measured: &[&Value], tokens: &BTreeMap<(String, String, String), f64>) -> EngineFigures {
    let rows: Vec<&Value> = measured.iter().copied().filter(|r| r["engine"] == engine).collect();
    let find = |scenario: &str, case: &str| rows.iter().copied().find(|r| r["scenario"] == scenario && r["case"] == case);
    let mut f = EngineFigures { engine: engine.to_string(), ..Default::default() };
    f.device = rows.first().and_then(|r| r["device"].as_str()).unwrap_or("?").to_string();
    let on_gpu = f.device.starts_with("cuda");
    if let Some(r) = find("single_request", &format!("ttft/{HEADLINE_PROMPT}")) {
        f.ttft_ms = metric(r, "ttft_ms", "median");
        f.ttft_p95_ms = metric(r, "ttft_ms", "p95");
    }
    if let Some(r) = find("single_request", &format!("total/{HEADLINE_PROMPT}")) {
        f.total_ms = metric(r, "total_ms", "median");
        f.decode_tok_s = metric(r, "decode_tok_s", "median");
        f.inter_token_ms = metric(r, "inter_token_ms", "median");
        f.new_tokens = tokens.get(&("single_request".into(), engine.into(), format!("total/{HEADLINE_PROMPT}"))).copied();
    }
    for r in rows.iter().filter(|r| r["scenario"] == "sustained_throughput") {
        if let Some(t) = metric(r, "output_tok_s", "median") {
            if f.sustained_tok_s.is_none_or(|b| t > b) {
                f.sustained_tok_s = Some(t);
                f.sustained_case = r["case"].as_str().map(str::to_string);
                f.gpu_util_pct = metric(r, "gpu_util_pct", "mean").filter(|_| on_gpu);
            }
        }
    }
    // A CPU engine's records hold the GPU's memory and copy bandwidth too (it was measured on a
    // GPU machine): not its own memory, nor the floor its decode could reach, so none of them is
    // its figure (lmrs would otherwise lead the memory verdict at 0.00 GB).
    for r in rows.iter().filter(|r| r["scenario"] == "memory_efficiency" && on_gpu) {
        if let Some(m) = metric(r, "engine_gpu_mem_gb", "max").or_else(|| metric(r, "gpu_mem_used_gb", "max")) {
            f.peak_vram_gb = Some(f.peak_vram_gb.map_or(m, |p| p.max(m)));
        }
        if r["case"].as_str().is_some_and(|c| c.ends_with("/batch1") && !c.starts_with("3b")) {
            f.mbu_pct = metric(r, "mbu_pct", "median");
            f.copy_bandwidth_gbs = metric(r, "copy_bandwidth_gbs", "median");
            f.bytes_per_step_gb = metric(r, "bytes_per_step_gb", "median");
        }
    }
    for r in rows.iter().filter(|r| r["scenario"] == "concurrent_load") {
        let case = r["case"].as_str().unwrap_or("");
        if let (Some(n), Some(t)) = (case.strip_prefix("clients/").and_then(|c| c.parse().ok()), metric(r, "output_tok_s", "median")) {
            f.concurrency.push((n, t, metric(r, "total_ms", "p99")));
            f.one_request_at_a_time |= r["metrics"]["max_batch"]["max"].as_f64() == Some(1.0);
            let per_request = tokens.get(&("concurrent_load".into(), engine.into(), case.into())).copied();
            if let Some(rps) = per_request.filter(|&p| p > 0.0).map(|p| t / p) {
                f.best_requests_per_s = Some(f.best_requests_per_s.map_or(rps, |b| b.max(rps)));
            }
        }
    }
    f.concurrency.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    for r in rows.iter().filter(|r| r["scenario"] == "concurrent_load") {
        if let (Some(slo), Some(rate)) = (r["case"].as_str().and_then(|c| c.strip_prefix("max_rate/")), metric(r, "max_rate_rps", "median")) {
            if rate_probe_too_short(rows.iter().copied(), r).is_none() {
                f.max_rate.push((slo.to_string(), rate, metric(r, "goodput_tok_s", "median")));
            }
        }
    }
    for r in rows.iter().filter(|r| r["scenario"] == "long_context") {
        let case = r["case"].as_str().unwrap_or("");
        if let (true, Some(n), Some(t)) = (case.starts_with("ttft/"), num_suffix(case), metric(r, "ttft_ms", "median")) {
            f.long_context_ttft.push((n, t));
        }
    }
    f.long_context_ttft.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let latency: Vec<&&Value> = rows.iter().filter(|r| r["scenario"] == "single_request").collect();
    f.max_spread = latency.iter().filter_map(|r| r["spread"].as_f64()).reduce(f64::max);
    f.min_latency_samples = latency.iter().filter_map(|r| r["samples"].as_u64().map(|n| n as usize)).min();
    f
}

/// Why a rate search's answer (`max_rate/<bound>`) says nothing of saturation, if it does not:
/// the probe at its rate had its arrivals inside less than a second, a burst that one batch of
/// the largest size (64) absorbs whatever the engine's capacity.
pub fn rate_probe_too_short<'a>(results: impl IntoIterator<Item = &'a Value>, answer: &Value) -> Option<String> {
    let rate = metric(answer, "max_rate_rps", "median").filter(|r| *r > 0.0)?;
    let probe = results.into_iter().find(|p| {
        p["status"] == "measured"
            && p["engine"] == answer["engine"]
            && p["scenario"] == answer["scenario"]
            && p["case"].as_str().and_then(|c| c.strip_prefix("probe/")).and_then(|c| c.strip_suffix("rps")).and_then(|c| c.parse::<f64>().ok()) == Some(rate)
    })?;
    let n = probe["samples"].as_f64()?;
    (n / rate < 1.0).then(|| {
        format!("its probe at {rate} req/s was {n:.0} requests arriving in {:.2} s, a burst one batch absorbs: not a saturation figure", n / rate)
    })
}

/// How long a case ran outside its timed requests, when that is far more than Criterion's warm-up
/// (about two requests) and the analysis explain: an engine that compiles or tunes kernels the
/// first time it sees a shape (burn-cuda, at every new prompt length: h200-2026-12-03-burn's
/// `ttft/prompt10` ran 82 s for 1 s of requests) stalls a real server the same way, and it is
/// in no figure. Requests served in parallel (batches) sum to more than the wall time: never flagged.
pub fn time_outside_requests(r: &Value) -> Option<(f64, f64)> {
    let wall = r["wall_s"].as_f64()?;
    let (mean_ms, n) = (metric(r, "total_ms", "mean")?, metric(r, "total_ms", "n")?);
    let timed = mean_ms * n / 1000.0;
    let outside = wall - timed - 2.0 * mean_ms / 1000.0;
    (outside > OUTSIDE_REQUESTS_S).then_some((wall, timed))
}

/// Seconds outside a case's requests (less its warm-up) above which the report says so.
const OUTSIDE_REQUESTS_S: f64 = 30.0;

/// Validity flags: figures with too few samples or too much spread, and every skip.
fn flags(results: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "measured" && r["engine"] != "stub") {
        let id = format!("{}/{}/{}", r["scenario"].as_str().unwrap_or(""), r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or(""));
        let spread = r["spread"].as_f64().unwrap_or(0.0);
        if spread > MAX_SPREAD {
            out.push(format!("{id}: spread {:.1}% (MAD/median) is above {:.0}%", spread * 100.0, MAX_SPREAD * 100.0));
        }
        let probe = r["case"].as_str().is_some_and(|c| c.starts_with("probe/"));
        if let Some(why) = r["reduced"].as_str().filter(|_| !probe) {
            out.push(format!("{id}: measured with fewer samples than Criterion's: {why}"));
        }
        if let Some((wall, timed)) = time_outside_requests(r) {
            out.push(format!(
                "{id}: the case took {wall:.0} s for {timed:.1} s of timed requests; the rest, outside every figure, is Criterion's \
                 warm-up and analysis and what the engine did before it could serve the case (e.g. compiling kernels for a shape it had not seen)"
            ));
        }
        let n = r["samples"].as_u64().unwrap_or(0) as usize;
        if r["profile"] == "full" && r["scenario"] == "single_request" && n < MIN_SAMPLES_FULL {
            out.push(format!("{id}: {n} requests, fewer than the {MIN_SAMPLES_FULL} the full profile asks for"));
        }
    }
    for r in results.iter().filter(|r| r["status"] == "measured" && r["case"].as_str().is_some_and(|c| c.starts_with("max_rate/"))) {
        if let Some(why) = rate_probe_too_short(results, r) {
            out.push(format!("concurrent_load/{}/{}: {why}", r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or("")));
        }
    }
    let probes = results.iter().filter(|r| r["status"] == "measured" && r["case"].as_str().is_some_and(|c| c.starts_with("probe/"))).count();
    if probes > 0 {
        out.push(format!(
            "{probes} rate-search probe(s) (`concurrent_load/<engine>/probe/<rate>rps`): each one window of Poisson arrivals served once, not Criterion samples; their figures come from the raw requests"
        ));
    }
    let skipped = results.iter().filter(|r| r["status"] == "skipped" && !r["reason"].as_str().unwrap_or("").starts_with("not selected")).count();
    if skipped > 0 {
        out.push(format!("{skipped} engine/case(s) skipped, each with its reason in the Skipped section"));
    }
    out
}

fn baseline(a: &Analysis) -> Option<&EngineFigures> {
    a.engines.iter().find(|e| e.engine == BASELINE)
}

/// Speedups over the baseline: (latency: baseline total time ÷ engine total time for the same
/// request, throughput: engine decode tok/s ÷ baseline decode tok/s).
pub fn speedup(a: &Analysis, e: &EngineFigures) -> (Option<f64>, Option<f64>) {
    let b = baseline(a);
    let lat = b.and_then(|b| b.total_ms).zip(e.total_ms).map(|(b, x)| b / x);
    let thr = b.and_then(|b| b.decode_tok_s).zip(e.decode_tok_s).map(|(b, x)| x / b);
    (lat, thr)
}

/// Cost per million output tokens at the engine's best measured rate, and requests per GPU-hour.
pub fn cost(a: &Analysis, e: &EngineFigures) -> (Option<f64>, Option<f64>) {
    let per_m = e.best_tok_s().filter(|&t| t > 0.0).map(|t| a.gpu_price_per_hour / (t * 3600.0) * 1e6);
    (per_m, e.best_requests_per_s.map(|r| r * 3600.0))
}

fn verdict(ok: Option<bool>) -> String {
    match ok {
        Some(true) => "pass".into(),
        Some(false) => "fail".into(),
        None => "not measured".into(),
    }
}

fn criteria(a: &Analysis) -> Vec<Criterion> {
    let mut out = Vec::new();
    for e in &a.engines {
        let name = e.engine.clone();
        let (lat, _) = speedup(a, e);
        out.push(Criterion {
            engine: name.clone(),
            criterion: "speedup ≥ 2× over the PyTorch baseline (request time, 50-token prompt)",
            value: lat.map_or("—".into(), |s| format!("{s:.2}×")),
            verdict: if e.engine == BASELINE { "baseline".into() } else { verdict(lat.map(|s| s >= 2.0)) },
        });
        out.push(Criterion {
            engine: name.clone(),
            criterion: "GPU utilisation > 70% under sustained load",
            value: e.gpu_util_pct.map_or("—".into(), |u| format!("{u:.0}% ({})", e.sustained_case.as_deref().unwrap_or("?"))),
            verdict: if !e.device.starts_with("cuda") { "not applicable (CPU engine)".into() } else { verdict(e.gpu_util_pct.map(|u| u > 70.0)) },
        });
        out.push(Criterion {
            engine: name.clone(),
            criterion: "variance < 5% (largest within-run spread, MAD/median, of its single-request figures; run-to-run: `llm-bench compare`)",
            value: e.max_spread.map_or("—".into(), |s| format!("{:.1}%", s * 100.0)),
            verdict: verdict(e.max_spread.map(|s| s < MAX_SPREAD)),
        });
        out.push(Criterion {
            engine: name.clone(),
            criterion: "≥ 100 samples per latency figure (full profile)",
            value: e.min_latency_samples.map_or("—".into(), |n| n.to_string()),
            verdict: if a.profile != "full" {
                format!("not checked ({} profile)", a.profile)
            } else {
                verdict(e.min_latency_samples.map(|n| n >= MIN_SAMPLES_FULL))
            },
        });
        let eff = e.scaling_efficiency();
        let at10 = eff.iter().find(|x| x.0 == 10.0).map(|x| x.1);
        out.push(Criterion {
            engine: name.clone(),
            criterion: "near-linear concurrent scaling (efficiency ≥ 0.8 at 10 clients; efficiency = throughput gain ÷ clients)",
            value: if eff.is_empty() { "—".into() } else { eff.iter().map(|(n, x)| format!("{n:.0}: {x:.2}")).collect::<Vec<_>>().join(", ") },
            verdict: verdict(at10.map(|x| x >= NEAR_LINEAR)),
        });
    }
    out
}

/// The engines by a figure, best first; an engine that failed the run's correctness check is not
/// ranked.
fn best_by<'a>(a: &'a Analysis, key: impl Fn(&EngineFigures) -> Option<f64>, lowest: bool) -> Vec<(&'a EngineFigures, f64)> {
    let mut v: Vec<(&EngineFigures, f64)> =
        a.engines.iter().filter(|e| e.failed_check.is_none()).filter_map(|e| key(e).map(|k| (e, k))).collect();
    v.sort_by(|x, y| if lowest { x.1.partial_cmp(&y.1).unwrap() } else { y.1.partial_cmp(&x.1).unwrap() });
    v
}

/// Marks the engines the run's SmolLM2 check failed and ranks again without them: a verdict or a
/// guidance line must not recommend an engine whose output is wrong.
pub fn leave_out_failed_checks(a: &mut Analysis, checks: &[crate::report::check::Outcome]) {
    let mut changed = false;
    for e in &mut a.engines {
        if let Some(c) = checks.iter().find(|c| c.engine == e.engine && !c.passed) {
            e.failed_check = Some(c.detail.clone());
            changed = true;
        }
    }
    if changed {
        a.verdict = verdicts(a);
        a.guidance = guidance(a);
    }
}

/// One line per question: the best engine (variant) by a figure, the best of the other engines
/// (variants of the same engine are not its competitors) and how far behind it is.
fn verdicts(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = |question: &str, unit: &str, lowest: bool, key: &dyn Fn(&EngineFigures) -> Option<f64>, digits: usize, extra: &dyn Fn(&EngineFigures) -> String| {
        // How the runner-up compares, in the figure's own terms.
        let worse = match (lowest, unit) {
            (true, "ms") => "slower",
            (true, _) => "more",
            (false, _) => "behind",
        };
        let ranked = best_by(a, key, lowest);
        let Some((best, v)) = ranked.first() else { return };
        let runner = ranked.iter().find(|(e, _)| family(&e.engine) != family(&best.engine));
        let gap = runner.map_or("no other engine measured it".to_string(), |(e, w)| {
            let ratio = if lowest { w / v } else { v / w };
            format!("next: {} at {w:.digits$} {unit} ({ratio:.2}× {worse})", e.engine)
        });
        out.push(format!("**{question}**: {} — {v:.digits$} {unit}{}; {gap}.", best.engine, extra(best)));
    };
    let none = |_: &EngineFigures| String::new();
    line("Interactive latency (time to first token, 50-token prompt)", "ms", true, &|e| e.ttft_ms, 1, &none);
    line("Streaming one answer (decode, one request)", "tok/s", false, &|e| e.decode_tok_s, 0, &|e| {
        match (e.mbu_pct, e.bytes_per_step_gb, e.copy_bandwidth_gbs) {
            (Some(m), _, _) => format!(" ({m:.0}% of the copy-bandwidth floor at batch 1)"),
            _ => String::new(),
        }
    });
    line("Batch throughput (best output rate of any case)", "tok/s", false, &|e| e.best_tok_s(), 0, &|e| {
        e.best_rate().map_or(String::new(), |(_, from)| format!(" ({from})"))
    });
    line(&format!("Cost (per 1M output tokens at ${:.2}/GPU-hour, best measured rate)", a.gpu_price_per_hour), "$", true, &|e| cost(a, e).0, 3, &none);
    // Goodput: the highest request rate within each bound the searches ran, priced at it.
    let bounds: Vec<String> = a.engines.iter().flat_map(|e| e.max_rate.iter().map(|m| m.0.clone())).fold(Vec::new(), |mut v, b| {
        if !v.contains(&b) {
            v.push(b);
        }
        v
    });
    for b in &bounds {
        let rate = |e: &EngineFigures| e.max_rate.iter().find(|m| &m.0 == b).map(|m| m.1).filter(|r| *r > 0.0);
        let price = a.gpu_price_per_hour;
        let at = |e: &EngineFigures| {
            e.max_rate.iter().find(|m| &m.0 == b).and_then(|m| m.2).filter(|g| *g > 0.0).map_or(String::new(), |g| {
                format!(" (goodput {g:.0} tok/s, ${:.3} per 1M output tokens at that rate)", price / (g * 3600.0) * 1e6)
            })
        };
        line(&format!("Most requests per second within `{b}` (rate search)"), "req/s", false, &rate, 1, &at);
    }
    line("Memory (peak GPU memory in the memory-efficiency cases)", "GB", true, &|e| e.peak_vram_gb, 2, &none);
    // Engines are ranked at one context length: the longest any engine measured.
    let longest = a.engines.iter().flat_map(|e| e.long_context_ttft.iter().map(|x| x.0)).fold(0.0, f64::max);
    let at_longest = move |e: &EngineFigures| e.long_context_ttft.iter().find(|x| x.0 == longest).map(|x| x.1);
    line(&format!("Long context (time to first token, {longest:.0}-token context)"), "ms", true, &at_longest, 0, &none);
    out
}

fn guidance(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let ttft = best_by(a, |e| e.ttft_ms, true);
    if let Some((e, v)) = ttft.first() {
        let next = ttft.get(1).map_or(String::new(), |(n, w)| format!("; next {} at {w:.1} ms", n.engine));
        out.push(format!(
            "Interactive latency: {} has the lowest time to first token on a 50-token prompt, {v:.1} ms median (p95 {}) on {}{next}.",
            e.engine,
            e.ttft_p95_ms.map_or("—".into(), |p| format!("{p:.1} ms")),
            e.device
        ));
    }
    let decode = best_by(a, |e| e.decode_tok_s, false);
    if let Some((e, v)) = decode.first() {
        out.push(format!("Streaming a single answer: {} decodes fastest, {v:.0} tok/s for one request ({:.1} ms per token).", e.engine, 1e3 / v));
    }
    let thr = best_by(a, |e| e.best_tok_s(), false);
    if let Some((e, v)) = thr.first() {
        out.push(format!(
            "Throughput: {} serves the most output, {v:.0} tok/s at its best measured load{}.",
            e.engine,
            e.gpu_util_pct.map_or(String::new(), |u| format!(" (GPU busy {u:.0}% of the time in its best sustained case)"))
        ));
    }
    let cheapest = best_by(a, |e| cost(a, e).0, true);
    if let Some((e, v)) = cheapest.first() {
        out.push(format!("Cost: at ${:.2} per GPU-hour, {} costs ${v:.3} per million output tokens at its best measured rate.", a.gpu_price_per_hour, e.engine));
    }
    if let Some(total) = a.gpu_memory_gb {
        for (e, peak) in best_by(a, |e| e.peak_vram_gb, true) {
            out.push(format!(
                "Memory headroom: {} peaked at {peak:.1} GB of the GPU's {total:.1} GB in the memory-efficiency cases, leaving {:.1} GB for larger batches or models.",
                e.engine,
                total - peak
            ));
        }
    }
    if out.is_empty() {
        out.push("No engine was measured in the scenarios guidance is drawn from.".into());
    }
    out
}

fn opportunities(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for e in &a.engines {
        if let (Some(mbu), Some(bw), Some(bytes)) = (e.mbu_pct, e.copy_bandwidth_gbs, e.bytes_per_step_gb) {
            let floor_ms = bytes / bw * 1e3;
            out.push(format!(
                "{}: decode at batch 1 moves {mbu:.0}% of the measured copy bandwidth; reading the weights once per token at that bandwidth takes {floor_ms:.2} ms, so decode could be up to {:.1}× faster before memory bandwidth limits it.",
                e.engine,
                100.0 / mbu.max(1e-9)
            ));
        }
        if let (Some(u), Some(itl)) = (e.gpu_util_pct, e.inter_token_ms) {
            if e.device.starts_with("cuda") && u < 90.0 {
                out.push(format!(
                    "{}: the GPU was idle {:.0}% of the sustained run; at {itl:.1} ms per token for one request, host work (kernel launches, synchronisation, sampling) is the first place to look.",
                    e.engine,
                    100.0 - u
                ));
            }
        }
        if let Some(eff) = e.scaling_efficiency().last() {
            if eff.1 < NEAR_LINEAR && e.one_request_at_a_time {
                // The lm.rs design: the batcher hands it one request at a time, which is all it serves.
                out.push(format!(
                    "{}: it serves one request at a time, so more clients only wait in line: at {:.0} clients its throughput is {:.2}× one client's; scaling would take computing several requests per step, which this design does not.",
                    e.engine,
                    eff.0,
                    eff.0 * eff.1
                ));
            } else if eff.1 < NEAR_LINEAR {
                out.push(format!(
                    "{}: at {:.0} clients throughput grows {:.2}× less than linearly; larger or continuous batching would use more of the {}.",
                    e.engine,
                    eff.0,
                    1.0 / eff.1.max(1e-9),
                    if e.device.starts_with("cuda") { "GPU" } else { "processor" }
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A memory-efficiency record of `engine` on `device` with this much GPU memory in use.
    fn memory(engine: &str, device: &str, gb: f64) -> Value {
        json!({"status": "measured", "scenario": "memory_efficiency", "engine": engine, "device": device, "case": "1b/batch1",
               "metrics": {"engine_gpu_mem_gb": {"max": gb}, "mbu_pct": {"median": 2.0}, "copy_bandwidth_gbs": {"median": 3000.0},
                           "bytes_per_step_gb": {"median": 1.3}}})
    }

    /// The lm.rs design measured on a GPU machine: its records carry the GPU's memory (0 GB
    /// of its own) and the GPU's copy bandwidth; neither is its figure, so it neither leads the
    /// memory verdict nor is told it could decode 50× faster before the GPU's bandwidth limits it.
    #[test]
    fn a_cpu_engine_gets_no_gpu_memory_or_bandwidth_figures() {
        let results = [memory("lmrs", "cpu", 0.0), memory("candle", "cuda:0", 2.1)];
        let a = analyse(&results, &json!({}), &BTreeMap::new(), 2.5);
        let figures = |name: &str| a.engines.iter().find(|e| e.engine == name).unwrap();
        assert_eq!(figures("lmrs").peak_vram_gb, None);
        assert_eq!(figures("lmrs").mbu_pct, None);
        assert_eq!(figures("candle").peak_vram_gb, Some(2.1));
        let memory = a.verdict.iter().find(|v| v.contains("Memory (peak GPU memory")).unwrap();
        assert!(memory.contains("candle — 2.10 GB"), "{memory}");
        assert!(!a.opportunities.iter().any(|o| o.starts_with("lmrs:")), "{:?}", a.opportunities);
    }

    /// An engine handed one request at a time (the lm.rs design: its records' `max_batch` is 1)
    /// cannot scale with clients by batching: the advice says it queues them, not that larger
    /// batches would help, as it does for a batching engine.
    #[test]
    fn an_engine_served_one_request_at_a_time_is_not_told_to_batch() {
        let clients = |engine: &str, n: usize, tok_s: f64, max_batch: f64| {
            json!({"status": "measured", "scenario": "concurrent_load", "engine": engine, "device": "cpu", "case": format!("clients/{n}"),
                   "metrics": {"output_tok_s": {"median": tok_s}, "max_batch": {"max": max_batch}}})
        };
        let results = [clients("lmrs", 1, 8.0, 1.0), clients("lmrs", 10, 8.4, 1.0), clients("candle", 1, 90.0, 64.0), clients("candle", 10, 300.0, 64.0)];
        let a = analyse(&results, &json!({}), &BTreeMap::new(), 2.5);
        let advice = |name: &str| a.opportunities.iter().find(|o| o.starts_with(&format!("{name}:"))).unwrap().clone();
        assert!(advice("lmrs").contains("one request at a time") && advice("lmrs").contains("1.05× one client's"), "{}", advice("lmrs"));
        assert!(advice("candle").contains("larger or continuous batching"), "{}", advice("candle"));
    }

    /// table-2026-12-07: the lm.rs design serves a batch one request after another, so its best
    /// output rate is one request's decode (42 tok/s), not its batch/64 case's 8 tok/s in all:
    /// the verdict names where the figure came from. (Its records alone: the run holds the GPU
    /// engines too since lease 3, and one of them wins the batch verdict.)
    #[test]
    fn the_batch_verdict_names_the_case_its_figure_came_from() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target-reports/table-2026-12-07/results.jsonl");
        let results: Vec<Value> = crate::results::current_records(crate::results::read_results(std::path::Path::new(path)).unwrap())
            .into_iter()
            .filter(|r| r["engine"] == "lmrs")
            .collect();
        let a = analyse(&results, &json!({}), &BTreeMap::new(), 2.5);
        let lmrs = a.engines.iter().find(|e| e.engine == "lmrs").unwrap();
        assert!(lmrs.sustained_tok_s.is_some_and(|t| t < 10.0), "{:?}", lmrs.sustained_tok_s);
        let batch = a.verdict.iter().find(|v| v.contains("Batch throughput")).unwrap();
        assert!(batch.contains("(decode of one request)") && !batch.contains("sustained"), "{batch}");
    }

    fn answer(rate: f64) -> Value {
        json!({"status": "measured", "scenario": "concurrent_load", "engine": "candle-f16", "case": "max_rate/interactive",
               "metrics": {"max_rate_rps": {"median": rate}}})
    }

    fn probe(rate: f64, requests: usize) -> Value {
        json!({"status": "measured", "scenario": "concurrent_load", "engine": "candle-f16", "case": format!("probe/{rate}rps"), "samples": requests})
    }

    /// The H200 run where burn-cuda met a 10-token prompt for the first time: its two prompt-10
    /// cases are flagged, the prompt-50 ones it had compiled for at start-up are not.
    #[test]
    fn a_case_that_ran_far_longer_than_its_requests_is_flagged() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target-reports/h200-2026-12-03-burn/results.jsonl");
        let records: Vec<Value> = std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let case = |c: &str| records.iter().find(|r| r["status"] == "measured" && r["case"] == c).unwrap();
        let (wall, timed) = time_outside_requests(case("ttft/prompt10")).expect("flagged");
        assert!(wall > 80.0 && timed < 2.0, "{wall} {timed}");
        assert!(time_outside_requests(case("total/prompt10")).is_some());
        assert_eq!(time_outside_requests(case("ttft/prompt50")), None);
        assert_eq!(time_outside_requests(case("total/prompt50")), None);
        let flagged = flags(&records);
        assert!(flagged.iter().any(|f| f.starts_with("single_request/burn/ttft/prompt10: the case took 82 s for 1.0 s")), "{flagged:?}");
    }

    #[test]
    fn a_rate_answer_from_a_burst_one_batch_absorbs_is_flagged_and_a_real_one_is_not() {
        // The first H200 run: 32 requests at 512 req/s arrived in 0.06 s.
        let results = [probe(512.0, 32), answer(512.0)];
        let why = rate_probe_too_short(&results, &results[1]).expect("flagged");
        assert!(why.contains("32 requests arriving in 0.06 s"), "{why}");
        // Two seconds of arrivals at 64 req/s: a figure.
        let results = [probe(64.0, 128), answer(64.0)];
        assert_eq!(rate_probe_too_short(&results, &results[1]), None);
        // No rate held: nothing to flag.
        assert_eq!(rate_probe_too_short(&[answer(0.0)], &answer(0.0)), None);
    }
}
