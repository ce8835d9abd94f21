//! The highest Poisson arrival rate an engine serves within a latency bound (MLPerf Inference's
//! Server scenario, vLLM's goodput): the search over rates, kept apart from serving and from
//! the bound itself. The harness runs the probes ([`crate::run::harness`]); whether a probe
//! holds a bound is [`crate::report::slo::attainment`] of its raw requests.
//!
//! The search brackets, then bisects: from a start rate it doubles while the bound holds (or
//! halves while it does not) until one probe holds and a higher one fails, then probes the
//! geometric middle until the two are within [`PRECISION`] of each other. Every probe is a
//! case of the run like any other; probes are shared between bounds, so a rate probed for one
//! bound is never served again for the next.

/// The bracket's ends are within this ratio when the search stops (10 %).
pub const PRECISION: f64 = 1.10;
/// Rates the search does not go below or above (requests per second): below the floor an engine
/// holds no bound worth the name. The ceiling was 512 until torch-compile held both bounds there
/// on an H200 (h200-2026-12-03-rate: 15,339 output tok/s, p99 TTFT 244 ms); 2000 req/s of
/// 32-token requests is 64K tok/s, beyond any engine here at batches of 64.
pub const MIN_RATE: f64 = 0.5;
pub const MAX_RATE: f64 = 2000.0;

/// Where a search starts: half the highest request rate the engine served closed-loop earlier in
/// the scenario (its `clients/<n>` cases: every client waits for its answer, so that is about
/// the most it serves at all, and a latency bound holds somewhere below it). Without one, half
/// what the engine serves in batches of 16 as the run has learned it, else 4 req/s. A start near
/// the answer leaves the probes for bisecting: from half the batch-16 rate, engines whose
/// batches grow to 64 spent five of the quick profile's probes doubling.
pub fn start_rate(closed_loop_rps: Option<f64>, batch16_rps: Option<f64>) -> f64 {
    closed_loop_rps.filter(|r| *r > 0.0).or(batch16_rps).map_or(4.0, |r| 0.5 * r).clamp(MIN_RATE, MAX_RATE)
}

/// One probe's outcome for one bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub rate: f64,
    pub holds: bool,
}

/// What a finished (or cut) search found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Found {
    /// The highest rate probed that holds, and the lowest above it that fails.
    Bracketed { holds: f64, fails: f64 },
    /// Every rate up to the ceiling holds.
    AtLeast(f64),
    /// Even the floor fails.
    Below(f64),
    /// No probe yet.
    Nothing,
}

impl Found {
    /// The rate to report: the highest that held (0 when none did).
    pub fn rate(self) -> f64 {
        match self {
            Found::Bracketed { holds, .. } | Found::AtLeast(holds) => holds,
            Found::Below(_) | Found::Nothing => 0.0,
        }
    }
}

/// The bracket the probes make: the lowest failing rate, and the highest holding rate below it
/// (a noisy probe that holds above a failing one is not trusted).
pub fn bracket(probes: &[Probe]) -> (Option<f64>, Option<f64>) {
    let fails = probes.iter().filter(|p| !p.holds).map(|p| p.rate).reduce(f64::min);
    let holds = probes.iter().filter(|p| p.holds && fails.is_none_or(|f| p.rate < f)).map(|p| p.rate).reduce(f64::max);
    (holds, fails)
}

/// The next rate to probe, or `None` when the search is done.
pub fn next_rate(probes: &[Probe], start: f64) -> Option<f64> {
    let next = match bracket(probes) {
        (None, None) => Some(start.clamp(MIN_RATE, MAX_RATE)),
        (Some(lo), None) => (lo < MAX_RATE).then(|| (lo * 2.0).min(MAX_RATE)),
        (None, Some(hi)) => (hi > MIN_RATE).then(|| (hi / 2.0).max(MIN_RATE)),
        (Some(lo), Some(hi)) => (hi / lo > PRECISION).then(|| (lo * hi).sqrt()),
    };
    // Rounded, and never a rate probed already (rounding can land on one's neighbour).
    next.map(round).filter(|r| !probes.iter().any(|p| p.rate == *r))
}

/// What the probes found so far.
pub fn found(probes: &[Probe]) -> Found {
    match bracket(probes) {
        (Some(lo), Some(hi)) => Found::Bracketed { holds: lo, fails: hi },
        (Some(lo), None) => Found::AtLeast(lo),
        (None, Some(hi)) => Found::Below(hi),
        (None, None) => Found::Nothing,
    }
}

/// Rates as probed: three significant figures, so case ids stay short and equal rates compare equal.
pub fn round(rate: f64) -> f64 {
    let digits = 3 - rate.abs().log10().ceil() as i32;
    let k = 10f64.powi(digits);
    (rate * k).round() / k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the search against a bound that holds up to `limit` req/s.
    fn search(limit: f64, start: f64) -> (Found, usize) {
        let mut probes = Vec::new();
        while let Some(rate) = next_rate(&probes, start) {
            assert!(!probes.iter().any(|p: &Probe| p.rate == rate), "{rate} probed twice: {probes:?}");
            probes.push(Probe { rate, holds: rate <= limit });
            assert!(probes.len() < 30, "the search does not end: {probes:?}");
        }
        (found(&probes), probes.len())
    }

    #[test]
    fn the_search_ends_within_its_precision_from_either_side() {
        for (limit, start) in [(37.0, 4.0), (37.0, 300.0), (3.3, 16.0), (100.0, 100.0)] {
            let (f, n) = search(limit, start);
            let Found::Bracketed { holds, fails } = f else { panic!("{limit}/{start}: {f:?}") };
            assert!(holds <= limit && fails > limit && fails / holds <= PRECISION, "{limit}/{start}: {f:?}");
            assert!(n <= 10, "{limit}/{start}: {n} probes");
        }
    }

    #[test]
    fn the_ends_of_the_range_are_reported_as_such() {
        assert_eq!(search(1e9, 8.0).0, Found::AtLeast(MAX_RATE));
        assert_eq!(search(0.1, 8.0).0, Found::Below(MIN_RATE));
        assert_eq!(Found::Below(MIN_RATE).rate(), 0.0);
    }

    /// Two bounds sharing one search's probes, as the harness runs them: the second starts from
    /// the first's answer and reuses every rate already served. Returns each bound's answer and
    /// how many probes of its own it served.
    fn two_bounds(limits: (f64, f64), start: f64) -> [(Found, usize); 2] {
        let mut served: Vec<f64> = Vec::new();
        let mut answers = Vec::new();
        let mut from = start;
        for limit in [limits.0, limits.1] {
            let probes = |served: &[f64]| served.iter().map(|&rate| Probe { rate, holds: rate <= limit }).collect::<Vec<_>>();
            let before = served.len();
            while let Some(rate) = next_rate(&probes(&served), from) {
                served.push(rate);
                assert!(served.len() < 40, "the search does not end: {served:?}");
            }
            let f = found(&probes(&served));
            from = f.rate().max(MIN_RATE);
            answers.push((f, served.len() - before));
        }
        [answers[0], answers[1]]
    }

    #[test]
    fn from_the_closed_loop_rate_both_bounds_fit_the_quick_profile() {
        // h100-2026-12-06-c, where the search ran after the 1- and 10-client cases: each engine's
        // best closed-loop rate among those (req/s) and a limit inside each bracket that run found
        // (llamacpp, torch-compile, candle-f16, candle, burn, mistralrs, mistralrs-paged), burn's
        // `server` assumed inside its cut bracket of 154-218. Each bound is bracketed to 10 %
        // within the quick profile's probes per bound, burn's `server` too, which 12 probes per
        // engine cut.
        let runs = [
            (72.75, 118.0, 235.0),
            (142.38, 590.0, 1000.0),
            (59.45, 250.0, 455.0),
            (19.83, 27.0, 140.0),
            (19.32, 3.0, 190.0),
            (11.70, 2.8, 17.0),
            (5.43, 1.7, 1.7),
        ];
        for (closed, interactive, server) in runs {
            let start = start_rate(Some(closed), Some(1.0));
            for ((f, n), limit) in two_bounds((interactive, server), start).into_iter().zip([interactive, server]) {
                let Found::Bracketed { holds, fails } = f else { panic!("{closed}: {f:?}") };
                assert!(holds <= limit && fails > limit && fails / holds <= PRECISION, "{closed}: {f:?}");
                assert!(n <= crate::run::workload::Profile::Quick.rate_probes(), "{closed}: {n} probes for {limit}");
            }
        }
        // Burn's two bounds need more probes than one bound's limit in all.
        let [(_, a), (_, b)] = two_bounds((3.0, 190.0), start_rate(Some(19.32), None));
        assert!(a + b > crate::run::workload::Profile::Quick.rate_probes(), "{a} + {b}");
        // Without a closed-loop figure, half the batch-16 rate; without either, 4 req/s.
        assert_eq!(start_rate(None, Some(25.4)), 12.7);
        assert_eq!(start_rate(Some(0.0), None), 4.0);
    }

    #[test]
    fn a_noisy_probe_above_a_failing_one_is_not_trusted() {
        let probes = [Probe { rate: 8.0, holds: true }, Probe { rate: 16.0, holds: false }, Probe { rate: 32.0, holds: true }];
        assert_eq!(bracket(&probes), (Some(8.0), Some(16.0)));
        assert_eq!(round(11.3137), 11.3);
        // Every rate the search asks for reads as three figures (the probes' case ids).
        assert_eq!(next_rate(&[], 30.824408357076603), Some(30.8));
        assert_eq!(round(0.7071), 0.707);
    }
}
