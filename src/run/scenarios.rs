//! The five scenarios as plans: each one's cases (data from [`crate::run::workload`]) and the harness
//! routine that measures them on a loaded engine. `cargo bench --bench <scenario>` runs one
//! scenario over every engine ([`bench`]); `llm-bench suite` runs every scenario engine by engine
//! in one process ([`suite`]), so each engine is loaded once and the quick profile fits one GPU
//! call. Both write the same results records and the same Criterion groups.

use crate::run::batcher::{Batcher, Load};
use crate::engine::Engine;
use crate::engines::EngineKind;
use crate::model::fixtures::Fixture;
use crate::run::harness::{ConcurrentCase, Harness, LatencyCase, Startup, ThroughputCase};
use crate::run::pacer::Pacer;
use crate::results::RunDir;
use crate::run::workload::*;
use anyhow::Result;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    SingleRequest,
    SustainedThroughput,
    ConcurrentLoad,
    MemoryEfficiency,
    LongContext,
}

impl Scenario {
    /// In the order the suite runs them on an engine: single requests first (cheap, and they
    /// teach the pacer the engine's speed), the batch-heavy scenarios last.
    pub const ALL: [Scenario; 5] = [
        Scenario::SingleRequest,
        Scenario::LongContext,
        Scenario::MemoryEfficiency,
        Scenario::SustainedThroughput,
        Scenario::ConcurrentLoad,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::SingleRequest => "single_request",
            Scenario::SustainedThroughput => "sustained_throughput",
            Scenario::ConcurrentLoad => "concurrent_load",
            Scenario::MemoryEfficiency => "memory_efficiency",
            Scenario::LongContext => "long_context",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// What a plan measures.
enum Work {
    Latency(Vec<LatencyCase>),
    Throughput { cases: Vec<ThroughputCase>, duration: Duration, copy_bandwidth: Option<f64> },
    /// Closed-loop and Poisson cases, with the rate search for each latency bound after the
    /// closed-loop cases of up to `crate::run::workload::RATE_SEARCH_AFTER_CLIENTS` clients.
    Concurrent { cases: Vec<ConcurrentCase>, pool: Vec<Vec<u32>>, batcher: Batcher, slos: Vec<crate::report::slo::Slo> },
}

/// One scenario's cases on one model, ready for any engine.
pub struct Plan {
    pub scenario: Scenario,
    pub harness: Harness,
    work: Work,
    /// Measure the harness's overhead (the stub engine) after the engines.
    with_stub: bool,
    /// Cases this profile leaves out for every engine, with the reason, recorded per engine.
    left_out: Vec<(String, String)>,
}

/// The models a scenario runs on: the benchmark model, or for memory efficiency the 1B and
/// (full profile) 3B shapes unless `LLM_BENCH_MODEL` names one.
fn models(s: Scenario, profile: Profile) -> Result<Vec<(String, crate::engine::ModelFiles)>> {
    let user_model = std::env::var("LLM_BENCH_MODEL").is_ok_and(|v| !v.is_empty());
    Ok(match s {
        Scenario::MemoryEfficiency if !user_model => {
            let mut m = vec![("1b".to_string(), Fixture::Llama1B.files()?)];
            if profile.with_3b() {
                m.push(("3b".to_string(), Fixture::Llama3B.files()?));
            }
            m
        }
        Scenario::MemoryEfficiency => vec![("model".to_string(), crate::model::fixtures::benchmark_model()?)],
        _ => vec![(String::new(), crate::model::fixtures::benchmark_model()?)],
    })
}

impl Plan {
    /// The plans of a scenario (memory efficiency: one per model size), results into `run`.
    pub fn for_scenario(s: Scenario, run: &RunDir, pacer: &Arc<Pacer>) -> Result<Vec<Plan>> {
        let profile = Profile::from_env()?;
        let mut plans = Vec::new();
        let mut copy_bandwidth = None;
        let models = models(s, profile)?;
        for (size, files) in models.iter().cloned() {
            let h = Harness::open(s.name(), files, run.clone(), pacer.clone())?;
            let bos = h.config.bos_token;
            let mut left_out = Vec::new();
            let work = match s {
                Scenario::SingleRequest => {
                    // The headline prompt first: a paced run that has time for one prompt length
                    // measures the one the reports compare engines on.
                    let mut lengths = SINGLE_REQUEST_PROMPTS.to_vec();
                    lengths.sort_by_key(|&n| n != HEADLINE_PROMPT_TOKENS);
                    Work::Latency(LatencyCase::ttft_and_total(&h, &lengths, "prompt", h.new_tokens)?)
                }
                Scenario::LongContext => Work::Latency(LatencyCase::ttft_and_total(&h, &LONG_CONTEXTS, "context", h.new_tokens)?),
                Scenario::SustainedThroughput => Work::Throughput {
                    cases: throughput_cases(&h, "batch", "", &SUSTAINED_BATCHES)?,
                    duration: profile.sustained(),
                    copy_bandwidth: None,
                },
                Scenario::MemoryEfficiency => {
                    #[cfg(feature = "cuda")]
                    if let (None, Some(gpu)) = (copy_bandwidth, h.gpu) {
                        copy_bandwidth = crate::measure::gpu::copy_bandwidth(gpu)
                            .inspect(|b| eprintln!("[llm-bench] measured copy bandwidth: {:.0} GB/s (read + write)", b / 1e9))
                            .inspect_err(|e| eprintln!("[llm-bench] cannot measure copy bandwidth: {e:#}"))
                            .ok();
                    }
                    if size == "1b" && !profile.with_3b() {
                        for n in MEMORY_BATCHES {
                            left_out.push((
                                format!("3b/batch{n}"),
                                "the quick profile measures the 1B model only (the 3B fixture and a second load of every \
                                 engine do not fit its one GPU call); LLM_BENCH_PROFILE=full adds the 3B model"
                                    .to_string(),
                            ));
                        }
                    }
                    Work::Throughput { cases: throughput_cases(&h, &size, "batch", &MEMORY_BATCHES)?, duration: profile.memory_run(), copy_bandwidth }
                }
                Scenario::ConcurrentLoad => {
                    let window = profile.poisson_window_s();
                    let mut cases: Vec<ConcurrentCase> = profile
                        .concurrent_clients()
                        .iter()
                        .map(|&n| ConcurrentCase {
                            figure: "clients".into(),
                            label: n.to_string(),
                            load: Load::ClosedLoop { clients: n },
                            requests_per_iter: n,
                        })
                        .collect();
                    cases.extend(profile.poisson_rates().iter().map(|&rate| ConcurrentCase {
                        figure: "poisson".into(),
                        label: format!("{rate}rps"),
                        load: Load::Poisson { rate, seed: 0x5eed },
                        // One iteration is a window of arrivals, so requests queue and share
                        // batches as they would at that rate (one request would never queue).
                        requests_per_iter: (rate * window).ceil() as usize,
                    }));
                    let pool = prompts(&h.tokenizer, bos, SUSTAINED_PROMPT, 100)?;
                    Work::Concurrent { cases, pool, batcher: Batcher { max_batch: MAX_BATCH }, slos: crate::report::slo::slos()? }
                }
            };
            let with_stub = s == Scenario::SingleRequest;
            let plan = Plan { scenario: s, harness: h, work, with_stub, left_out };
            let table: Vec<String> = case_table(s, profile, plan.harness.new_tokens).into_iter().map(|c| c.0).collect();
            let table: Vec<String> = table.into_iter().filter(|id| models.len() == 1 || id.starts_with(&format!("{size}/"))).collect();
            anyhow::ensure!(
                plan.case_ids() == table,
                "internal: {}'s case table ({table:?}) differs from its plan ({:?}); fix scenarios::case_table",
                s.name(),
                plan.case_ids()
            );
            plans.push(plan);
        }
        let _ = &mut copy_bandwidth; // assigned only with `cuda`
        Ok(plans)
    }

    /// Cases per engine, for the pacer.
    pub fn cases(&self) -> usize {
        match &self.work {
            Work::Latency(c) => c.len(),
            Work::Throughput { cases, .. } => cases.len(),
            Work::Concurrent { cases, slos, .. } => cases.len() + slos.len(),
        }
    }

    /// The Criterion case ids of this plan (`ttft/prompt50`, `batch/32`, ...).
    pub fn case_ids(&self) -> Vec<String> {
        match &self.work {
            Work::Latency(c) => c.iter().map(LatencyCase::id).collect(),
            Work::Throughput { cases, .. } => cases.iter().map(|c| format!("{}/{}", c.figure, c.label)).collect(),
            Work::Concurrent { cases, slos, .. } => cases
                .iter()
                .map(|c| format!("{}/{}", c.figure, c.label))
                .chain(slos.iter().map(|s| format!("max_rate/{}", s.name)))
                .collect(),
        }
    }

    /// Whether a resumed run already measured every case of this plan on `engine`: the engine
    /// need not be loaded for it.
    pub fn all_done(&self, engine: &str) -> bool {
        self.case_ids().iter().all(|c| self.harness.is_done(engine, c))
    }

    /// Measure every case on a loaded engine; results are written case by case.
    pub fn measure(&self, engine: &mut dyn Engine, startup: Startup) {
        let h = &self.harness;
        match &self.work {
            Work::Latency(cases) => h.measure_latency(engine, startup, cases),
            Work::Throughput { cases, duration, copy_bandwidth } => {
                h.measure_throughput(engine, startup, cases, *duration, *copy_bandwidth)
            }
            Work::Concurrent { cases, pool, batcher, slos } => {
                let name = engine.info().name;
                let batcher = &batcher.for_engine(&name);
                if let Some(own) = engine.scheduled() {
                    eprintln!("[llm-bench] {name} serves requests through {}", own.scheduler());
                } else {
                    eprintln!("[llm-bench] {name} is served through: {}, max batch {}", Batcher::NAME, batcher.max_batch);
                }
                let mut startup = startup;
                let to_measure = self.case_ids().iter().any(|c| !h.is_done(&engine.info().name, c));
                if engine.scheduled().is_none() && to_measure {
                    let sizes = engine.warm_up_batches();
                    startup.shapes = h.warm_up_shapes(engine, pool, &sizes);
                }
                h.measure_concurrent(engine, startup, cases, pool, batcher, slos)
            }
        }
        for (case, reason) in &self.left_out {
            h.skip(&engine.info().name, Some(case), reason);
        }
    }

    /// What the harness itself costs per request: the cases on an engine that does no work
    /// (single requests only).
    pub fn measure_harness_overhead(&self) {
        if self.with_stub {
            self.harness.pacer.begin_scenario(self.scenario.name(), 1, self.cases());
            self.measure(&mut crate::engines::stub::Stub, Startup::default());
        }
    }
}

/// One case per batch size, Criterion id `<figure>/<label prefix><batch>`.
fn throughput_cases(h: &Harness, figure: &str, label: &str, batches: &[usize]) -> Result<Vec<ThroughputCase>> {
    batches
        .iter()
        .map(|&n| {
            Ok(ThroughputCase {
                figure: figure.to_string(),
                label: format!("{label}{n}"),
                prompts: prompts(&h.tokenizer, h.config.bos_token, SUSTAINED_PROMPT, n)?,
                new_tokens: h.new_tokens,
            })
        })
        .collect()
}

/// `cargo bench --bench <scenario>`: every selected engine in turn, each loaded once per model.
pub fn bench(s: Scenario) -> Result<()> {
    // A wrong engine name fails before any model is made or loaded.
    crate::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
    crate::run::interrupt::install();
    let run = RunDir::create()?;
    let pacer = Arc::new(Pacer::unlimited());
    let plans = Plan::for_scenario(s, &run, &pacer)?;
    for plan in &plans {
        let engines = plan.harness.engines()?;
        for (i, &variant) in engines.iter().enumerate() {
            pacer.engine_turn(i + 1, engines.len(), variant.name);
            if plan.all_done(variant.name) {
                continue;
            }
            // Unlimited: no deadline to split; this gives the progress line its case count.
            pacer.begin_scenario(plan.scenario.name(), 1, plan.cases());
            match plan.harness.load(variant) {
                Ok((mut engine, startup)) => plan.measure(engine.as_mut(), startup),
                Err(why) => plan.harness.skip(variant.name, None, &why),
            }
        }
        plan.measure_harness_overhead();
    }
    finish(&run, gpu_of(&plans));
    Ok(())
}

/// The GPU a run's plans measured on, if any.
fn gpu_of(plans: &[Plan]) -> Option<usize> {
    plans.first().and_then(|p| p.harness.gpu)
}

/// The end of every bench and suite: the run's summaries rendered from its results file (all
/// benches that shared the run id), a compact table of what it measured and where the summary
/// is. A rendering failure loses nothing: the results stay, and the message says how to render.
fn finish(run: &RunDir, gpu: Option<usize>) {
    if let Err(e) = run.amend_environment("calibration", "end", crate::measure::host::calibrate(gpu)) {
        eprintln!("[llm-bench] cannot record the host calibration after the run: {e:#}");
    }
    let criterion = RunDir::criterion_dir();
    let criterion = criterion.is_dir().then_some(criterion);
    match crate::report::render_and_tell(&run.dir, criterion.as_deref()) {
        Ok(table) => eprintln!("{table}"),
        Err(e) => eprintln!(
            "[llm-bench] the results are in {}, but the summary could not be rendered: {e:#}\n\
             render it again with: llm-bench report {}{}",
            run.dir.display(),
            run.dir.display(),
            criterion.map_or(String::new(), |c| format!(" --criterion {}", c.display()))
        ),
    }
}

/// Every case of a scenario in a profile, with its Criterion id (`ttft/prompt50`, `batch/32`,
/// `1b/batch8`, `clients/10`, `poisson/8rps`) and what one iteration costs, in the order
/// [`Plan::for_scenario`] measures them (it refuses to run if its ids differ): the estimate's
/// view of the plans, made without loading a model or an engine.
pub fn case_table(s: Scenario, profile: Profile, new_tokens: usize) -> Vec<(String, crate::run::plan::Shape)> {
    use crate::run::plan::Shape;
    let latency = |label: &str, lengths: &[usize]| -> Vec<(String, Shape)> {
        lengths
            .iter()
            .flat_map(|n| {
                [
                    (format!("ttft/{label}{n}"), Shape::Latency { new_tokens: 1 }),
                    (format!("total/{label}{n}"), Shape::Latency { new_tokens }),
                ]
            })
            .collect()
    };
    match s {
        Scenario::SingleRequest => {
            let mut lengths = SINGLE_REQUEST_PROMPTS.to_vec();
            lengths.sort_by_key(|&n| n != HEADLINE_PROMPT_TOKENS);
            latency("prompt", &lengths)
        }
        Scenario::LongContext => latency("context", &LONG_CONTEXTS),
        Scenario::SustainedThroughput => {
            let duration_s = profile.sustained().as_secs_f64();
            SUSTAINED_BATCHES.iter().map(|n| (format!("batch/{n}"), Shape::Throughput { duration_s })).collect()
        }
        Scenario::MemoryEfficiency => {
            let duration_s = profile.memory_run().as_secs_f64();
            let user_model = std::env::var("LLM_BENCH_MODEL").is_ok_and(|v| !v.is_empty());
            let sizes: &[&str] = if user_model {
                &["model"]
            } else if profile.with_3b() {
                &["1b", "3b"]
            } else {
                &["1b"]
            };
            sizes
                .iter()
                .flat_map(|size| MEMORY_BATCHES.iter().map(move |n| (format!("{size}/batch{n}"), Shape::Throughput { duration_s })))
                .collect()
        }
        Scenario::ConcurrentLoad => {
            let window = profile.poisson_window_s();
            let mut out: Vec<(String, Shape)> = profile
                .concurrent_clients()
                .iter()
                .map(|&n| (format!("clients/{n}"), Shape::Concurrent { requests: n, poisson_window_s: None }))
                .collect();
            out.extend(profile.poisson_rates().iter().map(|&rate| {
                (format!("poisson/{rate}rps"), Shape::Concurrent { requests: (rate * window).ceil() as usize, poisson_window_s: Some(window) })
            }));
            // The rate search per latency bound (a user's LLM_BENCH_SLO adds `user`); the
            // probes of all bounds together are at most the profile's.
            let slos = crate::report::slo::slos().unwrap_or_default();
            let probes = profile.rate_probes().div_ceil(slos.len().max(1));
            out.extend(slos.iter().map(|s| (format!("max_rate/{}", s.name), Shape::RateSearch { probes, requests: profile.rate_probe_requests(16.0) })));
            out
        }
    }
}

/// The run directories an estimate learns from: `LLM_BENCH_PLAN_FROM` (comma-separated) and,
/// when resuming, the run itself (its own records are the best guide to its machine).
fn plan_sources(resumed: Option<&std::path::Path>) -> Vec<std::path::PathBuf> {
    let mut from: Vec<std::path::PathBuf> = std::env::var("LLM_BENCH_PLAN_FROM")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Into::into)
        .collect();
    if let Some(dir) = resumed.filter(|d| d.join("results.jsonl").is_file()) {
        from.push(dir.to_path_buf());
    }
    from
}

/// The estimate of a suite's engines × scenarios from earlier runs, None without one.
fn estimate(
    run: &RunDir,
    scenarios: &[Scenario],
    engines: &[&str],
    profile: Profile,
    new_tokens: usize,
    done: &dyn Fn(&str, &str, &str) -> bool,
) -> Result<Option<(crate::run::plan::Estimate, crate::run::plan::Reference)>> {
    let from = plan_sources(crate::run::harness::resuming().then_some(run.dir.as_path()));
    if from.is_empty() {
        return Ok(None);
    }
    let refs: Vec<&std::path::Path> = from.iter().map(|p| p.as_path()).collect();
    let reference = crate::run::plan::Reference::from_runs(&refs)?;
    let table: Vec<_> = scenarios.iter().map(|&s| (s.name(), case_table(s, profile, new_tokens))).collect();
    let est = crate::run::plan::Estimate::of(&reference, profile, new_tokens, engines, &table, done);
    Ok(Some((est, reference)))
}

/// `llm-bench suite --plan [--from RUN_DIR ...]`: what the suite would take, per engine and
/// scenario, estimated from earlier runs; nothing is loaded or measured. With `--resume`, the
/// cases that run has measured are left out.
pub fn plan(scenarios: &[Scenario], from: &[std::path::PathBuf]) -> Result<()> {
    let profile = Profile::from_env()?;
    let new_tokens = profile.new_tokens()?;
    let selected = crate::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
    let mut engines: Vec<&'static crate::engines::Variant> = selected.into_iter().filter(|v| v.built()).collect();
    engines.sort_by_key(|v| SUITE_ORDER.iter().position(|x| *x == v.engine));
    let names: Vec<&str> = engines.iter().map(|v| v.name).collect();
    let resumed = std::env::var_os("LLM_BENCH_OUT").map(std::path::PathBuf::from).filter(|_| crate::run::harness::resuming());
    let mut sources = from.to_vec();
    sources.extend(plan_sources(resumed.as_deref()));
    anyhow::ensure!(
        !sources.is_empty(),
        "--plan estimates from an earlier run: give --from <run directory> (a run of your own, or one under target-reports/, \
         e.g. target-reports/h200-2026-12-02-whole-table) or LLM_BENCH_PLAN_FROM"
    );
    let refs: Vec<&std::path::Path> = sources.iter().map(|p| p.as_path()).collect();
    let reference = crate::run::plan::Reference::from_runs(&refs)?;
    let measured = resumed.map(|d| crate::results::measured_cases(&d)).unwrap_or_default();
    let done = |s: &str, e: &str, c: &str| measured.contains(&(s.to_string(), e.to_string(), c.to_string()));
    let table: Vec<_> = scenarios.iter().map(|&s| (s.name(), case_table(s, profile, new_tokens))).collect();
    let est = crate::run::plan::Estimate::of(&reference, profile, new_tokens, &names, &table, &done);
    print!("{}", est.render(profile, &reference));
    Ok(())
}

/// Engines in the suite's order: fastest first, so time a fast engine leaves unused goes to
/// the slow ones after it (the pacer splits what is left evenly over the engines still to run).
/// An engine's variants run one after the other, in the registry's order.
const SUITE_ORDER: [EngineKind; 6] =
    [EngineKind::Llamacpp, EngineKind::Candle, EngineKind::Mistralrs, EngineKind::Torch, EngineKind::Burn, EngineKind::Lmrs];

/// `llm-bench suite`: the given scenarios, engine by engine, in one process and one run
/// directory. With a budget, cases that would not fit are recorded as skipped with their
/// estimated cost; an engine whose turn comes after the deadline is recorded as skipped.
pub fn suite(scenarios: &[Scenario], budget: Option<Duration>) -> Result<()> {
    crate::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
    crate::run::interrupt::install();
    let started = Instant::now();
    let run = RunDir::create()?;
    let pacer = Arc::new(match budget {
        Some(b) => Pacer::until(started + b),
        None => Pacer::unlimited(),
    });
    let mut plans = Vec::new();
    for &s in scenarios {
        plans.extend(Plan::for_scenario(s, &run, &pacer)?);
    }
    let Some(first) = plans.first() else { return Ok(()) };
    // Every plan records the engines it will not run (not built, not selected).
    let mut engines = Vec::new();
    for plan in &plans {
        engines = plan.harness.engines()?;
    }
    engines.sort_by_key(|v| SUITE_ORDER.iter().position(|x| *x == v.engine)); // stable: registry order within an engine
    // The harness's own overhead first: cheap, and never crowded out by a slow engine.
    for plan in &plans {
        plan.measure_harness_overhead();
    }
    eprintln!(
        "[llm-bench] suite: {} scenario(s), engines {:?}, profile {}, budget {}",
        scenarios.len(),
        engines.iter().map(|v| v.name).collect::<Vec<_>>(),
        first.harness.profile.name(),
        budget.map_or("none".to_string(), |b| format!("{:.0} s", b.as_secs_f64()))
    );
    let names: Vec<&str> = engines.iter().map(|v| v.name).collect();
    let done = |s: &str, e: &str, c: &str| plans.iter().any(|p| p.scenario.name() == s && p.harness.is_done(e, c));
    match estimate(&run, scenarios, &names, first.harness.profile, first.harness.new_tokens, &done) {
        Ok(Some((est, reference))) => {
            eprintln!("[llm-bench] {}", est.render(first.harness.profile, &reference));
            let startups = names.iter().filter_map(|n| reference.startup_s(n).map(|s| (n.to_string(), s))).collect();
            pacer.set_least(est.least);
            pacer.set_estimate(est.per_case, est.unknown, startups);
            pacer.set_fastest_loads(names.iter().filter_map(|n| reference.fastest_load_s(n).map(|s| (n.to_string(), s))).collect());
        }
        Ok(None) => eprintln!(
            "[llm-bench] no estimate of this run's time: LLM_BENCH_PLAN_FROM=<an earlier run directory> gives one (and a time left on every progress line)"
        ),
        Err(e) => eprintln!("[llm-bench] no estimate of this run's time: {e:#}"),
    }
    for (i, &variant) in engines.iter().enumerate() {
        pacer.begin_engine(engines.len() - i);
        pacer.engine_turn(i + 1, engines.len(), variant.name);
        // Plans on the same model share one load of the engine (or its one failure).
        let mut loaded: Option<(std::path::PathBuf, Result<(Box<dyn Engine>, Startup), String>)> = None;
        for (j, plan) in plans.iter().enumerate() {
            let h = &plan.harness;
            if plan.all_done(variant.name) {
                continue; // a resumed run measured it before
            }
            if pacer.left() == Some(Duration::ZERO) {
                h.skip(variant.name, None, "the suite's time budget (--budget) was spent before this scenario's turn on this engine");
                continue;
            }
            let needs_load = loaded.as_ref().is_none_or(|(path, _)| *path != h.model.gguf);
            if let Some(why) = pacer.load_does_not_fit(variant.name).filter(|_| needs_load) {
                h.skip(variant.name, None, &why);
                continue;
            }
            if needs_load {
                drop(loaded.take()); // free the previous model's memory before loading the next
                loaded = Some((h.model.gguf.clone(), h.load(variant)));
            }
            let (engine, startup) = match loaded.as_mut().map(|l| &mut l.1) {
                Some(Ok((engine, t))) => (engine, *t),
                Some(Err(why)) => {
                    h.skip(variant.name, None, why);
                    continue;
                }
                None => unreachable!("loaded above"),
            };
            pacer.begin_scenario(plan.scenario.name(), plans.len() - j, plan.cases());
            plan.measure(engine.as_mut(), startup);
        }
    }
    eprintln!("[llm-bench] suite done in {:.0} s; results in {}", started.elapsed().as_secs_f64(), run.dir.display());
    finish(&run, gpu_of(&plans));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_case_table_has_the_scenarios_criterion_ids() {
        let ids = |s| case_table(s, Profile::Quick, 32).into_iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(ids(Scenario::SingleRequest)[..2], ["ttft/prompt50".to_string(), "total/prompt50".to_string()]);
        assert!(ids(Scenario::LongContext).contains(&"total/context8192".to_string()));
        assert_eq!(ids(Scenario::SustainedThroughput), ["batch/32", "batch/64"]);
        assert_eq!(
            ids(Scenario::ConcurrentLoad),
            ["clients/1", "clients/10", "clients/50", "clients/100", "max_rate/interactive", "max_rate/server"]
        );
        assert!(case_table(Scenario::MemoryEfficiency, Profile::Full, 128).iter().any(|c| c.0 == "3b/batch32"));
        assert_eq!(case_table(Scenario::ConcurrentLoad, Profile::Full, 128).len(), 10);
        assert!(case_table(Scenario::ConcurrentLoad, Profile::Full, 128).iter().any(|c| c.0 == "poisson/8rps"));
    }
}
