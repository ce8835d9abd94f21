//! `llm-bench compare <run A> <run B>`: every figure both runs measured, its change from A to B,
//! and whether that change stands out from the runs' own noise.
//!
//! A change is called only when it is both statistically clear and large enough to matter:
//! Welch's t on the two means (from each figure's mean, standard deviation and sample count,
//! |t| ≥ 2.6, about 99% two-sided for the sample counts here) and a median change of at least
//! [`MIN_CHANGE`]. Everything else is "no change (within noise)"; a figure one run measured once
//! gets no verdict (no spread to judge by), and a rate search's answer is judged by the search's
//! 10 % precision instead of a t statistic. Criterion's own
//! `--save-baseline` / `--baseline` compares one bench's figures the same way a run at a time;
//! this compares whole runs, including the suite's own figures (TTFT, tok/s, memory).

use crate::results::read_results;
use anyhow::{Context, Result};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// Smallest relative change of a median reported as a change.
pub const MIN_CHANGE: f64 = 0.02;
/// Welch's |t| above which two means differ.
pub const T_CRITICAL: f64 = 2.6;

/// The figures compared, and whether a higher value is better.
const FIGURES: [(&str, &str, bool); 7] = [
    ("max_rate_rps", "max req/s within bound", true),
    ("ttft_ms", "TTFT ms", false),
    ("total_ms", "request ms", false),
    ("inter_token_ms", "inter-token ms", false),
    ("output_tok_s", "output tok/s", true),
    ("gpu_mem_used_gb", "GPU memory GB", false),
    ("mbu_pct", "MBU %", true),
];

/// One figure in both runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub id: String,
    pub figure: &'static str,
    pub a: f64,
    pub b: f64,
    /// (b − a) ÷ a of the medians.
    pub change: f64,
    pub t: Option<f64>,
    pub verdict: &'static str,
}

fn summary(r: &Value, k: &str) -> Option<(f64, f64, f64, f64)> {
    let m = &r["metrics"][k];
    Some((m["median"].as_f64()?, m["mean"].as_f64()?, m["stddev"].as_f64()?, m["n"].as_f64()?))
}

/// Welch's t of two means from their standard deviations and sample counts.
pub fn welch_t(mean_a: f64, sd_a: f64, n_a: f64, mean_b: f64, sd_b: f64, n_b: f64) -> Option<f64> {
    if n_a < 2.0 || n_b < 2.0 {
        return None;
    }
    let se = (sd_a * sd_a / n_a + sd_b * sd_b / n_b).sqrt();
    if se > 0.0 {
        Some((mean_b - mean_a) / se)
    } else if mean_a == mean_b {
        Some(0.0)
    } else {
        Some(f64::INFINITY.copysign(mean_b - mean_a))
    }
}

/// The verdict on a figure that one run measured once: with no spread there is no noise to
/// judge a change against, so none is called either way (a rate search's output rate at its
/// answer is one window of arrivals; h100-2026-12-06-c against -e moved burn's by +1,833 %,
/// which "within noise" would have hidden).
pub const ONE_SAMPLE: &str = "no verdict (one sample: no spread to judge by)";

/// The verdict for one figure.
pub fn verdict(change: f64, t: Option<f64>, higher_is_better: bool) -> &'static str {
    let Some(t) = t else { return ONE_SAMPLE };
    let clear = t.abs() >= T_CRITICAL && change.abs() >= MIN_CHANGE;
    match (clear, (change > 0.0) == higher_is_better) {
        (false, _) => "no change (within noise)",
        (true, true) => "better",
        (true, false) => "worse",
    }
}

/// Whether a verdict calls a change (the figure got better or worse).
pub fn is_change(verdict: &str) -> bool {
    verdict == "better" || verdict == "worse"
}

/// The verdict on two rate searches' answers: a change is one the searches' precision
/// ([`crate::run::rate_search::PRECISION`], 10 %) cannot explain.
pub fn search_verdict(a: f64, b: f64) -> &'static str {
    const PRECISION: f64 = 1.10;
    if a <= 0.0 && b <= 0.0 {
        "no change (within noise)"
    } else if b > a * PRECISION || (a <= 0.0 && b > 0.0) {
        "better"
    } else if b * PRECISION < a {
        "worse"
    } else {
        "no change (within the search's 10 % precision)"
    }
}

fn key(r: &Value) -> String {
    format!("{}/{}/{}", r["scenario"].as_str().unwrap_or(""), r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or(""))
}

/// Every figure both runs measured, in run A's order.
pub fn changes(a: &[Value], b: &[Value]) -> Vec<Change> {
    let measured = |v: &[Value]| -> Vec<Value> { v.iter().filter(|r| r["status"] == "measured").cloned().collect() };
    let (a, b) = (measured(a), measured(b));
    let mut out = Vec::new();
    for ra in &a {
        let id = key(ra);
        let Some(rb) = b.iter().find(|r| key(r) == id) else { continue };
        for (k, label, higher) in FIGURES {
            let (Some(sa), Some(sb)) = (summary(ra, k), summary(rb, k)) else { continue };
            if sa.0 == 0.0 {
                continue;
            }
            let change = (sb.0 - sa.0) / sa.0;
            let t = welch_t(sa.1, sa.2, sa.3, sb.1, sb.2, sb.3);
            // A rate search's answer is one figure known to its bracket's 10 %: a change is one
            // beyond that precision, not a t statistic.
            let verdict = if k == "max_rate_rps" { search_verdict(sa.0, sb.0) } else { verdict(change, t, higher) };
            out.push(Change { id: id.clone(), figure: label, a: sa.0, b: sb.0, change, t, verdict });
        }
    }
    out
}

/// The comparison as Markdown.
pub fn compare(run_a: &Path, run_b: &Path) -> Result<String> {
    compare_paired(run_a, run_b, &[])
}

/// The comparison with engines paired across the runs: `(x, y)` compares run A's engine `x` with
/// run B's engine `y` (e.g. a configuration against another, `candle` vs `candle-f16`, also within
/// one run given twice). B's `y` records stand in for `x`; B's own `x` and A's `y` are left out.
pub fn compare_paired(run_a: &Path, run_b: &Path, pairs: &[(String, String)]) -> Result<String> {
    // As the summary reads a run (`crate::results::current_records`): a skip made good and a
    // rate search taken up again by a resumed run are left out.
    let read = |d: &Path| {
        read_results(&d.join("results.jsonl"))
            .map(crate::results::current_records)
            .with_context(|| format!("{} is not a run directory (no results.jsonl)", d.display()))
    };
    let (mut a, mut b) = (read(run_a)?, read(run_b)?);
    if !pairs.is_empty() {
        let engine = |r: &Value| r["engine"].as_str().unwrap_or("").to_string();
        a.retain(|r| !pairs.iter().any(|(_, y)| engine(r) == *y));
        b.retain(|r| !pairs.iter().any(|(x, _)| engine(r) == *x));
        if std::fs::canonicalize(run_a).ok().is_some_and(|d| std::fs::canonicalize(run_b).ok() == Some(d)) {
            // One run against itself: only the pairs say anything; every other engine (and the
            // harness's `stub`) would be set against its own records.
            a.retain(|r| pairs.iter().any(|(x, _)| engine(r) == *x));
            b.retain(|r| pairs.iter().any(|(_, y)| engine(r) == *y));
        }
        for r in &mut b {
            if let Some((x, _)) = pairs.iter().find(|(_, y)| engine(r) == *y) {
                r["engine"] = x.clone().into();
            }
        }
    }
    let env = |d: &Path| -> Value {
        std::fs::read_to_string(d.join("environment.json")).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()).unwrap_or(Value::Null)
    };
    let (ea, eb) = (env(run_a), env(run_b));
    let commit = |e: &Value| -> String { e["git_commit"].as_str().map(|c| c.chars().take(10).collect()).unwrap_or_else(|| "?".into()) };
    let mut md = String::new();
    writeln!(md, "# llm-bench compare\n")?;
    let ((ma, ua), (mb, ub)) = (machine(&ea), machine(&eb));
    writeln!(md, "- A: `{}` (commit {}; {ma})", run_a.display(), commit(&ea))?;
    writeln!(md, "- B: `{}` (commit {}; {mb})", run_b.display(), commit(&eb))?;
    for (x, y) in pairs {
        writeln!(md, "- paired: A's `{x}` against B's `{y}` (case ids below name A's engine)")?;
    }
    writeln!(md, "- a change is called when Welch's |t| ≥ {T_CRITICAL} on the means and the median moved by at least {:.0}%\n", MIN_CHANGE * 100.0)?;
    if ua.is_none() || ub.is_none() || ua != ub {
        writeln!(
            md,
            "**Not the same GPU** ({}): the runs may differ by machine as well as by code. Two machines of the same model \
             gave the same engine inter-token latencies tens of percent apart when the engine is bound by host work \
             (kernel launches, Python): compare runs from one machine, or rerun both on yours.\n",
            if ua.is_none() || ub.is_none() { "a run does not record its GPU's UUID" } else { "different GPU UUIDs" }
        )?;
    }
    let ch = changes(&a, &b);
    write_host(&mut md, &ea, &eb, &a, &b, &ch)?;
    let count = |v: &str| ch.iter().filter(|c| c.verdict == v).count();
    writeln!(
        md,
        "{} figures in both runs: {} better, {} worse, {} within noise (or a rate search's precision), {} measured once in a run (no verdict).\n",
        ch.len(),
        count("better"),
        count("worse"),
        ch.iter().filter(|c| !is_change(c.verdict) && c.verdict != ONE_SAMPLE).count(),
        count(ONE_SAMPLE)
    )?;
    writeln!(md, "| figure | case | bound by (B) | A median | B median | change | Welch t | verdict |")?;
    writeln!(md, "|---|---|---|---:|---:|---:|---:|---|")?;
    for c in &ch {
        let bound_b = b.iter().find(|r| r["status"] == "measured" && key(r) == c.id).map_or("?", crate::report::host::bound);
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:+.1}% | {} | {} |",
            c.figure,
            c.id,
            bound_b,
            significant(c.a),
            significant(c.b),
            c.change * 100.0,
            c.t.map_or("—".to_string(), |t| format!("{t:.1}")),
            c.verdict
        )?;
    }
    // Repeatability is one engine run twice; paired engines are two configurations.
    if ua.is_some() && ua == ub && pairs.is_empty() {
        write_repeatability(&mut md, &a, &b, &ch)?;
    }
    let ids = |v: &[Value]| -> Vec<String> { v.iter().filter(|r| r["status"] == "measured").map(key).collect() };
    let (ia, ib) = (ids(&a), ids(&b));
    let only_a: Vec<&String> = ia.iter().filter(|i| !ib.contains(i)).collect();
    let only_b: Vec<&String> = ib.iter().filter(|i| !ia.contains(i)).collect();
    if !only_a.is_empty() || !only_b.is_empty() {
        writeln!(md, "\n## Measured in one run only\n")?;
        for i in only_a {
            writeln!(md, "- only in A: {i}")?;
        }
        for i in only_b {
            writeln!(md, "- only in B: {i}")?;
        }
    }
    Ok(md)
}

/// Largest change between two runs on one GPU that counts as repeating (the specification's
/// "variance < 5 % across runs").
pub const REPEAT_WITHIN: f64 = 0.05;

/// Two runs on one GPU: how many figures with at least Criterion's 10 samples in both repeat
/// within [`REPEAT_WITHIN`], and each that does not, with the spread of its samples in each run
/// and what bounds its case (a figure whose own samples spread by more than the change cannot
/// repeat closer than that spread).
fn write_repeatability(md: &mut String, a: &[Value], b: &[Value], ch: &[Change]) -> Result<()> {
    let find = |v: &[Value], id: &str| v.iter().find(|r| r["status"] == "measured" && key(r) == id).cloned();
    let samples = |r: &Value| r["samples"].as_u64().unwrap_or(0);
    let full = |r: &Value| samples(r) >= 10 && r["reduced"].is_null();
    let mut counted = 0;
    let mut beyond = Vec::new();
    for c in ch {
        let (Some(ra), Some(rb)) = (find(a, &c.id), find(b, &c.id)) else { continue };
        if !full(&ra) || !full(&rb) || c.figure.starts_with("max req/s") {
            continue;
        }
        counted += 1;
        if c.change.abs() >= REPEAT_WITHIN {
            beyond.push((c, ra, rb));
        }
    }
    writeln!(md, "\n## Repeatability (one GPU)\n")?;
    writeln!(md, "\"host B vs A\": the single-thread workload of the host calibration, timed right after each run loaded the case's engine (B slower when positive). \"timed thread\": the CPU the thread timing the requests ran on most, and how often per second something else took it (involuntary context switches), during the case.\n")?;
    writeln!(
        md,
        "{} of {counted} figures with at least 10 samples in both runs repeat within {:.0}%.{}\n",
        counted - beyond.len(),
        REPEAT_WITHIN * 100.0,
        if beyond.is_empty() { "" } else { " Those that do not:" }
    )?;
    if beyond.is_empty() {
        return Ok(());
    }
    writeln!(md, "| figure | case | change | spread A | spread B | samples A/B | bound by | host B vs A | timed thread A / B |")?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---|---:|---|")?;
    let metric = |f: &str| FIGURES.iter().find(|x| x.1 == f).map_or("", |x| x.0);
    for (c, ra, rb) in beyond {
        let spread = |r: &Value| r["metrics"][metric(c.figure)]["rel_mad"].as_f64().map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
        writeln!(
            md,
            "| {} | {} | {:+.1}% | {} | {} | {}/{} | {} | {} | {} / {} |",
            c.figure,
            c.id,
            c.change * 100.0,
            spread(&ra),
            spread(&rb),
            samples(&ra),
            samples(&rb),
            crate::report::host::bound(&rb),
            host_change(&ra, &rb).map_or("—".to_string(), |h| format!("{:+.0}%", h * 100.0)),
            timed_thread(&ra),
            timed_thread(&rb)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Where a case's timing thread ran: `cpu 5, 12/s preempted`, or `—` for runs before it was recorded.
fn timed_thread(r: &Value) -> String {
    let m = |k: &str| r["metrics"][k]["median"].as_f64();
    match (m("timed_thread_cpu"), m("timed_thread_preempted_per_s")) {
        (Some(cpu), Some(p)) => format!("cpu {cpu:.0}, {p:.0}/s preempted"),
        (Some(cpu), None) => format!("cpu {cpu:.0}"),
        _ => "—".to_string(),
    }
}

/// How much slower B's host was than A's at the single-thread workload, timed right after each
/// run loaded the case's engine (`host_cpu_ns_per_iteration`; runs before it have none): a
/// host-bound figure that moved with it moved with the host.
fn host_change(a: &Value, b: &Value) -> Option<f64> {
    let ns = |r: &Value| r["metrics"]["host_cpu_ns_per_iteration"]["median"].as_f64().filter(|v| *v > 0.0);
    Some((ns(b)? - ns(a)?) / ns(a)?)
}

/// The hosts side by side (the runs' host calibrations), then which of the changed figures come
/// from cases bound by host work and which from GPU-bound ones: a slower host moves the first and
/// leaves the second.
fn write_host(md: &mut String, ea: &Value, eb: &Value, a: &[Value], b: &[Value], ch: &[Change]) -> Result<()> {
    use crate::report::host::{bound, figure, FIGURES};
    let rows: Vec<(&str, &str, f64, f64)> = FIGURES
        .iter()
        .filter_map(|(path, label, unit)| Some((*label, *unit, figure(ea, path)?, figure(eb, path)?)))
        .collect();
    if rows.is_empty() {
        writeln!(md, "Host calibration: not recorded by {} (runs before it existed).\n", if figure(ea, &["cpu_workload_ns_per_iteration"]).is_none() { "run A" } else { "run B" })?;
        return Ok(());
    }
    writeln!(md, "## The hosts (calibration at the start of each run; lower is faster)\n")?;
    writeln!(md, "| host figure | A | B | B vs A |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for (label, unit, x, y) in &rows {
        writeln!(md, "| {label} ({unit}) | {} | {} | {:+.1}% |", significant(*x), significant(*y), (y - x) / x * 100.0)?;
    }
    let find = |v: &[Value], id: &str| v.iter().find(|r| r["status"] == "measured" && key(r) == id).cloned();
    let class = |c: &Change| -> &'static str {
        let (ra, rb) = (find(a, &c.id), find(b, &c.id));
        match (ra.as_ref().map(bound), rb.as_ref().map(bound)) {
            (Some(x), Some(y)) if x == y => x,
            (Some("unknown"), Some(y)) | (Some(y), Some("unknown")) => y,
            (Some(_), Some(_)) => "mixed",
            _ => "unknown",
        }
    };
    let cpu = rows.iter().find(|r| r.0.starts_with("CPU")).map(|r| (r.3 - r.2) / r.2);
    let launch = rows.iter().find(|r| r.0 == "launch + synchronize").map(|r| (r.3 - r.2) / r.2);
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:+.0}%", v * 100.0));
    let changed: Vec<&Change> = ch.iter().filter(|c| is_change(c.verdict)).collect();
    let by = |k: &str| changed.iter().filter(|c| class(c) == k).count();
    let gpu_bound: Vec<f64> = ch.iter().filter(|c| class(c) == "GPU").map(|c| c.change.abs()).collect();
    let mut gpu_sorted = gpu_bound.clone();
    gpu_sorted.sort_by(f64::total_cmp);
    writeln!(
        md,
        "\nB's host against A's: CPU workload {}, launch + synchronize {}. Of the {} changed figures, {} are in host-bound cases, {} in GPU-bound ones, {} in cases bound by both, {} unclassified (no samples, CPU engines, or classified differently in the two runs). {}\n",
        pct(cpu),
        pct(launch),
        changed.len(),
        by("host"),
        by("GPU"),
        by("both"),
        changed.len() - by("host") - by("GPU") - by("both"),
        if gpu_sorted.is_empty() {
            "No figure of a GPU-bound case is in both runs.".to_string()
        } else {
            format!(
                "Figures of GPU-bound cases moved by {:.1}% at the median ({} figures): where the hosts differ and those agree, the host explains the host-bound changes.",
                gpu_sorted[gpu_sorted.len() / 2] * 100.0,
                gpu_sorted.len()
            )
        }
    )?;
    writeln!(md, "Classification: {}.\n", crate::report::host::rule())?;
    Ok(())
}

/// The machine a run's environment record describes, in words, and its first GPU's UUID (the
/// one identity that tells two machines of the same model apart).
fn machine(env: &Value) -> (String, Option<String>) {
    let gpu = &env["gpu"]["devices"][0];
    let uuid = gpu["uuid"].as_str().map(str::to_string);
    let cpus = env["host"]["logical_cpus"].as_u64().map_or("?".to_string(), |n| n.to_string());
    let host = format!("host CPU {cpus} x {}", env["host"]["cpu"].as_str().unwrap_or("?"));
    let words = match gpu["name"].as_str() {
        Some(name) => format!(
            "{name} {}, driver {}, {host}",
            uuid.as_deref().unwrap_or("(no UUID)"),
            env["gpu"]["driver_version"].as_str().unwrap_or("?")
        ),
        None => format!("no GPU recorded, {host}"),
    };
    (words, uuid)
}

/// A value with four significant digits, so that the harness's microsecond figures (in ms) do
/// not print as 0.000.
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_different_gpus_are_flagged() {
        let dir = std::env::temp_dir().join(format!("llm-bench-compare-{}", std::process::id()));
        let run = |name: &str, uuid: &str| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            let env = serde_json::json!({"git_commit": "abc", "host": {"cpu": "Xeon", "logical_cpus": 16},
                "gpu": {"driver_version": "580", "devices": [{"name": "NVIDIA H200", "uuid": uuid}]}});
            std::fs::write(d.join("environment.json"), env.to_string()).unwrap();
            std::fs::write(d.join("results.jsonl"), "").unwrap();
            d
        };
        let (a, b, c) = (run("a", "GPU-1"), run("b", "GPU-2"), run("c", "GPU-1"));
        let md = compare(&a, &b).unwrap();
        assert!(md.contains("**Not the same GPU** (different GPU UUIDs)"), "{md}");
        assert!(md.contains("NVIDIA H200 GPU-2, driver 580, host CPU 16 x Xeon"), "{md}");
        assert!(!compare(&a, &c).unwrap().contains("Not the same GPU"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn two_runs_on_one_gpu_say_which_figures_repeat_within_five_percent() {
        let dir = std::env::temp_dir().join(format!("llm-bench-repeat-{}", std::process::id()));
        // Run B's host was 25 % slower at the calibration workload.
        let rec = |case: &str, ttft: f64, samples: u64| {
            let host = if ttft > 20.5 || ttft == 10.2 { 50.0 } else { 40.0 };
            serde_json::json!({"status": "measured", "scenario": "single_request", "engine": "candle", "case": case,
                "samples": samples, "metrics": {"ttft_ms": {"median": ttft, "mean": ttft, "stddev": 0.1, "n": samples, "rel_mad": 0.01},
                "host_cpu_ns_per_iteration": {"median": host},
                "timed_thread_cpu": {"median": if host > 45.0 { 9.0 } else { 3.0 }},
                "timed_thread_preempted_per_s": {"median": if host > 45.0 { 240.0 } else { 2.0 }}}})
            .to_string()
        };
        let run = |name: &str, lines: &[String]| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            let env = serde_json::json!({"gpu": {"devices": [{"name": "NVIDIA H200", "uuid": "GPU-1"}]}});
            std::fs::write(d.join("environment.json"), env.to_string()).unwrap();
            std::fs::write(d.join("results.jsonl"), lines.join("\n")).unwrap();
            d
        };
        // prompt10 repeats (+2 %), prompt50 does not (+10 %), prompt200 has too few samples to count.
        let a = run("a", &[rec("ttft/prompt10", 10.0, 10), rec("ttft/prompt50", 20.0, 10), rec("ttft/prompt200", 30.0, 3)]);
        let b = run("b", &[rec("ttft/prompt10", 10.2, 10), rec("ttft/prompt50", 22.0, 10), rec("ttft/prompt200", 40.0, 3)]);
        let md = compare(&a, &b).unwrap();
        assert!(md.contains("1 of 2 figures with at least 10 samples in both runs repeat within 5%"), "{md}");
        assert!(
            md.contains("| TTFT ms | single_request/candle/ttft/prompt50 | +10.0% | 1.0% | 1.0% | 10/10 | CPU engine | +25% | cpu 3, 2/s preempted / cpu 9, 240/s preempted |"),
            "{md}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `--pair burn-col=burn` within the committed H200 run that holds both: only that pair is
    /// compared (not the harness's `stub` against itself), with burn-col's lower TTFT called.
    #[test]
    fn a_run_paired_with_itself_compares_only_the_pair() {
        let run = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target-reports/h200-2026-12-03-burn-col"));
        let md = compare_paired(run, run, &[("burn-col".into(), "burn".into())]).unwrap();
        assert!(!md.contains("/stub/"), "{md}");
        let ttft = md.lines().find(|l| l.starts_with("| TTFT ms | single_request/burn-col/ttft/prompt50 |")).unwrap_or_else(|| panic!("{md}"));
        assert!(ttft.ends_with("| worse |"), "B's burn is slower to its first token: {ttft}");
        assert!(!md.contains("## Repeatability"), "two configurations do not repeat one another: {md}");
    }

    #[test]
    fn small_figures_keep_their_digits() {
        assert_eq!(significant(0.000123456), "0.0001235");
        assert_eq!(significant(14.7312), "14.73");
        assert_eq!(significant(1234.5), "1234");
    }

    #[test]
    fn clear_changes_are_called_and_noise_is_not() {
        // 10 samples each, means 100 vs 120 with sd 5: t ≈ 8.9, a 20% slower request.
        let t = welch_t(100.0, 5.0, 10.0, 120.0, 5.0, 10.0).unwrap();
        assert!((t - 8.944).abs() < 0.01, "{t}");
        assert_eq!(verdict(0.2, Some(t), false), "worse");
        assert_eq!(verdict(0.2, Some(t), true), "better");
        // The same means with sd 40: t ≈ 1.1, within noise.
        let t = welch_t(100.0, 40.0, 10.0, 120.0, 40.0, 10.0).unwrap();
        assert_eq!(verdict(0.2, Some(t), false), "no change (within noise)");
        // Clear but tiny: 0.5% is below the smallest change worth calling.
        assert_eq!(verdict(0.005, Some(50.0), false), "no change (within noise)");
        assert_eq!(welch_t(1.0, 0.0, 1.0, 2.0, 0.0, 1.0), None);
        // Measured once: no spread, no verdict, however large the change.
        assert_eq!(verdict(18.3, None, true), ONE_SAMPLE);
        assert!(!is_change(ONE_SAMPLE) && !is_change(search_verdict(100.0, 105.0)));
    }

    /// Two committed H100 runs' rate searches: an answer's output rate is one window of
    /// arrivals, so its change gets no verdict, while the answers themselves are judged by the
    /// search's precision.
    #[test]
    fn a_rate_answers_output_rate_measured_once_gets_no_verdict() {
        let dir = |r: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports").join(r);
        let md = compare(&dir("h100-2026-12-06-c"), &dir("h100-2026-12-06-e")).unwrap();
        let row = |figure: &str, case: &str| {
            let start = format!("| {figure} | {case} |");
            md.lines().find(|l| l.starts_with(&start)).unwrap_or_else(|| panic!("no row {start}: {md}")).to_string()
        };
        let burn = row("output tok/s", "concurrent_load/burn/max_rate/interactive");
        assert!(burn.ends_with(&format!("| {ONE_SAMPLE} |")), "{burn}");
        assert!(row("max req/s within bound", "concurrent_load/burn/max_rate/interactive").ends_with("| better |"));
        assert!(row("max req/s within bound", "concurrent_load/llamacpp/max_rate/server").ends_with("| no change (within the search's 10 % precision) |"));
        let counts = md.lines().find(|l| l.contains(" figures in both runs: ")).unwrap();
        assert!(counts.contains("measured once in a run (no verdict)") && !counts.contains(" 0 measured once"), "{counts}");
    }
}
