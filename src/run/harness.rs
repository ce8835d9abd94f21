//! What every scenario bench shares: the model and prompts, the engines to run and the ones to
//! report as skipped, Criterion configured for the profile, and turning raw request records into
//! results once a case is done.
//!
//! Load generation (`crate::run::requests`, `crate::run::batcher`) only stamps instants;
//! metrics are computed from the raw records afterwards (`finish_case`), never inside the timed
//! loop.

use crate::engine::{Engine, ModelFiles};
use crate::engines::{Variant, VARIANTS};
use crate::measure::clock::EngineClock;
use crate::measure::stats::Summary;
use crate::measure::{clock_for, Clock};
use crate::model::llama::LlamaConfig;
use crate::results::{Metric, ModelIdentity, RequestRecord, ResultRecord, RunDir};
use crate::run::pacer::Pacer;
use crate::run::requests::{run_requests, Timed};
use crate::run::workload::Profile;
use anyhow::{Context, Result};
use criterion::{BenchmarkId, Criterion, SamplingMode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenizers::Tokenizer;

pub struct Harness {
    pub scenario: &'static str,
    pub profile: Profile,
    pub model: ModelFiles,
    pub identity: ModelIdentity,
    pub config: LlamaConfig,
    pub tokenizer: Tokenizer,
    pub run: RunDir,
    /// The GPU to run GPU-capable engines on, if any.
    pub gpu: Option<usize>,
    pub new_tokens: usize,
    /// Decides which cases fit the run's time budget (every case, without one).
    pub pacer: Arc<Pacer>,
    /// Cases already measured in this run directory, `(engine, case)` of this scenario, when the
    /// run resumes (`LLM_BENCH_RESUME=1`, `llm-bench suite --resume`): they are not measured again.
    pub done: std::collections::BTreeSet<(String, String)>,
    /// (engine, case) → seconds an earlier process spent on the case before a signal stopped
    /// it unfinished (`crate::results::stopped_cases`): the least the case costs, so a resumed
    /// run does not start it again with less time than that left.
    stopped: BTreeMap<(String, String), f64>,
    /// When the current case started (its record's `wall_s`).
    case_started: std::sync::Mutex<Option<Instant>>,
    /// Engine → its case whose requests failed, until the engine's next case checks it still serves.
    failed: std::sync::Mutex<BTreeMap<String, String>>,
    /// Engine → why its remaining cases are not run: it did not recover from a failed case.
    broken: std::sync::Mutex<BTreeMap<String, String>>,
}

impl Harness {
    /// One scenario on one model, results into `run`, its cases paced by `pacer`; writes the
    /// environment record.
    pub fn open(scenario: &'static str, model: ModelFiles, run: RunDir, pacer: Arc<Pacer>) -> Result<Self> {
        let profile = Profile::from_env()?;
        let identity = ModelIdentity::of(&model)?;
        let config = LlamaConfig::from_gguf(&crate::model::gguf::GgufFile::open(&model.gguf)?)?;
        let tokenizer = crate::model::tokenizer::load(&model.tokenizer)?;
        let gpu = select_gpu()?;
        // The engines this process was given (none named: every built one).
        let engines = std::env::var("LLM_BENCH_ENGINES").ok().filter(|e| !e.trim().is_empty()).map(|e| {
            crate::engines::select(Some(&e)).unwrap_or_default().into_iter().map(|v| (v.name, v.cpu_only())).collect()
        });
        run.process(crate::measure::telemetry::gpu_uuid(gpu), engines)?;
        if !run.path(&run.environment_file()).exists() {
            let mut env = crate::measure::telemetry::environment();
            env["model"] = serde_json::to_value(&identity)?;
            env["profile"] = profile.name().into();
            // The host's speed before the first engine (again after the last: `scenarios::finish`).
            env["calibration"] = serde_json::json!({"start": crate::measure::host::calibrate(gpu)});
            run.environment(&env)?;
        }
        eprintln!(
            "[llm-bench] {scenario}: model {} ({}), profile {}, device {}, results in {}",
            identity.name,
            identity.description,
            profile.name(),
            gpu.map_or("cpu".to_string(), |i| format!("cuda:{i}")),
            run.dir.display()
        );
        let new_tokens = profile.new_tokens()?;
        // The harness's own overhead (`stub`) belongs to the run, not to an engine: measured once
        // per run directory, also when a run is made one engine per process without resuming
        // (`scripts/device-run.sh` passes).
        let resume = resuming();
        let done: std::collections::BTreeSet<(String, String)> = crate::results::measured_cases(&run.dir)
            .into_iter()
            .filter(|(s, e, _)| s == scenario && (resume || e == "stub"))
            .map(|(_, e, c)| (e, c))
            .collect();
        if resume && !done.is_empty() {
            eprintln!("[llm-bench] {scenario}: resuming {}: {} case(s) already measured there are not measured again", run.dir.display(), done.len());
        }
        if resume {
            // Figures an earlier binary measured under another serving than this one's stand until
            // withdrawn: measuring the case again beside them would leave two answers.
            let stale: Vec<String> = crate::results::read_results(&run.path("results.jsonl"))
                .unwrap_or_default()
                .iter()
                .filter(|r| {
                    let now = crate::engines::Variant::max_batch_of(r["engine"].as_str().unwrap_or_default());
                    r["scenario"] == scenario && crate::results::served_in_larger_batches(r, now)
                })
                .map(|r| format!("{}/{}", r["engine"].as_str().unwrap_or("?"), r["case"].as_str().unwrap_or("?")))
                .collect();
            if !stale.is_empty() {
                eprintln!(
                    "[llm-bench] {scenario}: warning: {} was served in larger batches than this binary serves its engine (Variant::max_batch); \
                     its figures stand as measured and are not measured again unless withdrawn: \
                     llm-bench withdraw {} --scenario {scenario} --engine <engine> --case <case> --reason <why>",
                    stale.join(", "),
                    run.dir.display()
                );
            }
        }
        let stopped = crate::results::stopped_cases(&run.dir).into_iter().filter(|((s, _, _), _)| s == scenario).map(|((_, e, c), t)| ((e, c), t)).collect();
        Ok(Self { scenario, profile, model, identity, config, tokenizer, run, gpu, new_tokens, pacer, done, stopped, case_started: Default::default(), failed: Default::default(), broken: Default::default() })
    }

    /// A prompt of exactly `len` tokens, the same ids for every engine.
    pub fn prompt(&self, len: usize) -> Result<Vec<u32>> {
        crate::run::workload::prompt(&self.tokenizer, self.config.bos_token, len)
    }

    /// Engines to measure: the variants built, selected (`LLM_BENCH_ENGINES=candle,candle-f16`)
    /// and able to run on this run's device. Every other known variant is written to the results
    /// as skipped, with the reason. An unknown name in `LLM_BENCH_ENGINES` is an error.
    pub fn engines(&self) -> Result<Vec<&'static Variant>> {
        let selected = crate::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
        let mut out = Vec::new();
        for v in VARIANTS {
            let reason = if !v.built() {
                Some(format!("not built into this binary; rebuild with `--features {}`", v.engine.name()))
            } else if !selected.iter().any(|s| s.name == v.name) {
                Some(match v.experiment {
                    None => "not selected by LLM_BENCH_ENGINES".to_string(),
                    Some(found) => format!("not selected: an experiment, measured only when LLM_BENCH_ENGINES names it ({found})"),
                })
            } else {
                v.unsupported(v.device(self.gpu))
            };
            match reason {
                Some(r) => self.skip(v.name, None, &r),
                None => out.push(v),
            }
        }
        Ok(out)
    }

    /// Load an engine on its device and send it its first requests; a failure comes back as
    /// the reason to record.
    ///
    /// The first request after a load pays one-time costs that no later request pays (GPU
    /// kernels compiled from PTX by the driver, cuBLAS handles, memory pools): it is timed and
    /// reported as `first_request_s`, kept out of every case's figures, and not used to
    /// predict what later requests cost. A second request, the same again, teaches the pacer
    /// the engine's speed.
    pub fn load(&self, variant: &'static Variant) -> std::result::Result<(Box<dyn Engine>, Startup), String> {
        let device = variant.device(self.gpu);
        self.current(variant.name, None);
        // An engine's threads are made while it loads: not on a CPU pinned for the last engine.
        crate::measure::pin::release();
        self.pacer.set_gpu_baseline(crate::measure::telemetry::gpu_memory_used(self.gpu));
        let started = Instant::now();
        let mut engine = variant.load(&self.model, device).map_err(|e| format!("failed to load on {device}: {e:#}"))?;
        let load = started.elapsed();
        // A fault on purpose (the tests of a failing engine): the real engine, failing as told.
        if let Some(fault) = crate::engines::fault::Fault::from_env().map_err(|e| format!("{e:#}"))? {
            engine = Box::new(crate::engines::fault::Faulty { inner: engine, fault, broken: false });
        }
        // Loading may have replaced the SIGINT handler (torch's import does): Ctrl-C is ours again.
        crate::run::interrupt::install();
        let prompt = self.prompt(crate::run::workload::HEADLINE_PROMPT_TOKENS).map_err(|e| format!("{e:#}"))?;
        let new_tokens = self.new_tokens.min(PRIMING_NEW_TOKENS);
        let first = Instant::now();
        run_requests(engine.as_mut(), std::slice::from_ref(&prompt), new_tokens)
            .map_err(|e| format!("loaded on {device}, but its first request failed: {e:#}"))?;
        let first_request = first.elapsed();
        let second = run_requests(engine.as_mut(), std::slice::from_ref(&prompt), new_tokens)
            .map_err(|e| format!("loaded on {device}, but its second request failed: {e:#}"))?;
        self.pacer.learn(variant.name, prompt.len(), second.start, &second.tokens);
        eprintln!(
            "[llm-bench] loaded {} on {device} in {:.2}s; first request {:.2}s, second {:.2}s ({} prompt, {new_tokens} new tokens)",
            variant.name,
            load.as_secs_f64(),
            first_request.as_secs_f64(),
            second.start.elapsed().as_secs_f64(),
            prompt.len()
        );
        let pinned_cpu = crate::measure::pin::pin_timing_thread().map_err(|e| format!("{e:#}"))?;
        if let Some(cpu) = pinned_cpu {
            eprintln!("[llm-bench] {}: the timing thread runs on CPU {cpu}, the process's other threads elsewhere (LLM_BENCH_PIN)", variant.name);
        }
        // The host's single-thread speed right before this engine's cases, with the engine
        // loaded (its threads alive): batch-1 figures follow it, and it can move by tens of
        // percent inside one run (h200-2026-12-03-repeat), so every case carries it.
        let host_cpu_ns = Some(crate::measure::host::cpu_ns_per_iteration());
        Ok((engine, Startup { load, first_request: Some(first_request), shapes: None, host_cpu_ns, pinned_cpu }))
    }

    /// What Criterion spends on a case whose one iteration takes `one`: its warm-up (at least
    /// one iteration) and its samples (at least one iteration each, or the measurement time).
    fn criterion_cost(&self, one: Duration, measurement: Duration) -> Duration {
        one.max(self.profile.warm_up_time()) + measurement.max(one * self.samples() as u32)
    }

    /// Learn an engine's speed from a finished `generate` call (a warm-up or a measured one).
    fn learn(&self, engine: &str, t: &Timed, prompt_tokens: usize) {
        self.pacer.learn(engine, prompt_tokens, t.start, &t.tokens);
    }

    /// A case's warm-up: one call outside Criterion, which also finds a failing case before it
    /// can spoil a figure and tells what measuring the case will cost. When Criterion's samples
    /// do not fit the pacer's share of the run, the case is measured with as many requests as
    /// do, at least one: a figure from fewer samples, flagged, rather than no figure. When the
    /// first call does not fit, a second one decides (the first may have paid one-time costs:
    /// kernels compiled for new shapes, memory pools growing).
    ///
    /// `counted`: the warm-up call is one of the samples (a CPU-only engine); otherwise it is
    /// only when nothing else fits in what is left ([`fewer`]). A warm-up already paid for is never thrown away
    /// for the time it used: the lm.rs design's 8K-token prefill took 397 s and was then skipped
    /// for the 128 s left after it (target-reports/table-2026-12-07).
    fn warm_up(&self, once: &mut dyn FnMut() -> Result<Duration>, measurement: Duration, counted: bool, what: &'static str) -> Result<Mode> {
        let first = once()?;
        let fits = |t: Duration| self.pacer.over(self.criterion_cost(t, measurement), "measuring it with Criterion");
        if fits(first).is_none() {
            return Ok(Mode::Criterion);
        }
        let one = if counted || self.pacer.over(first, "").is_some() { first } else { first.min(once()?) };
        let Some(why) = fits(one) else { return Ok(Mode::Criterion) };
        let share = self.pacer.share().unwrap_or(Duration::MAX);
        let left = self.pacer.left().unwrap_or(Duration::MAX);
        Ok(fewer(Fit { one, share, left, samples: self.samples() }, counted, what, &why))
    }

    /// Why a case must be skipped before its first request: that request alone, estimated from
    /// the engine's earlier requests, would not finish in what is left of the run's time budget.
    /// A case an earlier process was stopped in counts at least the time it had spent there.
    fn first_request_too_slow(&self, engine: &str, case: &str, batch: usize, prompt: usize, new_tokens: usize) -> Option<String> {
        let model = self.pacer.rates(engine).map(|r| r.estimate(batch, prompt, new_tokens));
        let stopped = self.stopped_after(engine, case);
        let estimate = model.max(stopped)?;
        let left = self.pacer.left()?;
        let from = match stopped {
            Some(s) if s >= estimate => format!(" or more (an earlier process was stopped after {:.1} s of it, unfinished)", s.as_secs_f64()),
            _ => " (from this engine's earlier requests)".to_string(),
        };
        (estimate > left).then(|| {
            format!(
                "its first request alone is estimated at {:.1} s{from}, more than the {:.1} s left of the run's time budget (a larger --budget measures it)",
                estimate.as_secs_f64(),
                left.as_secs_f64()
            )
        })
    }

    /// How long an earlier process of this run spent on `engine`'s `case` before a signal
    /// stopped it unfinished (a device call's time limit), if one did.
    fn stopped_after(&self, engine: &str, case: &str) -> Option<Duration> {
        self.stopped.get(&(engine.to_string(), case.to_string())).map(|s| Duration::from_secs_f64(*s))
    }

    /// Why a request of `prompt` + `new_tokens` tokens cannot run on `engine` with this model:
    /// longer than the model's trained context or than what the engine allocates.
    pub fn context_problem(&self, engine: &dyn Engine, prompt: usize, new_tokens: usize) -> Option<String> {
        let need = prompt + new_tokens;
        let model = self.config.context_length;
        let (limit, whose) = match engine.context_limit() {
            Some(e) if e < model => (e, format!("{} allocates for", engine.info().name)),
            _ => (model, format!("the model {} was trained for", self.identity.name)),
        };
        (need > limit).then(|| {
            format!("not runnable: a prompt of {prompt} tokens plus {new_tokens} new ones is {need} positions, more than the {limit} {whose}")
        })
    }

    /// Why a case of `prompt` + `new_tokens` tokens cannot run on `engine`: it did not recover from
    /// an earlier failed case ([`Self::lost`]), or the request does not fit its context.
    fn blocked(&self, engine: &mut dyn Engine, name: &str, prompt: usize, new_tokens: usize) -> Option<String> {
        self.lost(engine, name).or_else(|| self.context_problem(engine, prompt, new_tokens))
    }

    /// Why `engine`'s next case cannot run: an earlier case of it failed, and one untimed request
    /// of 8 prompt tokens and 2 new ones after it failed too. Such an engine would fail every case
    /// after (burn-cuda after an out-of-memory: its fusion streams have lost their tensors), so
    /// those are recorded as not run, each saying how to measure it: a new process, resuming.
    fn lost(&self, engine: &mut dyn Engine, name: &str) -> Option<String> {
        if let Some(why) = self.broken.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Some(why.clone());
        }
        let case = self.failed.lock().unwrap_or_else(|e| e.into_inner()).remove(name)?;
        let probe = self.prompt(8).ok()?;
        match run_requests(engine, &[probe], 2) {
            Ok(_) => {
                eprintln!("[llm-bench] {name} serves again after {case} failed (one untimed request of 8 prompt tokens, 2 new)");
                None
            }
            Err(e) => {
                let why = format!(
                    "not run: {name} did not recover after {case} failed: one request of 8 prompt tokens and 2 new ones after it \
                     failed too ({}); its remaining cases need a new process: rerun with LLM_BENCH_ENGINES={name} and \
                     LLM_BENCH_RESUME=1, which keeps every finished case",
                    without_backtrace(&format!("{e:#}"))
                );
                self.broken.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), why.clone());
                Some(why)
            }
        }
    }

    /// Record that `case`'s requests failed (`what`: "batch failed", ...) with the engine's error:
    /// recorded like a skip, and the engine's next case first checks that it still serves
    /// ([`Self::blocked`]).
    fn fail(&self, engine: &str, case: &str, what: &str, e: &anyhow::Error) {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).insert(engine.to_string(), case.to_string());
        self.skip(engine, Some(case), &format!("{what}: {e:#}"));
    }

    /// Record that an engine (or one case of it) was not measured, and why.
    pub fn skip(&self, engine: &str, case: Option<&str>, reason: &str) {
        let short = without_backtrace(reason);
        if short.len() < reason.trim_end().len() {
            // The record keeps the message; the bench log keeps the frames too.
            eprintln!("[llm-bench] {}/{engine}: the engine's whole error:\n{reason}", self.scenario);
        }
        let reason = &with_hint(&short);
        eprintln!("[llm-bench] {}/{engine}{}: skipped: {reason}", self.scenario, case.map(|c| format!("/{c}")).unwrap_or_default());
        let rec = ResultRecord::Skipped {
            run: self.run.run.clone(),
            scenario: self.scenario.into(),
            engine: engine.into(),
            case: case.map(Into::into),
            reason: reason.into(),
            ran_s: None,
        };
        if let Err(e) = self.run.record(&rec) {
            eprintln!("[llm-bench] cannot write the results file: {e:#}");
        }
    }

    /// Criterion samples per figure: the profile's, or Criterion's own `--sample-size N`.
    pub fn samples(&self) -> usize {
        let args: Vec<String> = std::env::args().collect();
        args.windows(2)
            .find(|w| w[0] == "--sample-size")
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(self.profile.samples())
    }

    /// Criterion for one engine: the profile's sample count, command-line flags applied
    /// (`--save-baseline`, `--baseline`, filters, ...) when started as a bench.
    pub fn criterion<M: EngineClock>(&self, clock: M) -> Criterion<M> {
        let c = Criterion::default()
            .with_measurement(clock)
            .sample_size(self.profile.samples())
            .nresamples(self.profile.nresamples())
            .warm_up_time(self.profile.warm_up_time())
            .measurement_time(self.profile.measurement_time());
        // `llm-bench suite` has its own arguments; Criterion's would read them as a filter.
        if started_as_bench() {
            c.configure_from_args()
        } else {
            c
        }
    }

    /// Whether Criterion's command-line filter (`cargo bench --bench x -- <filter> [--exact]`, a
    /// regular expression over `<scenario>/<engine>/<case>`) keeps this case; cases it leaves out
    /// are skipped before their warm-up request, so a filtered run costs only what it measures.
    /// `llm-bench suite` takes no Criterion arguments and keeps every case.
    fn criterion_selects(&self, engine: &str, case: &str) -> bool {
        if !started_as_bench() {
            return true;
        }
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = format!("{}/{engine}/{case}", self.scenario);
        match criterion_filter(&args) {
            None => true,
            Some((f, true)) => f == full,
            Some((f, false)) => regex::Regex::new(&f).map_or(true, |r| r.is_match(&full)),
        }
    }

    /// Flat sampling: every sample runs the same number of requests, which for requests that
    /// take milliseconds to seconds is what a latency figure should be.
    pub fn sampling() -> SamplingMode {
        SamplingMode::Flat
    }

    /// Turn a case's raw request records into a result line (and keep the records); `extra`
    /// holds figures the scenario measured besides the per-request ones.
    pub fn finish_case(
        &self,
        engine: &dyn Engine,
        timer: &str,
        case: &str,
        records: Vec<RequestRecord>,
        extra: BTreeMap<String, Metric>,
        reduced: Option<String>,
    ) {
        if records.is_empty() {
            return; // filtered out by the command line, nothing ran
        }
        let mut metrics = extra;
        let col = |f: &dyn Fn(&RequestRecord) -> Vec<f64>| -> Vec<f64> { records.iter().flat_map(f).collect() };
        let mut put = |name: &str, unit: &'static str, values: Vec<f64>| {
            if let Some(summary) = Summary::of(&values) {
                metrics.insert(name.to_string(), Metric { unit, summary });
            }
        };
        put("ttft_ms", "ms", col(&|r| vec![r.ttft_ms]));
        put("total_ms", "ms", col(&|r| vec![r.total_ms]));
        put("inter_token_ms", "ms", col(&|r| r.inter_token_ms()));
        put("decode_tok_s", "tok/s", col(&|r| r.decode_tok_s().into_iter().collect()));
        let main = if case.starts_with("ttft") { "ttft_ms" } else { "total_ms" };
        let spread = metrics.get(main).map_or(0.0, |m| m.summary.rel_mad);
        let rec = ResultRecord::Measured {
            run: self.run.run.clone(),
            scenario: self.scenario.into(),
            engine: engine.info().name,
            engine_info: engine.info(),
            case: case.into(),
            model: self.identity.clone(),
            device: engine.info().device.to_string(),
            timer: timer.into(),
            samples: records.len(),
            metrics,
            spread,
            profile: self.profile.name().into(),
            reduced,
            wall_s: self.case_started.lock().unwrap_or_else(|e| e.into_inner()).map(|t| t.elapsed().as_secs_f64()),
            note: None,
            unfinished: false,
        };
        if let Err(e) = self.run.requests(&records).and_then(|_| self.run.record(&rec)) {
            eprintln!("[llm-bench] cannot write the results file: {e:#}");
        }
    }
}

/// Whether this run continues an earlier one in the same run directory: `LLM_BENCH_RESUME=1`
/// (set by `llm-bench suite --resume <run dir>`).
pub fn resuming() -> bool {
    std::env::var("LLM_BENCH_RESUME").is_ok_and(|v| v == "1")
}

/// Whether this process is a Criterion bench (`cargo bench`, or the bundle's binary started
/// under a scenario's name) rather than `llm-bench suite`: only a bench takes Criterion's flags.
pub fn started_as_bench() -> bool {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name != "llm-bench"
}

/// Criterion's filter among a bench's arguments and whether `--exact` is set: the first argument
/// that is neither a flag nor a flag's value.
fn criterion_filter(args: &[String]) -> Option<(String, bool)> {
    const WITH_VALUE: [&str; 14] = [
        "--save-baseline", "--baseline", "--baseline-lenient", "--load-baseline", "--sample-size", "--warm-up-time",
        "--measurement-time", "--nresamples", "--noise-threshold", "--confidence-level", "--significance-level",
        "--profile-time", "--plotting-backend", "--output-format",
    ];
    let exact = args.iter().any(|a| a == "--exact");
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        if WITH_VALUE.contains(&a.as_str()) || a == "--color" || a == "-c" {
            rest.next();
        } else if !a.starts_with('-') {
            return Some((a.clone(), exact));
        }
    }
    None
}

/// How often the GPU and the process are sampled during a latency case.
const LATENCY_SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Request records kept per Criterion sample of a latency case.
const MAX_RECORDS_PER_SAMPLE: usize = 64;

/// One latency figure: a request of `prompt` for `new_tokens`, as Criterion id
/// `<scenario>/<engine>/<figure>/<label>` (e.g. `single_request/candle/ttft/prompt10`).
pub struct LatencyCase {
    pub figure: &'static str,
    pub label: String,
    pub prompt: Vec<u32>,
    pub new_tokens: usize,
}

impl LatencyCase {
    /// For each prompt length: `ttft` (one new token: prefill and the first token) and `total`
    /// (`new_tokens` new tokens).
    pub fn ttft_and_total(h: &Harness, prompt_lengths: &[usize], label: &str, new_tokens: usize) -> Result<Vec<Self>> {
        let mut cases = Vec::new();
        for &n in prompt_lengths {
            let prompt = h.prompt(n)?;
            for (figure, new) in [("ttft", 1), ("total", new_tokens)] {
                cases.push(Self { figure, label: format!("{label}{n}"), prompt: prompt.clone(), new_tokens: new });
            }
        }
        Ok(cases)
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.figure, self.label)
    }
}

impl Harness {
    /// Measure every case on one loaded engine with its clock (CUDA events on a GPU stream,
    /// wall time otherwise); results are written case by case.
    pub fn measure_latency(&self, engine: &mut dyn Engine, startup: Startup, cases: &[LatencyCase]) {
        match clock_for(engine) {
            Clock::Wall(c) => self.measure_latency_with(engine, c, startup, cases),
            #[cfg(feature = "cuda")]
            Clock::CudaEvents(c) => self.measure_latency_with(engine, c, startup, cases),
        }
    }

    fn measure_latency_with<M: EngineClock>(&self, engine: &mut dyn Engine, clock: M, startup: Startup, cases: &[LatencyCase]) {
        let name = engine.info().name;
        let mut criterion = self.criterion(clock.clone());
        let mut group = criterion.benchmark_group(format!("{}/{name}", self.scenario));
        group.sampling_mode(Self::sampling());
        let cpu_only = Variant::named(&name).is_some_and(Variant::cpu_only);
        // A CPU-only engine's `total` requests measured with fewer samples, by label: their first
        // tokens are the `ttft` case of the same prompt (see `first_tokens`).
        let mut few_totals: BTreeMap<String, (Vec<RequestRecord>, BTreeMap<String, Metric>)> = BTreeMap::new();
        for case in latency_order(cases, cpu_only) {
            let id = case.id();
            let _case = self.case_starts(&name, &id);
            if !self.criterion_selects(&name, &id) || self.is_done(&name, &id) {
                continue; // left out by Criterion's filter, or measured before this run resumed
            }
            self.pacer.progress(self.scenario, &name, &id);
            if let Some((total, extra)) = (case.figure == "ttft").then(|| few_totals.remove(&case.label)).flatten() {
                let why = format!(
                    "{n} request(s): the first tokens of total/{label}'s {n} request(s) in this process, not requests of their own \
                     ({name} runs on the CPU only and prefills token by token: a one-token request repeats the same prefill, \
                     minutes at a long context; figures from those raw requests, no Criterion estimate)",
                    n = total.len(),
                    label = case.label
                );
                self.finish_case(engine, clock.label(), &id, first_tokens(&total, &id), extra, Some(why));
                continue;
            }
            let prompt = std::slice::from_ref(&case.prompt);
            if let Some(why) = self.blocked(engine, &name, case.prompt.len(), case.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            if let Some(why) = self.first_request_too_slow(&name, &id, 1, case.prompt.len(), case.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            let mut warm: Option<Timed> = None;
            let mut once = || -> Result<Duration> {
                let started = Instant::now();
                let t = run_requests(engine, prompt, case.new_tokens)?;
                self.learn(&name, &t, case.prompt.len());
                let took = started.elapsed();
                warm = Some(t);
                Ok(took)
            };
            let mut calls: Vec<Vec<RequestRecord>> = Vec::new();
            // A CPU-only engine (the lm.rs design) compiles nothing per shape and warms no
            // GPU: its warm-up request is one like the others, so when only a few requests fit,
            // that request is the first of them instead of being thrown away (its 8K-token
            // prefill takes minutes on 16 cores: one request less per case halves its
            // long-context scenario). Another engine's warm-up is a figure only when nothing
            // else fit (`warm_up`).
            // A CPU-only engine's warm-up request may be kept as one of the case's figures (an
            // 8K prompt's only one, minutes long): sampled with the requests after it.
            let early = cpu_only.then(|| crate::measure::telemetry::Sampler::start(self.gpu, LATENCY_SAMPLE_PERIOD));
            let few = match self.warm_up(&mut once, self.profile.measurement_time(), cpu_only, "request") {
                Ok(Mode::Criterion) => None,
                Ok(Mode::Few(few)) => {
                    if let Some(t) = warm.take().filter(|_| few.kept) {
                        calls.push(t.records(self.scenario, &name, &id, 0, case.prompt.len()));
                    }
                    Some(few)
                }
                Err(e) => {
                    self.fail(&name, &id, "request failed", &e);
                    continue;
                }
            };
            let mut failure = None;
            // What the GPU and this process did meanwhile: whether the engine is bound by the
            // host (one core busy, the GPU partly idle) or by the GPU, from NVML and /proc.
            let sampler = early.unwrap_or_else(|| crate::measure::telemetry::Sampler::start(self.gpu, LATENCY_SAMPLE_PERIOD));
            let mut routine = |iters: u64| {
                let mut total = Duration::ZERO;
                let mut records = Vec::new();
                for _ in 0..iters {
                    let mark = clock.start();
                    match run_requests(engine, prompt, case.new_tokens) {
                        Ok(t) => {
                            total += clock.end(mark);
                            // Outside the timed span: the measured requests teach the pacer
                            // too, so a warm-up request that paid a compile (the only one when
                            // it alone used the case's share) is not what later cases are
                            // estimated from (h200-2026-12-03-whole: Burn's 1K context).
                            self.learn(&name, &t, case.prompt.len());
                            if let Err(e) = engine.settle() {
                                failure.get_or_insert(e);
                            }
                            // Microsecond requests (the stub) run thousands of times per
                            // sample; a bounded number of records per sample is plenty.
                            if records.len() < MAX_RECORDS_PER_SAMPLE {
                                records.extend(t.records(self.scenario, &name, &id, calls.len(), case.prompt.len()));
                            }
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                calls.push(records);
                total
            };
            let ran = measure_case(&mut group, BenchmarkId::new(case.figure, &case.label), few.as_ref(), &mut routine);
            let samples = sampler.stop();
            if let Some(e) = failure {
                self.fail(&name, &id, "request failed during measurement", &e);
                continue;
            }
            // Kept sample by sample, as a batch's are: a spread such as burn's two first-token
            // levels in table-2026-12-07's lease 6 (13 and 22-26 ms) can then be set against the
            // GPU's clocks and the host's load at the time.
            if let Err(e) = self.run.telemetry(self.scenario, &name, &id, &samples) {
                eprintln!("[llm-bench] cannot write the telemetry file: {e:#}");
            }
            // Criterion's measurement phase is its last `samples` calls; earlier ones warmed up.
            let keep = calls.len().saturating_sub(self.samples());
            let records: Vec<RequestRecord> = calls.into_iter().skip(keep).flatten().collect();
            let mem = engine.memory();
            let one = |unit: &'static str, v: f64| Summary::of(&[v]).map(|summary| Metric { unit, summary });
            let mut extra: BTreeMap<String, Metric> = [
                ("weights_gb", one("GB", mem.weights_bytes as f64 / 1e9)),
                ("kv_cache_gb", one("GB", mem.kv_cache_bytes as f64 / 1e9)),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
            let mut put = |k: &str, unit: &'static str, v: Vec<f64>| {
                if let Some(summary) = Summary::of(&v) {
                    extra.insert(k.to_string(), Metric { unit, summary });
                }
            };
            put("cpu_cores", "cores", samples.iter().map(|s| s.cpu_cores).collect());
            put("gpu_util_pct", "%", samples.iter().filter_map(|s| s.gpu_util_pct).collect());
            timed_thread(&mut put, &samples);
            extra.extend(startup.metrics());
            if cpu_only && few.is_some() && case.figure == "total" {
                few_totals.insert(case.label.clone(), (records.clone(), extra.clone()));
            }
            self.finish_case(engine, clock.label(), &id, records, extra, few.map(|few| few.flag(ran)));
        }
        group.finish();
        criterion.final_summary();
    }
}

/// The order a latency scenario's cases run in: as listed, except that a CPU-only engine
/// (the lm.rs design) runs its longest prompt first and each prompt's `total` before its `ttft`.
/// `total` first, so that when its requests are so slow that only a few fit, the `ttft` case
/// takes their first tokens instead of prefilling the same prompt again (an 8K-token prefill
/// takes minutes on 16 cores: each long-context prompt would otherwise be prefilled twice).
/// Longest first, so that the one request that needs most of a device call (the 8K prefill,
/// 459.5 s of table-2026-12-07's lmrs) starts while the call has that time, and the shorter
/// prompts fill what is left or wait for the next call, instead of the 8K request finding a
/// call's remainder too short after them.
fn latency_order(cases: &[LatencyCase], cpu_only: bool) -> Vec<&LatencyCase> {
    let mut order: Vec<&LatencyCase> = cases.iter().collect();
    if cpu_only {
        order.sort_by_key(|c| (std::cmp::Reverse(c.prompt.len()), c.figure != "total"));
    }
    order
}

/// A `ttft` case's records made from a `total` case's requests of the same prompt: each
/// request's first token, as the one-token request would have returned it.
fn first_tokens(total: &[RequestRecord], case: &str) -> Vec<RequestRecord> {
    total
        .iter()
        .map(|r| RequestRecord {
            case: case.to_string(),
            new_tokens: 1,
            total_ms: r.ttft_ms,
            token_ms: r.token_ms.iter().take(1).copied().collect(),
            ..r.clone()
        })
        .collect()
}

/// A sustained-throughput case: the same batch of different prompts, run back to back for the
/// profile's duration. Criterion id `<scenario>/<engine>/batch/<label>`.
pub struct ThroughputCase {
    /// Criterion function name, e.g. `batch` or a model size.
    pub figure: String,
    pub label: String,
    pub prompts: Vec<Vec<u32>>,
    pub new_tokens: usize,
}

impl Harness {
    /// Run each case back to back for `duration`. With `copy_bandwidth` (bytes/s, read + write)
    /// the results also get model bandwidth utilisation: bytes a decode step must read
    /// (every weight once, plus the batch's KV cache at its mean length) times decode steps per
    /// second, over the measured copy bandwidth.
    pub fn measure_throughput(
        &self,
        engine: &mut dyn Engine,
        startup: Startup,
        cases: &[ThroughputCase],
        duration: Duration,
        copy_bandwidth: Option<f64>,
    ) {
        let run = ThroughputRun { startup, duration, copy_bandwidth };
        match clock_for(engine) {
            Clock::Wall(c) => self.measure_throughput_with(engine, c, &run, cases),
            #[cfg(feature = "cuda")]
            Clock::CudaEvents(c) => self.measure_throughput_with(engine, c, &run, cases),
        }
    }

    /// Bytes of weights a decode step reads: every tensor of the file once (the tied classifier
    /// reads the whole embedding table; the embedding lookup itself reads a few rows).
    pub fn weight_bytes_per_step(&self) -> u64 {
        crate::model::gguf::GgufFile::open(&self.model.gguf)
            .map(|g| g.tensors.values().map(|t| t.byte_len() as u64).sum())
            .unwrap_or(0)
    }

    fn measure_throughput_with<M: EngineClock>(&self, engine: &mut dyn Engine, clock: M, run: &ThroughputRun, cases: &[ThroughputCase]) {
        let startup = run.startup;
        let name = engine.info().name;
        let mut criterion = self.criterion(clock.clone());
        let mut group = criterion.benchmark_group(format!("{}/{name}", self.scenario));
        group.sampling_mode(Self::sampling());
        group.measurement_time(run.duration);
        let cpu_only = Variant::named(&name).is_some_and(Variant::cpu_only);
        for case in cases {
            let id = format!("{}/{}", case.figure, case.label);
            let _case = self.case_starts(&name, &id);
            if !self.criterion_selects(&name, &id) || self.is_done(&name, &id) {
                continue; // left out by Criterion's filter, or measured before this run resumed
            }
            self.pacer.progress(self.scenario, &name, &id);
            let prompt_len = case.prompts[0].len();
            if let Some(why) = self.blocked(engine, &name, prompt_len, case.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            if let Some(why) = self.first_request_too_slow(&name, &id, case.prompts.len(), prompt_len, case.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            // Started before the warm-up, whose samples are dropped below unless the warm-up
            // batch is one of the measured ones (a CPU-only engine's, see under).
            let sampler_start = Instant::now();
            let sampler = crate::measure::telemetry::Sampler::start(self.gpu, Duration::from_millis(100));
            let mut warm: Option<(Instant, Timed)> = None;
            let mut once = || -> Result<Duration> {
                let started = Instant::now();
                let t = run_requests(engine, &case.prompts, case.new_tokens)?;
                self.learn(&name, &t, prompt_len);
                let took = started.elapsed();
                warm = Some((started, t));
                Ok(took)
            };
            let tokens_per_batch = (case.prompts.len() * case.new_tokens) as u64;
            group.throughput(criterion::Throughput::Elements(tokens_per_batch));
            // Per Criterion call: its start, its requests, and (tokens, seconds) of each batch.
            let mut calls: Vec<(Instant, Vec<RequestRecord>, Vec<f64>)> = Vec::new();
            // As for latency cases: a CPU-only engine's warm-up batch is the first of a few
            // (the lm.rs design serves a batch of 64 as 64 requests in turn: minutes each).
            let few = match self.warm_up(&mut once, run.duration, cpu_only, "batch") {
                Ok(Mode::Criterion) => None,
                Ok(Mode::Few(few)) => {
                    if let Some((started, t)) = warm.take().filter(|_| few.kept) {
                        let rate = tokens_per_batch as f64 / (t.end - t.start).as_secs_f64();
                        calls.push((started, t.records(self.scenario, &name, &id, 0, prompt_len), vec![rate]));
                    }
                    Some(few)
                }
                Err(e) => {
                    self.fail(&name, &id, "batch failed", &e);
                    continue;
                }
            };
            let mut failure = None;
            let mut routine = |iters: u64| {
                let started = Instant::now();
                let (mut total, mut records, mut rates) = (Duration::ZERO, Vec::new(), Vec::new());
                for _ in 0..iters {
                    let mark = clock.start();
                    match run_requests(engine, &case.prompts, case.new_tokens) {
                        Ok(t) => {
                            total += clock.end(mark);
                            self.learn(&name, &t, case.prompts[0].len()); // untimed, as for latency cases
                            if let Err(e) = engine.settle() {
                                failure.get_or_insert(e);
                            }
                            rates.push(tokens_per_batch as f64 / (t.end - t.start).as_secs_f64());
                            records.extend(t.records(self.scenario, &name, &id, calls.len(), case.prompts[0].len()));
                        }
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                }
                calls.push((started, records, rates));
                total
            };
            let ran = measure_case(&mut group, BenchmarkId::new(&case.figure, &case.label), few.as_ref(), &mut routine);
            let samples = sampler.stop();
            if let Some(e) = failure {
                self.fail(&name, &id, "batch failed during measurement", &e);
                continue;
            }
            let keep = calls.len().saturating_sub(self.samples());
            let measured: Vec<_> = calls.into_iter().skip(keep).collect();
            let Some(from) = measured.first().map(|c| (c.0 - sampler_start).as_secs_f64()) else { continue };
            let samples: Vec<_> = samples
                .into_iter()
                .filter(|s| s.t >= from)
                .map(|s| crate::measure::telemetry::Sample { t: s.t - from, ..s })
                .collect();
            if let Err(e) = self.run.telemetry(self.scenario, &name, &id, &samples) {
                eprintln!("[llm-bench] cannot write the telemetry file: {e:#}");
            }
            let mut extra = BTreeMap::new();
            let mut put = |k: &str, unit: &'static str, v: Vec<f64>| {
                if let Some(summary) = Summary::of(&v) {
                    extra.insert(k.to_string(), Metric { unit, summary });
                }
            };
            put("output_tok_s", "tok/s", measured.iter().flat_map(|c| c.2.clone()).collect());
            put("cpu_cores", "cores", samples.iter().map(|s| s.cpu_cores).collect());
            timed_thread(&mut put, &samples);
            put("rss_gb", "GB", samples.iter().map(|s| s.rss_bytes as f64 / 1e9).collect());
            put("gpu_util_pct", "%", samples.iter().filter_map(|s| s.gpu_util_pct).collect());
            put("gpu_mem_used_gb", "GB", samples.iter().filter_map(|s| s.gpu_mem_used_bytes.map(|b| b as f64 / 1e9)).collect());
            // The device's figure counts everything on the GPU, including memory an engine
            // measured earlier in the same process still holds (allocator caches); this one is
            // the rise since just before this engine was loaded.
            if let Some(base) = self.pacer.gpu_baseline() {
                put("engine_gpu_mem_gb", "GB", samples.iter().filter_map(|s| s.gpu_mem_used_bytes.map(|b| b.saturating_sub(base) as f64 / 1e9)).collect());
            }
            put("gpu_power_w", "W", samples.iter().filter_map(|s| s.gpu_power_w).collect());
            put("gpu_sm_clock_mhz", "MHz", samples.iter().filter_map(|s| s.gpu_sm_clock_mhz).collect());
            put("gpu_temp_c", "C", samples.iter().filter_map(|s| s.gpu_temp_c).collect());
            let mem = engine.memory();
            put("weights_gb", "GB", vec![mem.weights_bytes as f64 / 1e9]);
            put("kv_cache_gb", "GB", vec![mem.kv_cache_bytes as f64 / 1e9]);
            if let Some(bw) = run.copy_bandwidth {
                // Decode steps per second = each request's decode tok/s (one token per step).
                let steps: Vec<f64> = measured.iter().flat_map(|c| c.1.iter().filter_map(|r| r.decode_tok_s())).collect();
                let mean_context = case.prompts[0].len() as f64 + case.new_tokens as f64 / 2.0;
                let kv = self.config.kv_bytes_per_token(4) as f64 * mean_context * case.prompts.len() as f64;
                let per_step = self.weight_bytes_per_step() as f64 + kv;
                put("copy_bandwidth_gbs", "GB/s", vec![bw / 1e9]);
                put("bytes_per_step_gb", "GB", vec![per_step / 1e9]);
                put("mbu_pct", "%", steps.iter().map(|s| 100.0 * per_step * s / bw).collect());
            }
            let records = measured.into_iter().flat_map(|c| c.1).collect();
            extra.extend(startup.metrics());
            self.finish_case(engine, clock.label(), &id, records, extra, few.map(|few| few.flag(ran)));
        }
        group.finish();
        criterion.final_summary();
    }
}

/// A concurrent-load case: a load shape served through the shared batcher.
/// Criterion id `<scenario>/<engine>/<figure>/<label>`, e.g. `concurrent_load/candle/clients/10`.
pub struct ConcurrentCase {
    pub figure: String,
    pub label: String,
    pub load: crate::run::batcher::Load,
    /// Requests that make one Criterion iteration (a round of all clients in closed loop).
    pub requests_per_iter: usize,
}

/// One round of a concurrent case: its requests as raw records, output tok/s, mean batch (0 when
/// the engine's own scheduler served them) and the summed end-to-end time.
type Round = (Vec<RequestRecord>, f64, f64, Duration);

impl Harness {
    /// Serve `count` requests under `load`, through the engine's own scheduler or the shared
    /// batcher; only instants are taken while serving, the records are made afterwards.
    #[allow(clippy::too_many_arguments)]
    fn serve_round(
        &self,
        engine: &mut dyn Engine,
        name: &str,
        load: crate::run::batcher::Load,
        id: &str,
        sample: usize,
        count: usize,
        prompts: &[Vec<u32>],
        batcher: &crate::run::batcher::Batcher,
    ) -> Result<Round> {
        let prompt = |i: usize| prompts[i % prompts.len()].clone();
        let started = Instant::now();
        let served = match engine.scheduled() {
            Some(own) => crate::run::batcher::serve_scheduled(own, load, count, self.new_tokens, &prompt)?,
            None => batcher.serve(engine, load, count, self.new_tokens, &prompt)?,
        };
        let ms = |t: Instant, from: Instant| (t - from).as_secs_f64() * 1e3;
        let end = served.iter().map(|s| s.done).max().unwrap_or(started);
        let tokens: usize = served.iter().map(|s| s.tokens.len()).sum();
        let mean_batch = served.iter().map(|s| s.batch as f64).sum::<f64>() / served.len().max(1) as f64;
        let e2e: Duration = served.iter().map(|s| s.done - s.arrived).sum();
        let records = served
            .iter()
            .map(|s| RequestRecord {
                scenario: self.scenario.into(),
                engine: name.to_string(),
                case: id.to_string(),
                sample,
                prompt_tokens: prompts[0].len(),
                new_tokens: s.tokens.len(),
                ttft_ms: ms(s.first_token, s.arrived),
                total_ms: ms(s.done, s.arrived),
                token_ms: s.tokens.iter().map(|&t| ms(t, s.arrived)).collect(),
            })
            .collect();
        Ok((records, tokens as f64 / (end - started).as_secs_f64(), mean_batch, e2e))
    }
}

impl Harness {
    /// Serve each case through the shared batcher. Criterion's figure is the mean end-to-end
    /// response time per request (arrival to last token); the results add TTFT and inter-token
    /// latency per request (p50/p90/p99), output tok/s and the mean batch size. The rate search
    /// for `slos` (`Self::measure_rate_search`) runs after the closed-loop cases of up to
    /// `crate::run::workload::RATE_SEARCH_AFTER_CLIENTS` clients, inside the same Criterion group
    /// so that the group's report keeps every case.
    pub fn measure_concurrent(
        &self,
        engine: &mut dyn Engine,
        startup: Startup,
        cases: &[ConcurrentCase],
        prompts: &[Vec<u32>],
        batcher: &crate::run::batcher::Batcher,
        slos: &[crate::report::slo::Slo],
    ) {
        match clock_for(engine) {
            Clock::Wall(c) => self.measure_concurrent_with(engine, c, startup, cases, prompts, batcher, slos),
            #[cfg(feature = "cuda")]
            Clock::CudaEvents(_) => self.measure_concurrent_with(engine, crate::measure::clock::Wall, startup, cases, prompts, batcher, slos),
        }
    }

    fn measure_concurrent_with<M: EngineClock>(
        &self,
        engine: &mut dyn Engine,
        clock: M,
        startup: Startup,
        cases: &[ConcurrentCase],
        prompts: &[Vec<u32>],
        batcher: &crate::run::batcher::Batcher,
        slos: &[crate::report::slo::Slo],
    ) {
        let name = engine.info().name;
        let cpu_only = Variant::named(&name).is_some_and(Variant::cpu_only);
        let search_at = cases
            .iter()
            .position(|c| !matches!(c.load, crate::run::batcher::Load::ClosedLoop { clients } if clients <= crate::run::workload::RATE_SEARCH_AFTER_CLIENTS))
            .unwrap_or(cases.len());
        // The first round of the last closed-loop case served, and its clients: a round of more
        // clients takes at least as long. An engine with its own scheduler has no batch rates to
        // estimate a round from, and mistral.rs 0.8.1's 100-client round took 120 s after its
        // 50-client round had taken 34.5 s, past its pass (h100-2026-12-06-c).
        let mut last_round: Option<(usize, Duration)> = None;
        let mut criterion = self.criterion(clock.clone());
        let mut group = criterion.benchmark_group(format!("{}/{name}", self.scenario));
        group.sampling_mode(Self::sampling());
        let serve = |engine: &mut dyn Engine, case: &ConcurrentCase, id: &str, sample: usize, count: usize| -> Result<Round> {
            self.serve_round(engine, &name, case.load, id, sample, count, prompts, batcher)
        };
        for (i, case) in cases.iter().enumerate() {
            if i == search_at {
                self.measure_rate_search(engine, startup, slos, prompts, batcher);
            }
            let id = format!("{}/{}", case.figure, case.label);
            let _case = self.case_starts(&name, &id);
            if !self.criterion_selects(&name, &id) || self.is_done(&name, &id) {
                continue; // left out by Criterion's filter, or measured before this run resumed
            }
            self.pacer.progress(self.scenario, &name, &id);
            let in_flight = match case.load {
                crate::run::batcher::Load::ClosedLoop { clients } => clients.min(batcher.max_batch),
                crate::run::batcher::Load::Poisson { .. } => 1,
            };
            if let Some(why) = self.blocked(engine, &name, prompts[0].len(), self.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            let rounds = case.requests_per_iter.div_ceil(in_flight);
            let first = self.pacer.rates(&name).map(|r| r.estimate(in_flight, prompts[0].len(), self.new_tokens) * rounds as u32);
            let clients = match case.load {
                crate::run::batcher::Load::ClosedLoop { clients } => Some(clients),
                crate::run::batcher::Load::Poisson { .. } => None,
            };
            let floor = last_round.filter(|(before, _)| clients.is_some_and(|n| n >= *before));
            // `Option`'s order puts None below any estimate: the larger of the two that exist.
            let stopped = self.stopped_after(&name, &id);
            let estimate = first.max(floor.map(|(_, t)| t)).max(stopped);
            if let Some((t, left)) = estimate.zip(self.pacer.left()).filter(|(t, left)| t > left) {
                let from = match (floor, stopped) {
                    (_, Some(s)) if s >= t => " or more (an earlier process was stopped after that long in its first round, unfinished)".to_string(),
                    (Some((before, f)), _) if f >= t => format!(" or more (the {before}-client case's first round took that long)"),
                    _ => String::new(),
                };
                let why = format!(
                    "its first round of requests alone is estimated at {:.1} s{from}, more than the {:.1} s left of the run's time budget",
                    t.as_secs_f64(),
                    left.as_secs_f64()
                );
                self.skip(&name, Some(&id), &why);
                continue;
            }
            let mut first_round = None;
            let mut warm: Option<Round> = None;
            let mut once = || -> Result<Duration> {
                let started = Instant::now();
                let round = serve(engine, case, &id, 0, case.requests_per_iter)?;
                let took = started.elapsed();
                first_round.get_or_insert(took);
                warm = Some(round);
                Ok(took)
            };
            let warmed = self.warm_up(&mut once, self.profile.measurement_time(), cpu_only, "round");
            if let Some((n, t)) = clients.zip(first_round) {
                last_round = Some((n, t));
            }
            let mut calls: Vec<(Vec<RequestRecord>, f64, f64)> = Vec::new(); // records, tok/s, mean batch
            // As for latency cases: a CPU-only engine's warm-up round is the first of a few (the
            // lm.rs design serves 50 clients' requests one after another: minutes per round).
            let few = match warmed {
                Ok(Mode::Criterion) => None,
                Ok(Mode::Few(few)) => {
                    if let Some((records, tok_s, mean_batch, _)) = warm.take().filter(|_| few.kept) {
                        calls.push((records, tok_s, mean_batch));
                    }
                    Some(few)
                }
                Err(e) => {
                    self.fail(&name, &id, "serving failed", &e);
                    continue;
                }
            };
            let mut failure = None;
            let mut routine = |iters: u64| {
                let count = iters as usize * case.requests_per_iter;
                match serve(engine, case, &id, calls.len(), count) {
                    Ok((records, tok_s, mean_batch, e2e)) => {
                        calls.push((records, tok_s, mean_batch));
                        // Criterion divides by `iters`: its figure is the mean per request.
                        e2e / case.requests_per_iter as u32
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                        Duration::from_secs(1)
                    }
                }
            };
            let ran = measure_case(&mut group, BenchmarkId::new(&case.figure, &case.label), few.as_ref(), &mut routine);
            if let Some(e) = failure {
                self.fail(&name, &id, "serving failed", &e);
                continue;
            }
            let keep = calls.len().saturating_sub(self.samples());
            let measured: Vec<_> = calls.into_iter().skip(keep).collect();
            let mut extra = BTreeMap::new();
            let mut put = |k: &str, unit: &'static str, v: Vec<f64>| {
                if let Some(summary) = Summary::of(&v) {
                    extra.insert(k.to_string(), Metric { unit, summary });
                }
            };
            put("output_tok_s", "tok/s", measured.iter().map(|c| c.1).collect());
            put("mean_batch", "requests", measured.iter().map(|c| c.2).collect());
            extra.extend(batch_limit(engine, batcher));

            let records = measured.into_iter().flat_map(|c| c.0).collect();
            extra.extend(startup.metrics());
            self.finish_case(engine, "wall", &id, records, extra, few.map(|few| few.flag(ran)));
        }
        if search_at == cases.len() {
            self.measure_rate_search(engine, startup, slos, prompts, batcher);
        }
        group.finish();
        criterion.final_summary();
    }
}

impl Harness {
    /// The concurrent-load scenario's rate search (`crate::run::rate_search`): per latency bound,
    /// the highest Poisson arrival rate whose probe keeps its p99 TTFT and TPOT within the bound.
    /// Each probe is recorded as a case `probe/<rate>rps` (its raw requests, measured once: one
    /// window of arrivals is one sample of the rate); each bound's answer as `max_rate/<bound>`,
    /// with the bracket, the probes and the goodput at that rate. Probes are shared between
    /// bounds, and the next bound's search starts from the previous bound's answer.
    pub fn measure_rate_search(
        &self,
        engine: &mut dyn Engine,
        startup: Startup,
        slos: &[crate::report::slo::Slo],
        prompts: &[Vec<u32>],
        batcher: &crate::run::batcher::Batcher,
    ) {
        use crate::run::rate_search::{found, next_rate, Found, Probe};
        let name = engine.info().name;
        let prompt_len = prompts[0].len();
        // Start at half the highest rate the engine served to closed-loop clients in this run
        // (`crate::run::rate_search::start_rate`), else at half its batch-16 rate.
        let closed_loop = crate::results::read_results(&self.run.path("results.jsonl"))
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["status"] == "measured" && r["scenario"] == self.scenario && r["engine"] == name.as_str())
            .filter(|r| r["case"].as_str().is_some_and(|c| c.starts_with("clients/")))
            .filter_map(|r| r["metrics"]["output_tok_s"]["median"].as_f64())
            .map(|tok_s| tok_s / self.new_tokens.max(1) as f64)
            .reduce(f64::max);
        let batch16 = self.pacer.rates(&name).map(|r| 16.0 / r.estimate(16, prompt_len, self.new_tokens).as_secs_f64().max(1e-3));
        let mut start = crate::run::rate_search::start_rate(closed_loop, batch16);
        // Every probe served so far: its rate, requests (as results-file values) and output tok/s.
        // A resumed run starts from the probes it already served (read back from its files), so
        // a search cut by one call's time goes on in the next instead of serving them again.
        let mut served: Vec<(f64, Vec<serde_json::Value>, f64)> = crate::results::measured_with_requests(&self.run.dir, self.scenario, &name, "probe/")
            .into_iter()
            .filter(|(r, reqs)| !reqs.is_empty() && r["case"].as_str().is_some_and(|c| self.is_done(&name, c)))
            .filter_map(|(r, reqs)| {
                let rate = r["metrics"]["request_rate_rps"]["median"].as_f64()?;
                let tok_s = r["metrics"]["output_tok_s"]["median"].as_f64().unwrap_or(0.0);
                Some((rate, reqs, tok_s))
            })
            .collect();
        if !served.is_empty() {
            eprintln!("[llm-bench] {}: {name}'s rate search goes on from {} probe(s) this run served before", self.scenario, served.len());
        }
        let max_probes = self.profile.rate_probes();
        // How much longer than its window a probe has taken in this search (1 until one has): an
        // engine past its capacity serves a window's arrivals long after the window ends
        // (table-2026-12-07, lease 5: mistral.rs's searches took 15 and 38 s against shares
        // sized from windows), so the next probe's expected time is scaled by it.
        let mut overrun = 1.0_f64;
        for slo in slos {
            let id = format!("max_rate/{}", slo.name);
            let _case = self.case_starts(&name, &id);
            if !self.criterion_selects(&name, &id) || self.is_done(&name, &id) {
                continue;
            }
            self.pacer.progress(self.scenario, &name, &id);
            if let Some(why) = self.blocked(engine, &name, prompt_len, self.new_tokens) {
                self.skip(&name, Some(&id), &why);
                continue;
            }
            let search_started = Instant::now();
            // The search's part of the scenario (`Pacer::share`): past it, the bound's answer is
            // what its probes so far bracket, and the closed-loop rounds after it keep their
            // parts (table-2026-12-07, lease 3: mistral.rs's searches took what was left and its
            // 50- and 100-client rounds were skipped).
            let share = self.pacer.share();
            let attain = |reqs: &[serde_json::Value]| crate::report::slo::attainment(&reqs.iter().collect::<Vec<_>>(), slo);
            let probes = |served: &[(f64, Vec<serde_json::Value>, f64)]| -> Vec<Probe> {
                served.iter().filter_map(|(rate, reqs, _)| attain(reqs).map(|a| Probe { rate: *rate, holds: a.holds })).collect()
            };
            let mut cut = None;
            // Cut by the time budget: a resumed run goes on with it (`ResultRecord::Measured::unfinished`).
            let mut unfinished = false;
            // This bound's own probes (the ones it shares with an earlier bound, or a resumed run
            // read back, do not count): a bound whose answer is far from the previous bound's
            // doubles its way there (burn: 2.88 req/s within `interactive`, ≥ 154 within
            // `server`, h100-2026-12-06-c, when the limit was per engine).
            let served_before = served.len();
            while let Some(rate) = next_rate(&probes(&served), start) {
                if served.len() - served_before >= max_probes {
                    cut = Some(format!("the search stopped at the profile's {max_probes} probes per bound"));
                    break;
                }
                let count = self.profile.rate_probe_requests(rate);
                let one = self.pacer.rates(&name).map_or(Duration::ZERO, |r| r.estimate(1, prompt_len, self.new_tokens));
                let window = probe_expected(count, rate, one, 1.0);
                let expected = window.mul_f64(overrun);
                let spent = search_started.elapsed();
                if let Some(share) = share.filter(|share| past_share(served.len() - served_before, spent, expected, *share)) {
                    cut = Some(format!(
                        "the search stopped at its share of the run's time budget: {:.1} s spent, the next probe at {rate} req/s \
                         ({count} requests, about {:.1} s) would pass its {:.1} s (quick profile; a larger --budget or \
                         LLM_BENCH_PROFILE=full searches further)",
                        spent.as_secs_f64(),
                        expected.as_secs_f64(),
                        share.as_secs_f64()
                    ));
                    break;
                }
                if let Some(left) = self.pacer.left().filter(|left| expected > *left) {
                    cut = Some(format!(
                        "the search stopped: a probe at {rate} req/s ({count} requests, about {:.1} s) does not fit the {:.1} s left of the run's time budget; \
                         a resumed run (LLM_BENCH_RESUME=1) goes on with it",
                        expected.as_secs_f64(),
                        left.as_secs_f64()
                    ));
                    unfinished = true;
                    break;
                }
                let probe_id = format!("probe/{rate}rps");
                *self.case_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                let load = crate::run::batcher::Load::Poisson { rate, seed: 0x5eed };
                let probe_started = Instant::now();
                match self.serve_round(engine, &name, load, &probe_id, 0, count, prompts, batcher) {
                    Ok((records, tok_s, mean_batch, _)) => {
                        overrun = overrun.max(probe_started.elapsed().as_secs_f64() / window.as_secs_f64().max(1e-3));
                        let values: Vec<serde_json::Value> = records.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
                        let mut extra = BTreeMap::new();
                        for (k, unit, v) in [("output_tok_s", "tok/s", tok_s), ("mean_batch", "requests", mean_batch), ("request_rate_rps", "req/s", rate)] {
                            if let Some(summary) = Summary::of(&[v]) {
                                extra.insert(k.to_string(), Metric { unit, summary });
                            }
                        }
                        extra.extend(batch_limit(engine, batcher));
                        extra.extend(startup.metrics());
                        let why = format!("a rate-search probe: {count} Poisson arrivals at {rate} req/s, served once (one window of arrivals is one sample)");
                        self.finish_case(engine, "wall", &probe_id, records, extra, Some(why));
                        served.push((rate, values, tok_s));
                    }
                    Err(e) => {
                        cut = Some(format!("the search stopped: serving the probe at {rate} req/s failed: {e:#}"));
                        break;
                    }
                }
            }
            *self.case_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(search_started);
            let mine = probes(&served);
            let result = found(&mine);
            let bound = format!("p99 TTFT ≤ {} ms, p99 TPOT ≤ {} ms", slo.ttft_p99_ms, slo.tpot_p99_ms);
            let rates: Vec<String> = mine.iter().map(|p| format!("{}{}", p.rate, if p.holds { "✓" } else { "✗" })).collect();
            let what = match result {
                Found::Bracketed { holds, fails } => format!("holds at {holds} req/s, fails at {fails} req/s"),
                Found::AtLeast(r) if r >= crate::run::rate_search::MAX_RATE => format!("holds at every rate probed, up to {r} req/s (the search's ceiling)"),
                // Cut by the probe count or the time budget before a rate failed: a lower bound.
                Found::AtLeast(r) => format!("holds at every rate probed, up to {r} req/s; no higher rate was probed (at least {r} req/s)"),
                Found::Below(r) if r <= crate::run::rate_search::MIN_RATE => format!("fails at every rate probed, down to {r} req/s (the search's floor): no rate holds it"),
                // Cut before a rate held: an upper bound.
                Found::Below(r) => format!("fails at every rate probed, down to {r} req/s; no lower rate was probed (below {r} req/s)"),
                Found::Nothing => "no probe was served".to_string(),
            };
            let note = format!("`{}` ({bound}): {what}; probes {}", slo.name, rates.join(" "));
            if matches!(result, Found::Nothing) {
                self.skip(&name, Some(&id), &format!("{note}; {}", cut.as_deref().unwrap_or("nothing to search")));
                continue;
            }
            let rate = result.rate();
            let mut metrics = BTreeMap::new();
            let mut put = |k: &str, unit: &'static str, v: f64| {
                if let Some(summary) = Summary::of(&[v]) {
                    metrics.insert(k.to_string(), Metric { unit, summary });
                }
            };
            put("max_rate_rps", "req/s", rate);
            put("probes", "probes", mine.len() as f64);
            if let Some((_, reqs, tok_s)) = served.iter().find(|p| p.0 == rate) {
                if let Some(a) = attain(reqs) {
                    put("output_tok_s", "tok/s", *tok_s);
                    put("goodput_tok_s", "tok/s", tok_s * a.met_tokens);
                    put("ttft_p99_ms", "ms", a.ttft_p99_ms);
                    put("tpot_p99_ms", "ms", a.tpot_p99_ms);
                }
            }
            metrics.extend(batch_limit(engine, batcher));
            metrics.extend(startup.metrics());
            let rec = ResultRecord::Measured {
                run: self.run.run.clone(),
                scenario: self.scenario.into(),
                engine: name.clone(),
                engine_info: engine.info(),
                case: id.clone(),
                model: self.identity.clone(),
                device: engine.info().device.to_string(),
                timer: "wall".into(),
                samples: mine.len(),
                metrics,
                spread: 0.0,
                profile: self.profile.name().into(),
                reduced: cut,
                wall_s: Some(search_started.elapsed().as_secs_f64()),
                note: Some(note),
                unfinished,
            };
            if let Err(e) = self.run.record(&rec) {
                eprintln!("[llm-bench] cannot write the results file: {e:#}");
            }
            if rate > 0.0 {
                start = rate; // the next (looser) bound starts where this one ended
            }
        }
    }
}

/// An engine's error message without the stack trace some engines' errors carry (candle's and
/// mistral.rs's CUDA errors print one frame per line from `   0: <unknown>` on, when backtraces
/// are on; the PyTorch baseline's Python traceback follows its exception): the reason a record
/// keeps is the message, not twenty lines of frames.
fn without_backtrace(message: &str) -> String {
    let frames = message.lines().position(|l| {
        l.trim_start().starts_with("0: ") || l.trim() == "Stack backtrace:" || l.starts_with("Python traceback (innermost last):")
    });
    let kept: Vec<&str> = message.lines().take(frames.unwrap_or(usize::MAX)).collect();
    kept.join("\n").trim_end().to_string()
}

/// Where the thread timing the requests ran during a case, from the sampler's readings: how
/// often something else took its CPU (`timed_thread_preempted_per_s`), on how many CPUs it ran
/// (`timed_thread_cpus`) and the one it ran on most (`timed_thread_cpu`); and the cores the
/// rest of the host used (`host_other_cores`) and the hypervisor stole (`host_steal_cores`). A
/// host-bound figure that differs between two processes with the same single-thread speed may
/// differ here.
fn timed_thread(put: &mut impl FnMut(&str, &'static str, Vec<f64>), samples: &[crate::measure::telemetry::Sample]) {
    put("timed_thread_preempted_per_s", "1/s", samples.iter().filter_map(|s| s.timed_preempted_per_s).collect());
    // And what the rest of the host took meanwhile: a CPU-only engine runs a thread per core.
    put("host_other_cores", "cores", samples.iter().filter_map(|s| s.host_other_cores).collect());
    put("host_steal_cores", "cores", samples.iter().filter_map(|s| s.host_steal_cores).collect());
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for cpu in samples.iter().filter_map(|s| s.timed_cpu) {
        *count.entry(cpu).or_default() += 1;
    }
    if let Some((&most, _)) = count.iter().max_by_key(|(_, n)| **n) {
        put("timed_thread_cpus", "CPUs", vec![count.len() as f64]);
        put("timed_thread_cpu", "CPU", vec![most as f64]);
    }
}

/// An out-of-memory reason with what would fit instead: the engines' own messages name the
/// allocation that failed, not the way out.
fn with_hint(reason: &str) -> String {
    const HINT: &str = " (out of GPU memory: the case needs more than the GPU had free; it fits with fewer rows per batch, \
                        a shorter context, or no other process on the GPU: nvidia-smi lists them)";
    let lower = reason.to_lowercase();
    let oom = ["out of memory", "outofmemory", "can't allocate buffer", "cannot allocate"].iter().any(|p| lower.contains(p));
    if oom && !reason.contains(HINT) {
        format!("{reason}{HINT}")
    } else {
        reason.to_string()
    }
}

/// How a case is measured, as its warm-up decided.
#[derive(Debug, PartialEq)]
enum Mode {
    Criterion,
    /// Timed outside Criterion, call by call ([`Few::run`]).
    Few(Few),
}

/// A case measured with fewer calls (requests, batches or rounds) than Criterion's samples: up
/// to `more` calls after the warm-up, within the case's `share` of the run's time budget, and the
/// warm-up call itself as the first sample when `kept`.
#[derive(Debug, PartialEq)]
struct Few {
    more: usize,
    kept: bool,
    share: Duration,
    what: &'static str,
    samples: usize,
    /// Why Criterion's samples did not fit.
    why: String,
    /// Set when the warm-up is the only sample: how long it took, and what was left of the run.
    only: Option<(Duration, Duration)>,
}

/// What [`Few::run`] did: the calls made, of those planned, and their time.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Ran {
    count: usize,
    spent: Duration,
}

impl Few {
    /// Make the planned calls one by one, but stop once the next would take the case past its
    /// share: the count was planned from the warm-up's time, and a call can take several times
    /// that (table-2026-12-07, lease 6: mistral.rs's 50-client rounds, three planned from a
    /// 4.4-s warm-up round, took 16-22 s each, 86 s of a 16.9-s share, and left its 100-client
    /// round no time). At least one call runs; `call` makes one and says how long it took.
    fn run(&self, mut call: impl FnMut() -> Duration) -> Ran {
        let mut ran = Ran::default();
        while ran.count < self.more {
            if ran.count > 0 && ran.spent + ran.spent / ran.count as u32 > self.share {
                break;
            }
            ran.spent += call();
            ran.count += 1;
        }
        ran
    }

    /// The case's flag, with the number of calls its figures come from.
    fn flag(&self, ran: Ran) -> String {
        let Few { what, samples, why, .. } = self;
        let n = self.kept as usize + ran.count;
        let mut flag = format!("{n} {what}(s) instead of Criterion's {samples} samples (figures from the raw requests, no Criterion estimate): {why}");
        if let Some((took, left)) = self.only {
            flag += &format!(
                "; that one is the case's warm-up {what}, which took {:.1} s: another would not fit the {:.1} s left of \
                 the run's time budget, so its figures may hold one-time costs (kernels compiled for the shape, pools grown)",
                took.as_secs_f64(),
                left.as_secs_f64()
            );
        } else if self.kept {
            flag += &format!("; the first of the {n} is the case's warm-up {what} (a CPU-only engine compiles nothing per shape)");
        }
        if ran.count < self.more {
            flag += &format!(
                "; {} were planned from the warm-up's time, and the case stopped at its {:.1} s share after these took {:.1} s",
                self.kept as usize + self.more,
                self.share.as_secs_f64(),
                ran.spent.as_secs_f64()
            );
        }
        flag
    }
}

/// Measure one case: Criterion's samples, or, when only a few fit its share ([`Few`]), calls of
/// one iteration each, timed one by one until the case's share is spent.
fn measure_case<M: EngineClock>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    id: BenchmarkId,
    few: Option<&Few>,
    mut routine: impl FnMut(u64) -> Duration,
) -> Ran {
    match few {
        None => {
            group.bench_function(id, |b| b.iter_custom(&mut routine));
            Ran::default()
        }
        Some(few) => few.run(|| {
            let started = Instant::now();
            routine(1);
            started.elapsed()
        }),
    }
}

/// What a fewer-samples case's warm-up found: one call's time, the case's share of the run's
/// time budget and what is left of it, and Criterion's sample count.
#[derive(Debug, Clone, Copy)]
struct Fit {
    one: Duration,
    share: Duration,
    left: Duration,
    samples: usize,
}

/// How a case whose Criterion samples do not fit (`why`) is measured instead: as many calls
/// (`what`: request, batch, round) as fit its share, at least one. `counted`: the warm-up call
/// is the first of them (a CPU-only engine). Any other engine's warm-up is the one sample only
/// when no further call fits what is left of the run.
fn fewer(fit: Fit, counted: bool, what: &'static str, why: &str) -> Mode {
    let Fit { one, share, left, samples } = fit;
    let room = (share.as_secs_f64() / one.as_secs_f64().max(1e-9)) as usize;
    let most = samples.saturating_sub(1).max(1);
    let few = |more: usize, kept: bool, only: Option<(Duration, Duration)>| {
        Mode::Few(Few { more, kept, share, what, samples, why: why.to_string(), only })
    };
    if counted {
        return few(room.clamp(1, most) - 1, true, None);
    }
    // Over the case's share but within the run, one more call runs (a warm-up that compiled
    // kernels for the shape, as burn-cuda's and Inductor's do, is no figure); only when even
    // that one would not finish in what is left is the warm-up kept.
    if one > left {
        return few(0, true, Some((one, left)));
    }
    few(room.clamp(1, most), false, None)
}

/// A probe's expected time: its window of `count` arrivals at `rate`, one request's time to
/// drain the last arrival, all scaled by how much longer than that this search's probes have
/// taken so far (`overrun`, at least 1).
fn probe_expected(count: usize, rate: f64, one: Duration, overrun: f64) -> Duration {
    (Duration::from_secs_f64(count as f64 / rate) + one).mul_f64(overrun.max(1.0))
}

/// Whether a rate search's bound stops before its next probe: it has served a probe of its own
/// (a bound is never left with no probe for time within the run: fewer samples, not no figure)
/// and the next one, expected to take `expected`, would take it past its `share` of the run.
fn past_share(own_probes: usize, spent: Duration, expected: Duration, share: Duration) -> bool {
    own_probes > 0 && spent + expected > share
}

/// Marks a case finished for the pacer, and no longer current for Ctrl-C, however its loop
/// iteration ends.
struct CaseDone<'a>(&'a Pacer);

impl Drop for CaseDone<'_> {
    fn drop(&mut self) {
        self.0.case_done();
        crate::run::interrupt::set_current(None);
    }
}

impl Harness {
    /// Serve one untimed batch of each size in `sizes` (the engine's [`Engine::warm_up_batches`])
    /// with the scenario's prompts and new tokens, so that the kernels an engine compiles per
    /// shape are compiled before the first case; how long it took, or `None` when there was
    /// nothing to do. A failure is printed and left to the cases, which record it.
    pub fn warm_up_shapes(&self, engine: &mut dyn Engine, prompts: &[Vec<u32>], sizes: &[usize]) -> Option<Duration> {
        if sizes.is_empty() || prompts.is_empty() {
            return None;
        }
        let name = engine.info().name;
        let started = Instant::now();
        for &b in sizes {
            let batch: Vec<Vec<u32>> = prompts.iter().cycle().take(b).cloned().collect();
            if let Err(e) = run_requests(engine, &batch, self.new_tokens) {
                eprintln!("[llm-bench] {name}: warming up a batch of {b} failed: {e:#}");
                return None;
            }
        }
        let took = started.elapsed();
        eprintln!(
            "[llm-bench] {name}: one batch of each of {sizes:?} rows served first, untimed ({:.1} s: kernels compiled per shape; start-up, not in any figure)",
            took.as_secs_f64()
        );
        Some(took)
    }

    /// Whether this run already measured `engine`'s `case` (a resumed run).
    pub fn is_done(&self, engine: &str, case: &str) -> bool {
        self.done.contains(&(engine.to_string(), case.to_string()))
    }

    /// A case starts: what Ctrl-C records as interrupted until its [`CaseDone`] drops.
    fn case_starts(&self, engine: &str, case: &str) -> CaseDone<'_> {
        self.current(engine, Some(case));
        *self.case_started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        CaseDone(&self.pacer)
    }

    fn current(&self, engine: &str, case: Option<&str>) {
        crate::run::interrupt::set_current(Some(crate::run::interrupt::Current {
            run: self.run.clone(),
            scenario: self.scenario.into(),
            engine: engine.into(),
            case: case.map(Into::into),
            since: Instant::now(),
        }));
    }
}

/// The `max_batch` metric of a concurrent-load record: the most requests the suite's batcher
/// handed the engine at once (what a resumed run compares, `crate::results::served_in_larger_batches`);
/// none for an engine its own scheduler served.
fn batch_limit(engine: &dyn Engine, batcher: &crate::run::batcher::Batcher) -> Option<(String, Metric)> {
    let summary = Summary::of(&[batcher.max_batch as f64])?;
    engine.scheduled().is_none().then(|| ("max_batch".to_string(), Metric { unit: "requests", summary }))
}

/// New tokens of the two requests sent right after a load (fewer when the profile asks fewer).
const PRIMING_NEW_TOKENS: usize = 16;

/// What an engine cost before its first case: loading, and its first request after the load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Startup {
    pub load: Duration,
    /// None for the harness's stub, which is never loaded.
    pub first_request: Option<Duration>,
    /// One untimed batch of each size the engine compiles kernels for
    /// ([`Engine::warm_up_batches`]), served before the concurrent scenario's cases.
    pub shapes: Option<Duration>,
    /// The host calibration's single-thread workload (`crate::measure::host`), ns per iteration,
    /// timed after the load.
    pub host_cpu_ns: Option<f64>,
    /// The CPU the timing thread was pinned to after the load (`LLM_BENCH_PIN`), if it was.
    pub pinned_cpu: Option<usize>,
}

impl Startup {
    /// `load_s`, `first_request_s`, `shape_warm_up_s` and `host_cpu_ns_per_iteration`, as every
    /// case of the engine records them (the ones it has).
    fn metrics(&self) -> impl Iterator<Item = (String, Metric)> {
        let load = Some(self.load.as_secs_f64());
        [
            ("load_s", "s", load),
            ("first_request_s", "s", self.first_request.map(|t| t.as_secs_f64())),
            ("shape_warm_up_s", "s", self.shapes.map(|t| t.as_secs_f64())),
            ("host_cpu_ns_per_iteration", "ns", self.host_cpu_ns),
            ("timed_thread_pinned_cpu", "CPU", self.pinned_cpu.map(|c| c as f64)),
        ]
            .into_iter()
            .filter_map(|(k, unit, v)| Some((k.to_string(), Metric { unit, summary: Summary::of(&[v?])? })))
    }
}

struct ThroughputRun {
    startup: Startup,
    duration: Duration,
    copy_bandwidth: Option<f64>,
}

/// `LLM_BENCH_DEVICE=cpu|cuda|cuda:N`; by default the first GPU when built with `cuda` and one
/// is present, else the CPU.
fn select_gpu() -> Result<Option<usize>> {
    match std::env::var("LLM_BENCH_DEVICE").as_deref() {
        Ok("cpu") => Ok(None),
        Ok("cuda") => Ok(Some(0)),
        Ok(s) if s.starts_with("cuda:") => Ok(Some(s[5..].parse().context("LLM_BENCH_DEVICE=cuda:N needs a number")?)),
        Ok(s) if !s.is_empty() => anyhow::bail!("LLM_BENCH_DEVICE={s} is not cpu, cuda or cuda:N"),
        _ => Ok(default_gpu()),
    }
}

#[cfg(feature = "cuda")]
fn default_gpu() -> Option<usize> {
    crate::measure::gpu::device_count().filter(|&n| n > 0).map(|_| 0)
}

#[cfg(not(feature = "cuda"))]
fn default_gpu() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::{criterion_filter, fewer, latency_order, Few, Fit, LatencyCase, Mode, Ran};
    use std::time::Duration;

    fn few(mode: Mode) -> Few {
        match mode {
            Mode::Few(few) => few,
            Mode::Criterion => panic!("measured with Criterion"),
        }
    }

    /// The decision after a warm-up, on the figures of target-reports/table-2026-12-07.
    #[test]
    fn a_warm_up_that_used_the_time_is_the_cases_one_sample() {
        let s = |secs: f64| Duration::from_secs_f64(secs);
        let why = "measuring it with Criterion is estimated at 4000 s";
        let none = Ran::default();
        // The lm.rs design's 8K prefill (CPU only): its one request, 128 s left after it.
        let lmrs = few(fewer(Fit { one: s(397.3), share: s(128.2), left: s(128.2), samples: 10 }, true, "request", why));
        assert!(matches!(lmrs, Few { more: 0, kept: true, .. }), "{lmrs:?}");
        let flag = lmrs.flag(none);
        assert!(flag.starts_with("1 request(s) instead of Criterion's 10 samples"), "{flag}");
        assert!(flag.contains("the first of the 1 is the case's warm-up request"), "{flag}");
        // A GPU engine's round longer than what is left (mistral.rs's 100-client round at the end
        // of its pass): the warm-up round, flagged as possibly holding one-time costs.
        let round = few(fewer(Fit { one: s(100.0), share: s(60.0), left: s(60.0), samples: 10 }, false, "round", why));
        assert!(matches!(round, Few { more: 0, kept: true, .. }), "{round:?}");
        let flag = round.flag(none);
        assert!(flag.starts_with("1 round(s) instead of"), "{flag}");
        assert!(flag.contains("that one is the case's warm-up round, which took 100.0 s"), "{flag}");
        assert!(flag.contains("the 60.0 s left of the run's time budget"), "{flag}");
        assert!(flag.contains("one-time costs"), "{flag}");
        // Longer than its share but not than the run: one more round, the warm-up no figure (its
        // time may be a compile for the shape).
        let round = few(fewer(Fit { one: s(100.0), share: s(60.0), left: s(300.0), samples: 10 }, false, "round", why));
        assert!(matches!(round, Few { more: 1, kept: false, .. }), "{round:?}");
        // While further calls fit, a GPU engine's warm-up is never a figure; a CPU-only one's
        // is the first of them.
        let gpu = few(fewer(Fit { one: s(1.0), share: s(3.5), left: s(50.0), samples: 10 }, false, "request", why));
        assert!(matches!(gpu, Few { more: 3, kept: false, .. }), "{gpu:?}");
        assert_eq!(
            gpu.flag(Ran { count: 3, spent: s(3.0) }),
            format!("3 request(s) instead of Criterion's 10 samples (figures from the raw requests, no Criterion estimate): {why}")
        );
        let cpu = few(fewer(Fit { one: s(1.0), share: s(3.5), left: s(50.0), samples: 10 }, true, "request", why));
        assert!(matches!(cpu, Few { more: 2, kept: true, .. }), "{cpu:?}");
        assert!(cpu.flag(Ran { count: 2, spent: s(2.0) }).contains("the first of the 3 is the case's warm-up request"));
        // Never more than Criterion's samples less one.
        let many = few(fewer(Fit { one: s(1.0), share: s(500.0), left: s(500.0), samples: 10 }, false, "batch", why));
        assert!(matches!(many, Few { more: 9, kept: false, .. }), "{many:?}");
    }

    /// A CPU-only engine: the longest prompt first, each prompt's `total` before its `ttft`;
    /// any other engine: as listed.
    #[test]
    fn a_cpu_only_engine_runs_its_longest_prompt_first_and_total_before_ttft() {
        let case = |figure: &'static str, n: usize| LatencyCase { figure, label: format!("context{n}"), prompt: vec![1; n], new_tokens: 4 };
        let cases: Vec<LatencyCase> = [1024, 4096, 8192].into_iter().flat_map(|n| [case("ttft", n), case("total", n)]).collect();
        let ids = |order: Vec<&LatencyCase>| order.iter().map(|c| format!("{}/{}", c.figure, c.label)).collect::<Vec<_>>();
        assert_eq!(
            ids(latency_order(&cases, true)),
            ["total/context8192", "ttft/context8192", "total/context4096", "ttft/context4096", "total/context1024", "ttft/context1024"]
        );
        assert_eq!(ids(latency_order(&cases, false))[0], "ttft/context1024");
    }

    /// table-2026-12-07, lease 6: mistral.rs's clients/50 planned three rounds from a 4.4-s
    /// warm-up round within its 16.9-s share; they took 20.2, 22.4 and 16.4 s. The case stops
    /// after the first (the next would end past its share), and its flag says so with the count
    /// that ran; calls as long as planned all run.
    #[test]
    fn a_fewer_samples_case_stops_at_its_share_by_the_calls_it_has_seen() {
        let s = |secs: f64| Duration::from_secs_f64(secs);
        let why = "measuring it with Criterion is estimated at 48.0 s";
        let plan = few(fewer(Fit { one: s(4.4), share: s(16.9), left: s(117.0), samples: 10 }, false, "round", why));
        assert!(matches!(plan, Few { more: 3, kept: false, .. }), "{plan:?}");
        let mut rounds = [20.2, 22.4, 16.4].into_iter();
        let ran = plan.run(|| s(rounds.next().unwrap()));
        assert_eq!(ran.count, 1);
        let flag = plan.flag(ran);
        assert!(flag.starts_with("1 round(s) instead of Criterion's 10 samples"), "{flag}");
        assert!(flag.contains("3 were planned from the warm-up's time, and the case stopped at its 16.9 s share after these took 20.2 s"), "{flag}");
        // Rounds as long as the warm-up's: all three, and no note.
        let ran = plan.run(|| s(4.4));
        assert_eq!(ran.count, 3);
        assert!(!plan.flag(ran).contains("planned"));
        // Two short calls, then the third would pass the share: two run.
        let mut calls = [7.0, 7.0, 7.0].into_iter();
        assert_eq!(plan.run(|| s(calls.next().unwrap())).count, 2);
    }

    /// table-2026-12-07, lease 3: mistral.rs's searches ran on to the end of the pass's budget
    /// and its 50- and 100-client rounds found none. A bound stops at its share once it has a
    /// probe of its own, and never before its first.
    #[test]
    fn a_rate_search_stops_at_its_share_after_its_first_probe() {
        let s = Duration::from_secs;
        assert!(!super::past_share(0, s(0), s(12), s(5)), "the first probe runs whatever the share");
        assert!(super::past_share(1, s(10), s(12), s(20)), "10 s spent and 12 s more pass 20 s");
        assert!(!super::past_share(3, s(10), s(9), s(20)), "19 s fit 20 s");
        // A probe of 16 arrivals at 2 req/s (8 s window, 1 s request) after probes that took
        // 2.5× their windows: 22.5 s expected, so 10 s spent pass a 30 s share.
        let expected = super::probe_expected(16, 2.0, s(1), 2.5);
        assert_eq!(expected, Duration::from_millis(22_500));
        assert!(super::past_share(1, s(10), expected, s(30)));
        assert_eq!(super::probe_expected(16, 2.0, s(1), 0.5), s(9), "never below the window");
    }

    #[test]
    fn a_recorded_reason_keeps_the_message_and_drops_the_stack_frames() {
        // As candle's CUDA out-of-memory error read in h200-2026-12-03-oom.
        let e = "batch failed: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")\n   0: <unknown>\n   1: <unknown>\n  20: __libc_start_main\n             at ./csu/libc-start.c:360\n";
        assert_eq!(super::without_backtrace(e), "batch failed: DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")");
        assert_eq!(super::without_backtrace("two lines\nat most 8192 tokens"), "two lines\nat most 8192 tokens");
        // anyhow's own heading before the frames goes with them (the torch adapter's errors).
        let e = "transformers cannot load x.gguf\n\nStack backtrace:\n   0: anyhow::error::msg\n";
        assert_eq!(super::without_backtrace(e), "transformers cannot load x.gguf");
        // The PyTorch baseline's exception, then its traceback (as torch's read in h200-2026-12-03-squeeze).
        let e = "batch failed: Python raised torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.\nPython traceback (innermost last):\n  File \"python_baseline/transformers_baseline.py\", line 71, in generate\n";
        assert_eq!(super::without_backtrace(e), "batch failed: Python raised torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.");
    }

    #[test]
    fn an_out_of_memory_reason_says_what_would_fit() {
        for e in [
            "Python raised torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.",
            "its thread 'DSD-0-0' panicked first, at cubecl-cuda-0.10.0/src/compute/server.rs:124:46: called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: 146591744",
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")",
        ] {
            let with = super::with_hint(e);
            assert!(with.starts_with(e) && with.contains("out of GPU memory") && with.contains("fewer rows"), "{with}");
            assert_eq!(super::with_hint(&with), with, "the hint is added once");
        }
        assert_eq!(super::with_hint("index out of bounds"), "index out of bounds");
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_filter_is_the_first_argument_that_is_no_flag_or_flag_value() {
        assert_eq!(criterion_filter(&args(&["--bench"])), None);
        assert_eq!(criterion_filter(&args(&["--bench", "clients/10"])), Some(("clients/10".into(), false)));
        assert_eq!(
            criterion_filter(&args(&["--bench", "--save-baseline", "before", "candle/ttft", "--exact"])),
            Some(("candle/ttft".into(), true))
        );
        assert_eq!(criterion_filter(&args(&["--sample-size", "20", "--test"])), None);
    }
}
