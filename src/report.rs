//! Printers of a run's results file. `results.jsonl` is the one truth; this renders it (and
//! Criterion's own estimates, read from its output directory) as Markdown and JSON.

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

/// The summary of one run: Markdown text and a JSON document with the same rows.
pub fn summarize(run_dir: &Path, criterion_dir: Option<&Path>) -> Result<(String, Value)> {
    let results = read_results(&run_dir.join("results.jsonl"))?;
    let env: Value = std::fs::read_to_string(run_dir.join("environment.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut md = String::new();
    let run = results.first().and_then(|r| r["run"].as_str()).unwrap_or("?");
    writeln!(md, "# llm-bench run `{run}`\n")?;
    let gpu = &env["gpu"]["devices"][0];
    writeln!(md, "- git commit: `{}`", env["git_commit"].as_str().unwrap_or("?"))?;
    writeln!(md, "- host: {} ({} logical CPUs), {}", env["host"]["cpu"].as_str().unwrap_or("?"), env["host"]["logical_cpus"], env["host"]["os"].as_str().unwrap_or("?"))?;
    if gpu.is_object() {
        writeln!(
            md,
            "- GPU: {}, driver {}, CUDA driver API {}, SM clock {} MHz (max {}), memory clock {} MHz, {:.1} GiB",
            gpu["name"].as_str().unwrap_or("?"),
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
    let model = &env["model"];
    writeln!(
        md,
        "- model: `{}` — {} — {} bytes, sha256 `{}`",
        model["name"].as_str().unwrap_or("?"),
        model["description"].as_str().unwrap_or("?"),
        model["bytes"],
        model["sha256"].as_str().unwrap_or("?")
    )?;
    writeln!(md, "- profile: {}\n", env["profile"].as_str().unwrap_or("?"))?;

    writeln!(md, "## Measured\n")?;
    writeln!(md, "Per-request figures from the raw records (host clock); Criterion's figure from its own estimates (the engine's clock: `cuda-events` on a GPU, `wall` on the CPU).\n")?;
    writeln!(md, "| scenario | engine | device | case | requests | TTFT median ms | TTFT p95 ms | total median ms | total p95 ms | ITL median ms | decode tok/s median | spread (MAD/median) | Criterion clock | Criterion mean ms [95% CI] |")?;
    writeln!(md, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")?;
    let mut rows = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "measured") {
        let m = &r["metrics"];
        let f = |k: &str, s: &str| m[k][s].as_f64();
        let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        let (scenario, engine, case) = (r["scenario"].as_str().unwrap_or(""), r["engine"].as_str().unwrap_or(""), r["case"].as_str().unwrap_or(""));
        let crit = criterion_dir.and_then(|d| criterion_estimates(d, &format!("{scenario}/{engine}"), case));
        let crit_text = crit.as_ref().map_or("—".to_string(), |c| {
            format!(
                "{} [{} – {}]",
                fmt(c["mean_ms"].as_f64()),
                fmt(c["mean_ci95_ms"][0].as_f64()),
                fmt(c["mean_ci95_ms"][1].as_f64())
            )
        });
        writeln!(
            md,
            "| {scenario} | {engine} | {} | {case} | {} | {} | {} | {} | {} | {} | {} | {:.1}% | {} | {crit_text} |",
            r["device"].as_str().unwrap_or("?"),
            r["samples"],
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
                         "spread": r["spread"], "timer": r["timer"], "criterion": crit}));
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
        writeln!(md, "| engine | case | weights GB (engine) | KV cache GB (engine) | GPU memory used GB max (NVML) | bytes per step GB | copy bandwidth GB/s | MBU % median |")?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|")?;
        for r in with_mbu {
            let m = &r["metrics"];
            let g = |k: &str, s: &str, d: usize| m[k][s].as_f64().map_or("—".to_string(), |v| format!("{v:.d$}"));
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r["engine"].as_str().unwrap_or(""),
                r["case"].as_str().unwrap_or(""),
                g("weights_gb", "median", 2),
                g("kv_cache_gb", "median", 3),
                g("gpu_mem_used_gb", "max", 2),
                g("bytes_per_step_gb", "median", 3),
                g("copy_bandwidth_gbs", "median", 0),
                g("mbu_pct", "median", 1),
            )?;
        }
    }
    let concurrent: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == "measured" && r["scenario"] == "concurrent_load")
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
                match v("mean_batch", "median") {
                    Some(b) if b == 0.0 => "own".to_string(),
                    b => f(b, 1),
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
    writeln!(md, "\n## Engines\n")?;
    for e in &engines {
        writeln!(
            md,
            "- **{}** — {} on {}; {}; {}",
            e["name"].as_str().unwrap_or("?"),
            e["version"].as_str().unwrap_or("?"),
            e["device"].as_str().unwrap_or("?"),
            e["precision"].as_str().unwrap_or("?"),
            e["notes"].as_str().unwrap_or("")
        )?;
    }
    // An engine left out of one pass of a run (LLM_BENCH_ENGINES) but measured in another is
    // not a skip; every other skip is listed with its reason.
    let measured_in = |scenario: &Value, engine: &Value| {
        results.iter().any(|r| r["status"] == "measured" && &r["scenario"] == scenario && &r["engine"] == engine)
    };
    let mut skipped: Vec<&Value> = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "skipped") {
        let deselected = r["reason"].as_str().is_some_and(|x| x.starts_with("not selected"));
        if deselected && measured_in(&r["scenario"], &r["engine"]) {
            continue;
        }
        if !skipped.iter().any(|s| s["scenario"] == r["scenario"] && s["engine"] == r["engine"] && s["case"] == r["case"] && s["reason"] == r["reason"]) {
            skipped.push(r);
        }
    }
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
    let doc = json!({"run": run, "environment": env, "measured": rows, "skipped": skipped});
    Ok((md, doc))
}

/// Write `summary.md` and `summary.json` into the run directory.
pub fn write_summary(run_dir: &Path, criterion_dir: Option<&Path>) -> Result<()> {
    let (md, doc) = summarize(run_dir, criterion_dir)?;
    std::fs::write(run_dir.join("summary.md"), md).context("cannot write summary.md")?;
    std::fs::write(run_dir.join("summary.json"), serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}
