//! The SmolLM2 correctness check as a run recorded it (`check.log` beside the results, written by
//! `llm-bench check`): which engines passed, which failed and why. An engine whose output is wrong
//! has no speed worth choosing, so the report shows the check first and leaves failed engines out
//! of its verdict.

use serde_json::Value;
use std::path::Path;

/// One engine's line of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub engine: String,
    pub passed: bool,
    /// What the check found, in one line: tokens agreeing and logit error, or the failure.
    pub detail: String,
}

/// The outcomes in `<run dir>/check.log` (or its `.xz`), in the order the log has them; empty when
/// the run has no check log. The agreement of each engine is its `  json: {...}` line; an engine
/// that failed before comparing (it did not load) is its `<engine> on <device>: FAIL — ...` line.
pub fn read(run_dir: &Path) -> Vec<Outcome> {
    parse(&crate::results::read_raw(run_dir, "check.log").unwrap_or_default())
}

pub fn parse(log: &str) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::new();
    for line in log.lines() {
        if let Some(json) = line.strip_prefix("  json: ") {
            let Ok(a) = serde_json::from_str::<Value>(json) else { continue };
            let Some(engine) = a["engine"]["name"].as_str() else { continue };
            let error_pct = match (a["max_logit_error"].as_f64(), a["max_abs_logit"].as_f64()) {
                (Some(e), Some(m)) if m > 0.0 => format!("{:.2}%", 100.0 * e / m),
                _ => "?".into(),
            };
            let detail = format!(
                "{}/{} greedy tokens agree with the reference, last-position logit error {error_pct} of the largest, same argmax: {}",
                a["agreeing_prefix"],
                a["reference_tokens"].as_array().map_or(0, Vec::len),
                a["same_argmax"]
            );
            out.retain(|o| o.engine != engine);
            out.push(Outcome { engine: engine.to_string(), passed: a["passed"] == true, detail });
        } else if let Some((head, why)) = line.split_once(": FAIL — ") {
            if let Some((engine, _device)) = head.split_once(" on ") {
                // An engine that compared has a json line too; this is one that could not.
                if !engine.contains(' ') && !out.iter().any(|o| o.engine == engine) {
                    out.push(Outcome { engine: engine.to_string(), passed: false, detail: format!("failed before comparing: {why}") });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_passes_failures_and_engines_that_did_not_load() {
        let log = r#"reference engine (f32, CPU, 1.9s): "The capital of France is Paris."
candle candle-core 0.10.2 on cuda:0: PASS — 24/24 greedy tokens agree with the reference (need 16), max |logit error| 0.9195 (3.08% of max |logit| 29.82, limit 5%), same argmax: true [1.2 s to load and check]
  tokens: "The capital of France is Paris."
  json: {"engine":{"name":"candle"},"tokens":[1,2],"reference_tokens":[1,2],"agreeing_prefix":24,"max_logit_error":0.9195,"max_abs_logit":29.82,"same_argmax":true,"passed":true}
burn-col burn 0.21.0 on cuda:0: FAIL — 1/24 greedy tokens agree with the reference (need 16), max |logit error| 0.0466 (0.16% of max |logit| 29.82, limit 5%), same argmax: true
  json: {"engine":{"name":"burn-col"},"tokens":[1,9],"reference_tokens":[1,2],"agreeing_prefix":1,"max_logit_error":0.0466,"max_abs_logit":29.82,"same_argmax":true,"passed":false}
mistralrs on cuda:0: FAIL — cannot load: out of memory
error: check failed for: burn-col, mistralrs
"#;
        let o = parse(log);
        assert_eq!(o.iter().map(|o| (o.engine.as_str(), o.passed)).collect::<Vec<_>>(), [("candle", true), ("burn-col", false), ("mistralrs", false)]);
        assert!(o[1].detail.starts_with("1/2 greedy tokens agree"), "{}", o[1].detail);
        assert!(o[1].detail.contains("0.16%"), "{}", o[1].detail);
        assert_eq!(o[2].detail, "failed before comparing: cannot load: out of memory");
    }
}
