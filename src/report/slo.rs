//! Latency bounds (SLOs) as data, and goodput: the requests of a concurrent-load case that met
//! a bound, per second, and their output tokens per second, from the raw per-request records.
//!
//! A bound is a percentile bound on time to first token and one on time per output token (TPOT:
//! a request's time after its first token over its other tokens), as MLPerf Inference's Llama
//! server scenarios state them; a request meets it when its own TTFT and TPOT are within both
//! (MLPerf's per-query test, taken request by request), and a case meets it when its p99s do.

use serde_json::Value;

/// A named latency bound: p99 TTFT and p99 TPOT, in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    pub ttft_p99_ms: f64,
    pub tpot_p99_ms: f64,
}

/// `interactive` and `server`, the bounds MLPerf Inference uses for its Llama interactive and
/// server scenarios, plus the user's `LLM_BENCH_SLO=ttft_p99=300ms,tpot_p99=20ms` as `user`.
pub fn slos() -> anyhow::Result<Vec<Slo>> {
    let mut v = vec![
        Slo { name: "interactive".into(), ttft_p99_ms: 500.0, tpot_p99_ms: 30.0 },
        Slo { name: "server".into(), ttft_p99_ms: 2000.0, tpot_p99_ms: 100.0 },
    ];
    if let Ok(spec) = std::env::var("LLM_BENCH_SLO") {
        if !spec.trim().is_empty() {
            v.push(parse(&spec)?);
        }
    }
    Ok(v)
}

/// `ttft_p99=300ms,tpot_p99=20ms` (units `ms` or `s`) as the `user` bound.
pub fn parse(spec: &str) -> anyhow::Result<Slo> {
    let (mut ttft, mut tpot) = (None, None);
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| anyhow::anyhow!("LLM_BENCH_SLO: `{part}` is not key=value (e.g. ttft_p99=300ms)"))?;
        let ms = match v.trim() {
            x if x.ends_with("ms") => x[..x.len() - 2].parse::<f64>().ok(),
            x if x.ends_with('s') => x[..x.len() - 1].parse::<f64>().ok().map(|s| s * 1e3),
            _ => None,
        }
        .filter(|x| *x > 0.0)
        .ok_or_else(|| anyhow::anyhow!("LLM_BENCH_SLO: `{v}` is not a duration such as 300ms or 2s"))?;
        match k.trim() {
            "ttft_p99" => ttft = Some(ms),
            "tpot_p99" => tpot = Some(ms),
            other => anyhow::bail!("LLM_BENCH_SLO: unknown bound `{other}`; use ttft_p99 and tpot_p99"),
        }
    }
    Ok(Slo {
        name: "user".into(),
        ttft_p99_ms: ttft.ok_or_else(|| anyhow::anyhow!("LLM_BENCH_SLO needs ttft_p99=..."))?,
        tpot_p99_ms: tpot.ok_or_else(|| anyhow::anyhow!("LLM_BENCH_SLO needs tpot_p99=..."))?,
    })
}

/// One request's (TTFT ms, TPOT ms, new tokens) from its raw record.
fn request(r: &Value) -> Option<(f64, f64, f64)> {
    let ttft = r["ttft_ms"].as_f64()?;
    let tokens = r["token_ms"].as_array()?;
    let n = tokens.len();
    let last = tokens.last()?.as_f64()?;
    let first = tokens.first()?.as_f64()?;
    let tpot = if n > 1 { (last - first) / (n - 1) as f64 } else { 0.0 };
    Some((ttft, tpot, n as f64))
}

/// How a case's requests fare against a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attainment {
    /// Share of requests whose TTFT and TPOT are both within the bound.
    pub met: f64,
    /// Share of the case's output tokens that those requests produced.
    pub met_tokens: f64,
    pub ttft_p99_ms: f64,
    pub tpot_p99_ms: f64,
    /// Whether the case's p99s are within the bound.
    pub holds: bool,
}

/// A case's requests (raw records) against `slo`; `None` without requests.
pub fn attainment(requests: &[&Value], slo: &Slo) -> Option<Attainment> {
    let rs: Vec<(f64, f64, f64)> = requests.iter().filter_map(|r| request(r)).collect();
    if rs.is_empty() {
        return None;
    }
    let p99 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        crate::measure::stats::percentile(&v, 99.0)
    };
    let ttft_p99_ms = p99(rs.iter().map(|r| r.0).collect());
    let tpot_p99_ms = p99(rs.iter().map(|r| r.1).collect());
    let ok = |r: &(f64, f64, f64)| r.0 <= slo.ttft_p99_ms && r.1 <= slo.tpot_p99_ms;
    let tokens: f64 = rs.iter().map(|r| r.2).sum();
    Some(Attainment {
        met: rs.iter().filter(|r| ok(r)).count() as f64 / rs.len() as f64,
        met_tokens: if tokens > 0.0 { rs.iter().filter(|r| ok(r)).map(|r| r.2).sum::<f64>() / tokens } else { 0.0 },
        ttft_p99_ms,
        tpot_p99_ms,
        holds: ttft_p99_ms <= slo.ttft_p99_ms && tpot_p99_ms <= slo.tpot_p99_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_bounds_parse_and_bad_ones_say_why() {
        assert_eq!(parse("ttft_p99=300ms,tpot_p99=0.02s").unwrap(), Slo { name: "user".into(), ttft_p99_ms: 300.0, tpot_p99_ms: 20.0 });
        assert!(parse("ttft_p99=300").unwrap_err().to_string().contains("300ms or 2s"));
        assert!(parse("ttft=1s,tpot_p99=1s").unwrap_err().to_string().contains("unknown bound `ttft`"));
    }

    #[test]
    fn requests_meet_a_bound_by_their_own_ttft_and_tpot() {
        // TTFT 100 ms and 10 ms per token; TTFT 900 ms; TPOT 50 ms.
        let fast = json!({"ttft_ms": 100.0, "token_ms": [100.0, 110.0, 120.0]});
        let late = json!({"ttft_ms": 900.0, "token_ms": [900.0, 910.0, 920.0]});
        let slow = json!({"ttft_ms": 100.0, "token_ms": [100.0, 150.0, 200.0]});
        let slo = Slo { name: "interactive".into(), ttft_p99_ms: 500.0, tpot_p99_ms: 30.0 };
        let a = attainment(&[&fast, &late, &slow], &slo).unwrap();
        assert!((a.met - 1.0 / 3.0).abs() < 1e-9, "{a:?}");
        assert!(!a.holds);
        assert!(attainment(&[&fast], &slo).unwrap().holds);
        assert!(attainment(&[], &slo).is_none());
    }
}
