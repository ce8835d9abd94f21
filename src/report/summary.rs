//! Printers of a run's results file. `results.jsonl` is the one truth; this renders it (and
//! Criterion's own estimates, read from its output directory) as Markdown, JSON and a
//! self-contained HTML page with charts. The analysis (speedups, cost, criteria, guidance) is
//! computed once ([`crate::report::analysis`]) and printed by all three.

use crate::results::read_results;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;

/// Criterion's point estimates and 95% confidence bounds for one benchmark, in ms.
fn criterion_estimates(criterion_dir: &Path, group: &str, bench: &str) -> Option<Value> {
    // Criterion writes a group's directory with '/' replaced by '_', and a benchmark id
    // `function/parameter` as two nested directories.
    let dir = criterion_dir.join(group.replace('/', "_")).join(bench).join("new");
    let text = std::fs::read_to_string(dir.join("estimates.json")).ok()?;
    let e: Value = serde_json::from_str(&text).ok()?;
    let ms = |k: &str, f: &str| e[k][f].as_f64().map(|ns| ns / 1e6);
    Some(json!({
        "mean_ms": ms("mean", "point_estimate"),
        "mean_ci95_ms": [
            e["mean"]["confidence_interval"]["lower_bound"].as_f64().map(|v| v / 1e6),
            e["mean"]["confidence_interval"]["upper_bound"].as_f64().map(|v| v / 1e6),
        ],
        "median_ms": ms("median", "point_estimate"),
        "std_dev_ms": ms("std_dev", "point_estimate"),
    }))
}

/// The records of a run's `<name>` (or `<name>.xz`).
fn read_jsonl(run_dir: &Path, name: &str) -> Vec<Value> {
    crate::results::read_raw(run_dir, name).map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()).unwrap_or_default()
}

/// Where a Criterion benchmark's HTML page is, relative to the run directory when it can be.
fn criterion_page(run_dir: &Path, criterion_dir: &Path, group: &str, bench: &str) -> String {
    let page = criterion_dir.join(group.replace('/', "_")).join(bench).join("report").join("index.html");
    if let Ok(rel) = page.strip_prefix(run_dir) {
        return rel.display().to_string();
    }
    // `report . --criterion criterion` and other spellings of the same place: compare absolute paths.
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()));
    let (run, dir) = (absolute(run_dir), absolute(criterion_dir));
    match dir.strip_prefix(&run) {
        Ok(rel) => rel.join(group.replace('/', "_")).join(bench).join("report").join("index.html").display().to_string(),
        Err(_) => format!("file://{}", dir.join(group.replace('/', "_")).join(bench).join("report").join("index.html").display()),
    }
}

/// How the report is made: the GPU price for cost figures.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub gpu_price_per_hour: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { gpu_price_per_hour: crate::report::analysis::DEFAULT_GPU_PRICE }
    }
}

/// The summary of one run: Markdown text and a JSON document with the same rows.
pub fn summarize(run_dir: &Path, criterion_dir: Option<&Path>) -> Result<(String, Value)> {
    summarize_with(run_dir, criterion_dir, Options::default()).map(|(md, doc, _)| (md, doc))
}

/// The summary of one run: Markdown text, the JSON document with the same rows, and the analysis.
pub fn summarize_with(run_dir: &Path, criterion_dir: Option<&Path>, options: Options) -> Result<(String, Value, crate::report::analysis::Analysis)> {
    summarize_results(run_dir, &run_results(run_dir)?, criterion_dir, options)
}

/// A run's `results.jsonl`. A run of the kernels bench alone may have none (it writes one only to
/// record a skip): with `kernels.jsonl` present that is an empty list, not an error.
fn run_results(run_dir: &Path) -> Result<Vec<Value>> {
    let path = run_dir.join("results.jsonl");
    if !path.exists() && run_dir.join("kernels.jsonl").exists() {
        return Ok(Vec::new());
    }
    read_results(&path)
        .map(crate::results::current_records)
        .with_context(|| format!("{} is not a run directory of llm-bench (no results.jsonl or kernels.jsonl)", run_dir.display()))
}

fn summarize_results(run_dir: &Path, results: &[Value], criterion_dir: Option<&Path>, options: Options) -> Result<(String, Value, crate::report::analysis::Analysis)> {
    let env: Value = std::fs::read_to_string(run_dir.join("environment.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut md = String::new();
    let run = results.first().and_then(|r| r["run"].as_str()).unwrap_or("?");
    writeln!(md, "# llm-bench run `{run}`\n")?;
    // The header's warnings and flags (several binaries, GPUs or machines, a slow host) go in the
    // JSON summary too, without Markdown: a reader of summary.json must not miss what summary.md
    // leads with.
    let warnings: Vec<String> = write_provenance(&mut md, run_dir, results)?.iter().map(|w| w.replace("**", "")).collect();
    let gpu = &env["gpu"]["devices"][0];
    if env.is_null() {
        // No environment.json: none written yet, or set aside with a withdrawn machine's records
        // (`llm-bench withdraw --machine`); the other machines' files are listed below.
        writeln!(md, "- environment: no `environment.json` in the run directory (the machines this run's records name are below, where their files are)")?;
    } else {
        writeln!(md, "- git commit: `{}`", env["git_commit"].as_str().unwrap_or("?"))?;
        writeln!(md, "- host: {} ({} logical CPUs), {}", env["host"]["cpu"].as_str().unwrap_or("?"), env["host"]["logical_cpus"], env["host"]["os"].as_str().unwrap_or("?"))?;
        if gpu.is_object() {
            writeln!(
                md,
                "- GPU: {} `{}`, driver {}, CUDA driver API {}, SM clock {} MHz (max {}), memory clock {} MHz, {:.1} GiB",
                gpu["name"].as_str().unwrap_or("?"),
                gpu["uuid"].as_str().unwrap_or("no UUID recorded"),
                env["gpu"]["driver_version"].as_str().unwrap_or("?"),
                env["gpu"]["cuda_driver_version"],
                gpu["sm_clock_mhz"],
                gpu["sm_clock_max_mhz"],
                gpu["memory_clock_mhz"],
                gpu["memory_total_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64
            )?;
        } else {
            writeln!(md, "- GPU: none ({})", env["gpu"]["reason"].as_str().unwrap_or("not recorded"))?;
        }
    }
    if let Some(line) = crate::report::host::calibration_line(&env) {
        writeln!(md, "{line}")?;
    }
    // The CPU-only engines' own lease, when the run began with them (`RunDir::set_cpu_environment_aside`).
    if let Some(cpu) = std::fs::read_to_string(run_dir.join("environment.cpu.json")).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        writeln!(
            md,
            "- CPU-only engines' host (`environment.cpu.json`, their own lease): {} ({} logical CPUs), {}, commit `{}`",
            cpu["host"]["cpu"].as_str().unwrap_or("?"),
            cpu["host"]["logical_cpus"],
            cpu["host"]["os"].as_str().unwrap_or("?"),
            cpu["git_commit"].as_str().unwrap_or("?")
        )?;
    }
    // Other machines of a run that spans leases (`RunDir::environment_file`): their host and calibration.
    let mut others: Vec<std::path::PathBuf> = std::fs::read_dir(run_dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    others.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("environment.") && n.ends_with(".json") && n != "environment.json" && n != "environment.cpu.json"));
    others.sort();
    for path in others {
        let Some(other) = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) else { continue };
        writeln!(
            md,
            "- another machine of this run (`{}`): {} ({} logical CPUs), `{}`, commit `{}`",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            other["host"]["cpu"].as_str().unwrap_or("?"),
            other["host"]["logical_cpus"],
            crate::results::environment_machine(&other),
            other["git_commit"].as_str().unwrap_or("?")
        )?;
        if let Some(line) = crate::report::host::calibration_line(&other) {
            writeln!(md, "  {}", line.trim_start_matches("- "))?;
        }
    }
    let kernel_lines = crate::report::kernels::read(run_dir);
    // A kernels-only run names its model in the engines' decode lines.
    let model = match &env["model"] {
        m if m.is_object() => m.clone(),
        _ => kernel_lines.iter().find(|l| l["kind"] == "engine_decode").map(|l| l["model"].clone()).unwrap_or(Value::Null),
    };
    writeln!(
        md,
        "- model: `{}` — {} — {} bytes, sha256 `{}`",
        model["name"].as_str().unwrap_or("?"),
        model["description"].as_str().unwrap_or("?"),
        model["bytes"].as_u64().map_or("?".to_string(), |b| b.to_string()),
        model["sha256"].as_str().unwrap_or("?")
    )?;
    writeln!(md, "- profile: {}\n", env["profile"].as_str().unwrap_or("?"))?;
    let requests = read_jsonl(run_dir, "requests.jsonl");
    let tokens = crate::report::analysis::tokens_per_request(&requests);
    let mut analysis = crate::report::analysis::analyse(&results, &env, &tokens, options.gpu_price_per_hour);
    let checks = crate::report::check::read(run_dir);
    crate::report::analysis::leave_out_failed_checks(&mut analysis, &checks);
    write_check_warning(&mut md, &analysis)?;
    let any_measured = results.iter().any(|r| r["status"] == "measured");
    if !analysis.verdict.is_empty() {
        writeln!(md, "## Verdict (computed from this run's figures)\n")?;
        for v in &analysis.verdict {
            writeln!(md, "- {v}")?;
        }
        writeln!(md)?;
    }
    if any_measured {
        write_coverage(&mut md, &results)?;
        write_checks(&mut md, &analysis, &checks)?;
    }
    // A run of the kernels bench alone has no scenario figures to analyse or list.
    if any_measured {
        write_analysis(&mut md, &analysis)?;
    }

    write_startup(&mut md, &results)?;
    write_host_bound(&mut md, &results)?;
    write_goodput(&mut md, &results, &requests)?;
    write_rate_search(&mut md, &results, analysis.gpu_price_per_hour)?;
    crate::report::kernels::write(&mut md, &kernel_lines)?;
    if kernel_lines.is_empty() {
        writeln!(md, "Per-kernel analysis (kernel launches and GPU busy time per decode step, the kernels' fraction of the roofline next to each engine's) is not in this run: it comes from the kernels bench (`cargo bench --features cuda,candle,burn,torch,mistralrs --bench kernels`).\n")?;
    }

    if any_measured {
        writeln!(md, "## Measured\n")?;
        writeln!(md, "Per-request figures from the raw records (host clock); Criterion's figure from its own estimates (the engine's clock: `cuda-events` on a GPU, `wall` on the CPU).\n")?;
        writeln!(md, "| scenario | engine | device | case | requests | TTFT median ms | TTFT p95 ms | total median ms | total p95 ms | ITL median ms | decode tok/s median | spread (MAD/median) | Criterion clock | Criterion mean ms [95% CI] |")?;
        writeln!(md, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")?;
    }
    let mut rows = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "measured" && !is_rate_search(r)) {
        let m = &r["metrics"];
        let f = |k: &str, s: &str| m[k][s].as_f64();
        // The harness's own figures are microseconds: keep their digits.
        let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| if v.abs() < 0.1 { crate::report::compare::significant(v) } else { format!("{v:.2}") });
        let (scenario, engine, case) = (r["scenario"].as_str().unwrap_or(""), r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or(""));
        let crit = criterion_dir.and_then(|d| criterion_estimates(d, &format!("{scenario}/{engine}"), case));
        let crit_text = crit.as_ref().map_or("—".to_string(), |c| {
            format!(
                "[{} [{} – {}]]({})",
                fmt(c["mean_ms"].as_f64()),
                fmt(c["mean_ci95_ms"][0].as_f64()),
                fmt(c["mean_ci95_ms"][1].as_f64()),
                criterion_page(run_dir, criterion_dir.unwrap(), &format!("{scenario}/{engine}"), case)
            )
        });
        writeln!(
            md,
            "| {scenario} | {engine} | {} | {case} | {} | {} | {} | {} | {} | {} | {} | {:.1}% | {} | {crit_text} |",
            r["device"].as_str().unwrap_or("?"),
            // A case measured with fewer requests than Criterion's samples is flagged (⚑; why: Validity).
            if r["reduced"].is_string() { format!("{} ⚑", r["samples"]) } else { r["samples"].to_string() },
            fmt(f("ttft_ms", "median")),
            fmt(f("ttft_ms", "p95")),
            fmt(f("total_ms", "median")),
            fmt(f("total_ms", "p95")),
            fmt(f("inter_token_ms", "median")),
            fmt(f("decode_tok_s", "median")),
            100.0 * r["spread"].as_f64().unwrap_or(0.0),
            r["timer"].as_str().unwrap_or("?"),
        )?;
        rows.push(json!({"scenario": scenario, "engine": engine, "case": case, "device": r["device"],
                         "engine_info": r["engine_info"], "metrics": m, "samples": r["samples"],
                         "spread": r["spread"], "timer": r["timer"], "criterion": crit, "reduced": r["reduced"]}));
    }
    let with_telemetry: Vec<&Value> =
        results.iter().filter(|r| r["status"] == "measured" && r["metrics"]["output_tok_s"].is_object()).collect();
    if !with_telemetry.is_empty() {
        writeln!(md, "\n## Throughput and telemetry\n")?;
        writeln!(md, "Sampled every 100 ms during Criterion's measured batches. GPU utilisation is NVML's: the share of time a kernel was running, not how full the SMs were.\n")?;
        writeln!(md, "| scenario | engine | case | output tok/s median [min – max] | GPU util % mean [min – max] | GPU memory used GB max | GPU power W mean | SM clock MHz mean | process CPU cores mean | RSS GB max |")?;
        writeln!(md, "|---|---|---|---|---|---:|---:|---:|---:|---:|")?;
        for r in with_telemetry {
            let m = &r["metrics"];
            let g = |k: &str, s: &str| m[k][s].as_f64().map_or("—".to_string(), |v| format!("{v:.1}"));
            writeln!(
                md,
                "| {} | {} | {} | {} [{} – {}] | {} [{} – {}] | {} | {} | {} | {} | {} |",
                r["scenario"].as_str().unwrap_or(""),
                r["engine"].as_str().unwrap_or(""),
                r["case"].as_str().unwrap_or(""),
                g("output_tok_s", "median"),
                g("output_tok_s", "min"),
                g("output_tok_s", "max"),
                g("gpu_util_pct", "mean"),
                g("gpu_util_pct", "min"),
                g("gpu_util_pct", "max"),
                g("gpu_mem_used_gb", "max"),
                g("gpu_power_w", "mean"),
                g("gpu_sm_clock_mhz", "mean"),
                g("cpu_cores", "mean"),
                g("rss_gb", "max"),
            )?;
        }
    }
    let with_mbu: Vec<&Value> =
        results.iter().filter(|r| r["status"] == "measured" && r["metrics"]["mbu_pct"].is_object()).collect();
    if !with_mbu.is_empty() {
        writeln!(md, "\n## Memory and bandwidth\n")?;
        writeln!(md, "Model bandwidth utilisation (MBU) = bytes a decode step must read (every weight once + the batch's KV cache at its mean length) × decode steps per second ÷ the device's measured copy bandwidth (read + write).\n")?;
        writeln!(md, "| engine | case | weights GB (engine) | KV cache GB (engine) | GPU memory used GB max (NVML, device) | this engine's GPU memory GB max (rise since its load) | bytes per step GB | copy bandwidth GB/s | MBU % median |")?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in with_mbu {
            let m = &r["metrics"];
            let g = |k: &str, s: &str, d: usize| m[k][s].as_f64().map_or("—".to_string(), |v| format!("{v:.d$}"));
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["engine"].as_str().unwrap_or(""),
                r["case"].as_str().unwrap_or(""),
                g("weights_gb", "median", 2),
                g("kv_cache_gb", "median", 3),
                g("gpu_mem_used_gb", "max", 2),
                g("engine_gpu_mem_gb", "max", 2),
                g("bytes_per_step_gb", "median", 3),
                g("copy_bandwidth_gbs", "median", 0),
                g("mbu_pct", "median", 1),
            )?;
        }
    }
    let concurrent: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == "measured" && r["scenario"] == "concurrent_load" && !is_probe(r) && !is_rate_search(r))
        .collect();
    if !concurrent.is_empty() {
        writeln!(md, "\n## Concurrent load\n")?;
        writeln!(md, "Closed-loop clients and Poisson arrivals; per-request latencies from arrival (queueing included). Scaling = output tok/s ÷ the same engine's output tok/s with 1 client; ideal = the number of clients. Mean batch `own`: the engine's own scheduler served the requests (its batches are not visible to the suite).\n")?;
        writeln!(md, "| engine | case | requests | output tok/s median | scaling vs 1 client | ideal | mean batch | TTFT p50 / p90 / p99 ms | e2e p50 / p90 / p99 ms |")?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|---|")?;
        for r in &concurrent {
            let m = &r["metrics"];
            let v = |k: &str, s: &str| m[k][s].as_f64();
            let f = |x: Option<f64>, d: usize| x.map_or("—".to_string(), |x| format!("{x:.d$}"));
            let one_client = concurrent
                .iter()
                .find(|o| o["engine"] == r["engine"] && o["case"] == "clients/1")
                .and_then(|o| o["metrics"]["output_tok_s"]["median"].as_f64());
            let case = r["case"].as_str().unwrap_or("");
            let scaling = v("output_tok_s", "median").zip(one_client).map(|(a, b)| a / b);
            let ideal = case.strip_prefix("clients/").map_or("—".to_string(), str::to_string);
            let pcts = |k: &str| format!("{} / {} / {}", f(v(k, "median"), 0), f(v(k, "p90"), 0), f(v(k, "p99"), 0));
            writeln!(
                md,
                "| {} | {case} | {} | {} | {} | {ideal} | {} | {} | {} |",
                r["engine"].as_str().unwrap_or(""),
                r["samples"],
                f(v("output_tok_s", "median"), 0),
                scaling.map_or("—".to_string(), |x| format!("{x:.2}×")),
                match own_scheduler(r) {
                    Some(true) => "own".to_string(),
                    _ => f(v("mean_batch", "median"), 1),
                },
                pcts("ttft_ms"),
                pcts("total_ms"),
            )?;
        }
    }
    let engines: Vec<Value> = results
        .iter()
        .filter(|r| r["status"] == "measured")
        .map(|r| r["engine_info"].clone())
        .fold(Vec::new(), |mut acc, e| {
            if !acc.contains(&e) {
                acc.push(e);
            }
            acc
        });
    if !engines.is_empty() {
        writeln!(md, "\n## Engines\n")?;
    }
    for e in &engines {
        writeln!(
            md,
            "- **{}**{} — {} on {}; {}; {}",
            e["name"].as_str().unwrap_or("?"),
            e["config"].as_str().filter(|c| !c.is_empty()).map_or(String::new(), |c| format!(" (configuration: {c})")),
            e["version"].as_str().unwrap_or("?"),
            e["device"].as_str().unwrap_or("?"),
            e["precision"].as_str().unwrap_or("?"),
            e["notes"].as_str().unwrap_or("")
        )?;
    }
    // An engine left out of one pass of a run (LLM_BENCH_ENGINES) but selected in another is
    // not a skip of that pass: what the other pass recorded (figures, or a skip with its own
    // reason, such as the budget) is what the reader needs. Every other skip is listed.
    // The kernels bench keeps its figures in kernels.jsonl: an engine with a decode breakdown
    // there was measured in scenario `kernels`.
    let deselected = |r: &Value| r["reason"].as_str().is_some_and(|x| x.starts_with("not selected"));
    let selected_in = |scenario: &Value, engine: &Value| {
        results.iter().any(|r| &r["scenario"] == scenario && &r["engine"] == engine && !deselected(r))
            || (scenario == "kernels" && kernel_lines.iter().any(|l| l["kind"] == "engine_decode" && &l["engine"] == engine))
    };
    // A case skipped in one pass and measured in a later one (a resumed run) is measured; one
    // skipped in several passes is listed once, with the last pass's reason and estimate.
    let key = |r: &Value| (r["scenario"].to_string(), r["engine"].to_string(), r["case"].to_string());
    let measured: std::collections::HashSet<(String, String, String)> = results.iter().filter(|r| r["status"] == "measured").map(key).collect();
    let measured_scenarios: std::collections::HashSet<(String, String)> = measured.iter().map(|(s, e, _)| (s.clone(), e.clone())).collect();
    let mut listed: std::collections::HashSet<(String, String, String)> = Default::default();
    let mut skipped: Vec<&Value> = Vec::new();
    // A withdrawn rate-search probe is a step of a search that was set aside, not a case of the
    // profile: its rate is not one a later search needs to repeat. Those are counted on one line
    // per engine and withdrawal (the records are in withdrawn.jsonl), not listed as unmeasured
    // cases; a run superseded twice keeps each withdrawal's own reason and count.
    let mut withdrawn_probes: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for r in results.iter().rev().filter(|r| r["status"] == "skipped") {
        if deselected(r) && selected_in(&r["scenario"], &r["engine"]) {
            continue;
        }
        if let Some(reason) = withdrawn_probe(r) {
            if !measured.contains(&key(r)) {
                *withdrawn_probes.entry((r["engine"].as_str().unwrap_or("?"), reason)).or_default() += 1;
            }
            continue;
        }
        let (scenario, engine, case) = key(r);
        let measured_later = measured.contains(&(scenario.clone(), engine.clone(), case.clone()))
            || (r["case"].is_null() && measured_scenarios.contains(&(scenario.clone(), engine.clone())));
        if !measured_later && listed.insert((scenario, engine, case)) {
            skipped.push(r);
        }
    }
    skipped.reverse();
    writeln!(md, "\n## Skipped (not measured)\n")?;
    if skipped.is_empty() {
        writeln!(md, "None.")?;
    }
    for s in &skipped {
        writeln!(
            md,
            "- {}/{}{}: {}",
            s["scenario"].as_str().unwrap_or("?"),
            s["engine"].as_str().unwrap_or("?"),
            s["case"].as_str().map(|c| format!("/{c}")).unwrap_or_default(),
            s["reason"].as_str().unwrap_or("?")
        )?;
    }
    for ((engine, reason), count) in &withdrawn_probes {
        writeln!(md, "- concurrent_load/{engine}/probe/…: {count} probe(s) of an earlier rate search, {reason} (kept in `withdrawn.jsonl`; a search is rerun whole, so their rates are not cases to measure again)")?;
    }
    let doc = json!({"run": run, "warnings": warnings, "environment": env, "analysis": analysis, "measured": rows, "skipped": skipped, "kernels": kernel_lines});
    Ok((md, doc, analysis))
}

/// Write `summary.md` and `summary.json` into the run directory.
pub fn write_summary(run_dir: &Path, criterion_dir: Option<&Path>) -> Result<()> {
    write_reports(run_dir, criterion_dir, Options::default())
}

/// Write `summary.md`, `summary.json` and `summary.html` into the run directory.
pub fn write_reports(run_dir: &Path, criterion_dir: Option<&Path>, options: Options) -> Result<()> {
    render(run_dir, criterion_dir, options).map(|_| ())
}

/// What a bench or suite prints when it ends: the summaries written, then a compact table of
/// what the run measured (engine × headline figures, cases measured and skipped) and where
/// `summary.html` is.
pub fn render_and_tell(run_dir: &Path, criterion_dir: Option<&Path>) -> Result<String> {
    let (results, analysis, doc) = render(run_dir, criterion_dir, Options::default())?;
    let mut out = String::new();
    let cell = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |v| format!("{v:.d$}"));
    writeln!(out, "\n{:<18} {:<7} {:>10} {:>10} {:>11} {:>9} {:>9} {:>8}", "engine", "device", "TTFT ms", "decode t/s", "best t/s", "peak GB", "measured", "skipped")?;
    // Skipped: the cases the summary lists under Skipped (each once, none measured later).
    let measured = |engine: &str| results.iter().filter(|r| r["engine"] == engine && r["status"] == "measured").count();
    let skipped = |engine: &str| doc["skipped"].as_array().map_or(0, |s| s.iter().filter(|r| r["engine"] == engine && !r["reason"].as_str().is_some_and(|x| x.starts_with("not selected"))).count());
    for e in &analysis.engines {
        writeln!(
            out,
            "{:<18} {:<7} {:>10} {:>10} {:>11} {:>9} {:>9} {:>8}",
            e.engine,
            e.device,
            cell(e.ttft_ms, 1),
            cell(e.decode_tok_s, 0),
            cell(e.best_tok_s(), 0),
            cell(e.peak_vram_gb, 2),
            measured(&e.engine),
            skipped(&e.engine)
        )?;
    }
    let mut unmeasured: Vec<String> = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "skipped") {
        let engine = r["engine"].as_str().unwrap_or("?");
        let reason = r["reason"].as_str().unwrap_or("");
        let reason = crate::results::withdrawal(reason).unwrap_or(reason);
        if reason.starts_with("not selected") || analysis.engines.iter().any(|e| e.engine == engine) {
            continue;
        }
        let line = format!("{engine}: {reason}");
        if !unmeasured.contains(&line) {
            unmeasured.push(line);
        }
    }
    for line in unmeasured {
        writeln!(out, "not measured: {line}")?;
    }
    writeln!(out, "TTFT and decode at the {}-token prompt; best t/s: the highest output rate of any case; skipped cases are listed with their reasons in the summary.", 50)?;
    writeln!(out, "summary: {}", run_dir.join("summary.html").display())?;
    Ok(out)
}

/// Render every summary of a run; the results read and the analysis, for the caller to print.
fn render(run_dir: &Path, criterion_dir: Option<&Path>, options: Options) -> Result<(Vec<Value>, crate::report::analysis::Analysis, Value)> {
    let results = run_results(run_dir)?;
    let (md, doc, analysis) = summarize_results(run_dir, &results, criterion_dir, options)?;
    std::fs::write(run_dir.join("summary.md"), &md).context("cannot write summary.md")?;
    std::fs::write(run_dir.join("summary.json"), serde_json::to_string_pretty(&doc)?)?;
    let kernel_lines = doc["kernels"].as_array().cloned().unwrap_or_default();
    let charts = charts(run_dir, &results, &kernel_lines, &analysis);
    std::fs::write(run_dir.join("summary.html"), crate::report::html::page(&md, &charts)).context("cannot write summary.html")?;
    Ok((results, analysis, doc))
}

/// CPU-only engines finished in a later lease run on another host CPU: a warning naming each
/// machine (its GPU's UUID, else its host) with its CPU and calls, and per engine which cases each
/// machine measured (the records' `machine` stamp; records of binaries before it name none).
fn cpu_machines(cpu_lines: &[&Value], results: &[Value]) -> Option<String> {
    let machine = |l: &Value| crate::results::machine_name(l["gpu_uuid"].as_str(), l["host"].as_str());
    let mut machines: Vec<String> = cpu_lines.iter().map(|l| machine(l)).collect();
    machines.sort();
    machines.dedup();
    if machines.len() < 2 {
        return None;
    }
    let described: Vec<String> = machines
        .iter()
        .map(|m| {
            let of: Vec<&&Value> = cpu_lines.iter().filter(|l| machine(l) == *m).collect();
            let cpu = of.iter().find_map(|l| l["cpu"].as_str()).unwrap_or("CPU not recorded");
            let mut calls: Vec<&str> = of.iter().filter_map(|l| l["call"].as_str()).collect();
            calls.sort();
            calls.dedup();
            format!("`{m}` ({cpu}; {} process(es){})", of.len(), if calls.is_empty() { String::new() } else { format!(", call(s) {}", calls.join(", ")) })
        })
        .collect();
    let mut engines: Vec<&str> = cpu_lines.iter().flat_map(|l| l["engines"].as_array().into_iter().flatten()).filter_map(|n| n.as_str()).collect();
    engines.sort();
    engines.dedup();
    let mut per_engine = Vec::new();
    for engine in engines {
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in results.iter().filter(|r| r["status"] == "measured" && r["engine"] == engine) {
            let m = r["machine"].as_str().map_or("not named by the record (an earlier binary)".to_string(), |m| format!("`{m}`"));
            by.entry(m).or_default().push(format!("{}/{}", r["scenario"].as_str().unwrap_or("?"), r["case"].as_str().unwrap_or("?")));
        }
        let parts: Vec<String> = by
            .iter()
            .map(|(m, cases)| if cases.len() <= 6 { format!("{m}: {}", cases.join(", ")) } else { format!("{m}: {} cases", cases.len()) })
            .collect();
        per_engine.push(format!("{engine}: {}", parts.join("; ")));
    }
    Some(format!(
        "**Warning: CPU-only engines' records come from {} machines** ({}). Their figures depend on the host's CPU: compare their cases only within one machine. Cases by machine — {}.",
        machines.len(),
        described.join(", "),
        per_engine.join(" · "),
    ))
}

/// How much slower a CPU-only engine's warm-up request may be in one call than in the fastest
/// call on the same machine before that call's cases are flagged: calls of one healthy machine
/// agree within ~15 % (table-2026-12-07, lease 7: 1.49, 1.63 and 1.70 s).
const SLOW_HOST_RATIO: f64 = 1.25;

/// A CPU-only engine's figures are only as fast as its host was while it ran, and a machine can
/// run slow for a while (table-2026-12-07, lease 7: the first call after the model file was
/// written ran the 16-thread warm-up request at 2.46 s where the later calls took 1.49-1.70 s,
/// and that call's only case was the 8K prompt). Each process times one warm-up request after
/// loading (`first_request_s`, the same request everywhere): a call whose figure is
/// [`SLOW_HOST_RATIO`] or more above the engine's fastest on that machine is flagged, with the
/// cases it measured. GPU engines are left out: their first request pays for kernels compiled or
/// cached, which differ from call to call by design.
fn slow_host_calls(results: &[Value]) -> Option<String> {
    use std::collections::BTreeMap;
    // (engine, machine) -> call -> (warm-up seconds, cases measured in that call, the most
    // cores the rest of the host used during one of them, and stolen by the hypervisor)
    type Call = (f64, Vec<String>, Option<f64>, Option<f64>);
    let mut by: BTreeMap<(String, String), BTreeMap<String, Call>> = BTreeMap::new();
    for r in results.iter().filter(|r| r["status"] == "measured" && r["device"] == "cpu") {
        let (Some(engine), Some(machine), Some(call)) = (r["engine"].as_str(), r["machine"].as_str(), r["call"].as_str()) else { continue };
        let Some(first) = r["metrics"]["first_request_s"]["median"].as_f64() else { continue };
        let entry = by.entry((engine.to_string(), machine.to_string())).or_default().entry(call.to_string()).or_insert((first, Vec::new(), None, None));
        entry.0 = entry.0.max(first);
        entry.1.push(format!("{}/{}", r["scenario"].as_str().unwrap_or("?"), r["case"].as_str().unwrap_or("?")));
        let most = |was: Option<f64>, key: &str| match (was, r["metrics"][key]["mean"].as_f64()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        (entry.2, entry.3) = (most(entry.2, "host_other_cores"), most(entry.3, "host_steal_cores"));
    }
    let mut found = Vec::new();
    for ((engine, machine), calls) in &by {
        let best = calls.values().map(|c| c.0).fold(f64::INFINITY, f64::min);
        for (call, (t, cases, other, steal)) in calls {
            if calls.len() > 1 && *t >= best * SLOW_HOST_RATIO {
                let cases = if cases.len() <= 6 { cases.join(", ") } else { format!("{} cases", cases.len()) };
                let meanwhile = match (other, steal) {
                    (Some(o), Some(s)) => format!(" (the rest of the host used up to {o:.2} cores on average during one of them, the hypervisor took {s:.2})"),
                    _ => String::new(),
                };
                found.push(format!(
                    "{engine} on `{machine}`: {t:.2} s in call {call} against {best:.2} s in its fastest call there ({:.2}×); measured in that call: {cases}{meanwhile}",
                    t / best
                ));
            }
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "**Flag: a slower host in some calls** (CPU-only engines). Each process times one warm-up request (50 prompt tokens, 16 new) after loading; on one machine they agree within ~15 %. {}. Those cases may carry a host running slower than the machine's best; measure them again in another call to tell.",
            found.join(" · ")
        )
    })
}

/// Where a run's records come from (`processes.jsonl`): how many processes, device calls,
/// binaries and GPUs; a warning first when more than one binary or GPU made them, since figures
/// from different binaries or machines are not comparable. A process that ran only CPU-only
/// engines (the lm.rs design) counts no GPU: its figures depend on its host's CPU, so it is
/// flagged when its machine is not the GPU engines' one, instead of warning of a second GPU.
/// Returns those warnings and flags, each one paragraph as written, for the JSON summary.
fn write_provenance(md: &mut String, run_dir: &Path, results: &[Value]) -> Result<Vec<String>> {
    let lines: Vec<Value> = std::fs::read_to_string(run_dir.join("processes.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let cpu_only = |l: &Value| l["cpu_only"].as_bool() == Some(true);
    let (cpu_lines, gpu_lines): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(|l| cpu_only(l));
    let distinct = |lines: &[&Value], k: &str| -> Vec<String> {
        let mut v: Vec<String> = lines.iter().filter_map(|l| l[k].as_str().map(str::to_string)).collect();
        v.sort();
        v.dedup();
        v
    };
    let all: Vec<&Value> = lines.iter().collect();
    let (commits, gpus, calls) = (distinct(&all, "git_commit"), distinct(&gpu_lines, "gpu_uuid"), distinct(&all, "call"));
    if commits.len() > 1 {
        // Which engines each binary measured, so a reader can tell which figures sit beside one
        // another's commit (table-2026-12-07: every GPU engine from one binary, the CPU-only
        // ones from three earlier ones).
        let measured_by = |commit: &str| {
            let mut engines: Vec<&str> = all
                .iter()
                .filter(|l| l["git_commit"] == commit)
                .flat_map(|l| l["engines"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            engines.sort();
            engines.dedup();
            let processes = all.iter().filter(|l| l["git_commit"] == commit).count();
            format!("`{}` {} ({processes} process(es))", &commit[..commit.len().min(12)], engines.join(", "))
        };
        warnings.push(format!(
            "**Warning: this run's records come from {} binaries** ({}): figures of different commits are side by side.",
            commits.len(),
            commits.iter().map(|c| measured_by(c)).collect::<Vec<_>>().join("; ")
        ));
    }
    if gpus.len() > 1 {
        warnings.push(format!("**Warning: this run's records come from {} GPUs** ({}): machines of one GPU model differ by tens of percent where engines are bound by host work; compare only figures of one GPU.", gpus.len(), gpus.join(", ")));
    }
    warnings.extend(cpu_machines(&cpu_lines, results));
    warnings.extend(slow_host_calls(results));
    let elsewhere: Vec<&Value> = cpu_lines.into_iter().filter(|l| l["gpu_uuid"].as_str().is_none_or(|g| !gpus.iter().any(|x| x == g))).collect();
    if !elsewhere.is_empty() && !gpu_lines.is_empty() {
        let mut engines: Vec<String> = elsewhere.iter().flat_map(|l| l["engines"].as_array().into_iter().flatten()).filter_map(|n| n.as_str().map(str::to_string)).collect();
        engines.sort();
        engines.dedup();
        let machines = distinct(&elsewhere, "gpu_uuid");
        let their_calls = distinct(&elsewhere, "call");
        warnings.push(format!(
            "**Flag: CPU-only engines measured on another machine** ({}): {} process(es) in {} (the machine of {}), not the GPU engines' one. They use no GPU; their figures depend on that host's CPU, so set them beside the others with that in mind.",
            engines.join(", "),
            elsewhere.len(),
            if their_calls.is_empty() { "no named call".to_string() } else { format!("call(s) {}", their_calls.join(", ")) },
            if machines.is_empty() { "no GPU".to_string() } else { machines.join(", ") },
        ));
    }
    for w in &warnings {
        writeln!(md, "{w}\n")?;
    }
    let machines = if gpu_lines.is_empty() {
        // A run begun with its CPU-only engines (the whole table's first lease): no GPU engine yet.
        "no GPU engine yet (CPU-only engines only)".to_string()
    } else {
        format!(
            "{} GPU(s){}",
            gpus.len().max(usize::from(gpu_lines.iter().any(|l| l["gpu_uuid"].is_null()))),
            if elsewhere.is_empty() { "" } else { " for the GPU engines (CPU-only engines flagged above)" }
        )
    };
    writeln!(
        md,
        "- records from {} process(es){}, {} binary(ies), {machines}",
        lines.len(),
        if calls.is_empty() { String::new() } else { format!(" in {} device call(s)", calls.len()) },
        commits.len(),
    )?;
    Ok(warnings)
}

/// At the top, before any figure: engines measured in this run whose output the SmolLM2 check
/// found wrong.
fn write_check_warning(md: &mut String, a: &crate::report::analysis::Analysis) -> Result<()> {
    for e in a.engines.iter().filter(|e| e.failed_check.is_some()) {
        writeln!(
            md,
            "**Warning: `{}` failed the SmolLM2 correctness check of this run** ({}): its figures time output that is wrong, so the verdict and guidance leave it out.\n",
            e.engine,
            e.failed_check.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

/// The check's outcome per engine (`check.log`), and the measured engines it has no line for.
fn write_checks(md: &mut String, a: &crate::report::analysis::Analysis, checks: &[crate::report::check::Outcome]) -> Result<()> {
    writeln!(md, "## Correctness: the SmolLM2 check (`check.log`)\n")?;
    if checks.is_empty() {
        writeln!(md, "This run has no `check.log`: no engine's output was checked in it (`llm-bench check cuda` on the same machine puts one beside the results).\n")?;
        return Ok(());
    }
    writeln!(md, "Each engine's greedy tokens and last-position logits on SmolLM2-135M-Instruct (real weights) against the suite's f32 reference (16 of 24 tokens must agree, logits within 5 % of the largest).\n")?;
    writeln!(md, "| engine | check | what it found |")?;
    writeln!(md, "|---|---|---|")?;
    for c in checks {
        writeln!(md, "| {} | {} | {} |", c.engine, if c.passed { "pass" } else { "**FAIL**" }, c.detail)?;
    }
    for e in a.engines.iter().filter(|e| !checks.iter().any(|c| c.engine == e.engine)) {
        writeln!(md, "| {} | not checked | measured in this run, not in its check |", e.engine)?;
    }
    writeln!(md)?;
    Ok(())
}

/// The reason of a skipped record that stands for a withdrawn rate-search probe.
fn withdrawn_probe(r: &Value) -> Option<&str> {
    r["reason"].as_str().and_then(crate::results::withdrawal).filter(|_| is_probe(r))
}

/// A rate-search probe (`probe/<rate>rps`): one window of arrivals, shown with its search.
fn is_probe(r: &Value) -> bool {
    r["case"].as_str().is_some_and(|c| c.starts_with("probe/"))
}

/// A rate search's answer (`max_rate/<bound>`): a rate, not request latencies.
fn is_rate_search(r: &Value) -> bool {
    r["case"].as_str().is_some_and(|c| c.starts_with("max_rate/"))
}

/// The rate searches: per engine and latency bound, the highest Poisson rate whose p99s held,
/// the goodput there and what a million output tokens cost at that rate.
fn write_rate_search(md: &mut String, results: &[Value], gpu_price: f64) -> Result<()> {
    let rows: Vec<&Value> = results.iter().filter(|r| r["status"] == "measured" && is_rate_search(r)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Highest request rate within each latency bound
")?;
    // The probes' sizes as this run served them (its records), not as this binary's profile
    // would: a report of an older run keeps saying what that run did.
    let sizes: Vec<u64> = results
        .iter()
        .filter(|r| r["status"] == "measured" && r["case"].as_str().is_some_and(|c| c.starts_with("probe/")))
        .filter_map(|r| r["samples"].as_u64())
        .collect();
    let probes = match (sizes.iter().min(), sizes.iter().max()) {
        (Some(lo), Some(hi)) => format!("this run's {} probes served {lo}–{hi} requests each", sizes.len()),
        _ => "no probe records in this run".to_string(),
    };
    writeln!(
        md,
        "A search over Poisson arrival rates per engine and bound (MLPerf Inference's Server scenario): from a start rate it doubles while the bound holds and halves while it fails, then bisects until the rate that holds and the one that fails are within 10 %. Each probe is one window of arrivals ({probes}; the profile's window and limits are in the README). An answer whose probe's arrivals lasted less than a second (a burst one batch absorbs) is flagged ⚠ and left out of the verdict: it says nothing of saturation, recorded as the case `probe/<rate>rps` with its raw requests. Cost at ${gpu_price:.2}/GPU-hour over the goodput (output tokens of the requests that met the bound) at that rate.\n"
    )?;
    writeln!(md, "| engine | bound | max req/s | output tok/s there | goodput tok/s | p99 TTFT ms | p99 TPOT ms | $ per 1M output tokens | probes | search |")?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for r in rows {
        let v = |k: &str| r["metrics"][k]["median"].as_f64();
        let good = v("goodput_tok_s").filter(|g| *g > 0.0);
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
            r["engine"].as_str().unwrap_or(""),
            r["case"].as_str().unwrap_or("").trim_start_matches("max_rate/"),
            opt(v("max_rate_rps"), 1),
            opt(v("output_tok_s"), 0),
            opt(good, 0),
            opt(v("ttft_p99_ms"), 0),
            opt(v("tpot_p99_ms"), 1),
            opt(good.map(|g| gpu_price / (g * 3600.0) * 1e6), 3),
            opt(v("probes"), 0),
            r["note"].as_str().unwrap_or(""),
            r["reduced"].as_str().map_or(String::new(), |w| format!(" ⚑ {w}"))
                + &crate::report::analysis::rate_probe_too_short(results, r).map_or(String::new(), |w| format!(" ⚠ {w}")),
        )?;
    }
    writeln!(md)?;
    if let Some(line) = who_serves(results, &crate::report::slo::slos()?) {
        writeln!(md, "{line}\n")?;
    }
    Ok(())
}

/// Whether a concurrent case was served by the engine's own scheduler (true) or the suite's
/// batcher (false): the harness records a mean batch of 0 when it could not see the batches.
fn own_scheduler(r: &Value) -> Option<bool> {
    r["metrics"]["mean_batch"]["median"].as_f64().map(|b| b == 0.0)
}

/// Which engines the suite's static batcher served and which their own scheduler
/// (`own_scheduler`). A request that arrives while the batcher's batch runs waits for the whole batch, so an engine served by it cannot give a
/// first token much sooner than one of its requests takes: h200-2026-12-06-d's `burn` held the
/// 500 ms `interactive` bound up to 21.7 req/s with its request at 380 ms, h100-2026-12-06-c's
/// failed from 3.14 req/s with it at 477 ms. The line gives each such engine's request time at
/// one client, and names the engines whose request alone takes half a bound's TTFT or more.
fn who_serves(results: &[Value], slos: &[crate::report::slo::Slo]) -> Option<String> {
    let closed: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == "measured" && r["scenario"] == "concurrent_load" && r["case"].as_str().is_some_and(|c| c.starts_with("clients/")))
        .collect();
    // (engine, its median request at one client, served one request at a time)
    let mut batcher: Vec<(String, Option<f64>, bool)> = Vec::new();
    let mut own: Vec<String> = Vec::new();
    for r in &closed {
        let engine = r["engine"].as_str().unwrap_or("").to_string();
        if batcher.iter().any(|(e, _, _)| *e == engine) || own.contains(&engine) {
            continue;
        }
        match own_scheduler(r) {
            Some(true) => own.push(engine),
            Some(false) => {
                let one = closed
                    .iter()
                    .find(|o| o["engine"] == r["engine"] && o["case"] == "clients/1")
                    .and_then(|o| o["metrics"]["total_ms"]["median"].as_f64());
                // One request per batch: the lm.rs design, which serves no more at once.
                let single = r["metrics"]["max_batch"]["max"].as_f64() == Some(1.0);
                batcher.push((engine, one, single));
            }
            None => {}
        }
    }
    if batcher.is_empty() {
        return None;
    }
    let listed = batcher
        .iter()
        .map(|(e, one, single)| {
            let mut notes: Vec<String> = one.iter().map(|ms| format!("{ms:.0} ms")).collect();
            if *single {
                notes.push("one request at a time".into());
            }
            if notes.is_empty() { e.clone() } else { format!("{e} ({})", notes.join("; ")) }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let near: Vec<String> = slos
        .iter()
        .filter_map(|slo| {
            let slow: Vec<&str> =
                batcher.iter().filter(|(_, one, _)| one.is_some_and(|ms| ms >= 0.5 * slo.ttft_p99_ms)).map(|(e, _, _)| e.as_str()).collect();
            (!slow.is_empty()).then(|| format!("`{}` ({:.0} ms): {}", slo.name, slo.ttft_p99_ms, slow.join(", ")))
        })
        .collect();
    let near = if near.is_empty() {
        String::new()
    } else {
        format!(
            " Engines whose one request alone takes half a bound's TTFT or more (that wait can decide their answer within it, and it moves with the host's speed): {}.",
            near.join("; ")
        )
    };
    let scheduled = if own.is_empty() { String::new() } else { format!(" Served by their own scheduler: {}.", own.join(", ")) };
    Some(format!(
        "Served by the suite's static batcher (no scheduler of their own), with the median time of one request at 1 client: {listed}. \
         A request that arrives while a batch runs waits for that whole batch, which takes at least what one request takes alone, \
         so such an engine's p99 first token under Poisson arrivals is at least about that long once arrivals overlap.{near}{scheduled}"
    ))
}

/// Goodput of every concurrent-load case under each latency bound (`crate::report::slo`): the
/// share of its requests that met the bound, and those requests' rate and output tokens per
/// second, from the raw per-request records.
fn write_goodput(md: &mut String, results: &[Value], requests: &[Value]) -> Result<()> {
    let cases: Vec<&Value> =
        results.iter().filter(|r| r["status"] == "measured" && r["scenario"] == "concurrent_load" && !is_probe(r) && !is_rate_search(r)).collect();
    if cases.is_empty() {
        return Ok(());
    }
    let slos = crate::report::slo::slos()?;
    writeln!(md, "## Goodput under latency bounds\n")?;
    writeln!(
        md,
        "Bounds: {}. A request meets a bound when its own TTFT and its time per output token (after the first) are both within it; goodput counts those requests and their output tokens. A case holds a bound when its p99s are within it. Your own bound: `LLM_BENCH_SLO=ttft_p99=300ms,tpot_p99=20ms llm-bench report <run dir>`.\n",
        slos.iter().map(|s| format!("`{}` p99 TTFT ≤ {} ms, p99 TPOT ≤ {} ms", s.name, s.ttft_p99_ms, s.tpot_p99_ms)).collect::<Vec<_>>().join("; ")
    )?;
    write!(md, "| engine | case | p99 TTFT ms | p99 TPOT ms |")?;
    for s in &slos {
        write!(md, " `{}`: met % / goodput tok/s / req/s |", s.name)?;
    }
    writeln!(md)?;
    writeln!(md, "|---|---|---:|---:|{}", "---|".repeat(slos.len()))?;
    for r in cases {
        let (engine, case) = (r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or(""));
        let mine: Vec<&Value> = requests.iter().filter(|q| q["scenario"] == "concurrent_load" && q["engine"] == engine && q["case"] == case).collect();
        let Some(first) = slos.first().and_then(|s| crate::report::slo::attainment(&mine, s)) else { continue };
        let tok_s = r["metrics"]["output_tok_s"]["median"].as_f64();
        let per_request = mine.iter().filter_map(|q| q["new_tokens"].as_f64()).sum::<f64>() / mine.len().max(1) as f64;
        write!(md, "| {engine} | {case} | {:.0} | {:.1} |", first.ttft_p99_ms, first.tpot_p99_ms)?;
        for s in &slos {
            let a = crate::report::slo::attainment(&mine, s).expect("requests exist");
            let good = tok_s.map(|t| t * a.met_tokens);
            write!(
                md,
                " {:.0}%{} / {} / {} |",
                a.met * 100.0,
                if a.holds { " ✓" } else { "" },
                opt(good, 0),
                opt(good.filter(|_| per_request > 0.0).map(|g| g / per_request), 2)
            )?;
        }
        writeln!(md)?;
    }
    writeln!(md)?;
    Ok(())
}

/// Per engine, what bound its batch-1 decode (the headline single-request case): the host or
/// the GPU, with the samples that say so. Engines bound by host work run at the speed of the
/// machine's CPU, which the header's calibration measures.
fn write_host_bound(md: &mut String, results: &[Value]) -> Result<()> {
    let case = format!("total/{}", crate::report::analysis::HEADLINE_PROMPT);
    let rows: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == "measured" && r["scenario"] == "single_request" && r["case"] == case.as_str() && r["engine"] != "stub")
        .filter(|r| r["metrics"]["cpu_cores"].is_object())
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Host or GPU bound, one request
")?;
    writeln!(md, "`single_request/<engine>/{case}`; {}. An engine bound by the host runs at the speed of one of its cores: compare such figures only between runs on one machine, or against the host calibration in the header.
", crate::report::host::rule())?;
    writeln!(md, "| engine | device | inter-token ms | process CPU cores | GPU busy % (NVML) | bound by |")?;
    writeln!(md, "|---|---|---:|---:|---:|---|")?;
    for r in rows {
        let m = &r["metrics"];
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r["engine"].as_str().unwrap_or("?"),
            r["device"].as_str().unwrap_or("?"),
            opt(m["inter_token_ms"]["median"].as_f64(), 2),
            opt(m["cpu_cores"]["mean"].as_f64(), 2),
            opt(m["gpu_util_pct"]["mean"].as_f64(), 0),
            crate::report::host::bound(r)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// A figure with `d` decimals, or a dash. `+ 0.0` turns a negative zero into zero: a float sum
/// of nothing is -0.0 in Rust, which printed "-0" as the goodput of a case where no request met
/// its bound (h100-2026-12-06-c).
fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("—".to_string(), |v| format!("{:.d$}", v + 0.0))
}

/// The analysis sections of the Markdown summary.
fn write_analysis(md: &mut String, a: &crate::report::analysis::Analysis) -> Result<()> {
    use crate::report::analysis::{cost, speedup, EXPECTED};
    writeln!(md, "## Engines at a glance\n")?;
    writeln!(md, "Single-request figures at a {}-token prompt (`single_request/<engine>/ttft|total/{}`); best rate over the sustained and concurrent cases; peak GPU memory over the memory-efficiency cases; MBU at batch 1.\n", 50, crate::report::analysis::HEADLINE_PROMPT)?;
    writeln!(md, "| engine | device | TTFT median ms | TTFT p95 ms | request ms (new tokens) | decode tok/s | best output tok/s | GPU util % (sustained) | peak GPU memory GB | MBU % |")?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for e in &a.engines {
        writeln!(
            md,
            "| {}{} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            e.engine,
            if e.failed_check.is_some() { " (failed the check)" } else { "" },
            e.device,
            opt(e.ttft_ms, 1),
            opt(e.ttft_p95_ms, 1),
            opt(e.total_ms, 0),
            opt(e.new_tokens, 0),
            opt(e.decode_tok_s, 1),
            opt(e.best_tok_s(), 0),
            opt(e.gpu_util_pct, 0),
            opt(e.peak_vram_gb, 2),
            opt(e.mbu_pct, 1)
        )?;
    }
    writeln!(md, "\n## Speedup over the PyTorch baseline, and against llama.cpp\n")?;
    writeln!(md, "Measured: TTFT speedup = the baseline's (`{}`) time to first token ÷ the engine's; latency speedup = the baseline's request time ÷ the engine's (same 50-token prompt, same new tokens); throughput speedup = decode tok/s ÷ the baseline's; ÷ llama.cpp = the engine's decode tok/s as a fraction of `{}`'s on the same file and GPU. Expected: the specification's hierarchy for the engine's family (inference time, tok/s, speedup), shown for comparison only. Every variant is a row; an engine the specification expects that this run did not measure is listed as such.\n", crate::report::analysis::BASELINE, crate::report::analysis::LLAMACPP)?;
    writeln!(md, "| engine | expected ms | expected tok/s | expected speedup | measured TTFT ms | measured decode tok/s | TTFT speedup | latency speedup | throughput speedup | decode ÷ llama.cpp |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let base_ttft = a.engines.iter().find(|e| e.engine == crate::report::analysis::BASELINE).and_then(|b| b.ttft_ms);
    let llama_decode = a.engines.iter().find(|e| e.engine == crate::report::analysis::LLAMACPP).and_then(|b| b.decode_tok_s);
    let x = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}×"));
    let expected = |name: &str| EXPECTED.iter().find(|x| x.0 == crate::report::analysis::family(name)).copied();
    for e in &a.engines {
        let (lat, thr) = speedup(a, e);
        let (ms, toks, sp) = expected(&e.engine).map_or(("—".to_string(), "—".to_string(), "—".to_string()), |(_, ms, t, sp)| (format!("{ms:.0}"), format!("{t:.0}"), format!("{sp:.1}×")));
        writeln!(
            md,
            "| {} | {ms} | {toks} | {sp} | {} | {} | {} | {} | {} | {} |",
            e.engine,
            opt(e.ttft_ms, 1),
            opt(e.decode_tok_s, 1),
            x(base_ttft.zip(e.ttft_ms).map(|(b, t)| b / t)),
            x(lat),
            x(thr),
            llama_decode.zip(e.decode_tok_s).map_or("—".to_string(), |(l, d)| format!("{:.2}", d / l))
        )?;
    }
    for (name, ms, toks, sp) in EXPECTED {
        if !a.engines.iter().any(|e| crate::report::analysis::family(&e.engine) == name) {
            writeln!(md, "| {name} | {ms:.0} | {toks:.0} | {sp:.1}× | not measured | not measured | — | — | — | — |")?;
        }
    }
    writeln!(md, "\n## Cost\n")?;
    writeln!(md, "At ${:.2} per GPU-hour (`--gpu-price`; the default is an assumed on-demand H100 price). Cost per million output tokens at the engine's best measured output rate; requests per GPU-hour at its best closed-loop concurrent case. A CPU engine is priced at the same machine's hour.\n", a.gpu_price_per_hour)?;
    writeln!(md, "| engine | best output tok/s | $ per 1M output tokens | requests per GPU-hour |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for e in &a.engines {
        let (per_m, rph) = cost(a, e);
        writeln!(md, "| {} | {} | {} | {} |", e.engine, opt(e.best_tok_s(), 0), opt(per_m, 3), opt(rph, 0))?;
    }
    writeln!(md, "\n## Success criteria (from the specification)\n")?;
    writeln!(md, "| engine | criterion | measured | verdict |")?;
    writeln!(md, "|---|---|---|---|")?;
    for c in &a.criteria {
        writeln!(md, "| {} | {} | {} | {} |", c.engine, c.criterion, c.value, c.verdict)?;
    }
    writeln!(md, "\n## Validity flags\n")?;
    if a.flags.is_empty() {
        writeln!(md, "None.")?;
    }
    for f in &a.flags {
        writeln!(md, "- {f}")?;
    }
    writeln!(md, "\n## Deployment guidance (generated from the figures above)\n")?;
    for g in &a.guidance {
        writeln!(md, "- {g}")?;
    }
    writeln!(md, "\n## Optimisation opportunities (generated from the figures above)\n")?;
    for o in &a.opportunities {
        writeln!(md, "- {o}")?;
    }
    writeln!(md)?;
    Ok(())
}

/// The charts of the HTML page, as (title, SVG) pairs; a chart without data is left out.
fn charts(run_dir: &Path, results: &[Value], kernel_lines: &[Value], a: &crate::report::analysis::Analysis) -> Vec<(String, String)> {
    use crate::report::plots::{bars, lines};
    let measured: Vec<&Value> = results.iter().filter(|r| r["status"] == "measured" && r["engine"] != "stub").collect();
    let series = |scenario: &str, prefix: &str, metric: &str, stat: &str| -> Vec<(String, Vec<(f64, f64)>)> {
        let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for e in &a.engines {
            let mut pts: Vec<(f64, f64)> = measured
                .iter()
                .filter(|r| r["engine"] == e.engine.as_str() && r["scenario"] == scenario)
                .filter_map(|r| {
                    let case = r["case"].as_str()?.strip_prefix(prefix)?;
                    let x: f64 = case.trim_start_matches(|c: char| !c.is_ascii_digit()).trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
                    Some((x, r["metrics"][metric][stat].as_f64()?))
                })
                .collect();
            pts.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap());
            if !pts.is_empty() {
                out.push((e.engine.clone(), pts));
            }
        }
        out
    };
    let mut out = Vec::new();
    let decode: Vec<(String, f64)> = a.engines.iter().filter_map(|e| e.decode_tok_s.map(|v| (e.engine.clone(), v))).collect();
    out.push(("Decode speed, one request".to_string(), bars("Decode tok/s, one request (50-token prompt)", "tok/s", &decode, None)));
    out.push(("Time to first token by prompt length".to_string(), lines("TTFT (median) by prompt length", "prompt tokens", "ms", &series("single_request", "ttft/prompt", "ttft_ms", "median"), false)));
    let conc: Vec<(String, Vec<(f64, f64)>)> = a.engines.iter().filter(|e| !e.concurrency.is_empty()).map(|e| (e.engine.clone(), e.concurrency.iter().map(|c| (c.0, c.1)).collect())).collect();
    out.push(("Concurrency scaling: throughput".to_string(), lines("Output tok/s by closed-loop clients", "clients", "tok/s", &conc, true)));
    let p99: Vec<(String, Vec<(f64, f64)>)> = a.engines.iter().map(|e| (e.engine.clone(), e.concurrency.iter().filter_map(|c| c.2.map(|p| (c.0, p))).collect::<Vec<_>>())).filter(|s| !s.1.is_empty()).collect();
    out.push(("Concurrency scaling: p99 latency".to_string(), lines("End-to-end p99 by closed-loop clients", "clients", "ms", &p99, true)));
    out.push(("GPU utilisation during the sustained run".to_string(), lines("GPU utilisation (NVML) during sustained batches", "seconds into the measured run", "%", &telemetry_series(run_dir, a), false)));
    out.push(("Peak GPU memory by batch".to_string(), lines("Peak GPU memory in use (NVML), 1B model", "batch", "GB", &series("memory_efficiency", "1b/batch", if results.iter().any(|r| r["metrics"]["engine_gpu_mem_gb"].is_object()) { "engine_gpu_mem_gb" } else { "gpu_mem_used_gb" }, "max"), false)));
    out.push(("Long-context scaling".to_string(), lines("TTFT (median) by context length", "context tokens", "ms", &series("long_context", "ttft/context", "ttft_ms", "median"), true)));
    // One chart per bound the rate searches ran: max req/s per engine.
    let mut bounds: Vec<&str> = Vec::new();
    for b in a.engines.iter().flat_map(|e| e.max_rate.iter().map(|m| m.0.as_str())) {
        if !bounds.contains(&b) {
            bounds.push(b);
        }
    }
    for b in bounds {
        let rates: Vec<(String, f64)> = a.engines.iter().filter_map(|e| e.max_rate.iter().find(|m| m.0 == b).map(|m| (e.engine.clone(), m.1))).collect();
        out.push((format!("Highest request rate within `{b}`"), bars(&format!("Max req/s within `{b}` (rate search)"), "req/s", &rates, None)));
    }
    let mbu: Vec<(String, f64)> = a.engines.iter().filter_map(|e| e.mbu_pct.map(|v| (e.engine.clone(), v))).collect();
    out.push(("Fraction of the bandwidth roofline".to_string(), bars("Model bandwidth utilisation at batch 1", "% of measured copy bandwidth", &mbu, Some((100.0, "roofline (copy bandwidth)")))));
    // The kernels bench: the suite's decode-step matvecs (graph replay), then each engine's
    // whole decode step by GPU busy time and by wall time.
    let steps = crate::report::kernels::step_rows(kernel_lines);
    let ours: Vec<(String, f64)> = steps
        .iter()
        .filter(|r| r.label.starts_with("llm-bench (") && r.how.ends_with("CUDA graph"))
        .filter_map(|r| {
            let shape = r.label.trim_start_matches("llm-bench (").trim_end_matches(')');
            let launch = if shape.ends_with("_pdl") {
                " + PDL"
            } else if shape.ends_with("_persistent") {
                ", persistent"
            } else {
                ""
            };
            let name = format!("{}{launch}", if shape.starts_with("fused") { "fused" } else { "16x7" });
            Some((name, 100.0 * r.fraction?))
        })
        .collect();
    out.push(("The suite's decode-step kernels against the roofline".to_string(), bars("Suite's matvecs of a decode step (CUDA graph)", "% of measured copy bandwidth", &ours, Some((100.0, "roofline (copy bandwidth)")))));
    let engines: Vec<(String, f64)> = steps
        .iter()
        .filter(|r| r.how.starts_with("whole decode step"))
        .filter_map(|r| Some((format!("{} {}", r.label, if r.how.contains("busy") { "busy" } else { "wall" }), 100.0 * r.fraction?)))
        .collect();
    out.push(("Each engine's decode step against the roofline".to_string(), bars("Engines' decode step: GPU busy time and wall time", "% of measured copy bandwidth", &engines, Some((100.0, "roofline (copy bandwidth)")))));
    out.into_iter().filter(|(_, svg)| !svg.is_empty()).collect()
}

/// GPU utilisation over time of each engine's largest sustained batch, from `telemetry.jsonl`.
fn telemetry_series(run_dir: &Path, a: &crate::report::analysis::Analysis) -> Vec<(String, Vec<(f64, f64)>)> {
    let rows = read_jsonl(run_dir, "telemetry.jsonl");
    let mut out = Vec::new();
    for e in &a.engines {
        let Some(case) = &e.sustained_case else { continue };
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r["scenario"] == "sustained_throughput" && r["engine"] == e.engine.as_str() && r["case"] == case.as_str())
            .filter_map(|r| Some((r["sample"]["t"].as_f64()?, r["sample"]["gpu_util_pct"].as_f64()?)))
            .collect();
        if !pts.is_empty() {
            out.push((format!("{} {case}", e.engine), pts));
        }
    }
    out
}

/// Each engine's cost before its first case, per load (a suite loads an engine once per model;
/// `cargo bench` once per scenario): outside every figure, but what a cold start costs.
fn write_startup(md: &mut String, results: &[Value]) -> Result<()> {
    let mut rows: std::collections::BTreeMap<(String, String), (f64, Option<f64>, Option<f64>)> = Default::default();
    for r in results.iter().filter(|r| r["status"] == "measured") {
        let m = &r["metrics"];
        let (Some(load), Some(engine)) = (m["load_s"]["median"].as_f64(), r["engine"].as_str()) else { continue };
        if engine == "stub" {
            continue; // never loaded
        }
        let model = r["model"]["name"].as_str().unwrap_or("?").to_string();
        let row = rows.entry((engine.to_string(), model)).or_insert((load, m["first_request_s"]["median"].as_f64(), None));
        // Only the concurrent scenario's cases carry it (one warm-up per load).
        row.2 = row.2.or(m["shape_warm_up_s"]["median"].as_f64());
    }
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Start-up\n")?;
    writeln!(md, "Loading the model, and the first request after the load (GPU kernels compiled by the driver, pools grown): paid once per process, kept out of every figure below. Batch-shape warm-up: one untimed batch of each size an engine compiles its kernels for, before the concurrent scenario's cases (burn-cuda; — for engines whose kernels do not depend on the batch's shape).\n")?;
    writeln!(md, "| engine | model | load s | first request s | batch-shape warm-up s |")?;
    writeln!(md, "|---|---|---:|---:|---:|")?;
    let s2 = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    for ((engine, model), (load, first, shapes)) in rows {
        writeln!(md, "| {engine} | {model} | {load:.2} | {} | {} |", s2(first), s2(shapes))?;
    }
    writeln!(md)?;
    Ok(())
}

/// Which engine × scenario pairs have figures: a run paced by a budget measures what fits, and a
/// reader must see at once what it left out (each skipped case's reason is in Skipped).
/// Cases are counted once: a case skipped in several passes of a run that spans calls (each with
/// its own estimate, all listed under Skipped) is one case left out.
fn write_coverage(md: &mut String, results: &[Value]) -> Result<()> {
    type Cases = std::collections::BTreeSet<String>;
    let mut cells: std::collections::BTreeMap<(String, String), (Cases, Cases)> = Default::default();
    let mut scenarios: Vec<String> = Vec::new();
    // A variant of the table that no pass has selected yet (`LLM_BENCH_ENGINES`) is a hole the
    // reader must see: its cells say "not run". An experiment that was not asked for is not.
    let mut not_run: std::collections::BTreeSet<(String, String)> = Default::default();
    for r in results {
        let (Some(engine), Some(scenario)) = (r["engine"].as_str(), r["scenario"].as_str()) else { continue };
        // The stub is the harness, not an engine; an engine left out of a pass on purpose
        // (`LLM_BENCH_ENGINES`) was measured in another pass or not asked for.
        if r["reason"].as_str().is_some_and(|w| w.starts_with("not selected by")) && engine != "stub" {
            not_run.insert((engine.to_string(), scenario.to_string()));
        }
        if engine == "stub" || r["reason"].as_str().is_some_and(|w| w.starts_with("not selected")) || is_probe(r) {
            continue; // a rate search's probes are counted in its `max_rate` case
        }
        if !scenarios.iter().any(|s| s == scenario) {
            scenarios.push(scenario.to_string());
        }
        let cell = cells.entry((engine.to_string(), scenario.to_string())).or_default();
        let case = r["case"].as_str().unwrap_or("(every case)").to_string();
        match r["status"].as_str() {
            Some("measured") => cell.0.insert(case),
            _ => cell.1.insert(case),
        };
    }
    if cells.is_empty() {
        return Ok(());
    }
    // A case measured in a later pass is not also skipped; a scenario skipped whole in one pass
    // ("(every case)") and measured in another is not a skipped case either.
    for (measured, skipped) in cells.values_mut() {
        skipped.retain(|c| !measured.contains(c) && !(c == "(every case)" && !measured.is_empty()));
    }
    let unselected: Vec<String> = not_run.iter().filter(|(e, _)| !cells.keys().any(|(c, _)| c == e)).map(|(e, _)| e.clone()).collect();
    let mut engines: Vec<&String> = cells.keys().map(|(e, _)| e).chain(unselected.iter()).collect();
    engines.dedup();
    writeln!(md, "## Coverage\n")?;
    writeln!(md, "Cases measured / skipped per engine and scenario (reasons under Skipped).\n")?;
    writeln!(md, "| engine | {} |", scenarios.join(" | "))?;
    writeln!(md, "|---|{}", "---|".repeat(scenarios.len()))?;
    for e in engines {
        let row: Vec<String> = scenarios
            .iter()
            .map(|s| match cells.get(&(e.clone(), s.clone())) {
                Some((m, k)) => format!("{} / {}", m.len(), k.len()),
                None if not_run.contains(&(e.clone(), s.clone())) => "not run".to_string(),
                None => "—".to_string(),
            })
            .collect();
        writeln!(md, "| {e} | {} |", row.join(" | "))?;
    }
    writeln!(md)?;
    // A "not run" cell has no skip record to give its reason: say here what it is and how the
    // run measures it, so the cell does not read as a figure nobody could get.
    let mut by_engine: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (e, s) in not_run.iter().filter(|k| !cells.contains_key(*k) && scenarios.contains(&k.1)) {
        by_engine.entry(e.as_str()).or_default().push(s.as_str());
    }
    if !by_engine.is_empty() {
        let list: Vec<String> = by_engine.iter().map(|(e, s)| format!("`{e}` ({})", s.join(", "))).collect();
        writeln!(
            md,
            "**not run**: no process of this run has measured these yet, only recorded them as not selected \
             (each pass names its engines, `LLM_BENCH_ENGINES`): {}. The run goes on with \
             `LLM_BENCH_ENGINES=<engine> llm-bench suite --resume <this run's directory> <scenario ...>`; \
             `llm-bench suite --plan --from <this run's directory>` estimates it where an earlier run \
             measured the engine's cases.\n",
            list.join("; ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committed run keeps its large raw files as `.xz`: they read as the plain file does.
    #[test]
    fn a_compressed_raw_file_reads_as_the_plain_one() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports/h200-2026-12-03-squeeze2");
        let rows = read_jsonl(&committed, "telemetry.jsonl");
        assert!(rows.len() > 100, "{} telemetry rows", rows.len());
        let dir = std::env::temp_dir().join(format!("llm-bench-report-xz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.join("telemetry.jsonl"), lines.join("\n")).unwrap();
        assert_eq!(read_jsonl(&dir, "telemetry.jsonl"), rows);
        let xz = std::process::Command::new("xz").arg(dir.join("telemetry.jsonl")).status().expect("the xz command");
        assert!(xz.success() && !dir.join("telemetry.jsonl").exists() && dir.join("telemetry.jsonl.xz").exists());
        let unpacked = read_jsonl(&dir, "telemetry.jsonl");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(unpacked, rows);
    }

    /// h100-2026-12-06-c's mistral.rs cases where no request met `interactive`: their goodput
    /// reads 0, not "-0" (a float sum of nothing is -0.0).
    #[test]
    fn a_case_where_no_request_met_the_bound_has_a_goodput_of_zero() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports/h100-2026-12-06-c");
        let results = crate::results::read_results(&committed.join("results.jsonl")).unwrap();
        let requests = read_jsonl(&committed, "requests.jsonl");
        let mut md = String::new();
        write_goodput(&mut md, &results, &requests).unwrap();
        let row = md.lines().find(|l| l.starts_with("| mistralrs-paged | clients/50 |")).expect("the row");
        assert!(row.contains("| 0% / 0 / 0.00 |") && !row.contains("-0"), "{row}");
    }

    /// The rate-search section says which engines the static batcher served, with their request
    /// time at one client, and which their own scheduler (h200-2026-12-06-d's records).
    #[test]
    fn the_rate_search_says_which_engines_wait_for_the_batch_in_flight() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-reports/h200-2026-12-06-d");
        let results = crate::results::read_results(&committed.join("results.jsonl")).unwrap();
        let line = who_serves(&results, &crate::report::slo::slos().unwrap()).expect("a line");
        let near = line.split("that wait can decide").nth(1).expect("the engines near a bound");
        assert!(near.contains("`interactive` (500 ms): torch, burn"), "{line}");
        let burn = line.split("burn (").nth(1).and_then(|t| t.split(" ms)").next()).and_then(|ms| ms.parse::<f64>().ok());
        assert!(burn.is_some_and(|ms| (300.0..500.0).contains(&ms)), "{line}");
        assert!(line.contains("llamacpp (") && line.contains("candle-f16 ("), "{line}");
        let own = line.split("Served by their own scheduler: ").nth(1).expect("the scheduled engines");
        assert!(own.contains("mistralrs") && own.contains("mistralrs-paged") && !own.contains("burn"), "{line}");
    }

    /// The CPU-only engines measured on another machine are flagged, not counted as a second
    /// GPU; a GPU engine on another machine still is.
    #[test]
    fn a_cpu_only_engine_on_another_machine_is_flagged_not_a_second_gpu() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-cpu-only-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("results.jsonl"),
            r#"{"status":"skipped","run":"r","scenario":"long_context","engine":"lmrs","case":null,"reason":"not selected by LLM_BENCH_ENGINES"}"#.to_string() + "\n",
        )
        .unwrap();
        let process = |gpu: &str, call: &str, engines: &str, cpu: bool| {
            format!(r#"{{"pid":1,"git_commit":"c","gpu_uuid":"{gpu}","call":"{call}","engines":{engines},"cpu_only":{cpu}}}"#)
        };
        let mut lines = vec![
            process("GPU-a", "call-1", r#"["candle"]"#, false),
            process("GPU-a", "call-2", r#"["burn"]"#, false),
            process("GPU-b", "call-9", r#"["lmrs","lmrs-fast"]"#, true),
        ];
        std::fs::write(dir.join("processes.jsonl"), lines.join("\n")).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        assert!(!md.contains("come from 2 GPUs"), "{md}");
        assert!(md.contains("CPU-only engines measured on another machine** (lmrs, lmrs-fast)") && md.contains("call-9"), "{md}");
        assert!(md.contains("1 GPU(s) for the GPU engines"), "{md}");
        // The whole table's first lease: CPU-only engines alone, no GPU counted, nothing flagged.
        std::fs::write(dir.join("processes.jsonl"), lines[2].clone()).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        assert!(md.contains("1 binary(ies), no GPU engine yet (CPU-only engines only)"), "{md}");
        assert!(!md.contains("flagged above"), "{md}");
        lines.push(process("GPU-b", "call-9", r#"["torch"]"#, false));
        std::fs::write(dir.join("processes.jsonl"), lines.join("\n")).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(md.contains("come from 2 GPUs") && !md.contains("CPU-only engines measured on another machine"), "{md}");
    }

    /// A call whose CPU-only warm-up request ran well slower than the same engine's fastest call
    /// on that machine is flagged with the cases it measured (table-2026-12-07, lease 7's 8K);
    /// calls within the ratio, other machines' calls and GPU engines' first requests are not.
    #[test]
    fn a_call_whose_cpu_warm_up_ran_slow_is_flagged_with_its_cases() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-slow-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = |engine: &str, device: &str, case: &str, machine: &str, call: &str, first: f64| {
            format!(
                r#"{{"status":"measured","run":"r","scenario":"long_context","engine":"{engine}","case":"{case}","device":"{device}","machine":"{machine}","call":"{call}","metrics":{{"first_request_s":{{"unit":"s","n":1,"median":{first}}}}}}}"#
            )
        };
        let results = [
            record("lmrs-fast", "cpu", "total/context8192", "GPU-m", "call-b", 2.46).replace(
                r#""metrics":{"#,
                r#""metrics":{"host_other_cores":{"unit":"cores","n":9,"mean":1.5},"host_steal_cores":{"unit":"cores","n":9,"mean":0.25},"#,
            ),
            record("lmrs-fast", "cpu", "total/context4096", "GPU-m", "call-c", 1.49),
            record("lmrs-fast", "cpu", "total/context1024", "GPU-m", "call-d", 1.70),
            record("lmrs-fast", "cpu", "total/context2048", "GPU-other", "call-x", 3.00),
            record("burn", "cuda:0", "total/context1024", "GPU-m", "call-g1", 40.0),
            record("burn", "cuda:0", "total/context4096", "GPU-m", "call-g2", 1.0),
        ];
        std::fs::write(dir.join("results.jsonl"), results.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("processes.jsonl"), r#"{"pid":1,"git_commit":"c","gpu_uuid":"GPU-m","call":"call-b","engines":["lmrs-fast"],"cpu_only":true}"#).unwrap();
        let (md, doc) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let warnings = doc["warnings"].as_array().expect("the JSON summary's warnings");
        assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.starts_with("Flag: a slower host in some calls") && w.contains("call-b"))), "{warnings:?}");
        let flag = md.lines().find(|l| l.starts_with("**Flag: a slower host in some calls**")).unwrap_or_else(|| panic!("no flag: {md}"));
        assert!(flag.contains("lmrs-fast on `GPU-m`: 2.46 s in call call-b against 1.49 s") && flag.contains("(1.65×)"), "{flag}");
        assert!(flag.contains("long_context/total/context8192 (the rest of the host used up to 1.50 cores") && flag.contains("took 0.25)"), "{flag}");
        assert!(!flag.contains("call-d") && !flag.contains("call-x") && !flag.contains("burn"), "{flag}");
    }

    /// A run of several binaries names the engines each one measured (table-2026-12-07: the
    /// GPU engines from one binary, the CPU-only ones from earlier ones).
    #[test]
    fn the_binaries_warning_names_what_each_binary_measured() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-binaries-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("results.jsonl"),
            r#"{"status":"skipped","run":"r","scenario":"long_context","engine":"lmrs","case":null,"reason":"not selected by LLM_BENCH_ENGINES"}"#.to_string() + "\n",
        )
        .unwrap();
        let process = |commit: &str, engines: &str| format!(r#"{{"pid":1,"git_commit":"{commit}","gpu_uuid":"GPU-a","call":"c","engines":{engines},"cpu_only":false}}"#);
        let lines = [
            process("8c0e4ffc00b4e807", r#"["torch"]"#),
            process("8c0e4ffc00b4e807", r#"["llamacpp","torch"]"#),
            process("06b1bd080e74", r#"["lmrs"]"#),
        ];
        std::fs::write(dir.join("processes.jsonl"), lines.join("\n")).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            md.contains("come from 2 binaries** (`06b1bd080e74` lmrs (1 process(es)); `8c0e4ffc00b4` llamacpp, torch (2 process(es)))"),
            "{md}"
        );
    }

    /// A run whose environment.json went aside with a withdrawn machine's records
    /// (`llm-bench withdraw --machine`) says so, rather than "host: ? (null logical CPUs)".
    #[test]
    fn a_run_without_environment_json_says_so_in_its_header() {
        let dir = std::env::temp_dir().join(format!("llm-bench-summary-noenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = json!({"status": "skipped", "run": "r", "scenario": "single_request", "engine": "candle", "case": "ttft/prompt50", "reason": "withdrawn: superseded"});
        std::fs::write(dir.join("results.jsonl"), format!("{rec}\n")).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        assert!(md.contains("no `environment.json` in the run directory") && !md.contains("- host: ?"), "{md}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// table-2026-12-07 after lease 5: lease 3's probes were withdrawn and the searches run
    /// again at other rates, so each old probe stays a skipped record no later one measures.
    /// They fold into one line per engine and withdrawal (lease 6 withdrew lease 5's, whose
    /// lines must not take lease 3's in their count); a withdrawn case of the profile is still
    /// listed.
    #[test]
    fn withdrawn_probes_fold_into_one_line_per_engine_and_withdrawal_and_withdrawn_cases_stay_listed() {
        let dir = std::env::temp_dir().join(format!("llm-bench-summary-probes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let why = |n: usize| format!("withdrawn: superseded by lease 5 (1 record(s) and {n} request(s) moved to withdrawn.jsonl; a resumed run measures it again)");
        let rec = |status: &str, case: &str, reason: &str| json!({"status": status, "run": "r", "scenario": "concurrent_load", "engine": "torch", "case": case, "reason": reason});
        let lines = [
            rec("skipped", "probe/13.5rps", &why(27)),
            rec("skipped", "probe/27rps", &why(54)),
            rec("skipped", "probe/54rps", &why(108)),
            rec("skipped", "clients/100", &why(100)),
            rec("measured", "probe/54rps", ""),
            rec("skipped", "probe/40rps", &why(80).replace("lease 5", "lease 6")),
        ];
        std::fs::write(dir.join("results.jsonl"), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        let skipped = md.split("## Skipped (not measured)").nth(1).unwrap();
        assert!(skipped.contains("- concurrent_load/torch/probe/…: 2 probe(s) of an earlier rate search, withdrawn: superseded by lease 5 (kept"), "{skipped}");
        assert!(skipped.contains("- concurrent_load/torch/probe/…: 1 probe(s) of an earlier rate search, withdrawn: superseded by lease 6 (kept"), "{skipped}");
        assert!(!skipped.contains("probe/13.5rps") && !skipped.contains("probe/54rps"), "{skipped}");
        assert!(skipped.contains("- concurrent_load/torch/clients/100: withdrawn: superseded by lease 5 (1 record(s) and 100 request(s)"), "{skipped}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// table-2026-12-07's lmrs clients/100, skipped in three passes with three estimates: one
    /// case left out, not three.
    #[test]
    fn coverage_counts_a_case_skipped_in_several_passes_once() {
        let rec = |status: &str, case: &str| json!({"status": status, "scenario": "concurrent_load", "engine": "lmrs", "case": case, "reason": "its first round ... estimated"});
        let results = [rec("skipped", "clients/100"), rec("measured", "clients/1"), rec("skipped", "clients/100"), rec("skipped", "clients/100")];
        let mut md = String::new();
        write_coverage(&mut md, &results).unwrap();
        assert!(md.contains("| lmrs | 1 / 1 |"), "{md}");
    }

    /// table-2026-12-07 after the GPU lease: `lmrs-fast`, a variant of the table that no pass
    /// had selected yet, has a row saying so (it was left out of the table), an experiment not
    /// asked for has none, and a case skipped in one pass but measured in the next counts as
    /// measured.
    #[test]
    fn coverage_shows_a_variant_no_pass_selected_and_counts_a_case_measured_later_as_measured() {
        let rec = |engine: &str, status: &str, case: Option<&str>, reason: &str| {
            json!({"status": status, "scenario": "concurrent_load", "engine": engine, "case": case, "reason": reason})
        };
        let results = [
            rec("burn", "skipped", Some("clients/50"), "its first round of requests alone is estimated at 2.7 s"),
            rec("burn", "measured", Some("clients/50"), ""),
            rec("burn", "skipped", None, "the suite's time budget (--budget) was spent before this scenario's turn on this engine"),
            rec("burn", "skipped", Some("clients/100"), "its first round of requests alone is estimated at 6.6 s"),
            rec("lmrs-fast", "skipped", None, "not selected by LLM_BENCH_ENGINES"),
            rec("burn-col", "skipped", None, "not selected: an experiment, measured only when LLM_BENCH_ENGINES names it"),
        ];
        let mut md = String::new();
        write_coverage(&mut md, &results).unwrap();
        assert!(md.contains("| burn | 1 / 1 |"), "{md}");
        assert!(md.contains("| lmrs-fast | not run |"), "{md}");
        assert!(md.contains("**not run**: ") && md.contains("`lmrs-fast` (concurrent_load)"), "{md}");
        assert!(!md.contains("burn-col"), "{md}");
    }

    /// A CPU-only engine finished in a later lease (table-2026-12-07's lmrs): the warning names
    /// both machines with their CPUs and which cases each measured; one machine warns of nothing.
    #[test]
    fn a_cpu_only_engine_finished_on_another_machine_says_which_cases_each_measured() {
        let p = |gpu: &str, cpu: &str, call: &str| json!({"gpu_uuid": gpu, "cpu": cpu, "call": call, "engines": ["lmrs"], "cpu_only": true});
        let (first, later) = (p("GPU-f66", "Intel(R) Xeon(R) Processor", "call-1"), p("GPU-abc", "AMD EPYC 9454", "call-7"));
        let rec = |case: &str, machine: Option<&str>| {
            let mut r = json!({"status": "measured", "scenario": "long_context", "engine": "lmrs", "case": case});
            if let Some(m) = machine {
                r["machine"] = m.into();
            }
            r
        };
        let results = [rec("total/context1024", None), rec("total/context8192", Some("GPU-abc")), rec("ttft/context8192", Some("GPU-abc"))];
        assert_eq!(cpu_machines(&[&first, &first], &results), None);
        let md = cpu_machines(&[&first, &later], &results).expect("a warning for two machines");
        assert!(md.contains("records come from 2 machines") && md.contains("`GPU-abc` (AMD EPYC 9454; 1 process(es), call(s) call-7)"), "{md}");
        assert!(md.contains("`GPU-abc`: long_context/total/context8192, long_context/ttft/context8192"), "{md}");
        assert!(md.contains("not named by the record (an earlier binary): long_context/total/context1024"), "{md}");
    }

    /// A run of several passes: an engine one pass did not select and the next skipped for
    /// time is listed once, with the time, not also as "not selected".
    #[test]
    fn a_skip_of_another_pass_replaces_not_selected() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-passes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines = [
            r#"{"status":"skipped","run":"r","scenario":"long_context","engine":"torch-compile","case":null,"reason":"not selected by LLM_BENCH_ENGINES"}"#,
            r#"{"status":"skipped","run":"r","scenario":"long_context","engine":"torch-compile","case":null,"reason":"the suite's time budget (--budget) was spent before this scenario's turn on this engine"}"#,
            r#"{"status":"skipped","run":"r","scenario":"long_context","engine":"lmrs","case":null,"reason":"not selected by LLM_BENCH_ENGINES"}"#,
            // table-2026-12-07: burn's clients/50 skipped in two calls with two estimates.
            r#"{"status":"skipped","run":"r","scenario":"concurrent_load","engine":"burn","case":"clients/50","reason":"its first round of requests alone is estimated at 1.0 s"}"#,
            r#"{"status":"skipped","run":"r","scenario":"concurrent_load","engine":"burn","case":"clients/50","reason":"its first round of requests alone is estimated at 2.7 s"}"#,
        ];
        std::fs::write(dir.join("results.jsonl"), lines.join("\n") + "\n").unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(md.contains("- long_context/torch-compile: the suite's time budget"), "{md}");
        assert!(!md.contains("- long_context/torch-compile: not selected"), "{md}");
        assert!(md.contains("- long_context/lmrs: not selected by LLM_BENCH_ENGINES"), "{md}");
        assert_eq!(md.matches("- concurrent_load/burn/clients/50: ").count(), 1, "{md}");
        assert!(md.contains("- concurrent_load/burn/clients/50: its first round of requests alone is estimated at 2.7 s"), "{md}");
    }

    /// A kernels-bench run made of one-engine passes: each pass records the engines it did not
    /// select, and the breakdown of the engines it did is in kernels.jsonl.
    #[test]
    fn kernels_only_run_lists_only_engines_measured_nowhere_as_skipped() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let skip = |engine: &str| format!(r#"{{"status":"skipped","run":"r","scenario":"kernels","engine":"{engine}","case":null,"reason":"not selected by LLM_BENCH_ENGINES"}}"#);
        std::fs::write(dir.join("results.jsonl"), format!("{}\n{}\n", skip("candle"), skip("lmrs"))).unwrap();
        let decode = r#"{"kind":"engine_decode","run":"r","engine":"candle","model":{"name":"m","sha256":"s","description":"d"},"wall_s_per_step":0.004,"trace":{"skipped":"no CUPTI"}}"#;
        std::fs::write(dir.join("kernels.jsonl"), format!("{decode}\n")).unwrap();
        let (md, doc) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(md.contains("- kernels/lmrs: not selected by LLM_BENCH_ENGINES"), "{md}");
        assert!(!md.contains("- kernels/candle:"), "{md}");
        assert!(md.contains("## Kernels (the kernels bench)"), "{md}");
        assert!(md.contains("- model: `m` — d"), "{md}");
        assert!(!md.contains("## Measured"), "{md}");
        assert_eq!(doc["kernels"].as_array().map(Vec::len), Some(1));
    }

    /// A kernels-bench run that skipped nothing has no results.jsonl: it still renders, and a
    /// folder with neither file is refused with a message that says what is missing.
    #[test]
    fn kernels_run_without_results_file_renders() {
        let dir = std::env::temp_dir().join(format!("llm-bench-report-noresults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = summarize(&dir, None).unwrap_err();
        assert!(format!("{err:#}").contains("no results.jsonl or kernels.jsonl"), "{err:#}");
        let step = r#"{"kind":"case","op":"decode_step_matvecs","implementation":"llm-bench","shape":"fused_16x4_plus_lm_head_persistent","notes":"one persistent kernel","bytes_per_call":1.3e9,"issued":{"median_s":0.0005,"fraction_of_copy_bandwidth":0.6},"graph":null}"#;
        std::fs::write(dir.join("kernels.jsonl"), format!("{step}\n")).unwrap();
        let (md, _) = summarize(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(md.contains("## Kernels (the kernels bench)"), "{md}");
        assert!(!md.contains("### Q8_0 matrix-vector products"), "no matvec cases, no empty section: {md}");
        assert!(md.contains("| llm-bench (fused_16x4_plus_lm_head_persistent) | the suite's Q8_0 matvecs in one persistent kernel, issued by the host | 0.500 | 0.60 | 1 |"), "{md}");
    }
}
