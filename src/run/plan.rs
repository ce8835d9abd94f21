//! How long a run will take, before it starts: per engine and scenario, the seconds a profile's
//! cases are expected to take, estimated from what an earlier run measured on the same engines
//! (their per-request times and start-up), so a user can size a GPU reservation
//! (`llm-bench suite --plan`). The suite prints the same estimate at its start and uses it for
//! the "time left" of its progress line.
//!
//! The model of a case is the harness's: Criterion's warm-up and samples (at least its
//! measurement time) plus the case's own warm-up request for latency and concurrent cases, the
//! profile's duration plus two batches for throughput cases. A request's time is rebuilt from
//! the earlier run's medians (time to first token + inter-token latency × the new tokens this
//! profile asks), so a quick run estimates the full profile too. The cases themselves come from
//! the scenarios' tables (`crate::run::scenarios::case_table`).

use crate::run::workload::Profile;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// What one iteration of a case does, as far as its cost goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// One request of `new_tokens` new tokens (1 for a `ttft` case).
    Latency { new_tokens: usize },
    /// Batches back to back for `duration_s` (the profile's sustained or memory run).
    Throughput { duration_s: f64 },
    /// `requests` requests served together (closed loop), or a window of Poisson arrivals.
    Concurrent { requests: usize, poisson_window_s: Option<f64> },
    /// A rate search: about `probes` probes of `requests` Poisson arrivals each, served once.
    RateSearch { probes: usize, requests: usize },
}

/// What an earlier run knows of one engine's case.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    ttft_ms: Option<f64>,
    inter_token_ms: Option<f64>,
    total_ms: Option<f64>,
    /// The case's own wall time in that run (`wall_s`), when the profile was the same.
    wall_s: Option<f64>,
    /// A skip's own estimate of the case ("estimated at 7.2 s").
    skip_estimate_s: Option<f64>,
    /// Whether that estimate is of the case's first request or round alone (the least it can
    /// be measured with), not of its whole Criterion run.
    skip_estimate_is_least: bool,
    /// Probes of a rate search that stopped before it bracketed its answer (time, probe count):
    /// its wall time is only what it got, so its cost is scaled up from the time per probe.
    cut_search_probes: Option<f64>,
}

/// Figures of earlier runs, the newest record of a case winning.
#[derive(Debug, Default)]
pub struct Reference {
    cases: BTreeMap<(String, String, String), Known>,
    /// Load + first request, seconds, per engine (the largest seen: a cold start).
    startup: BTreeMap<String, f64>,
    /// The shortest load seen per engine, seconds (a warm machine's): a load that cannot fit
    /// even this is not started.
    fastest_load: BTreeMap<String, f64>,
    profiles: BTreeMap<(String, String, String), String>,
    pub runs: Vec<String>,
}

fn median(r: &Value, metric: &str) -> Option<f64> {
    r["metrics"][metric]["median"].as_f64()
}

/// "… estimated at 7.2 s …" → 7.2.
fn estimate_in(reason: &str) -> Option<f64> {
    let rest = &reason[reason.find("estimated at ")? + "estimated at ".len()..];
    rest.split(' ').next()?.parse().ok()
}

impl Reference {
    /// Read the results files of `runs` (run directories), in order: a later run's record of a
    /// case replaces an earlier one's.
    pub fn from_runs(runs: &[&Path]) -> anyhow::Result<Self> {
        let mut me = Reference::default();
        for dir in runs {
            let records = crate::results::read_results(&dir.join("results.jsonl"))
                .map_err(|e| anyhow::anyhow!("{e:#}: --plan reads the results.jsonl of an earlier run directory (--from)"))?;
            me.runs.push(dir.display().to_string());
            for r in records {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                let key = (s("scenario"), s("engine"), s("case"));
                if r["status"] == "measured" {
                    let startup = median(&r, "load_s").unwrap_or(0.0)
                        + median(&r, "first_request_s").unwrap_or(0.0)
                        + median(&r, "shape_warm_up_s").unwrap_or(0.0);
                    let e = me.startup.entry(key.1.clone()).or_default();
                    *e = e.max(startup);
                    if let Some(load) = median(&r, "load_s").filter(|l| *l > 0.0) {
                        let f = me.fastest_load.entry(key.1.clone()).or_insert(load);
                        *f = f.min(load);
                    }
                    me.profiles.insert(key.clone(), s("profile"));
                    me.cases.insert(
                        key,
                        Known {
                            ttft_ms: median(&r, "ttft_ms"),
                            inter_token_ms: median(&r, "inter_token_ms"),
                            total_ms: median(&r, "total_ms"),
                            wall_s: r["wall_s"].as_f64(),
                            skip_estimate_s: None,
                            skip_estimate_is_least: false,
                            cut_search_probes: r["reduced"]
                                .as_str()
                                .is_some_and(|why| why.starts_with("the search stopped"))
                                .then(|| median(&r, "probes"))
                                .flatten()
                                .filter(|p| *p >= 1.0),
                        },
                    );
                } else if r["status"] == "skipped" && !r["case"].is_null() {
                    if let Some(reason) = r["reason"].as_str() {
                        if let Some(est) = estimate_in(reason) {
                            let least = reason.contains(" alone is estimated at ");
                            me.cases.entry(key).or_insert(Known { skip_estimate_s: Some(est), skip_estimate_is_least: least, ..Default::default() });
                        }
                    }
                }
            }
        }
        Ok(me)
    }

    /// Seconds an engine takes to start (load and first request), if a run saw it.
    pub fn startup_s(&self, engine: &str) -> Option<f64> {
        self.startup.get(engine).copied()
    }

    /// The shortest load of `engine` any run saw, seconds.
    pub fn fastest_load_s(&self, engine: &str) -> Option<f64> {
        self.fastest_load.get(engine).copied()
    }

    /// Expected seconds of one case of `engine` in `profile`, or None when no earlier run
    /// measured (or estimated) it.
    pub fn case_s(&self, profile: Profile, scenario: &str, engine: &str, id: &str, shape: Shape, new_tokens: usize) -> Option<f64> {
        let key = (scenario.to_string(), engine.to_string(), id.to_string());
        let k = self.cases.get(&key)?;
        let same_profile = self.profiles.get(&key).is_some_and(|p| p == profile.name());
        if let (Some(w), true) = (k.wall_s, same_profile) {
            return Some(match (shape, k.cut_search_probes) {
                // A search cut short (by time: table-2026-12-07's mistral.rs searches got one to
                // five probes): what its probes cost each, times the probes a search may serve.
                (Shape::RateSearch { probes, .. }, Some(served)) => w.max(w / served * probes as f64),
                _ => w,
            });
        }
        let request = |n: usize| k.request_s(n);
        let criterion = |one: f64| {
            let warm = one.max(profile.warm_up_time().as_secs_f64());
            warm + profile.measurement_time().as_secs_f64().max(one * profile.samples() as f64) + one
        };
        let est = match shape {
            Shape::Latency { new_tokens } => request(new_tokens).map(criterion),
            Shape::Throughput { duration_s } => request(new_tokens).map(|b| duration_s + 2.0 * b),
            Shape::Concurrent { .. } => request(new_tokens).map(|one| criterion(iteration(engine, shape, one))),
            Shape::RateSearch { probes, .. } => request(new_tokens).map(|one| probes as f64 * iteration(engine, shape, one)),
        };
        est.or(k.skip_estimate_s)
    }

    /// Seconds of the least `engine`'s case can be measured with (one request, one batch, one
    /// round of requests, one probe), or None when unknown: the pacer keeps it for the case
    /// whatever the cases before it take, since a case cannot be thinned below it
    /// (table-2026-12-07, lease 5: the rate searches ran past their shares and three
    /// 100-client rounds found less than one round's time left).
    pub fn least_s(&self, scenario: &str, engine: &str, id: &str, shape: Shape, new_tokens: usize) -> Option<f64> {
        let k = self.cases.get(&(scenario.to_string(), engine.to_string(), id.to_string()))?;
        let n = if let Shape::Latency { new_tokens: n } = shape { n } else { new_tokens };
        k.request_s(n).map(|one| iteration(engine, shape, one)).or(k.skip_estimate_s.filter(|_| k.skip_estimate_is_least))
    }
}

impl Known {
    /// One request of `n` new tokens, from the medians.
    fn request_s(&self, n: usize) -> Option<f64> {
        match (self.ttft_ms, self.inter_token_ms) {
            (Some(t), Some(itl)) => Some((t + itl * n.saturating_sub(1) as f64) / 1e3),
            (Some(t), None) if n <= 1 => Some(t / 1e3),
            _ => self.total_ms.map(|t| t / 1e3),
        }
    }
}

/// Seconds of one iteration of a case whose request takes `one`: the request (or batch) itself,
/// a round of requests served together, or a window of Poisson arrivals.
fn iteration(engine: &str, shape: Shape, one: f64) -> f64 {
    match shape {
        Shape::Latency { .. } | Shape::Throughput { .. } => one,
        Shape::Concurrent { poisson_window_s: Some(w), .. } => w + one,
        // Batches of what the engine serves at once (one request for the lm.rs design).
        Shape::Concurrent { requests, poisson_window_s: None } => requests.div_ceil(crate::engines::Variant::max_batch_of(engine)) as f64 * one,
        // A probe keeps about eight requests in flight (rough: the rate it probes is what the
        // search finds), once, with no Criterion samples.
        Shape::RateSearch { requests, .. } => (requests as f64 / 8.0 + 1.0) * one,
    }
}

/// The estimate of a run: per engine, per scenario, seconds (None: unknown) and the number of
/// cases no earlier run measured.
#[derive(Debug, Default)]
pub struct Estimate {
    pub rows: Vec<(String, Vec<(&'static str, f64, usize)>, Option<f64>)>,
    /// Per (engine, scenario, case): seconds, for the progress line's time left and the pacer's
    /// shares.
    pub per_case: BTreeMap<(String, &'static str, String), f64>,
    /// The cases no earlier run measured (the pacer splits evenly where one is left).
    pub unknown: std::collections::BTreeSet<(String, &'static str, String)>,
    /// Per (engine, scenario, case): seconds of one iteration (`Reference::least_s`), what the
    /// pacer keeps for each case still to run.
    pub least: BTreeMap<(String, &'static str, String), f64>,
}

impl Estimate {
    /// What `engines` × the scenarios of `table` (name, cases) will take in `profile`, leaving
    /// out cases `done` (scenario, engine, case) says are measured already (a resumed run).
    pub fn of(
        reference: &Reference,
        profile: Profile,
        new_tokens: usize,
        engines: &[&str],
        table: &[(&'static str, Vec<(String, Shape)>)],
        done: &dyn Fn(&str, &str, &str) -> bool,
    ) -> Self {
        let mut me = Estimate::default();
        for &engine in engines {
            let mut row = Vec::new();
            let mut any_left = false;
            for (s, cases) in table {
                let (mut secs, mut unknown) = (0.0, 0);
                for (id, shape) in cases {
                    if done(s, engine, id) {
                        continue;
                    }
                    any_left = true;
                    if let Some(t) = reference.least_s(s, engine, id, *shape, new_tokens) {
                        me.least.insert((engine.to_string(), *s, id.clone()), t);
                    }
                    match reference.case_s(profile, s, engine, id, *shape, new_tokens) {
                        Some(t) => {
                            secs += t;
                            me.per_case.insert((engine.to_string(), *s, id.clone()), t);
                        }
                        None => {
                            unknown += 1;
                            me.unknown.insert((engine.to_string(), *s, id.clone()));
                        }
                    }
                }
                row.push((*s, secs, unknown));
            }
            let startup = if any_left { reference.startup_s(engine) } else { Some(0.0) };
            me.rows.push((engine.to_string(), row, startup));
        }
        me
    }

    /// Seconds of every case and start-up the estimate knows.
    pub fn total_s(&self) -> f64 {
        self.rows.iter().map(|(_, row, st)| st.unwrap_or(0.0) + row.iter().map(|r| r.1).sum::<f64>()).sum()
    }

    /// Cases no earlier run measured.
    pub fn unknown(&self) -> usize {
        self.rows.iter().map(|(_, row, _)| row.iter().map(|r| r.2).sum::<usize>()).sum()
    }

    /// A table: engine × scenario minutes, start-up, total; "+N?" where N cases are unknown.
    pub fn render(&self, profile: Profile, reference: &Reference) -> String {
        let mut out = String::new();
        let scenarios: Vec<&str> = self.rows.first().map(|r| r.1.iter().map(|c| c.0).collect()).unwrap_or_default();
        let _ = writeln!(
            out,
            "Estimated time of the {} profile (from {}; minutes; \"+N?\": N cases no earlier run measured, not counted):",
            profile.name(),
            if reference.runs.is_empty() { "no earlier run".to_string() } else { reference.runs.join(", ") }
        );
        let _ = write!(out, "| engine | start-up |");
        for s in &scenarios {
            let _ = write!(out, " {s} |");
        }
        let _ = writeln!(out, " total |");
        let _ = writeln!(out, "|---|---:|{}---:|", "---:|".repeat(scenarios.len()));
        let cell = |secs: f64, unknown: usize| {
            let mut c = format!("{:.1}", secs / 60.0);
            if unknown > 0 {
                c.push_str(&format!(" +{unknown}?"));
            }
            c
        };
        for (engine, row, startup) in &self.rows {
            let _ = write!(out, "| {engine} | {} |", startup.map_or("?".to_string(), |s| format!("{:.1}", s / 60.0)));
            for (_, secs, unknown) in row {
                let _ = write!(out, " {} |", cell(*secs, *unknown));
            }
            let secs = startup.unwrap_or(0.0) + row.iter().map(|r| r.1).sum::<f64>();
            let _ = writeln!(out, " {} |", cell(secs, row.iter().map(|r| r.2).sum()));
        }
        let _ = writeln!(out, "Total: {:.1} minutes{}.", self.total_s() / 60.0, match self.unknown() {
            0 => String::new(),
            n => format!(", plus {n} case(s) no earlier run measured"),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_rebuilt_from_ttft_and_inter_token_latency_for_the_profiles_new_tokens() {
        let dir = std::env::temp_dir().join(format!("llm-bench-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            r#"{"status":"measured","scenario":"single_request","engine":"e","case":"total/prompt50","profile":"quick","metrics":{"ttft_ms":{"median":20.0},"inter_token_ms":{"median":5.0},"total_ms":{"median":175.0},"load_s":{"median":3.0},"first_request_s":{"median":1.0}}}"#,
            r#"{"status":"skipped","scenario":"long_context","engine":"e","case":"ttft/context8192","reason":"measuring it is estimated at 42.5 s, more than this case's 3.0 s share"}"#,
        ];
        std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
        let r = Reference::from_runs(&[dir.as_path()]).unwrap();
        assert_eq!(r.startup_s("e"), Some(4.0));
        assert_eq!(r.fastest_load_s("e"), Some(3.0));
        // Full profile, 128 new tokens: 20 + 127 × 5 ms = 0.655 s a request; 100 samples
        // (65.5 s, over the 30 s measurement time), warm-up of 1 s, one more request.
        let full = r.case_s(Profile::Full, "single_request", "e", "total/prompt50", Shape::Latency { new_tokens: 128 }, 128).unwrap();
        assert!((full - (1.0 + 65.5 + 0.655)).abs() < 1e-9, "{full}");
        // A skip's own estimate stands for a case no run measured.
        let skip = r.case_s(Profile::Quick, "long_context", "e", "ttft/context8192", Shape::Latency { new_tokens: 1 }, 32);
        assert_eq!(skip, Some(42.5));
        assert_eq!(r.case_s(Profile::Quick, "long_context", "e", "ttft/context1024", Shape::Latency { new_tokens: 1 }, 32), None);
        let table = [("single_request", vec![
            ("ttft/prompt50".to_string(), Shape::Latency { new_tokens: 1 }),
            ("total/prompt50".to_string(), Shape::Latency { new_tokens: 32 }),
        ])];
        let est = Estimate::of(&r, Profile::Quick, 32, &["e"], &table, &|_, _, c| c != "total/prompt50");
        assert_eq!(est.unknown(), 0);
        assert!(est.render(Profile::Quick, &r).contains("| e |"));
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A rate search that stopped for time after 2 probes in 13 s is expected to cost what a
    /// search of the profile's probes costs at that pace; one that finished, its own time.
    #[test]
    fn a_search_cut_short_is_estimated_from_its_time_per_probe() {
        let dir = std::env::temp_dir().join(format!("llm-bench-plan-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            r#"{"status":"measured","scenario":"concurrent_load","engine":"e","case":"max_rate/interactive","profile":"quick","wall_s":13.0,"reduced":"the search stopped: a probe at 1.42 req/s (16 requests, about 11.9 s) does not fit","metrics":{"probes":{"median":2.0}}}"#,
            r#"{"status":"measured","scenario":"concurrent_load","engine":"e","case":"max_rate/server","profile":"quick","wall_s":20.0,"metrics":{"probes":{"median":10.0}}}"#,
        ];
        std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
        let r = Reference::from_runs(&[dir.as_path()]).unwrap();
        let search = Shape::RateSearch { probes: 6, requests: 16 };
        let cut = r.case_s(Profile::Quick, "concurrent_load", "e", "max_rate/interactive", search, 32).unwrap();
        assert!((cut - 39.0).abs() < 1e-9, "13 s / 2 probes × 6: {cut}");
        let whole = r.case_s(Profile::Quick, "concurrent_load", "e", "max_rate/server", search, 32).unwrap();
        assert!((whole - 20.0).abs() < 1e-9, "{whole}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The least of a case: one round of its requests from the medians, or a skip's estimate
    /// when it was of the first round alone (table-2026-12-07, lease 5: mistral.rs's clients/100,
    /// "its first round of requests alone is estimated at 68.5 s"), never a whole Criterion run's.
    #[test]
    fn a_cases_least_is_one_round_or_a_skips_first_round_estimate() {
        let dir = std::env::temp_dir().join(format!("llm-bench-plan-least-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            r#"{"status":"measured","scenario":"concurrent_load","engine":"lmrs","case":"clients/10","profile":"quick","wall_s":46.0,"metrics":{"ttft_ms":{"median":1000.0},"inter_token_ms":{"median":100.0}}}"#,
            r#"{"status":"skipped","scenario":"concurrent_load","engine":"mistralrs","case":"clients/100","reason":"its first round of requests alone is estimated at 68.5 s, more than the 22.0 s left of the run's time budget"}"#,
            r#"{"status":"skipped","scenario":"single_request","engine":"mistralrs","case":"total/prompt200","reason":"measuring it with Criterion is estimated at 9.0 s, more than this case's 2.0 s share"}"#,
        ];
        std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
        let r = Reference::from_runs(&[dir.as_path()]).unwrap();
        let round = Shape::Concurrent { requests: 10, poisson_window_s: None };
        let lmrs = r.least_s("concurrent_load", "lmrs", "clients/10", round, 32).unwrap();
        assert!((lmrs - 10.0 * 4.1).abs() < 1e-9, "ten requests one at a time, 1 s + 31 × 0.1 s each: {lmrs}");
        let mistralrs = r.least_s("concurrent_load", "mistralrs", "clients/100", Shape::Concurrent { requests: 100, poisson_window_s: None }, 32);
        assert_eq!(mistralrs, Some(68.5));
        assert_eq!(r.least_s("single_request", "mistralrs", "total/prompt200", Shape::Latency { new_tokens: 32 }, 32), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
