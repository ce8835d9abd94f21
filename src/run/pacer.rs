//! Fitting a run into a time budget without pretending: a case that would not fit is skipped
//! with the reason (its estimated cost against its share of the time), never cut short or
//! silently dropped.
//!
//! The budget is split evenly over the engines still to run, an engine's part over its
//! scenarios still to run, and a scenario's part over its cases still to run. With an estimate
//! of every case still to run (`crate::run::plan`, from an earlier run), an engine's part is split
//! in proportion to what each scenario and case is expected to cost, so a budget smaller than the
//! estimate thins every expensive case alike instead of starving the last ones (table-2026-12-07,
//! lease 3: mistral.rs's sustained and memory cases took their even fifths and its 50- and
//! 100-client rounds found none); without one, evenly. Whatever the split, every case still to
//! run keeps one iteration of its own (one request, batch, round or probe: the plan's least) out
//! of the shares before it, since a case cannot be thinned below that and a rate search's probe
//! cannot be cut short (lease 5: the searches ran past their shares and three 100-client rounds
//! found less than a round's time). Time a cheap case leaves unused goes to the cases after it,
//! so fast engines measure everything and a slow one measures what fits.
//! Costs are estimated from the engine's own earlier requests (prefill time per prompt token,
//! time per decode step) and, once a case's warm-up request has run, from that request's time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an engine's earlier requests cost, learnt as the run goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Milliseconds of prefill per prompt token (a request's time to first token ÷ its prompt).
    pub prefill_ms_per_token: f64,
    /// Milliseconds per decode step after the first token.
    pub step_ms: f64,
    /// Prompt tokens of the single request the prefill rate came from: the largest seen,
    /// since a GPU's cost per token falls as prompts grow.
    pub prefill_tokens: usize,
    /// How much the prefill rate rose per prompt token between the two longest prompts seen
    /// (never below zero): every token attends to all before it, so past some length the cost
    /// per token grows with the prompt. The lm.rs design, which prefills token by token, took
    /// 27.3 ms a token at 1K and 38.2 at 4K, and its 8K prompt 459.5 s, where the 4K rate alone
    /// said 313 s (table-2026-12-07): a request started on that estimate runs past its call.
    pub prefill_slope: f64,
    /// Whether the engine runs a batch's requests one after another (seen when a batch's
    /// second request started after its first had finished).
    pub serial: bool,
    /// The largest batch seen so far, and its cost per new token per request: a batch at least
    /// that large is estimated to cost no less per token (an engine whose batches stop scaling,
    /// or fall back to something slower, shows it here before a bigger batch is tried).
    pub batch: usize,
    pub batch_token_ms: f64,
}

impl Rates {
    /// Estimated time of one `generate` call: every prompt token of the batch prefilled, then
    /// `new_tokens` decode steps, for every request if the engine is serial (a batching
    /// engine's step for the whole batch is taken to cost one request's step: a lower bound,
    /// used only to avoid starting hopeless requests).
    pub fn estimate(&self, batch: usize, prompt: usize, new_tokens: usize) -> Duration {
        let steps = new_tokens.saturating_sub(1) * if self.serial { batch } else { 1 };
        let per_token = self.prefill_ms_per_token + self.prefill_slope * prompt.saturating_sub(self.prefill_tokens) as f64;
        let mut ms = per_token * (batch * prompt) as f64 + self.step_ms * steps as f64;
        if self.batch > 1 && batch >= self.batch {
            ms = ms.max(self.batch_token_ms * (batch * new_tokens) as f64);
        }
        Duration::from_secs_f64(ms.max(0.0) / 1e3)
    }
}

#[derive(Debug, Default)]
struct State {
    engine_end: Option<Instant>,
    scenario_end: Option<Instant>,
    cases_left: usize,
    rates: BTreeMap<String, Rates>,
    gpu_baseline: Option<u64>,
    /// For the progress line: the engine's turn (i of n), the scenario's case count, and the
    /// estimate of every case not yet started and of every engine's start-up (`crate::run::plan`).
    engine_turn: (usize, usize),
    cases_total: usize,
    /// The engine and scenario now running, whose cases' estimates weight the shares.
    engine: String,
    scenario: &'static str,
    /// The running case's estimate and least (taken out of `estimate` and `least` as it started).
    case_estimate: Option<f64>,
    case_least: Option<f64>,
    estimate: BTreeMap<(String, &'static str, String), f64>,
    /// Cases not yet started that no earlier run measured: while any of the running engine's
    /// is left, its shares are split evenly (a case of unknown cost must not get nothing).
    unknown: BTreeSet<(String, &'static str, String)>,
    /// One iteration of each case not yet started (`crate::run::plan::Estimate::least`): kept
    /// for it whatever the cases before it take.
    least: BTreeMap<(String, &'static str, String), f64>,
    startups: BTreeMap<String, f64>,
    fastest_loads: BTreeMap<String, f64>,
}

/// A case estimated at less than this many seconds gets at least its estimate when shares are
/// weighted: thinning it would trade a Criterion estimate (single requests take 2-3 s each)
/// for seconds, while the cases worth thinning take tens of seconds to minutes.
pub const WHOLE_BELOW_S: f64 = 5.0;
/// The least a case is taken to cost when shares are weighted.
const MIN_ESTIMATE_S: f64 = 1.0;

impl State {
    /// Seconds the running engine's cases not yet started, in scenarios `among` admits, are
    /// estimated to take, or None when one of them has no estimate (then shares split evenly).
    fn estimated(&self, among: impl Fn(&str) -> bool) -> Option<f64> {
        if self.unknown.iter().any(|(e, sc, _)| *e == self.engine && among(sc)) {
            return None;
        }
        Some(self.engines_sum(&self.estimate, among))
    }

    /// Seconds to keep for the running engine's cases not yet started, in scenarios `among`
    /// admits: one iteration of each whose least is known.
    fn reserved(&self, among: impl Fn(&str) -> bool) -> f64 {
        self.engines_sum(&self.least, among)
    }

    /// The sum of `seconds` over the running engine's cases in scenarios `among` admits.
    fn engines_sum(&self, seconds: &BTreeMap<(String, &'static str, String), f64>, among: impl Fn(&str) -> bool) -> f64 {
        seconds.iter().filter(|((e, sc, _), _)| *e == self.engine && among(sc)).map(|(_, t)| t).sum()
    }
}

/// `part` of `left`, but no more than leaves `later` for the cases after it, and no less than
/// `own` (one iteration of its own) where `left` holds it: the last cases of an engine keep one
/// round each however the cases before them ran over.
fn kept(part: Duration, left: Duration, own: f64, later: f64) -> Duration {
    let own = Duration::from_secs_f64(own).min(left);
    part.min(left.saturating_sub(Duration::from_secs_f64(later))).max(own)
}

/// The run's clock: `unlimited` for a plain `cargo bench` (every case runs), `until` a deadline
/// for the quick profile's one-call suite.
#[derive(Debug)]
pub struct Pacer {
    deadline: Option<Instant>,
    started: Instant,
    state: Mutex<State>,
}

impl Pacer {
    pub fn unlimited() -> Self {
        Self { deadline: None, started: Instant::now(), state: Mutex::new(State::default()) }
    }

    pub fn until(deadline: Instant) -> Self {
        Self { deadline: Some(deadline), started: Instant::now(), state: Mutex::new(State::default()) }
    }

    pub fn is_limited(&self) -> bool {
        self.deadline.is_some()
    }

    /// Time left before the deadline (None when unlimited).
    pub fn left(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// An engine starts; `engines_left` counts it and those after it.
    pub fn begin_engine(&self, engines_left: usize) {
        let mut s = self.state.lock().unwrap();
        s.engine_end = self.deadline.map(|d| split(Instant::now(), d, engines_left));
    }

    /// `scenario` starts on the current engine; `scenarios_left` counts it and those after it.
    /// Its part of the engine's time is its estimated cost's part of the engine's cases still to
    /// run, when every one of them is estimated; else an even split.
    pub fn begin_scenario(&self, scenario: &'static str, scenarios_left: usize, cases: usize) {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        // Cases of the scenario before that never started (not selected, not runnable) cost nothing.
        let (engine, before) = (s.engine.clone(), s.scenario);
        s.estimate.retain(|(e, sc, _), _| !(*e == engine && *sc == before));
        s.unknown.retain(|(e, sc, _)| !(*e == engine && *sc == before));
        s.least.retain(|(e, sc, _), _| !(*e == engine && *sc == before));
        s.scenario = scenario;
        s.case_estimate = None;
        s.case_least = None;
        let end = s.engine_end.or(self.deadline);
        let fraction = match (s.estimated(|sc| sc == scenario), s.estimated(|_| true)) {
            (Some(mine), Some(all)) if mine > 0.0 => Some(mine / all),
            _ => None,
        };
        let (own, later) = (s.reserved(|sc| sc == scenario), s.reserved(|sc| sc != scenario));
        s.scenario_end = end.map(|e| {
            let left = e.saturating_duration_since(now);
            let part = match fraction {
                Some(f) => left.mul_f64(f),
                None => left / scenarios_left.max(1) as u32,
            };
            now + kept(part, left, own, later)
        });
        s.cases_left = cases;
        s.cases_total = cases;
    }

    /// An engine's turn starts: the `i`-th (from 1) of `n`, for the progress line.
    pub fn engine_turn(&self, i: usize, n: usize, engine: &str) {
        let mut s = self.state.lock().unwrap();
        s.engine_turn = (i, n);
        s.startups.remove(engine);
        s.engine = engine.to_string();
        s.scenario = "";
    }

    /// Why `engine` should not be loaded now: even its fastest load in earlier runs is longer
    /// than what is left of the budget, so a load would be cut off with nothing measured
    /// (h200-2026-12-04-burn: a pass left 10 s was killed while loading `burn-col-unfused`).
    pub fn load_does_not_fit(&self, engine: &str) -> Option<String> {
        let left = self.left()?;
        let load = *self.state.lock().unwrap().fastest_loads.get(engine)?;
        (left.as_secs_f64() < load).then(|| {
            format!(
                "its load took at least {load:.0} s in earlier runs (LLM_BENCH_PLAN_FROM), more than the {:.0} s left of the \
                 suite's time budget (--budget): not started, rather than cut off half-way; rerun with LLM_BENCH_RESUME=1",
                left.as_secs_f64()
            )
        })
    }

    /// One iteration of each case still to run (`crate::run::plan::Estimate::least`).
    pub fn set_least(&self, least: BTreeMap<(String, &'static str, String), f64>) {
        self.state.lock().unwrap().least = least;
    }

    /// The shortest load of each engine in earlier runs (`crate::run::plan::Reference`).
    pub fn set_fastest_loads(&self, loads: BTreeMap<String, f64>) {
        self.state.lock().unwrap().fastest_loads = loads;
    }

    /// What the run is expected to cost (`crate::run::plan::Estimate`): the progress line's
    /// time left is the estimate of the cases and start-ups not yet begun.
    /// `unknown`: the cases it has no figure for.
    pub fn set_estimate(
        &self,
        per_case: BTreeMap<(String, &'static str, String), f64>,
        unknown: BTreeSet<(String, &'static str, String)>,
        startups: BTreeMap<String, f64>,
    ) {
        let mut s = self.state.lock().unwrap();
        // A second at least: a case recorded at ~0 s (a search cut before its first probe) would
        // otherwise get no share at all.
        s.estimate = per_case.into_iter().map(|(k, t)| (k, t.max(MIN_ESTIMATE_S))).collect();
        s.unknown = unknown;
        s.startups = startups;
    }

    /// One progress line on stderr as a case starts: engine i/n, scenario, case j/m, elapsed,
    /// time left (the estimate's, else the budget's). A plain line per case, terminal or not:
    /// Criterion owns the terminal's current line while it measures, so a line rewritten in
    /// place would be overwritten by it.
    pub fn progress(&self, scenario: &'static str, engine: &str, case: &str) {
        let line = {
            let mut s = self.state.lock().unwrap();
            let key = (engine.to_string(), scenario, case.to_string());
            s.case_estimate = s.estimate.remove(&key);
            s.unknown.remove(&key);
            s.case_least = s.least.remove(&key);
            let (i, n) = s.engine_turn;
            let j = s.cases_total.saturating_sub(s.cases_left) + 1;
            let mut line = String::from("[llm-bench] progress:");
            if n > 0 {
                line.push_str(&format!(" engine {i}/{n}"));
            }
            line.push_str(&format!(
                " {engine} · {scenario} · case {j}/{} {case} · {} elapsed",
                s.cases_total.max(j),
                clock(self.started.elapsed().as_secs_f64())
            ));
            let estimated: f64 = s.estimate.values().sum::<f64>() + s.startups.values().sum::<f64>();
            if estimated > 0.0 {
                line.push_str(&format!(" · about {} left (estimate)", clock(estimated)));
            }
            if let Some(left) = self.left() {
                line.push_str(&format!(" · {} of the budget left", clock(left.as_secs_f64())));
            }
            line
        };
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!("\x1b[1m{line}\x1b[0m");
        } else {
            eprintln!("{line}");
        }
    }

    /// The time the running case may take: what is left of its scenario's part, split over the
    /// cases still to run. With an estimate of this case and of every one after it in the
    /// scenario, in proportion to them, and a case estimated at under [`WHOLE_BELOW_S`] gets at
    /// least its estimate; otherwise with the earlier cases weighted double (2 ÷ (cases left + 1)),
    /// since a scenario's case table starts with its most telling case.
    pub fn share(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap();
        let end = s.scenario_end.or(s.engine_end).or(self.deadline)?;
        let left = end.saturating_duration_since(Instant::now());
        let scenario = s.scenario;
        let part = match (s.case_estimate, s.estimated(|sc| sc == scenario)) {
            (Some(this), Some(rest)) => {
                let part = left.mul_f64(this / (this + rest));
                if this < WHOLE_BELOW_S { part.max(Duration::from_secs_f64(this).min(left)) } else { part }
            }
            _ => left * 2 / (s.cases_left.max(1) + 1) as u32,
        };
        Some(kept(part, left, s.case_least.unwrap_or(0.0), s.reserved(|sc| sc == scenario)))
    }

    /// GPU memory in use (NVML) just before the current engine was loaded: what to subtract
    /// from the device's figure to get this engine's own use, when engines share a process.
    pub fn set_gpu_baseline(&self, bytes: Option<u64>) {
        self.state.lock().unwrap().gpu_baseline = bytes;
    }

    pub fn gpu_baseline(&self) -> Option<u64> {
        self.state.lock().unwrap().gpu_baseline
    }

    /// A case is finished (measured or skipped).
    pub fn case_done(&self) {
        let mut s = self.state.lock().unwrap();
        s.cases_left = s.cases_left.saturating_sub(1);
        s.case_estimate = None;
        s.case_least = None;
    }

    /// Why a case estimated to take `cost` must be skipped, or None if it fits its share.
    pub fn over(&self, cost: Duration, what: &str) -> Option<String> {
        let share = self.share()?;
        (cost > share).then(|| {
            format!(
                "{what} is estimated at {:.1} s, more than this case's {:.1} s share of the run's time budget \
                 (quick profile; LLM_BENCH_PROFILE=full or a larger --budget measures it)",
                cost.as_secs_f64(),
                share.as_secs_f64()
            )
        })
    }

    /// What is known about an engine's speed so far.
    pub fn rates(&self, engine: &str) -> Option<Rates> {
        self.state.lock().unwrap().rates.get(engine).copied()
    }

    /// Learn from one `generate` call: per request, the instants of its tokens after `start`.
    pub fn learn(&self, engine: &str, prompt: usize, start: Instant, tokens: &[Vec<Instant>]) {
        let mut s = self.state.lock().unwrap();
        let r = s.rates.entry(engine.to_string()).or_default();
        let Some(first) = tokens.first().filter(|t| !t.is_empty()) else { return };
        if tokens.len() == 1 && prompt >= r.prefill_tokens.max(1) {
            // A repeat of the same prompt length keeps the faster figure: the slower call paid
            // something once (a kernel compiled for a new shape) that later calls do not.
            let rate = (first[0] - start).as_secs_f64() * 1e3 / prompt as f64;
            if prompt > r.prefill_tokens && r.prefill_tokens > 0 {
                r.prefill_slope = ((rate - r.prefill_ms_per_token) / (prompt - r.prefill_tokens) as f64).max(0.0);
            }
            r.prefill_ms_per_token = if prompt == r.prefill_tokens { r.prefill_ms_per_token.min(rate) } else { rate };
            r.prefill_tokens = prompt;
        }
        if tokens.len() == 1 && first.len() > 1 {
            // The median gap, not the mean: one step that compiled a kernel for a new cache
            // length (burn-cuda: a minute) is not what the next request's steps cost
            // (h200-2026-12-03-whole: a mean over such a step estimated Burn's 1K-token
            // request at 137 s and skipped it).
            let mut gaps: Vec<f64> = first.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e3).collect();
            gaps.sort_by(f64::total_cmp);
            let n = gaps.len();
            let median = if n % 2 == 1 { gaps[n / 2] } else { (gaps[n / 2 - 1] + gaps[n / 2]) / 2.0 };
            r.step_ms = r.step_ms.max(median);
        }
        if let Some(second) = tokens.get(1).and_then(|t| t.first()) {
            r.serial |= second >= first.last().unwrap();
        }
        let new_tokens = tokens.iter().map(Vec::len).max().unwrap_or(0);
        let end = tokens.iter().filter_map(|t| t.last()).max();
        if let (true, Some(end)) = (tokens.len() > 1 && tokens.len() >= r.batch && new_tokens > 0, end) {
            // A repeat of the same batch size keeps the faster figure, as for prefill.
            let rate = (*end - start).as_secs_f64() * 1e3 / (tokens.len() * new_tokens) as f64;
            r.batch_token_ms = if tokens.len() == r.batch { r.batch_token_ms.min(rate) } else { rate };
            r.batch = tokens.len();
        }
    }
}

/// Minutes and seconds, for the progress line.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

/// The instant `1/parts` of the way from `now` to `end`.
fn split(now: Instant, end: Instant, parts: usize) -> Instant {
    now + end.saturating_duration_since(now) / parts.max(1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A load that even a warm machine's fastest would not finish in the budget left is not
    /// started; one that may fit is, and an unlimited run never holds one back.
    #[test]
    fn a_load_longer_than_the_budget_left_is_not_started() {
        let loads = || [("slow".to_string(), 30.0), ("fast".to_string(), 1.0)].into_iter().collect();
        let p = Pacer::until(Instant::now() + Duration::from_secs(5));
        p.set_fastest_loads(loads());
        let why = p.load_does_not_fit("slow").expect("30 s of load against 5 s left");
        assert!(why.contains("at least 30 s") && why.contains("LLM_BENCH_RESUME=1"), "{why}");
        assert_eq!(p.load_does_not_fit("fast"), None);
        assert_eq!(p.load_does_not_fit("never-seen"), None);
        let u = Pacer::unlimited();
        u.set_fastest_loads(loads());
        assert_eq!(u.load_does_not_fit("slow"), None);
    }

    #[test]
    fn unlimited_never_skips() {
        let p = Pacer::unlimited();
        p.begin_engine(5);
        p.begin_scenario("s", 5, 10);
        assert!(p.over(Duration::from_secs(1_000_000), "x").is_none());
    }

    #[test]
    fn shares_split_the_budget_over_engines_scenarios_and_cases() {
        let p = Pacer::until(Instant::now() + Duration::from_secs(400));
        p.begin_engine(4); // 100 s for this engine
        p.begin_scenario("s", 5, 3); // 20 s for this scenario; the first of 3 cases may take half
        let share = p.share().unwrap().as_secs_f64();
        assert!((9.9..=10.0).contains(&share), "{share}");
        assert!(p.over(Duration::from_secs(9), "a case").is_none());
        let why = p.over(Duration::from_secs(11), "a case").unwrap();
        assert!(why.contains("11.0 s") && why.contains("share"), "{why}");
        p.case_done();
        p.case_done(); // the first cases used no time: the last may take all 20 s
        assert!(p.over(Duration::from_secs(19), "a case").is_none());
    }

    /// An engine whose estimate is twice its budget: each scenario gets its estimated part of
    /// the engine's time and each case its part of the scenario's, so the last cases are thinned
    /// like the first instead of starved; a case of a few seconds is left whole.
    #[test]
    fn with_an_estimate_shares_follow_each_cases_expected_cost() {
        let key = |s: &'static str, c: &str| ("e".to_string(), s, c.to_string());
        let per_case: BTreeMap<_, _> = [
            (key("cheap", "a"), 10.0),
            (key("dear", "small"), 2.0),
            (key("dear", "big"), 108.0),
            (key("dear", "last"), 80.0),
        ]
        .into_iter()
        .collect();
        let p = Pacer::until(Instant::now() + Duration::from_secs(100));
        p.set_estimate(per_case.clone(), BTreeSet::new(), BTreeMap::new());
        p.begin_engine(1);
        p.engine_turn(1, 1, "e");
        p.begin_scenario("cheap", 2, 1); // 10 of 200 estimated seconds: 5 s of the 100
        p.progress("cheap", "e", "a");
        let share = p.share().unwrap().as_secs_f64();
        assert!((4.9..=5.0).contains(&share), "{share}");
        p.case_done();
        p.begin_scenario("dear", 1, 3); // what is left, about 100 s
        p.progress("dear", "e", "small");
        let small = p.share().unwrap().as_secs_f64();
        assert!((1.9..=2.0).contains(&small), "a 2-second case keeps its 2 s, not 1 s: {small}");
        p.case_done();
        p.progress("dear", "e", "big");
        let big = p.share().unwrap().as_secs_f64();
        assert!((57.0..=57.5).contains(&big), "108 of the 188 s still estimated, of 100 s: {big}");
        p.case_done();
        p.progress("dear", "e", "last");
        let last = p.share().unwrap().as_secs_f64();
        assert!((99.0..=100.0).contains(&last), "the last case gets what is left: {last}");

        // One case no earlier run measured: the engine's split is even again.
        let p = Pacer::until(Instant::now() + Duration::from_secs(100));
        p.set_estimate(per_case, [key("dear", "new")].into_iter().collect(), BTreeMap::new());
        p.begin_engine(1);
        p.engine_turn(1, 1, "e");
        p.begin_scenario("cheap", 2, 1);
        p.progress("cheap", "e", "a");
        let even = p.share().unwrap().as_secs_f64();
        assert!((49.0..=50.0).contains(&even), "{even}");
    }

    /// Lease 5's mistral.rs pass, in small: a search before a 100-client round whose one round
    /// takes 60 s. Whatever the proportions say, the search's share leaves that round its 60 s,
    /// and when the search runs over anyway (a probe cannot be cut), the round still gets one
    /// round's time out of a scenario that kept it.
    #[test]
    fn each_case_still_to_run_keeps_one_iteration_of_its_own() {
        let key = |s: &'static str, c: &str| ("e".to_string(), s, c.to_string());
        let per_case: BTreeMap<_, _> =
            [(key("sustained", "batch"), 200.0), (key("concurrent", "search"), 100.0), (key("concurrent", "clients/100"), 100.0)]
                .into_iter()
                .collect();
        let least: BTreeMap<_, _> =
            [(key("sustained", "batch"), 3.0), (key("concurrent", "search"), 5.0), (key("concurrent", "clients/100"), 60.0)]
                .into_iter()
                .collect();
        let p = Pacer::until(Instant::now() + Duration::from_secs(100));
        p.set_least(least);
        p.set_estimate(per_case, BTreeSet::new(), BTreeMap::new());
        p.begin_engine(1);
        p.engine_turn(1, 1, "e");
        p.begin_scenario("sustained", 2, 1);
        p.progress("sustained", "e", "batch");
        let batch = p.share().unwrap().as_secs_f64();
        assert!((34.0..=35.0).contains(&batch), "half of 100 s by estimate, less the 65 s kept for the two cases after it: {batch}");
        p.case_done();
        p.begin_scenario("concurrent", 1, 2);
        p.progress("concurrent", "e", "search");
        let search = p.share().unwrap().as_secs_f64();
        assert!((39.0..=40.0).contains(&search), "half of what is left by estimate would be 50 s; 60 s stay for the round: {search}");
        p.case_done();
        p.progress("concurrent", "e", "clients/100");
        let round = p.share().unwrap().as_secs_f64();
        assert!(round >= 59.0, "{round}");
        assert!(p.over(Duration::from_secs(59), "its first round").is_none());
        // Without the leasts, the search's proportional share is the even 50 s.
        let p = Pacer::until(Instant::now() + Duration::from_secs(100));
        p.set_estimate([(key("c", "search"), 100.0), (key("c", "clients/100"), 100.0)].into_iter().collect(), BTreeSet::new(), BTreeMap::new());
        p.begin_engine(1);
        p.engine_turn(1, 1, "e");
        p.begin_scenario("c", 1, 2);
        p.progress("c", "e", "search");
        let even = p.share().unwrap().as_secs_f64();
        assert!((49.0..=50.0).contains(&even), "{even}");
    }

    #[test]
    fn rates_come_from_the_longest_single_prompt_and_the_slowest_step() {
        let p = Pacer::unlimited();
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        p.learn("e", 100, t0, &[vec![ms(50), ms(60), ms(80)]]); // 0.5 ms/token, 15 ms/step
        p.learn("e", 10, t0, &[vec![ms(20), ms(21)]]); // a shorter prompt: prefill rate kept
        let r = p.rates("e").unwrap();
        assert!((r.prefill_ms_per_token - 0.5).abs() < 1e-9 && (r.step_ms - 15.0).abs() < 1e-9 && !r.serial);
        // 4 × 1000 prompt tokens at 0.5 ms, then 9 steps at 15 ms for the whole batch.
        assert_eq!(r.estimate(4, 1000, 10), Duration::from_millis(2135));
        // A batch whose second request starts after the first ended: every request's steps
        // count; a batch's slower steps do not change the single-request step.
        p.learn("e", 100, t0, &[vec![ms(50), ms(90)], vec![ms(120), ms(160)]]);
        assert!(p.rates("e").unwrap().serial);
        assert_eq!(p.rates("e").unwrap().estimate(4, 1000, 10), Duration::from_millis(2540));
    }

    #[test]
    fn a_batch_that_stopped_scaling_makes_larger_batches_cost_at_least_as_much_per_token() {
        let p = Pacer::unlimited();
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        p.learn("e", 50, t0, &[vec![ms(10), ms(14), ms(18), ms(22)]]); // 4 ms steps alone
        // 32 requests of 4 tokens that took 13 s: about 102 ms per token per request.
        let batch: Vec<Vec<Instant>> = (0..32).map(|i| vec![ms(100 + i), ms(13_000)]).collect();
        let batch: Vec<Vec<Instant>> = batch.into_iter().map(|mut v| { v.splice(1..1, [ms(5_000), ms(9_000)]); v }).collect();
        p.learn("e", 50, t0, &batch);
        let r = p.rates("e").unwrap();
        assert_eq!(r.batch, 32);
        // Batch 64 is estimated from the batch-32 rate: twice the call, not a few 4 ms steps.
        assert_eq!(r.estimate(64, 50, 4), Duration::from_secs(26));
        // A smaller batch keeps the single-request model.
        assert!(r.estimate(8, 50, 4) < Duration::from_secs(1));
    }

    #[test]
    fn one_step_that_compiled_a_kernel_does_not_set_the_step_time() {
        let p = Pacer::unlimited();
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        // 32 tokens 4 ms apart, but the 10th step took a minute (a new cache length compiled).
        let mut tokens: Vec<Instant> = (0..32).map(|i| ms(20 + 4 * i)).collect();
        for t in tokens.iter_mut().skip(10) {
            *t += Duration::from_secs(60);
        }
        p.learn("e", 50, t0, &[tokens]);
        assert!((p.rates("e").unwrap().step_ms - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_slow_first_call_of_a_prompt_length_is_forgotten_when_a_repeat_is_faster() {
        let p = Pacer::unlimited();
        let t0 = Instant::now();
        let ms = |m: u64| t0 + Duration::from_millis(m);
        p.learn("e", 50, t0, &[vec![ms(60_000)]]); // 1200 ms/token: kernels compiled on the way
        p.learn("e", 50, t0, &[vec![ms(25)]]); // the same prompt again: 0.5 ms/token
        assert!((p.rates("e").unwrap().prefill_ms_per_token - 0.5).abs() < 1e-9);
        p.learn("e", 50, t0, &[vec![ms(100)]]); // a slower repeat does not raise it again
        assert!((p.rates("e").unwrap().prefill_ms_per_token - 0.5).abs() < 1e-9);
        p.learn("e", 200, t0, &[vec![ms(60)]]); // a longer prompt sets it: 0.3 ms/token
        assert!((p.rates("e").unwrap().prefill_ms_per_token - 0.3).abs() < 1e-9);
        // A rate that fell with the longer prompt (a GPU filling up) adds nothing beyond it.
        assert_eq!(p.rates("e").unwrap().prefill_slope, 0.0);
        assert_eq!(p.rates("e").unwrap().estimate(1, 400, 1), Duration::from_millis(120));
    }

    /// table-2026-12-07, the lm.rs design on 16 cores: its 1K and 4K first tokens (27.9 s and
    /// 156.5 s) and then its 8K one, 459.5 s. From the 4K rate alone the 8K prompt was 313 s;
    /// with the rate's rise per token it is within a tenth of what it took, and never below the
    /// longest prompt's own rate.
    #[test]
    fn a_longer_prompt_than_any_seen_costs_more_per_token_where_the_rate_rose() {
        let p = Pacer::unlimited();
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        p.learn("lmrs", 1024, t0, &[vec![s(27.9)]]);
        p.learn("lmrs", 4096, t0, &[vec![s(156.5)]]);
        let r = p.rates("lmrs").unwrap();
        assert!(r.prefill_slope > 0.0, "{r:?}");
        let eight_k = r.estimate(1, 8192, 1).as_secs_f64();
        assert!((413.0..=460.0).contains(&eight_k), "{eight_k}");
        assert!((r.estimate(1, 4096, 1).as_secs_f64() - 156.5).abs() < 1e-6);
        assert!((r.estimate(1, 1024, 1).as_secs_f64() - 39.1).abs() < 0.1, "a shorter prompt at the longest one's rate");
    }
}
